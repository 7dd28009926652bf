/* rys bench: engine speed on the three workloads a scan consists of (prompt
 * prefill, single-sequence decode, many sequences decoded together), in
 * tokens per second, with the kernel path used and how close each comes to
 * the machine's limit, so numbers from different machines can be compared.
 *
 * Limits are measured here, not assumed: memory read bandwidth with the
 * same threads (decode is bound by reading the weights once per token) and,
 * for paths with a matrix kernel, its instruction's multiply-add rate times
 * the threads (prompts are compute bound). Token ids are fixed pseudo-random ones: speed does not depend on
 * which tokens run. */
#include "cli/cli.h"
#include "engine/forward.h"
#include "quant/quant.h"
#include "base/util.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct { double min, median, max; } stats;

static stats summarize(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return (stats){v[0], n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]), v[n - 1]};
}

static int32_t bench_token(const model *m, int i) {
    return (int32_t)(((uint32_t)i * 2654435761u >> 7) % (uint32_t)(m->hp.n_vocab / 2) + 100);
}

/* Multiply-adds per token in the layers (outside the embeddings and the
 * output projection) and bytes of the matrices one decode step reads. */
static void model_work(const model *m, const layer_path *path, double *layer_macs, double *out_macs,
                       double *decode_bytes) {
    *layer_macs = *decode_bytes = 0;
    for (int p = 0; p < path->n; p++) {
        const layer_weights *L = &m->layers[path->layers[p]];
        /* a layer's matrices of every kind; those it lacks have no rows (DeltaNet's in an attention layer,
         * the shared expert's in a model without one) */
        const quant_matrix *ms[] = {&L->wq,        &L->wk,          &L->wv,          &L->wo,
                                    &L->w_gate,    &L->w_up,        &L->w_down,      &L->router,
                                    &L->ssm_qkv,   &L->ssm_z,       &L->ssm_beta,    &L->ssm_alpha,
                                    &L->ssm_out,   &L->shexp_gate,  &L->shexp_up,    &L->shexp_down,
                                    &L->shexp_gate_inp};
        for (size_t i = 0; i < sizeof ms / sizeof *ms; i++) {
            *layer_macs += (double)ms[i]->n_in * (double)ms[i]->n_out;
            *decode_bytes += (double)quant_row_size(ms[i]->type, ms[i]->n_in) * (double)ms[i]->n_out;
        }
        /* a MoE layer: a token runs n_expert_used experts (expert 0 stands for each), and a decode step
         * reads only those */
        for (int r = 0; L->gate_exps && r < m->hp.n_expert_used; r++) {
            const quant_matrix *ex[] = {&L->gate_exps[0], &L->up_exps[0], &L->down_exps[0]};
            for (size_t i = 0; i < 3; i++) {
                *layer_macs += (double)ex[i]->n_in * (double)ex[i]->n_out;
                *decode_bytes += (double)quant_row_size(ex[i]->type, ex[i]->n_in) * (double)ex[i]->n_out;
            }
        }
    }
    *out_macs = (double)m->output.n_in * (double)m->output.n_out;
    *decode_bytes += (double)quant_row_size(m->output.type, m->output.n_in) * (double)m->output.n_out;
}

/* Seconds for one forward pass of n sequences x len tokens at positions
 * start.. (logits for each sequence's last token only). */
static double run_batch(forward_ctx *f, const model *m, int n_seq, int start, int len, float *logits, int salt) {
    int n = n_seq * len;
    int32_t *tok = xmalloc(sizeof(int32_t) * (size_t)n), *pos = xmalloc(sizeof(int32_t) * (size_t)n);
    int32_t *seq = xmalloc(sizeof(int32_t) * (size_t)n);
    bool *want = xmalloc(sizeof(bool) * (size_t)n);
    for (int s = 0, i = 0; s < n_seq; s++)
        for (int t = 0; t < len; t++, i++) {
            tok[i] = bench_token(m, salt + 7919 * s + start + t);
            pos[i] = start + t;
            seq[i] = s;
            want[i] = t == len - 1;
        }
    fwd_batch b = {n, tok, pos, seq, want};
    double t0 = rys_now();
    if (forward_batch(f, &b, logits) < 0) rys_die("%s", rys_lasterr());
    double dt = rys_now() - t0;
    free(tok);
    free(pos);
    free(seq);
    free(want);
    return dt;
}

typedef struct { const uint64_t *buf; size_t n; uint64_t sums[64]; } bw_job;

static void bw_worker(void *ctx, int ith, int nth) {
    bw_job *j = ctx;
    long lo, hi;
    pool_split((long)j->n, ith, nth, &lo, &hi);
    uint64_t s = 0;
    for (long i = lo; i < hi; i++) s += j->buf[i];
    j->sums[ith % 64] = s;
}

/* Bytes per second the pool's threads read from memory: best of 3 passes
 * over 512 MiB (far beyond any cache). */
static double memory_bandwidth(pool *pl) {
    size_t n = (512u << 20) / sizeof(uint64_t);
    uint64_t *buf = xmalloc(n * sizeof *buf);
    for (size_t i = 0; i < n; i++) buf[i] = i;
    bw_job j = {buf, n, {0}};
    double best = 0;
    for (int r = 0; r < 3; r++) {
        double t0 = rys_now();
        pool_run(pl, bw_worker, &j);
        double bw = (double)(n * sizeof *buf) / (rys_now() - t0);
        if (bw > best) best = bw;
    }
    free(buf);
    return best;
}

int cmd_bench(int argc, char **argv) {
    const char *model_spec = NULL;
    int n_prompt = 512, n_gen = 128, n_batch = 32, reps = 5, threads = 0;
    bool json = false;
    const cli_opt opts[] = {
        CLI_INT_OPT("-p", NULL, &n_prompt, 0, 1 << 16, "N", "prompt tokens processed as one batch (prefill)"),
        CLI_INT_OPT("-n", NULL, &n_gen, 0, 1 << 16, "N", "tokens decoded one at a time after an empty context"),
        CLI_INT_OPT("-b", NULL, &n_batch, 0, 4096, "N", "sequences decoded together (128-token prompts each, 64 tokens generated)"),
        CLI_INT_OPT("-r", NULL, &reps, 1, 1000, "N", "repetitions; min, median and max are reported"),
        CLI_THREADS(&threads),
        CLI_JSON(&json, "one JSON object instead of a table"),
        CLI_END,
    };
    const cli_arg args[] = {CLI_MODEL_ARG(&model_spec), CLI_ARG_END};
    const cli_spec spec = {"bench", "MODEL [-p 512] [-n 128] [-b 32] [-r 5] [-t N] [--json]", opts, args, NULL, NULL, false, NULL};
    cli_parse_or_exit(&spec, argc, argv);
    cli_model cm;
    cli_open_model(model_spec, threads, &cm);
    const model *m = cm.m;
    layer_path path;
    cli_path(&cm, NULL, NULL, &path);
    double layer_macs, out_macs, decode_bytes;
    model_work(m, &path, &layer_macs, &out_macs, &decode_bytes);
    enum { B_PROMPT = 128, B_GEN = 64 };
    int ctx = n_prompt > n_gen ? n_prompt : n_gen;
    if (ctx < B_PROMPT + B_GEN) ctx = B_PROMPT + B_GEN;
    int n_seq = n_batch > 1 ? n_batch : 1;
    forward_ctx *f = forward_new(m, &path, n_seq, ctx, cm.pool);
    if (!f) rys_die("%s", rys_lasterr());
    float *logits = xmalloc(sizeof(float) * (size_t)n_seq * (size_t)m->hp.n_vocab);
    double *pp = xcalloc((size_t)reps, sizeof(double)), *tg = xcalloc((size_t)reps, sizeof(double));
    double *bg = xcalloc((size_t)reps, sizeof(double));

    /* Untimed passes: weights paged in and packed (for batches) and
     * interleaved (for one row), buffers grown. */
    run_batch(f, m, 1, 0, n_prompt > 0 ? n_prompt : 1, logits, 0);
    if (n_gen > 0) run_batch(f, m, 1, 0, 1, logits, 0);
    /* A stop ends the repetitions after the one in flight: the figures then
     * summarize the rounds done. */
    rys_stop_install();
    int reps_asked = reps;
    for (int r = 0; r < reps; r++) {
        if (rys_stop_requested()) {
            reps = r;
            break;
        }
        if (n_prompt > 0) pp[r] = n_prompt / run_batch(f, m, 1, 0, n_prompt, logits, r);
        if (n_gen > 0) {
            double t = 0;
            for (int i = 0; i < n_gen; i++) t += run_batch(f, m, 1, i, 1, logits, r);
            tg[r] = n_gen / t;
        }
        if (n_batch > 0) {
            run_batch(f, m, n_batch, 0, B_PROMPT, logits, r);
            double t = 0;
            for (int i = 0; i < B_GEN; i++) t += run_batch(f, m, n_batch, B_PROMPT + i, 1, logits, r);
            bg[r] = (double)n_batch * B_GEN / t;
        }
    }
    if (reps == 0) rys_die("bench: stopped before the first repetition finished");
    if (reps < reps_asked)
        fprintf(stderr, "rys: bench stopped on %s after %d of %d repetitions: the figures summarize those\n",
                rys_stop_signal() == SIGTERM ? "SIGTERM" : "SIGINT", reps, reps_asked);
    stats s_pp = summarize(pp, reps), s_tg = summarize(tg, reps), s_bg = summarize(bg, reps);
    double bw = memory_bandwidth(cm.pool);
    const char *kernel = quant_path_name(quant_cpu_path());
    /* Achieved rates: multiply-adds per second and weight bytes per second. */
    double pp_gmacs = s_pp.median * layer_macs * 1e-9;
    double bg_gmacs = s_bg.median * (layer_macs + out_macs) * 1e-9;
    double tg_frac = s_tg.median * decode_bytes / bw;
    int nt = pool_size(cm.pool);
    double peak_gmacs = quant_peak_macs() * nt * 1e-9; /* 0: no compute limit known for this path */
    char pp_frac[64] = "", bg_frac[64] = "";
    if (peak_gmacs > 0) {
        snprintf(pp_frac, sizeof pp_frac, ", %.0f%% of the compute limit", 100 * pp_gmacs / peak_gmacs);
        snprintf(bg_frac, sizeof bg_frac, ", %.0f%% of the compute limit", 100 * bg_gmacs / peak_gmacs);
    }
    if (json) {
        printf("{\"model\": \"%s\", \"kernel\": \"%s\", \"threads\": %d, \"reps\": %d,\n", model_spec, kernel, nt,
               reps);
        printf(" \"prompt\": {\"tokens\": %d, \"tok_s\": {\"min\": %.2f, \"median\": %.2f, \"max\": %.2f}, "
               "\"gmac_s\": %.1f, \"fraction_of_compute\": %.3f},\n",
               n_prompt, s_pp.min, s_pp.median, s_pp.max, pp_gmacs, peak_gmacs > 0 ? pp_gmacs / peak_gmacs : 0);
        printf(" \"decode\": {\"tokens\": %d, \"tok_s\": {\"min\": %.2f, \"median\": %.2f, \"max\": %.2f}, "
               "\"weight_bytes\": %.0f, \"bandwidth_limit_tok_s\": %.2f, \"fraction_of_bandwidth\": %.3f},\n",
               n_gen, s_tg.min, s_tg.median, s_tg.max, decode_bytes, bw / decode_bytes, tg_frac);
        printf(" \"batched_decode\": {\"sequences\": %d, \"prompt\": %d, \"generated\": %d, \"tok_s\": {\"min\": %.2f, "
               "\"median\": %.2f, \"max\": %.2f}, \"gmac_s\": %.1f, \"fraction_of_compute\": %.3f},\n",
               n_batch, B_PROMPT, B_GEN, s_bg.min, s_bg.median, s_bg.max, bg_gmacs,
               peak_gmacs > 0 ? bg_gmacs / peak_gmacs : 0);
        char *warn = cli_warnings_json_text();
        printf(" \"memory_gb_s\": %.2f, \"compute_limit_gmac_s\": %.1f, \"warnings\": %s}\n", bw * 1e-9, peak_gmacs, warn);
        free(warn);
    } else {
        printf("model %s, kernel path %s, %d threads, %d repetitions (min / median / max tok/s)\n", model_spec, kernel,
               nt, reps);
        /* a measure asked to be skipped (-p 0, -n 0, -b 0) prints no row */
        if (n_prompt > 0)
            printf("  prompt  pp%-5d %8.1f %8.1f %8.1f   %.1f GMAC/s%s\n", n_prompt, s_pp.min, s_pp.median, s_pp.max,
                   pp_gmacs, pp_frac);
        if (n_gen > 0)
            printf("  decode  tg%-5d %8.1f %8.1f %8.1f   %.0f%% of the bandwidth limit (%.1f tok/s at %.1f GB/s)\n",
                   n_gen, s_tg.min, s_tg.median, s_tg.max, 100 * tg_frac, bw / decode_bytes, bw * 1e-9);
        if (n_batch > 0)
            printf("  batched %3dx%-4d %8.1f %8.1f %8.1f   %.1f GMAC/s%s\n", n_batch, B_GEN, s_bg.min, s_bg.median,
                   s_bg.max, bg_gmacs, bg_frac);
    }
    free(pp);
    free(tg);
    free(bg);
    free(logits);
    forward_free(f);
    path_free(&path);
    cli_close_model(&cm);
    return reps < reps_asked ? rys_stop_exit_code() : 0;
}
