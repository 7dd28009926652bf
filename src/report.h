/* report: a scan database turned into what a person reads: heatmaps of score
 * deltas over (start i, end j), skylines, rankings, the Pareto front of extra
 * layers against combined delta, and an index.html that works offline.
 * The data part (loading, deltas, z-score ranking, Pareto front) is separate
 * from the drawing so tests can check the numbers by hand. */
#ifndef RYS_REPORT_H
#define RYS_REPORT_H

#include <stdbool.h>

#define REPORT_MAX_PROBES 8

typedef struct {
    char spec[48];
    int i, j;               /* block bounds, -1 if not a single block */
    int extra;
    double delta[REPORT_MAX_PROBES];
    double combined;        /* sum of the probe deltas */
    double balanced;        /* z(math) + z(eq) (or the sum of z over probes) */
} report_config;

typedef struct {
    int n_layers;
    char model[256];
    int n_probes;
    char probe[REPORT_MAX_PROBES][64];
    char kind[REPORT_MAX_PROBES][16];
    double baseline[REPORT_MAX_PROBES];
    bool has_baseline;
    report_config *cfg;     /* done, non-baseline configurations */
    int n_cfg;
    int n_pending;          /* configurations in the store not done */
} report_data;

/* NULL + error when the file is not a scan database. */
report_data *report_load(const char *db_path);
void report_free(report_data *d);

/* Sorts idx[0..n_cfg) by the balanced score (ties: EQ delta, then math
 * delta), best first; fills cfg[].balanced. */
void report_rank_balanced(report_data *d, int *idx);
/* Sorts idx by one probe's delta, best first. */
void report_rank_probe(const report_data *d, int probe, int *idx);
/* Marks the Pareto front (no other config has >= combined delta with <=
 * extra layers, one of them strictly); returns the count, front[] gets
 * indices sorted by extra layers. */
int report_pareto(const report_data *d, int *front);

/* The heatmap geometry shared by the drawing and the tests. */
typedef struct { double x0, y0, cell; int n; } heat_layout;
heat_layout report_heat_layout(int n_layers);
/* Pixel centre of cell (i, j). */
void report_cell_centre(const heat_layout *L, int i, int j, double *x, double *y);
/* Colour of a delta under the clip: blue (worse) - white - red (better). */
void report_colour(double delta, double clip, double rgb[3]);

/* Writes every figure and index.html into dir; 0 or -1 with the error set. */
int report_write(const report_data *d, const char *dir, double clip_override, int top_k);
/* The clip used for a probe's heatmap (-1 = combined). */
double report_clip(const report_data *d, int probe);

#endif
