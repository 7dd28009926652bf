/* prescreen: ranks single blocks (i, j) before measuring any of them, from
 * activation statistics of the unmodified model over a few calibration
 * prompts, following CircuitProbe (R. Panuganti, "CircuitProbe: Predicting
 * Reasoning Circuits in Transformers via Stability Zone Detection", arXiv
 * 2604.00716, 2026) and the scoring of its released code.
 *
 * Per layer l and prompt e, let a and b be the mean over the prompt's
 * positions of the hidden state entering and leaving layer l. Then
 *   change[l]   = mean over e of |b - a|
 *   self_sim[l] = mean over e of cos(a, b)
 *   variance[l] = mean over dimensions of the variance over e of b
 *   eff_rank[l] = exp(entropy of the normalised singular values of the
 *                 matrix of change vectors b - a, one row per prompt)
 * and a block of layers i..j-1 scores (z: against all layers' values, mean
 * and population standard deviation + 1e-10; means over the block's layers)
 *   anomaly   = z(change) - z(self_sim) + z(variance) + z(eff_rank)
 *   stability = -1.5 z(|change[l+1] - change[l]|, l = i..j-1)   (j < N)
 *               - z(|growth - median growth|), growth[l] = variance[l] /
 *                 variance[l-1], l = max(i,1)..j-1             (0 < i, j < N)
 *               + max(0, 1 - mean change of the block / mean change of
 *                 layers i-3..i-1)                              (i > 2)
 *               + 0.5 z(eff_rank)
 *   composite = (stability + anomaly) / 2, the default.
 * The paper finds "stability" blocks early (10-25% depth) and "magnitude"
 * (anomaly) blocks late (85-100%); the composite lets either win. */
#ifndef RYS_PRESCREEN_H
#define RYS_PRESCREEN_H

#include <stdint.h>

#include "base/pool.h"
#include "engine/model.h"
#include "scan/evalset.h"
#include "scan/store.h"

typedef struct {
    double change, self_sim, variance, eff_rank;
} prescreen_layer;

enum prescreen_method { PRESCREEN_COMPOSITE, PRESCREEN_STABILITY, PRESCREEN_ANOMALY };
extern const char *const prescreen_method_name[3];   /* "composite", "stability", "anomaly" */

/* The statistics of every layer of m (out[n_layers]) over the n prompts
 * (token ids, lengths), run together along the unmodified path. At least 2
 * prompts; the effective rank needs 5 (0 below). 0 or -1 with an error. */
int prescreen_layer_stats(const model *m, const int32_t *const *prompts, const int *lens, int n, pool *pool,
                          prescreen_layer *out);
/* The score of the block of layers i..j-1 (0 <= i < j <= n_layers) under
 * method, from the layers' statistics; higher = more likely to help. */
double prescreen_block_score(const prescreen_layer *layers, int n_layers, int i, int j, enum prescreen_method method);
/* Effective rank exp(H(s / sum s)) of the singular values s of the n x dim
 * matrix rows (row-major), from the eigenvalues of its n x n Gram matrix. */
double prescreen_eff_rank(const double *rows, int n, int dim);

/* A pre-screen of every single block of a model. */
typedef struct {
    enum prescreen_method method;
    int n_layers;
    prescreen_layer *layers;        /* [n_layers] */
    int n_prompts;
    char **prompt_keys;             /* "<set>/<item key>" of each calibration prompt */
    int *prompt_index;              /* its index among the evalset's prompts */
    store_prescreen_block *blocks;  /* every (i, j), best score first (ties: smaller i, then j) */
    int n_blocks;
    double seconds;
} prescreen_result;

/* The pre-screen of m on up to n_prompts of es's prompts, taken in turn from
 * each probe set (each set's first items), every block scored with method.
 * 0, or -1 with an error (fewer than 2 prompts: a benchmark objective has
 * none to calibrate on). */
int prescreen_run(const model *m, const evalset *es, int n_prompts, enum prescreen_method method, pool *pool,
                  prescreen_result *out);
void prescreen_result_free(prescreen_result *r);
/* What the store keeps beside the scores: method, prompts, per-layer
 * statistics, as JSON (malloc'd). */
char *prescreen_about_json(const prescreen_result *r);
/* prescreen_run, then the result saved in st (store_prescreen_save). */
int prescreen_run_save(store *st, const model *m, const evalset *es, int n_prompts, enum prescreen_method method, pool *pool,
                       prescreen_result *out);

#endif
