/* rys export: turn a layer path into model files other tools load (a GGUF
 * for llama.cpp, a Hugging Face directory for transformers); the work is in
 * src/export/, this file only reads options and picks the format. */
#include "cli/cli.h"
#include "export/export.h"
#include "cli/models.h"
#include "base/util.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static void usage(void) {
    puts("usage: rys export MODEL [--blocks SPEC | --layers SPEC] [--virtual] -o OUT\n"
         "  MODEL         a GGUF file, a known model name, or a Hugging Face model directory\n"
         "                (config.json + *.safetensors, sharded with model.safetensors.index.json or not)\n"
         "  --blocks SPEC RYS blocks \"i,j[;i,j...]\": layers 0..j-1 then i..N-1\n"
         "  --layers SPEC explicit path, e.g. \"0-11,6-23\"\n"
         "  -o OUT        output GGUF file, or output directory for a Hugging Face model\n"
         "  --virtual     GGUF only: keep the tensors once and record the path as rys.layer_path\n"
         "                (rys runs it by default; other tools see the original model)\n"
         "  --quiet       no progress output\n"
         "A materialized export copies each path position's layer (bytes unchanged) so any\n"
         "GGUF or transformers loader runs the relayered model.");
}

int cmd_export(int argc, char **argv) {
    const char *model_spec = NULL, *out = NULL;
    export_opts o = {.progress = true};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(); return 0; }
        else if (!strcmp(a, "--blocks")) o.blocks = cli_value(argc, argv, &i);
        else if (!strcmp(a, "--layers")) o.layers = cli_value(argc, argv, &i);
        else if (!strcmp(a, "-o") || !strcmp(a, "--output")) out = cli_value(argc, argv, &i);
        else if (!strcmp(a, "--virtual")) o.virtual_path = true;
        else if (!strcmp(a, "--quiet")) o.progress = false;
        else if (a[0] == '-') rys_die("export: unknown option %s", a);
        else if (!model_spec) model_spec = a;
        else rys_die("export: unexpected argument %s", a);
    }
    if (!model_spec || !out) { usage(); return 1; }
    if (o.blocks && o.layers) rys_die("export: --blocks and --layers cannot be combined");

    struct stat st;
    if (stat(model_spec, &st) == 0 && S_ISDIR(st.st_mode)) {
        if (export_hf(model_spec, out, &o)) rys_die("%s", rys_lasterr());
    } else {
        char path[4096];
        if (!models_resolve(model_spec, path, sizeof path)) rys_die("%s", rys_lasterr());
        if (export_gguf(path, out, &o)) rys_die("%s", rys_lasterr());
    }
    printf("wrote %s\n", out);
    return 0;
}
