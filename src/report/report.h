/* report: a scan database turned into what a person reads: heatmaps of score
 * deltas over (start i, end j), skylines, repeat maps, rankings, the Pareto
 * front of extra layers against combined delta, and an offline index.html.
 *
 * The numbers (report.c: loading, deltas, z-score ranking, Pareto front,
 * clip) are pure functions of the loaded data so tests check them by hand;
 * the drawing (plot.c) exposes its layout so tests can find a cell's pixel;
 * html.c writes the figures and the page that shows them.
 *
 * Definitions (the RYS reference's, where it has one):
 *   delta     = configuration score - baseline score, per probe set.
 *   combined  = math delta + EQ delta when the scan has both kinds (the first
 *               probe set of kind "math" and the first of kind "eq*"),
 *               otherwise the sum of every probe set's delta.
 *   balanced  = z(math delta) + z(EQ delta) over all measured non-baseline
 *               configurations, population std (below 1e-12 counts as 1);
 *               without both kinds, the sum of z over every probe set.
 * Rankings sort descending, ties broken by the EQ delta, then the math delta,
 * then fewer extra layers. */
#ifndef RYS_REPORT_H
#define RYS_REPORT_H

#include <stdbool.h>

#define REPORT_MAX_PROBES 8

typedef struct {
    /* malloc'd by report_load, NULL in hand-built data */
    char *spec;                 /* as the store keeps it, any length ("blocks:1,4;2,6;...") */
    char *path;                 /* canonical "layers:..." (path_canonical): the store's key */
    char *search;               /* what proposed it: "scan", "paths", "beam", "surrogate" */
    int i, j;                   /* "blocks:i,j": bounds; else -1 */
    int repeat_layer, repeat_n; /* "repeat:L,r": L and r; else -1 */
    int extra;                  /* extra layers over the baseline path */
    double delta[REPORT_MAX_PROBES];
    double combined;
    double balanced;
} report_config;

typedef struct {
    int n_layers;
    char model[256];
    int n_probes;
    char probe[REPORT_MAX_PROBES][64];
    char kind[REPORT_MAX_PROBES][16];
    int math, eq;               /* probe indices behind combined/balanced, -1 if absent */
    double baseline[REPORT_MAX_PROBES];
    bool has_baseline;
    report_config *cfg;         /* measured non-baseline configurations, sweep order */
    int n_cfg;
    int n_blocks, n_repeats;    /* how many of cfg are single blocks / repeats */
    int n_unfinished;           /* configurations in the store not done (pending or running) */
    struct report_validation *validation;   /* `rys validate` results in the same file, or NULL */
    struct report_surrogate *surrogate;     /* `rys surrogate train`'s holdout fit in the same file, or NULL */
    struct report_prescreen *prescreen;     /* `rys prescreen`'s ranking against the measured blocks, or NULL */
} report_data;

/* What a ranking or a clip looks at: one probe set's delta, or combined. */
#define REPORT_COMBINED (-1)

/* Which configurations a figure shows. */
typedef enum { REPORT_BLOCKS, REPORT_REPEATS } report_family;

/* Reads the done configurations of a scan database (read-only) and computes
 * deltas, combined and balanced scores. NULL + error when the file is not a
 * scan database or the baseline has not been scored yet. */
report_data *report_load(const char *db_path);
void report_free(report_data *d);
/* Fills combined and balanced from the deltas (report_load calls it; tests
 * that build report_data by hand call it too). */
void report_derive(report_data *d);

/* What a balanced score is relative to: each probe set's delta mean and
 * population std (below 1e-12 counts as 1) over a set of configurations. */
typedef struct {
    double mean[REPORT_MAX_PROBES], sd[REPORT_MAX_PROBES];
} report_zstats;

/* The z statistics over the configurations idx[0..n) of d (all of them when
 * idx is NULL, n ignored): report_derive's, or a search's frozen ones. */
void report_zstats_of(const report_data *d, const int *idx, int n, report_zstats *z);
/* The balanced score of deltas delta[0..n_probes) under z (report.h's definition). */
double report_balanced_of(const report_data *d, const report_zstats *z, const double *delta);
/* The rankings' order of a and b by the values va, vb, then the tie rules
 * (EQ delta, math delta, fewer extra layers): < 0 when a comes first, > 0
 * when b does, 0 when nothing tells them apart. */
int report_compare(const report_data *d, const report_config *a, const report_config *b, double va, double vb);
/* The index of the configuration with canonical path `path`, or -1. */
int report_find_path(const report_data *d, const char *path);

/* A value of one configuration: delta of probe p, or combined. */
double report_value(const report_config *c, int p);
/* idx[0..n_cfg) = configurations by balanced score, best first. */
void report_rank_balanced(const report_data *d, int *idx);
/* idx[0..n_cfg) = configurations by report_value(p), best first. */
void report_rank_by(const report_data *d, int p, int *idx);
/* The Pareto front over all configurations: one is on it when no other has
 * >= combined delta and <= extra layers with one of the two strict. Returns
 * the count; front[] gets indices sorted by extra layers. */
int report_pareto(const report_data *d, int *front);
/* The best configuration of a family by report_value(p) under the ranking's
 * tie rules, or -1 if the family has none. */
int report_best(const report_data *d, int p, report_family fam);
/* The heatmap colour clip: the 98th percentile (linear interpolation) of
 * |report_value(p)| over the family, at least 1e-9. */
double report_clip(const report_data *d, int p, report_family fam);
/* Single blocks not measured: N(N+1)/2 - n_blocks. */
int report_blocks_missing(const report_data *d);

/* ---- figures (plot.c) ----------------------------------------------------- */

/* Mask colour: below/on the diagonal and unmeasured cells. */
extern const double report_mask_rgb[3];
/* Diverging map: blue (worse) - white (0) - red (better), clipped at +-clip. */
void report_colour(double delta, double clip, double rgb[3]);

/* The geometry of a grid figure, shared by drawing and tests: cell (row r,
 * column c) covers [x0 + c*cell, +cell) x [y0 + r*cell, +cell). */
typedef struct {
    double x0, y0, cell;
    int rows, cols;
    double bar_h;               /* colour bar height */
    int width, height;          /* the whole figure, pixels */
} report_grid;

/* Block heatmap: rows = start layer i (0..N-1), columns = end layer j (1..N). */
report_grid report_heat_layout(int n_layers);
void report_heat_cell_centre(const report_grid *g, int i, int j, double *x, double *y);
/* Repeat map: rows = repeat count r (2..max_r), columns = layer L (0..N-1). */
report_grid report_repeat_layout(int n_layers, int max_r);
void report_repeat_cell_centre(const report_grid *g, int layer, int r, double *x, double *y);
/* Largest repeat count among the measured repeats (at least 2). */
int report_max_repeat(const report_data *d);

/* Each writes DIR/NAME.png and DIR/NAME.svg; 0, or -1 with the error set.
 * clip <= 0: report_clip() of the figure's family; the figure states which. */
int report_plot_heatmap(const report_data *d, int p, double clip, const char *dir, const char *name);
int report_plot_repeats(const report_data *d, int p, double clip, const char *dir, const char *name);
int report_plot_skyline(const report_data *d, int p, const char *dir, const char *name);
int report_plot_pareto(const report_data *d, const char *dir, const char *name);

/* ---- standard benchmarks (validation.c) ------------------------------------
 * `rys validate` results (its val_* tables) in the scan's database or in a
 * database of their own: per configuration and task the primary metric, its
 * delta against the baseline on the documents both paths answered, the
 * paired bootstrap 95% interval and the exact McNemar p, computed as
 * `rys validate` prints them (src/tasks/metrics.h). */
#define REPORT_VAL_MAX_TASKS 64

typedef struct {
    char task[160];             /* "arc_challenge:test_rc_5shot", or "average" */
    char metric[24];            /* the task's primary metric */
    int n;                      /* documents answered along both paths */
    double base, value, stderr_;    /* accuracies (0..1) and the configuration's standard error */
    double delta, ci_lo, ci_hi;     /* value - base and its paired bootstrap 95% interval */
    double p;                   /* exact McNemar; NAN for the average */
} report_val_row;

typedef struct {
    char spec[64];
    int n_rows;                 /* tasks, then the average */
    report_val_row row[REPORT_VAL_MAX_TASKS + 1];
} report_val_config;

typedef struct report_validation {
    char model[256];
    int n_layers;
    report_val_config baseline; /* its deltas are 0 */
    report_val_config *cfg;     /* the other paths, in the order first scored */
    int n_cfg;
} report_validation;

/* 1 with *out when the database holds validation results with a scored
 * baseline, 0 when it holds none, -1 with the error set. */
int report_validation_load(const char *db_path, report_validation **out);
void report_validation_free(report_validation *v);
/* Bar chart of configuration c's deltas per task (and the average), in
 * points, with their 95% intervals. */
int report_plot_validation(const report_validation *v, int c, const char *dir, const char *name);

/* ---- search views (searches.c, drawn in plot.c) ---------------------------------
 * Every measured path's combined delta against its extra layers, coloured by
 * the search that proposed it, with the Pareto front of the validated ones;
 * and the surrogate's predicted against measured values on its holdout. */
#define REPORT_SUR_TARGETS 3

typedef struct {
    char target[16];            /* "math_delta", "eq_delta", "balanced" */
    double spearman, mae;
    int n_train, n_holdout;
    bool gate_passed;
    double *measured, *predicted;   /* n_holdout each */
} report_sur_target;

typedef struct report_surrogate {
    int n;                      /* targets */
    report_sur_target t[REPORT_SUR_TARGETS];
} report_surrogate;

/* The fit of a scan store (an open `struct store`, scan/store.h) into *out:
 * NULL when no surrogate was trained on it. 0, or -1 with the error set. */
struct store;
int report_surrogate_read(struct store *st, report_surrogate **out);
void report_surrogate_free(report_surrogate *s);
/* The colour of a search's points: scan, paths, beam, surrogate, and one for any other. */
void report_search_rgb(const char *search, double rgb[3]);
/* The validated configurations' Pareto front over (extra layers, combined
 * delta), the baseline (0, 0) included as index -1: a configuration is
 * validated when `rys validate` scored its spec. Returns the count; front[]
 * (room for n_cfg + 1) sorted by extra layers. 0 without validation results. */
int report_validated_front(const report_data *d, int *front);
/* A scatter plot's frame: data (x, y) is pixel (x0 + (x - xlo) / (xhi - xlo) * w, y0 + (yhi - y) / (yhi - ylo) * h). */
typedef struct {
    double x0, y0, w, h, xlo, xhi, ylo, yhi;
    double ystep;               /* the y grid's step (0: none chosen) */
    int width, height;          /* the whole figure */
} report_scatter;
void report_scatter_xy(const report_scatter *s, double x, double y, double *px, double *py);
/* The frames the two figures use (the surrogate's: panel t of d->surrogate). */
report_scatter report_search_layout(const report_data *d);
report_scatter report_surrogate_layout(const report_surrogate *s, int t);
int report_plot_search(const report_data *d, const char *dir, const char *name);
/* Needs d->surrogate. */
int report_plot_surrogate(const report_data *d, const char *dir, const char *name);

/* ---- the pre-screen against measurement (searches.c, drawn in plot.c) ----------
 * The measured single blocks the pre-screen scored, ranked both ways. */
typedef struct report_prescreen {
    char method[16];            /* "composite", "stability", "anomaly" */
    int n_prompts;              /* calibration prompts */
    int n_scored;               /* blocks it scored (every (i, j)) */
    int top_i, top_j;           /* its best block of all */
    int n;                      /* measured single blocks among the scored */
    int *cfg;                   /* their indices in d->cfg */
    double *score;              /* their pre-screen scores */
    double *pre_rank, *measured_rank;   /* 1 = best among the n (ties: average ranks); measured = balanced */
    double spearman;            /* of score against balanced, NAN when undefined */
    int best_cfg;               /* the best measured of the n (balanced), -1 when n = 0 */
    double top_measured_rank;   /* measured rank of the top block, 0 when it was not measured */
} report_prescreen;

/* Reads the pre-screen stored beside the scan in st and ranks the measured
 * single blocks of d (balanced scores derived) both ways into *out: NULL
 * when the store has none. 0, or -1 with the error set. */
int report_prescreen_read(struct store *st, const report_data *d, report_prescreen **out);
void report_prescreen_free(report_prescreen *p);
/* Pre-screen rank against measured rank, one point per measured block. Needs d->prescreen with n > 0. */
report_scatter report_prescreen_layout(const report_prescreen *p);
int report_plot_prescreen(const report_data *d, const char *dir, const char *name);

/* ---- everything (html.c) --------------------------------------------------- */

/* Writes every figure and DIR/index.html (DIR created if missing). clip > 0
 * overrides the per-figure clip; top_k rows per ranking table. */
int report_write(const report_data *d, const char *dir, double clip, int top_k);

#endif
