/* rys logits: the raw logits of a prompt along a layer path, written as .npy.
 * This is the engine's test surface: reference scripts compare it with
 * llama.cpp and a numpy forward pass token for token. */
#include "cli/cli.h"
#include "cli/npy.h"
#include "engine/forward.h"
#include "base/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(void) {
    puts("usage: rys logits MODEL (--tokens 1,2,3 | -p TEXT) [--blocks SPEC | --layers SPEC] [--all] --npy OUT\n"
         "  --tokens IDS   comma-separated token ids (used as given, no BOS added)\n"
         "  -p TEXT        text, tokenized with the model's BOS rule and special tokens\n"
         "  --all          logits of every position (default: the last only)\n"
         "  --npy OUT      write float32 [positions, vocab] to OUT\n"
         "  -t N           threads");
}

static int32_t *parse_ids(const char *s, int *n_out) {
    int cap = 64, n = 0;
    int32_t *ids = xmalloc((size_t)cap * sizeof *ids);
    const char *p = s;
    while (*p) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v < 0 || v > 0x7fffffff) rys_die("--tokens: expected comma-separated ids, got '%s'", s);
        if (n == cap) { cap *= 2; ids = xrealloc(ids, (size_t)cap * sizeof *ids); }
        ids[n++] = (int32_t)v;
        p = end;
        if (*p == ',') p++;
        else if (*p) rys_die("--tokens: expected comma-separated ids, got '%s'", s);
    }
    if (!n) rys_die("--tokens: empty");
    *n_out = n;
    return ids;
}

int cmd_logits(int argc, char **argv) {
    const char *model_spec = NULL, *tokens = NULL, *text = NULL, *blocks = NULL, *layers = NULL, *npy = NULL;
    bool all = false;
    int threads = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(); return 0; }
        else if (!strcmp(a, "--tokens")) tokens = cli_value(argc, argv, &i);
        else if (!strcmp(a, "-p")) text = cli_value(argc, argv, &i);
        else if (!strcmp(a, "--blocks")) blocks = cli_value(argc, argv, &i);
        else if (!strcmp(a, "--layers")) layers = cli_value(argc, argv, &i);
        else if (!strcmp(a, "--npy")) npy = cli_value(argc, argv, &i);
        else if (!strcmp(a, "--all")) all = true;
        else if (!strcmp(a, "-t")) threads = (int)cli_parse_long(a, cli_value(argc, argv, &i), 1, 1024);
        else if (a[0] == '-') rys_die("logits: unknown option %s", a);
        else if (!model_spec) model_spec = a;
        else rys_die("logits: unexpected argument %s", a);
    }
    if (!model_spec || !npy || (!tokens == !text)) { usage(); return 1; }
    cli_model cm;
    cli_open_model(model_spec, threads, &cm);
    layer_path path;
    cli_path(&cm, blocks, layers, &path);
    int n;
    int32_t *ids = tokens ? parse_ids(tokens, &n) : cli_tokenize(&cm, text, true, &n);
    forward_ctx *f = forward_new(cm.m, &path, 1, n, cm.pool);
    if (!f) rys_die("%s", rys_lasterr());
    int32_t *pos = xmalloc((size_t)n * sizeof *pos), *seq = xcalloc((size_t)n, sizeof *seq);
    bool *want = xmalloc((size_t)n * sizeof *want);
    for (int i = 0; i < n; i++) { pos[i] = i; want[i] = all || i == n - 1; }
    int rows = all ? n : 1, n_vocab = cm.m->hp.n_vocab;
    float *logits = xmalloc((size_t)rows * n_vocab * sizeof(float));
    fwd_batch b = {n, ids, pos, seq, want};
    if (forward_batch(f, &b, logits) < 0) rys_die("%s", rys_lasterr());
    if (npy_write_f32(npy, logits, (size_t)rows, (size_t)n_vocab)) rys_die("%s", rys_lasterr());
    printf("{\"tokens\": [");
    for (int i = 0; i < n; i++) printf(i ? ",%d" : "%d", ids[i]);
    printf("], \"rows\": %d, \"n_vocab\": %d, \"path_length\": %d}\n", rows, n_vocab, path.n);
    free(logits); free(pos); free(seq); free(want); free(ids);
    forward_free(f);
    path_free(&path);
    cli_close_model(&cm);
    return 0;
}
