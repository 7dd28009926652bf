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

int cmd_export(int argc, char **argv) {
    const char *model_spec = NULL, *out = NULL;
    export_opts o = {.progress = true};
    const cli_opt opts[] = {
        CLI_BLOCKS(&o.blocks),
        CLI_LAYERS(&o.layers),
        CLI_STR_REQUIRED("-o", "--output", &out, "OUT", "output GGUF file, or output directory for a Hugging Face model"),
        CLI_FLAG_OPT("--virtual", NULL, &o.virtual_path, "GGUF only: keep the tensors once and record the path as rys.layer_path\n"
                                                        "(rys runs it by default; other tools see the original model)"),
        CLI_NOFLAG_OPT("--quiet", NULL, &o.progress, "no progress output"),
        CLI_END,
    };
    const cli_arg args[] = {{"MODEL", &model_spec, true,
                             "a GGUF file, a known model name, or a Hugging Face model directory\n"
                             "(config.json + *.safetensors, sharded with model.safetensors.index.json or not)"},
                            CLI_ARG_END};
    const cli_spec spec = {"export", "MODEL [--blocks SPEC | --layers SPEC] [--virtual] -o OUT", opts, args, NULL, NULL, false,
                           "A materialized export copies each path position's layer (bytes unchanged) so any\n"
                           "GGUF or transformers loader runs the relayered model."};
    cli_parse_or_exit(&spec, argc, argv);
    if (o.blocks && o.layers) cli_fail(&spec, "--blocks and --layers cannot be combined");

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
