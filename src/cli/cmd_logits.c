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

/* The ids of a --tokens list "1,2,3", as given (no BOS added). */
static int32_t *parse_ids(const cli_spec *spec, const char *list, int *n_out) {
    int n;
    char **items = cli_split(list, ',', &n);
    if (!n) cli_fail(spec, "--tokens: no token ids in '%s'", list);
    int32_t *ids = xmalloc((size_t)n * sizeof *ids);
    for (int i = 0; i < n; i++) {
        char *end;
        long v = strtol(items[i], &end, 10);
        if (end == items[i] || *end || v < 0 || v > 0x7fffffff)
            cli_fail(spec, "--tokens: '%s' is not a token id", items[i]);
        ids[i] = (int32_t)v;
    }
    cli_free_split(items);
    *n_out = n;
    return ids;
}

int cmd_logits(int argc, char **argv) {
    const char *model_spec = NULL, *tokens = NULL, *text = NULL, *blocks = NULL, *layers = NULL, *npy = NULL;
    bool all = false;
    int threads = 0;
    const cli_opt opts[] = {
        CLI_STR_OPT("--tokens", NULL, &tokens, "IDS", "comma-separated token ids (used as given, no BOS added)"),
        CLI_STR_OPT("-p", "--prompt", &text, "TEXT", "text, tokenized with the model's BOS rule and special tokens"),
        CLI_BLOCKS(&blocks),
        CLI_LAYERS(&layers),
        CLI_FLAG_OPT("--all", NULL, &all, "logits of every position (default: the last only)"),
        CLI_STR_REQUIRED("--npy", NULL, &npy, "OUT", "write float32 [positions, vocab] to OUT"),
        CLI_THREADS(&threads),
        CLI_END,
    };
    const cli_arg args[] = {CLI_MODEL_ARG(&model_spec), CLI_ARG_END};
    const cli_spec spec = {"logits", "MODEL (--tokens 1,2,3 | -p TEXT) [--blocks SPEC | --layers SPEC] [--all] --npy OUT",
                           opts, args, NULL, NULL, false, NULL};
    cli_parse_or_exit(&spec, argc, argv);
    if (!tokens == !text) cli_fail(&spec, "give one of --tokens and -p");
    cli_model cm;
    cli_open_model(model_spec, threads, &cm);
    layer_path path;
    cli_path(&cm, blocks, layers, &path);
    int n;
    int32_t *ids = tokens ? parse_ids(&spec, tokens, &n) : cli_tokenize(&cm, text, true, &n);
    cli_check_context(&cm, n, "the tokens");
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
    char *warn = cli_warnings_json_text();
    printf("], \"rows\": %d, \"n_vocab\": %d, \"path_length\": %d, \"warnings\": %s}\n", rows, n_vocab, path.n, warn);
    free(warn);
    free(logits); free(pos); free(seq); free(want); free(ids);
    forward_free(f);
    path_free(&path);
    cli_close_model(&cm);
    return 0;
}
