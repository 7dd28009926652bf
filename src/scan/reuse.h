/* reuse: the baseline's prefix states, shared by every configuration of a scan.
 *
 * For a path whose first k positions are layers 0..k-1 (RYS (i,j) has k = j),
 * everything those positions compute for the prompts is exactly what the
 * baseline computed. So the baseline is run once with the residual state at
 * every layer boundary kept for every prompt token (and for every token the
 * baseline itself generated); a configuration starts at path position k from
 * those states and borrows the baseline's KV slots 0..k-1 by pointer (the
 * engine's prefix mechanism, engine/prefix.h). While a configuration's greedy
 * output agrees with the baseline's, its new tokens reuse the stored states
 * too; once it diverges, its tokens run the whole path. Both runs are the
 * engine's decode loop (generate_loop) with runners of this file.
 * Prompts that begin with the same tokens compute that beginning once (in the
 * baseline and in every configuration): the later ones copy its KV rows.
 * Results are bit-identical to a from-scratch run because every kernel
 * computes each token's row independently of its batch. */
#ifndef RYS_REUSE_H
#define RYS_REUSE_H

#include "engine/forward.h"
#include "engine/generate.h"
#include "engine/tokenizer.h"

typedef struct {
    long long layer_tokens_done;    /* layer x token evaluations actually run */
    long long layer_tokens_naive;   /* what a from-scratch run producing the same output costs */
} reuse_stats;

typedef struct baseline_run baseline_run;

/* Runs the baseline (greedy, n_predict new tokens) over n prompts at once and
 * keeps its states. NULL + error on failure. */
baseline_run *baseline_run_new(const model *m, const tokenizer *tok, const int32_t *const *prompts, const int *lens,
                               int n, int n_predict, pool *pool);
void baseline_run_free(baseline_run *b);
/* The baseline's own greedy outputs (n entries) and its cost. */
const gen_output *baseline_outputs(const baseline_run *b);
reuse_stats baseline_stats(const baseline_run *b);

/* Greedy generation along path for the same prompts, reusing the baseline's
 * prefix. out has n entries (free with gen_output_free). */
int baseline_run_config(baseline_run *b, const layer_path *path, gen_output *out, reuse_stats *st);

#endif
