/* surrogate: the RYS II surrogate. Gradient-boosted trees (XGBoost's C API,
 * reg:squarederror) learn, from every measured configuration of a scan store,
 * three targets of a path's per-layer traversal counts: the math delta, the
 * EQ delta and their balanced z-score sum (report.h's definitions); a scan
 * without an EQ set gives two, the math delta and its z-score (the balanced
 * score the report ranks such a scan by). A 5%
 * holdout stratified by the balanced score measures each target's Spearman and
 * MAE; the balanced Spearman must reach a gate (0.60) before the ranking is
 * used, with a few hyper-parameter presets retried otherwise. Then millions of
 * count vectors (random ones and mutations of the best measured paths,
 * candidates.c) are ranked by the prediction; the top ones go back to
 * `rys scan --paths` to be measured for real. Predictions only rank, they are
 * never reported as results.
 *
 * Reproducible: candidates come from a seeded generator of our own, training
 * uses a fixed thread count and seeded subsampling, and a tree ensemble's
 * prediction is a per-row sum in a fixed order whatever the thread count. */
#ifndef RYS_SURROGATE_H
#define RYS_SURROGATE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

enum { SUR_MATH, SUR_EQ, SUR_BALANCED, SUR_N_TARGETS };
/* "math_delta", "eq_delta", "balanced": the targets' names in files and tables. */
extern const char *const sur_target_name[SUR_N_TARGETS];

/* ---- a seeded generator (splitmix64): the same seed, the same numbers everywhere ---- */
typedef struct { uint64_t s; } sur_rng;
uint64_t sur_rng_next(sur_rng *r);
/* Uniform in [0, n), n >= 1. */
int sur_rng_below(sur_rng *r, int n);
/* Uniform in [0, 1). */
double sur_rng_unit(sur_rng *r);

/* The holdout: round(frac * n) rows (at least 1, at most n - 1; none when
 * n < 3), stratified by y: rows sorted by y fall into min(10, max(2, n/20))
 * equal-count bins, each bin gives floor(frac * its size) of its rows chosen
 * by the seed, and the rest of the count goes to the bins with the largest
 * remainders. hold[k] = true for a holdout row; returns the holdout size. */
int sur_holdout(const double *y, int n, double frac, uint64_t seed, bool *hold);

/* ---- the training rows ----------------------------------------------------- */

typedef struct {
    int n_layers;
    char *model_path, *model_sha256;
    char *math_probe, *eq_probe;   /* the probe sets behind the targets; eq_probe NULL without an
                                    * EQ set, and then y[SUR_EQ] is all 0 */
    int n;                         /* rows: the baseline and every measured configuration */
    float *x;                      /* n x n_layers traversal counts */
    double *y[SUR_N_TARGETS];      /* n each */
    char **paths;                  /* canonical "layers:..." */
} sur_rows;

/* Reads every done configuration of a scan store (read-only) with its
 * targets: deltas against the baseline (which is a row, deltas 0) and the
 * balanced score computed as the report computes it. Needs a math probe set
 * (an EQ set where the scan has one) and a scored baseline. 0, or -1 with the error set. */
int sur_rows_load(const char *db_path, sur_rows *out);
void sur_rows_free(sur_rows *r);

/* ---- training ------------------------------------------------------------ */

typedef struct {
    int rounds, max_depth;
    double eta, subsample, colsample;
} sur_params;

/* The presets tried in order: the first, then retries while the gate fails. */
#define SUR_N_PRESETS 4
extern const sur_params sur_presets[SUR_N_PRESETS];

typedef struct {
    double holdout_frac;    /* 0.05 */
    uint64_t seed;          /* holdout and subsampling */
    double gate;            /* minimum holdout Spearman of the balanced target (0.60) */
    int retries;            /* further presets tried while the gate fails (3) */
    int n_threads;          /* XGBoost's nthread while training (fixed, so reruns agree) */
    int n_anchors;          /* best measured paths kept for candidate mutations (32) */
    FILE *log;              /* one line per trial, or NULL */
} sur_train_opts;

typedef struct {
    /* what it was trained on */
    int n_layers;
    char *model_path, *model_sha256, *math_probe, *eq_probe, *db_path; /* eq_probe NULL: no EQ target, no booster */
    uint64_t seed;
    double holdout_frac, gate;
    int n_threads;
    /* the chosen trial */
    int trial;                          /* 1-based */
    int n_trials;
    sur_params params;
    bool gate_passed;
    int n_train, n_holdout;
    double spearman[SUR_N_TARGETS], mae[SUR_N_TARGETS];
    double trial_spearman[SUR_N_PRESETS];   /* balanced, per trial run */
    void *booster[SUR_N_TARGETS];       /* XGBoost BoosterHandle */
    /* the holdout: row paths, measured and predicted values */
    char **hold_paths;
    double *hold_y[SUR_N_TARGETS], *hold_pred[SUR_N_TARGETS];
    /* count vectors of the best measured paths by balanced score, n_anchors x n_layers */
    int n_anchors;
    int *anchors;
} surrogate;

/* Whether s has target t (every target but EQ on a scan without an EQ set). */
bool sur_has_target(const surrogate *s, int t);

/* Trains the boosters of the targets rows has (presets in order until the balanced
 * holdout Spearman reaches the gate, or the best of those tried). A failed
 * gate is not an error: s->gate_passed says it. 0, or -1 with the error set. */
int sur_train(const sur_rows *rows, const char *db_path, const sur_train_opts *o, surrogate *s);
void sur_free(surrogate *s);

/* sur_rows_load and sur_train on the scan store at db_path, the holdout's
 * measured and predicted values then saved into the store (rys report draws
 * them); o->log gets a line on the rows first. 0 with s filled (free with
 * sur_free), or -1 + error. */
int sur_train_store(const char *db_path, const sur_train_opts *o, surrogate *s);

/* Predictions of target t for n rows of counts (n x s->n_layers) into out. 0, or -1 + error. */
int sur_predict(const surrogate *s, int t, const float *x, int n, int n_threads, float *out);

/* Writes the surrogate as JSON (identity, probes, targets, parameters,
 * metrics, anchors, the boosters as base64 UBJSON). 0, or -1 + error. */
int sur_save(const surrogate *s, const char *path);
/* Reads a file sur_save wrote (no holdout). 0, or -1 with a one-line error. */
int sur_load(const char *path, surrogate *s);

/* ---- candidates (candidates.c) -------------------------------------------- */

typedef struct {
    int n_layers;
    int64_t n;              /* candidates (1,000,000) */
    int max_extra;          /* at most this many traversals over the baseline's (24) */
    int max_count;          /* at most this many traversals of one layer (8) */
    double anchor_frac;     /* share of mutations of an anchor, the rest random (0.45) */
    int mutation_steps;     /* a mutation makes 1..this many +-1 changes (8) */
    uint64_t seed;
} sur_cand_opts;

/* Fills out (o->n x n_layers counts, each 1..max_count, at most max_extra
 * extra) from the seed alone: a random count vector (0..max_extra extra
 * traversals on layers drawn uniformly among those below max_count), or with
 * probability anchor_frac a mutation of an anchor drawn uniformly (the
 * baseline is always one): 1..mutation_steps steps each adding (p 0.65) or
 * removing a traversal, then random removals down to max_extra. */
void sur_candidates(const sur_cand_opts *o, const int *anchors, int n_anchors, uint8_t *out);

/* Ranks candidates: score = predicted balanced - lambda * extra / n_layers,
 * kept when predicted math and EQ deltas are >= min_math / min_eq (EQ only
 * where the surrogate has that target); ties go to
 * the earlier candidate; duplicates, the baseline and the paths in
 * exclude (n_exclude count vectors) are skipped. Writes up to top indices
 * into best (best first) and their scores; returns how many. */
typedef struct {
    double lambda, min_math, min_eq;
    int top, n_threads;
} sur_rank_opts;
int sur_rank(const surrogate *s, const sur_cand_opts *co, const uint8_t *cand, const int *exclude, int n_exclude,
             const sur_rank_opts *o, int64_t *best, double *score, double *seconds_predict);

/* The count vectors (n x s->n_layers, malloc'd) of every path the scan
 * store at db_path has measured, for sur_rank's exclude; a store of another
 * model (layer count or sha256) is refused. 0, or -1 + error. */
int sur_measured_counts(const char *db_path, const surrogate *s, int **counts, int *n);
/* "counts:c0,c1,..." of one candidate (malloc'd): a paths-file line. */
char *sur_counts_spec(const uint8_t *c, int n_layers);

#endif
