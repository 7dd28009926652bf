/* rys perplexity: llama.cpp's definition, so the numbers compare directly:
 * the text is tokenized once (BOS as the model says), cut into chunks of CTX
 * tokens whose first token is replaced by BOS when the model uses one, and
 * only the second half of each chunk is scored (every scored token then has
 * at least CTX/2 tokens of context). */
#include "cli/cli.h"
#include "engine/forward.h"
#include "base/util.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* log-softmax probability of `target` given logits. */
static double log_prob(const float *logits, int n, int target) {
    float mx = logits[0];
    for (int i = 1; i < n; i++) if (logits[i] > mx) mx = logits[i];
    double sum = 0;
    for (int i = 0; i < n; i++) sum += exp((double)logits[i] - mx);
    return (double)logits[target] - mx - log(sum);
}

int cmd_perplexity(int argc, char **argv) {
    const char *model_spec = NULL, *file = NULL, *blocks = NULL, *layers = NULL;
    int n_ctx = 512, max_chunks = -1, threads = 0;
    bool json = false;
    const cli_opt opts[] = {
        CLI_STR_REQUIRED("-f", NULL, &file, "FILE", "the text to score"),
        CLI_INT_OPT("-c", NULL, &n_ctx, 8, 1 << 20, "CTX", "chunk length in tokens (default 512)"),
        CLI_INT_OPT("--chunks", NULL, &max_chunks, 1, 1 << 30, "N", "score at most N chunks (default: all)"),
        CLI_BLOCKS(&blocks),
        CLI_LAYERS(&layers),
        CLI_THREADS(&threads),
        CLI_JSON(&json, "one JSON object"),
        CLI_END,
    };
    const cli_arg args[] = {CLI_MODEL_ARG(&model_spec), CLI_ARG_END};
    const cli_spec spec = {"perplexity", "MODEL -f FILE [-c CTX] [--chunks N] [--blocks SPEC | --layers SPEC] [-t N] [--json]",
                           opts, args, NULL, NULL, false, NULL};
    cli_parse_or_exit(&spec, argc, argv);
    size_t len;
    char *text = read_file(file, &len);
    if (!text) rys_die("%s", rys_lasterr());
    cli_model cm;
    cli_open_model(model_spec, threads, &cm);
    layer_path path;
    cli_path(&cm, blocks, layers, &path);
    int n_tok;
    int32_t *toks = cli_tokenize(&cm, text, true, &n_tok);
    if (n_tok < 2 * n_ctx) rys_die("%s: %d tokens; need at least 2 x %d for perplexity", file, n_tok, n_ctx);
    int n_chunks = n_tok / n_ctx;
    if (max_chunks > 0 && max_chunks < n_chunks) n_chunks = max_chunks;
    int32_t bos = tokenizer_bos(cm.tok);
    bool add_bos = bos >= 0 && toks[0] == bos;

    cli_check_context(&cm, n_ctx, "-c");
    forward_ctx *f = forward_new(cm.m, &path, 1, n_ctx, cm.pool);
    if (!f) rys_die("%s", rys_lasterr());
    int n_vocab = cm.m->hp.n_vocab, first = n_ctx / 2;
    float *logits = xmalloc((size_t)n_ctx * n_vocab * sizeof(float));
    int32_t *chunk = xmalloc((size_t)n_ctx * sizeof *chunk), *pos = xmalloc((size_t)n_ctx * sizeof *pos),
            *seq = xcalloc((size_t)n_ctx, sizeof *seq);
    bool *want = xmalloc((size_t)n_ctx * sizeof *want);
    for (int i = 0; i < n_ctx; i++) { pos[i] = i; want[i] = i >= first && i < n_ctx - 1; }
    double nll = 0;
    long count = 0;
    progress pg;
    progress_start(&pg, "perplexity", n_chunks);
    double t0 = rys_now();
    rys_stop_install();
    int n_done = 0;
    for (int c = 0; c < n_chunks && !rys_stop_requested(); c++, n_done++) {
        memcpy(chunk, toks + (size_t)c * n_ctx, (size_t)n_ctx * sizeof *chunk);
        if (add_bos) chunk[0] = bos;
        fwd_batch b = {n_ctx, chunk, pos, seq, want};
        if (forward_batch(f, &b, logits) < 0) rys_die("%s", rys_lasterr());
        for (int j = first; j < n_ctx - 1; j++) {
            nll -= log_prob(logits + (size_t)(j - first) * n_vocab, n_vocab, toks[(size_t)c * n_ctx + j + 1]);
            count++;
        }
        char extra[64];
        snprintf(extra, sizeof extra, "ppl %.4f", exp(nll / count));
        progress_update(&pg, c + 1, extra);
    }
    progress_finish(&pg);
    bool stopped = n_done < n_chunks;
    if (stopped)
        fprintf(stderr, "rys: perplexity stopped on %s after %d of %d chunks: the figure covers those\n",
                rys_stop_signal() == SIGTERM ? "SIGTERM" : "SIGINT", n_done, n_chunks);
    if (n_done == 0) rys_die("perplexity: stopped before the first chunk finished");
    double ppl = exp(nll / count), dt = rys_now() - t0;
    if (json) {
        char *warn = cli_warnings_json_text();
        printf("{\"ppl\": %.6f, \"chunks\": %d, \"ctx\": %d, \"tokens\": %d, \"scored\": %ld, \"seconds\": %.3f, "
               "\"stopped\": %s, \"warnings\": %s}\n",
               ppl, n_done, n_ctx, n_tok, count, dt, stopped ? "true" : "false", warn);
        free(warn);
    } else {
        printf("perplexity %.4f over %d chunks of %d tokens (%ld scored), %.1f s\n", ppl, n_done, n_ctx, count, dt);
    }
    free(logits); free(chunk); free(pos); free(seq); free(want); free(toks); free(text);
    forward_free(f);
    path_free(&path);
    cli_close_model(&cm);
    return stopped ? rys_stop_exit_code() : 0;
}
