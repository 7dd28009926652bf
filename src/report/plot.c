/* report figures: see report.h. Each figure is one drawing function run
 * twice, into a PNG image surface and an SVG surface, so the two never
 * disagree. Text goes through cairo's toy API in DejaVu Sans; the layout of
 * grid figures depends on the layer count only, so tests can compute where a
 * cell's pixels are without drawing. */
#include "report/report.h"
#include "base/util.h"

#include <cairo-svg.h>
#include <cairo.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FONT "DejaVu Sans"

const double report_mask_rgb[3] = {0.80, 0.80, 0.80};
static const double ink[3] = {0.13, 0.13, 0.13};

/* ---- colours and layout -------------------------------------------------- */

void report_colour(double delta, double clip, double rgb[3]) {
    /* a red-blue diverging ramp through near-white, as in ColorBrewer's RdBu */
    static const double stop[5][3] = {{0.129, 0.400, 0.675}, {0.573, 0.773, 0.871}, {0.969, 0.969, 0.969},
                                      {0.957, 0.647, 0.510}, {0.698, 0.094, 0.169}};
    double t = clip > 0 ? delta / clip : 0;
    if (!(t > -1)) t = -1;      /* NaN lands on -1 too: it can only come from a broken store */
    if (t > 1) t = 1;
    double u = (t + 1) * 2;     /* 0..4 over the stops */
    int k = (int)floor(u);
    if (k > 3) k = 3;
    double f = u - k;
    for (int c = 0; c < 3; c++) rgb[c] = stop[k][c] + (stop[k + 1][c] - stop[k][c]) * f;
}

static double cell_size(int n_cols) {
    double c = floor(600.0 / (n_cols > 0 ? n_cols : 1));
    return c > 40 ? 40 : c < 8 ? 8 : c;
}

/* Room to the right of a grid for the colour bar and its labels. */
#define BAR_ROOM 130
#define MIN_WIDTH 660

/* The colour bar is as tall as the grid, but never shorter than min_bar so
 * its five labels stay apart. */
static report_grid grid(int rows, int cols, double cell, double min_bar) {
    report_grid g = {.x0 = 78, .y0 = 84, .cell = cell, .rows = rows, .cols = cols};
    double gh = rows * cell;
    g.bar_h = gh > min_bar ? gh : min_bar;
    g.width = (int)(g.x0 + cols * cell + BAR_ROOM);
    if (g.width < MIN_WIDTH) g.width = MIN_WIDTH;
    g.height = (int)(g.y0 + g.bar_h + 72);
    return g;
}

report_grid report_heat_layout(int n_layers) { return grid(n_layers, n_layers, cell_size(n_layers), 180); }

void report_heat_cell_centre(const report_grid *g, int i, int j, double *x, double *y) {
    *x = g->x0 + (j - 1 + 0.5) * g->cell;
    *y = g->y0 + (i + 0.5) * g->cell;
}

report_grid report_repeat_layout(int n_layers, int max_r) {
    return grid(max_r - 1, n_layers, cell_size(n_layers), 120);
}

void report_repeat_cell_centre(const report_grid *g, int layer, int r, double *x, double *y) {
    *x = g->x0 + (layer + 0.5) * g->cell;
    *y = g->y0 + (r - 2 + 0.5) * g->cell;
}

int report_max_repeat(const report_data *d) {
    int m = 2;
    for (int k = 0; k < d->n_cfg; k++) if (d->cfg[k].repeat_n > m) m = d->cfg[k].repeat_n;
    return m;
}

/* ---- drawing helpers --------------------------------------------------------- */

static void set_rgb(cairo_t *cr, const double rgb[3]) { cairo_set_source_rgb(cr, rgb[0], rgb[1], rgb[2]); }

/* Text with its anchor at x: align 0 = left, 0.5 = centred, 1 = right. */
static void text(cairo_t *cr, double x, double y, double size, bool bold, double align, const char *s) {
    cairo_select_font_face(cr, FONT, CAIRO_FONT_SLANT_NORMAL, bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, size);
    cairo_text_extents_t e;
    cairo_text_extents(cr, s, &e);
    set_rgb(cr, ink);
    cairo_move_to(cr, x - align * e.x_advance, y);
    cairo_show_text(cr, s);
}

static void textf(cairo_t *cr, double x, double y, double size, bool bold, double align, const char *fmt, ...)
    RYS_PRINTF(7, 8);
static void textf(cairo_t *cr, double x, double y, double size, bool bold, double align, const char *fmt, ...) {
    char b[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b, sizeof b, fmt, ap);
    va_end(ap);
    text(cr, x, y, size, bold, align, b);
}

static void vertical_text(cairo_t *cr, double x, double y, double size, const char *s) {
    cairo_save(cr);
    cairo_translate(cr, x, y);
    cairo_rotate(cr, -M_PI / 2);
    text(cr, 0, 0, size, false, 0.5, s);
    cairo_restore(cr);
}

/* Layer tick spacing that keeps labels from touching at the cell size. */
static int tick_step(int n, double cell) {
    static const int steps[] = {1, 2, 4, 5, 10, 20};
    for (size_t k = 0; k < sizeof steps / sizeof steps[0]; k++)
        if (steps[k] * cell >= 18 && (n <= 16 || steps[k] > 1)) return steps[k];
    return 20;
}

/* A 1-2-5 step giving about `target` ticks over span. */
static double nice_step(double span, int target) {
    double raw = span / target, mag = pow(10, floor(log10(raw)));
    double m = raw / mag;
    return (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * mag;
}

static const char *name_of(const report_data *d, int p) { return p == REPORT_COMBINED ? "combined" : d->probe[p]; }

static void colour_bar(cairo_t *cr, double x, double y, double h, double clip) {
    const double w = 16;
    for (int k = 0; k < 200; k++) {
        double rgb[3];
        report_colour(clip * (1 - 2.0 * (k + 0.5) / 200), clip, rgb);
        set_rgb(cr, rgb);
        cairo_rectangle(cr, x, y + h * k / 200, w, h / 200 + 0.6);
        cairo_fill(cr);
    }
    cairo_set_source_rgb(cr, 0.35, 0.35, 0.35);
    cairo_set_line_width(cr, 1);
    cairo_rectangle(cr, x + 0.5, y + 0.5, w - 1, h - 1);
    cairo_stroke(cr);
    for (int k = 0; k <= 4; k++) {
        double v = clip * (1 - k / 2.0), ty = y + h * k / 4;
        cairo_move_to(cr, x + w, ty);
        cairo_line_to(cr, x + w + 4, ty);
        cairo_stroke(cr);
        if (k == 2) text(cr, x + w + 7, ty + 4, 11, false, 0, "0");
        else textf(cr, x + w + 7, ty + 4, 11, false, 0, "%+.3g", v);
    }
    text(cr, x, y - 8, 11, false, 0, "better");
    text(cr, x, y + h + 16, 11, false, 0, "worse");
    set_rgb(cr, report_mask_rgb);
    cairo_rectangle(cr, x, y + h + 30, w, 12);
    cairo_fill(cr);
    text(cr, x + w + 6, y + h + 40, 11, false, 0, "no data");
}

static void ring(cairo_t *cr, double x, double y, double r) {
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_set_line_width(cr, 4.5);
    cairo_arc(cr, x, y, r, 0, 2 * M_PI);
    cairo_stroke(cr);
    cairo_set_source_rgb(cr, 0, 0, 0);
    cairo_set_line_width(cr, 2);
    cairo_arc(cr, x, y, r, 0, 2 * M_PI);
    cairo_stroke(cr);
}

static void cell_fill(cairo_t *cr, const report_grid *g, int row, int col, const double rgb[3]) {
    set_rgb(cr, rgb);
    cairo_rectangle(cr, g->x0 + col * g->cell, g->y0 + row * g->cell, g->cell, g->cell);
    cairo_fill(cr);
}

/* Thin white lines between cells, only where cells are big enough to show them. */
static void cell_lines(cairo_t *cr, const report_grid *g) {
    if (g->cell < 12) return;
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_set_line_width(cr, 1);
    for (int c = 1; c < g->cols; c++) {
        cairo_move_to(cr, g->x0 + c * g->cell, g->y0);
        cairo_line_to(cr, g->x0 + c * g->cell, g->y0 + g->rows * g->cell);
    }
    for (int r = 1; r < g->rows; r++) {
        cairo_move_to(cr, g->x0, g->y0 + r * g->cell);
        cairo_line_to(cr, g->x0 + g->cols * g->cell, g->y0 + r * g->cell);
    }
    cairo_stroke(cr);
}

static void frame(cairo_t *cr, double x, double y, double w, double h) {
    cairo_set_source_rgb(cr, 0.35, 0.35, 0.35);
    cairo_set_line_width(cr, 1);
    cairo_rectangle(cr, x - 0.5, y - 0.5, w + 1, h + 1);
    cairo_stroke(cr);
}

/* ---- rendering ------------------------------------------------------------------ */

typedef void (*draw_fn)(cairo_t *cr, const void *ctx);

static int render(const char *dir, const char *name, int w, int h, draw_fn draw, const void *ctx) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.png", dir, name);
    cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, w, h);
    cairo_t *cr = cairo_create(s);
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    draw(cr, ctx);
    cairo_status_t st = cairo_status(cr);
    cairo_destroy(cr);
    if (st == CAIRO_STATUS_SUCCESS) st = cairo_surface_write_to_png(s, path);
    cairo_surface_destroy(s);
    if (st != CAIRO_STATUS_SUCCESS) { rys_seterr("%s: cannot write: %s", path, cairo_status_to_string(st)); return -1; }
    snprintf(path, sizeof path, "%s/%s.svg", dir, name);
    s = cairo_svg_surface_create(path, w, h);
    cr = cairo_create(s);
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    draw(cr, ctx);
    cairo_destroy(cr);
    cairo_surface_finish(s);
    st = cairo_surface_status(s);
    cairo_surface_destroy(s);
    if (st != CAIRO_STATUS_SUCCESS) { rys_seterr("%s: cannot write: %s", path, cairo_status_to_string(st)); return -1; }
    return 0;
}

/* ---- heatmap of single blocks ----------------------------------------------------- */

typedef struct { const report_data *d; int p; double clip; bool clip_given; } grid_ctx;

/* "baseline 0.5000" or "baselines math 0.5000 + eq 0.6000" for combined. */
static void baseline_text(const report_data *d, int p, char *b, size_t n) {
    if (p != REPORT_COMBINED) { snprintf(b, n, "baseline %.4f", d->baseline[p]); return; }
    size_t used = (size_t)snprintf(b, n, "baseline");
    for (int q = 0; q < d->n_probes && used < n; q++) {
        if (d->math >= 0 && d->eq >= 0 && q != d->math && q != d->eq) continue;
        used += (size_t)snprintf(b + used, n - used, "%s %s %.4f", used > 8 ? " +" : "", d->probe[q], d->baseline[q]);
    }
}

static void grid_header(cairo_t *cr, const grid_ctx *h, int best, const char *what) {
    const report_data *d = h->d;
    int p = h->p;
    char base[256];
    baseline_text(d, p, base, sizeof base);
    textf(cr, 20, 26, 16, true, 0, "%s: %s delta vs baseline", what, name_of(d, p));
    if (best >= 0)
        textf(cr, 20, 46, 12, false, 0, "%s  |  best (circled) %s: %+.4f", base, d->cfg[best].spec,
              report_value(&d->cfg[best], p));
    else
        text(cr, 20, 46, 12, false, 0, base);
    textf(cr, 20, 64, 12, false, 0, "colours clipped at \u00b1%.4g (%s)", h->clip,
          h->clip_given ? "set by --clip" : "98th percentile of |delta|");
}

static void draw_heat(cairo_t *cr, const void *vctx) {
    const grid_ctx *h = vctx;
    const report_data *d = h->d;
    int N = d->n_layers;
    report_grid g = report_heat_layout(N);
    for (int i = 0; i < N; i++)
        for (int j = 1; j <= N; j++) cell_fill(cr, &g, i, j - 1, report_mask_rgb);
    for (int k = 0; k < d->n_cfg; k++) {
        const report_config *c = &d->cfg[k];
        if (c->i < 0) continue;
        double rgb[3];
        report_colour(report_value(c, h->p), h->clip, rgb);
        cell_fill(cr, &g, c->i, c->j - 1, rgb);
    }
    cell_lines(cr, &g);
    /* the edge of the i < j triangle, so a coarse sweep's grid still shows it */
    cairo_set_source_rgb(cr, 0.55, 0.55, 0.55);
    cairo_set_line_width(cr, 1);
    cairo_move_to(cr, g.x0, g.y0);
    for (int i = 0; i < N; i++) {
        cairo_line_to(cr, g.x0 + i * g.cell, g.y0 + (i + 1) * g.cell);
        cairo_line_to(cr, g.x0 + (i + 1) * g.cell, g.y0 + (i + 1) * g.cell);
    }
    cairo_stroke(cr);
    frame(cr, g.x0, g.y0, N * g.cell, N * g.cell);
    int best = report_best(d, h->p, REPORT_BLOCKS);
    if (best >= 0) {
        double x, y;
        report_heat_cell_centre(&g, d->cfg[best].i, d->cfg[best].j, &x, &y);
        ring(cr, x, y, g.cell * 0.5 + 3);
    }
    int step = tick_step(N, g.cell);
    for (int i = 0; i < N; i += step) textf(cr, g.x0 - 6, g.y0 + (i + 0.5) * g.cell + 4, 11, false, 1, "%d", i);
    for (int j = step; j <= N; j += step) textf(cr, g.x0 + (j - 0.5) * g.cell, g.y0 + N * g.cell + 16, 11, false, 0.5, "%d", j);
    text(cr, g.x0 + N * g.cell / 2, g.y0 + N * g.cell + 38, 13, false, 0.5, "end layer j  (layers i..j-1 run twice)");
    vertical_text(cr, 30, g.y0 + N * g.cell / 2, 13, "start layer i");
    grid_header(cr, h, best, "blocks");
    colour_bar(cr, g.x0 + N * g.cell + 26, g.y0, g.bar_h, h->clip);
}

int report_plot_heatmap(const report_data *d, int p, double clip, const char *dir, const char *name) {
    report_grid g = report_heat_layout(d->n_layers);
    grid_ctx h = {d, p, clip > 0 ? clip : report_clip(d, p, REPORT_BLOCKS), clip > 0};
    return render(dir, name, g.width, g.height, draw_heat, &h);
}

/* ---- repeat map --------------------------------------------------------------------- */

static void draw_repeat(cairo_t *cr, const void *vctx) {
    const grid_ctx *h = vctx;
    const report_data *d = h->d;
    int N = d->n_layers, R = report_max_repeat(d);
    report_grid g = report_repeat_layout(N, R);
    for (int r = 2; r <= R; r++)
        for (int l = 0; l < N; l++) cell_fill(cr, &g, r - 2, l, report_mask_rgb);
    for (int k = 0; k < d->n_cfg; k++) {
        const report_config *c = &d->cfg[k];
        if (c->repeat_n < 2) continue;
        double rgb[3];
        report_colour(report_value(c, h->p), h->clip, rgb);
        cell_fill(cr, &g, c->repeat_n - 2, c->repeat_layer, rgb);
    }
    cell_lines(cr, &g);
    frame(cr, g.x0, g.y0, N * g.cell, (R - 1) * g.cell);
    int best = report_best(d, h->p, REPORT_REPEATS);
    if (best >= 0) {
        double x, y;
        report_repeat_cell_centre(&g, d->cfg[best].repeat_layer, d->cfg[best].repeat_n, &x, &y);
        ring(cr, x, y, g.cell * 0.5 + 3);
    }
    int step = tick_step(N, g.cell);
    for (int l = 0; l < N; l += step) textf(cr, g.x0 + (l + 0.5) * g.cell, g.y0 + (R - 1) * g.cell + 16, 11, false, 0.5, "%d", l);
    int rstep = tick_step(R - 1, g.cell);
    for (int r = 2; r <= R; r += rstep) textf(cr, g.x0 - 6, g.y0 + (r - 1.5) * g.cell + 4, 11, false, 1, "\u00d7%d", r);
    text(cr, g.x0 + N * g.cell / 2, g.y0 + (R - 1) * g.cell + 38, 13, false, 0.5, "layer L");
    vertical_text(cr, 30, g.y0 + (R - 1) * g.cell / 2, 13, "runs");
    grid_header(cr, h, best, "repeats");
    colour_bar(cr, g.x0 + N * g.cell + 26, g.y0, g.bar_h, h->clip);
}

int report_plot_repeats(const report_data *d, int p, double clip, const char *dir, const char *name) {
    report_grid g = report_repeat_layout(d->n_layers, report_max_repeat(d));
    grid_ctx h = {d, p, clip > 0 ? clip : report_clip(d, p, REPORT_REPEATS), clip > 0};
    return render(dir, name, g.width, g.height, draw_repeat, &h);
}

/* ---- skylines ----------------------------------------------------------------------- */

typedef struct { const report_data *d; int p; } sky_ctx;

/* Horizontal grid lines of an axis symmetric around mid, labelled with
 * signed values every st up to +-top. */
static void signed_grid(cairo_t *cr, double x0, double w, double mid, double scale, double top, double st) {
    for (double t = -top; t <= top + st / 2; t += st) {
        double ty = mid - t * scale;
        cairo_set_source_rgb(cr, 0.9, 0.9, 0.9);
        cairo_move_to(cr, x0, ty);
        cairo_line_to(cr, x0 + w, ty);
        cairo_stroke(cr);
        if (fabs(t) < st / 2) text(cr, x0 - 6, ty + 4, 11, false, 1, "0");
        else textf(cr, x0 - 6, ty + 4, 11, false, 1, "%+.3g", t);
    }
}

/* Bar chart of v[0..n) (cnt[k] == 0: no data) with symmetric y range. */
static void bars(cairo_t *cr, double x0, double y0, double w, double h, const double *v, const int *cnt, int n, int first,
                 const char *title, const char *xlabel) {
    double mx = 0;
    for (int k = 0; k < n; k++) if (cnt[k] && fabs(v[k]) > mx) mx = fabs(v[k]);
    if (mx < 1e-12) mx = 1;
    double st = nice_step(mx, 2), top = ceil(mx / st - 1e-9) * st;
    double mid = y0 + h / 2, scale = (h / 2) / top, bw = w / n;
    text(cr, x0, y0 - 10, 13, true, 0, title);
    cairo_set_line_width(cr, 1);
    signed_grid(cr, x0, w, mid, scale, top, st);
    for (int k = 0; k < n; k++) {
        double rgb[3];
        if (!cnt[k]) {
            set_rgb(cr, report_mask_rgb);
            cairo_rectangle(cr, x0 + k * bw + 0.15 * bw, mid - 2, 0.7 * bw, 4);
            cairo_fill(cr);
            continue;
        }
        report_colour(v[k] >= 0 ? top : -top, top, rgb);
        set_rgb(cr, rgb);
        double bh = v[k] * scale;
        cairo_rectangle(cr, x0 + k * bw + 0.12 * bw, bh > 0 ? mid - bh : mid, 0.76 * bw, fabs(bh));
        cairo_fill(cr);
    }
    cairo_set_source_rgb(cr, 0.3, 0.3, 0.3);
    cairo_move_to(cr, x0, mid);
    cairo_line_to(cr, x0 + w, mid);
    cairo_stroke(cr);
    frame(cr, x0, y0, w, h);
    int step = tick_step(n, bw);
    for (int k = 0; k < n; k += step) textf(cr, x0 + (k + 0.5) * bw, y0 + h + 15, 11, false, 0.5, "%d", k + first);
    text(cr, x0 + w / 2, y0 + h + 33, 12, false, 0.5, xlabel);
    vertical_text(cr, x0 - 50, y0 + h / 2, 12, "mean delta");
}

static void draw_skyline(cairo_t *cr, const void *vctx) {
    const sky_ctx *s = vctx;
    const report_data *d = s->d;
    int N = d->n_layers;
    double *vi = xcalloc((size_t)N + 1, sizeof *vi), *vj = xcalloc((size_t)N + 1, sizeof *vj);
    int *ci = xcalloc((size_t)N + 1, sizeof *ci), *cj = xcalloc((size_t)N + 1, sizeof *cj);
    for (int k = 0; k < d->n_cfg; k++) {
        const report_config *c = &d->cfg[k];
        if (c->i < 0) continue;
        double v = report_value(c, s->p);
        vi[c->i] += v;
        ci[c->i]++;
        vj[c->j] += v;
        cj[c->j]++;
    }
    for (int k = 0; k <= N; k++) {
        if (ci[k]) vi[k] /= ci[k];
        if (cj[k]) vj[k] /= cj[k];
    }
    textf(cr, 20, 26, 16, true, 0, "skylines: %s delta, mean over the measured blocks", name_of(d, s->p));
    text(cr, 20, 46, 12, false, 0, "rows and columns of the heatmap averaged; grey dash: no block measured there");
    bars(cr, 90, 96, 780, 170, vi, ci, N, 0, "by start layer i (row means)", "start layer i");
    bars(cr, 90, 346, 780, 170, vj + 1, cj + 1, N, 1, "by end layer j (column means)", "end layer j");
    free(vi);
    free(vj);
    free(ci);
    free(cj);
}

int report_plot_skyline(const report_data *d, int p, const char *dir, const char *name) {
    sky_ctx s = {d, p};
    return render(dir, name, 900, 570, draw_skyline, &s);
}

/* ---- Pareto front --------------------------------------------------------------------- */

typedef struct { const report_data *d; const int *front; int n_front; } pareto_ctx;

/* Front points numbered in the plot and listed beside it. */
#define PARETO_LISTED 20

static void draw_pareto(cairo_t *cr, const void *vctx) {
    const pareto_ctx *pc = vctx;
    const report_data *d = pc->d;
    /* the frame of the search view, so the two figures of extra layers against combined delta line up */
    const report_scatter fr = report_search_layout(d);
    const double x0 = fr.x0, y0 = fr.y0, w = fr.w, h = fr.h, lo = fr.ylo, hi = fr.yhi, yst = fr.ystep;
    /* a path that skips layers (rys scan --paths) costs fewer than the baseline: mn < 0 */
    const int mn = (int)lround(fr.xlo + 0.5), mx = (int)lround(fr.xhi - 0.5);
#define PX(e) (x0 + ((double)(e) - mn + 0.5) / (mx - mn + 1.0) * w)
#define PY(v) (y0 + (hi - (v)) / (hi - lo) * h)
    cairo_set_line_width(cr, 1);
    for (double t = lo; t <= hi + yst / 2; t += yst) {
        cairo_set_source_rgb(cr, 0.9, 0.9, 0.9);
        cairo_move_to(cr, x0, PY(t));
        cairo_line_to(cr, x0 + w, PY(t));
        cairo_stroke(cr);
        if (fabs(t) < yst / 2) text(cr, x0 - 6, PY(t) + 4, 11, false, 1, "0");
        else textf(cr, x0 - 6, PY(t) + 4, 11, false, 1, "%+.3g", t);
    }
    cairo_set_source_rgb(cr, 0.45, 0.45, 0.45);
    cairo_move_to(cr, x0, PY(0));
    cairo_line_to(cr, x0 + w, PY(0));
    cairo_stroke(cr);
    double xst = mx - mn <= 12 ? 1 : nice_step(mx - mn, 10);
    for (double e = ceil(mn / xst) * xst; e <= mx; e += xst) textf(cr, PX(e), y0 + h + 16, 11, false, 0.5, "%g", e);
    frame(cr, x0, y0, w, h);
    for (int k = 0; k < d->n_cfg; k++) {
        cairo_set_source_rgba(cr, 0.35, 0.35, 0.35, 0.55);
        cairo_arc(cr, PX(d->cfg[k].extra), PY(d->cfg[k].combined), 3, 0, 2 * M_PI);
        cairo_fill(cr);
    }
    /* the baseline, where every delta is measured from */
    cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
    cairo_set_line_width(cr, 1.5);
    cairo_arc(cr, PX(0), PY(0), 5, 0, 2 * M_PI);
    cairo_stroke(cr);
    /* the front as a staircase: what the best configuration within a budget gives */
    cairo_set_source_rgb(cr, 0.70, 0.09, 0.17);
    cairo_set_line_width(cr, 1.5);
    for (int k = 0; k < pc->n_front; k++) {
        const report_config *c = &d->cfg[pc->front[k]];
        if (k == 0) cairo_move_to(cr, PX(c->extra), PY(c->combined));
        else {
            const report_config *b = &d->cfg[pc->front[k - 1]];
            cairo_line_to(cr, PX(c->extra), PY(b->combined));
            cairo_line_to(cr, PX(c->extra), PY(c->combined));
        }
    }
    cairo_stroke(cr);
    for (int k = 0; k < pc->n_front; k++) {
        const report_config *c = &d->cfg[pc->front[k]];
        cairo_set_source_rgb(cr, 0.70, 0.09, 0.17);
        cairo_arc(cr, PX(c->extra), PY(c->combined), 5, 0, 2 * M_PI);
        cairo_fill(cr);
        /* numbered above-left: nothing lies there, or it would beat this point */
        if (k < PARETO_LISTED) textf(cr, PX(c->extra) - 5, PY(c->combined) - 6, 11, true, 1, "%d", k + 1);
    }
    double lx = x0 + w + 24;
    text(cr, lx, y0 + 8, 12, true, 0, "front: extra layers, combined delta");
    for (int k = 0; k < pc->n_front && k < PARETO_LISTED; k++) {
        const report_config *c = &d->cfg[pc->front[k]];
        textf(cr, lx, y0 + 28 + 17 * k, 11, false, 0, "%d. %s  %+d  %+.3f", k + 1, c->spec, c->extra, c->combined);
    }
    if (pc->n_front > PARETO_LISTED)
        textf(cr, lx, y0 + 28 + 17 * PARETO_LISTED, 11, false, 0, "(%d more in the table)", pc->n_front - PARETO_LISTED);
    text(cr, x0 + w / 2, y0 + h + 38, 13, false, 0.5, "extra layers (compute and KV cache over the baseline)");
    vertical_text(cr, 30, y0 + h / 2, 13, "combined delta");
    text(cr, 20, 26, 16, true, 0, "Pareto front: combined delta against extra layers");
    textf(cr, 20, 46, 12, false, 0, "red: the %d configurations no other beats with no more extra layers; grey: the other %d; "
          "open circle: the baseline", pc->n_front, d->n_cfg - pc->n_front);
#undef PX
#undef PY
}

int report_plot_pareto(const report_data *d, const char *dir, const char *name) {
    int *front = xmalloc(((size_t)d->n_cfg + 1) * sizeof *front);
    pareto_ctx pc = {d, front, report_pareto(d, front)};
    int rc = render(dir, name, 1090, 520, draw_pareto, &pc);
    free(front);
    return rc;
}

/* ---- standard benchmarks: deltas with their intervals ---------------------------------- */

typedef struct { const report_validation *v; int c; } val_ctx;

static void draw_validation(cairo_t *cr, const void *vctx) {
    const val_ctx *vc = vctx;
    const report_val_config *c = &vc->v->cfg[vc->c];
    const double x0 = 90, y0 = 86, w = 780, h = 300;
    int n = c->n_rows;
    double mx = 0;
    for (int k = 0; k < n; k++) {
        const report_val_row *r = &c->row[k];
        double e = fmax(fabs(r->ci_lo), fabs(r->ci_hi));
        if (fmax(fabs(r->delta), e) * 100 > mx) mx = fmax(fabs(r->delta), e) * 100;
    }
    if (mx < 1e-9) mx = 1;
    double st = nice_step(mx, 3), top = ceil(mx / st - 1e-9) * st;
    double mid = y0 + h / 2, scale = (h / 2) / top, bw = w / n;
    textf(cr, 20, 26, 16, true, 0, "%s: accuracy delta vs baseline, points", c->spec);
    text(cr, 20, 46, 12, false, 0, "bars: primary metric of each task (the average: mean over tasks); whiskers: paired bootstrap 95% interval");
    text(cr, 20, 64, 12, false, 0, "same documents along both paths; p: exact McNemar test on the documents they disagree on");
    cairo_set_line_width(cr, 1);
    signed_grid(cr, x0, w, mid, scale, top, st);
    for (int k = 0; k < n; k++) {
        const report_val_row *r = &c->row[k];
        double rgb[3], cx = x0 + (k + 0.5) * bw, bh = r->delta * 100 * scale;
        report_colour(r->delta >= 0 ? top : -top, top, rgb);
        set_rgb(cr, rgb);
        cairo_rectangle(cr, cx - 0.3 * bw, bh > 0 ? mid - bh : mid, 0.6 * bw, fabs(bh));
        cairo_fill(cr);
        set_rgb(cr, ink);
        cairo_set_line_width(cr, 1.5);
        double ylo = mid - r->ci_lo * 100 * scale, yhi = mid - r->ci_hi * 100 * scale;
        cairo_move_to(cr, cx, ylo);
        cairo_line_to(cr, cx, yhi);
        cairo_move_to(cr, cx - 0.1 * bw, ylo);
        cairo_line_to(cr, cx + 0.1 * bw, ylo);
        cairo_move_to(cr, cx - 0.1 * bw, yhi);
        cairo_line_to(cr, cx + 0.1 * bw, yhi);
        cairo_stroke(cr);
        char name[160];
        snprintf(name, sizeof name, "%s", r->task);
        char *colon = strchr(name, ':');
        if (colon) *colon = 0;
        text(cr, cx, y0 + h + 16, 11, k == n - 1, 0.5, name);
        textf(cr, cx, y0 + h + 31, 10, false, 0.5, "%+.2f [%+.1f, %+.1f]", 100 * r->delta, 100 * r->ci_lo, 100 * r->ci_hi);
        if (!isnan(r->p)) textf(cr, cx, y0 + h + 45, 10, false, 0.5, "p = %.3g, n = %d", r->p, r->n);
        else textf(cr, cx, y0 + h + 45, 10, false, 0.5, "n = %d", r->n);
    }
    cairo_set_line_width(cr, 1);
    cairo_set_source_rgb(cr, 0.3, 0.3, 0.3);
    cairo_move_to(cr, x0, mid);
    cairo_line_to(cr, x0 + w, mid);
    cairo_stroke(cr);
    frame(cr, x0, y0, w, h);
    vertical_text(cr, x0 - 50, y0 + h / 2, 12, "delta (points)");
}

int report_plot_validation(const report_validation *v, int c, const char *dir, const char *name) {
    if (c < 0 || c >= v->n_cfg) { rys_seterr("report: no validated configuration %d", c); return -1; }
    val_ctx vc = {v, c};
    return render(dir, name, 900, 450, draw_validation, &vc);
}

/* ---- search views: gain against extra layers by search; the surrogate's holdout ---------- */

void report_scatter_xy(const report_scatter *s, double x, double y, double *px, double *py) {
    *px = s->x0 + (x - s->xlo) / (s->xhi - s->xlo) * s->w;
    *py = s->y0 + (s->yhi - y) / (s->yhi - s->ylo) * s->h;
}

report_scatter report_search_layout(const report_data *d) {
    report_scatter s = {90, 76, 700, 380, 0, 0, 0, 0, 0, 1090, 520};
    int mx = 1, mn = 0;
    double lo = 0, hi = 0;
    for (int k = 0; k < d->n_cfg; k++) {
        if (d->cfg[k].extra > mx) mx = d->cfg[k].extra;
        if (d->cfg[k].extra < mn) mn = d->cfg[k].extra;
        if (d->cfg[k].combined < lo) lo = d->cfg[k].combined;
        if (d->cfg[k].combined > hi) hi = d->cfg[k].combined;
    }
    if (hi - lo < 1e-12) { hi += 1; lo -= 1; }
    double st = nice_step(hi - lo, 6);
    s.xlo = mn - 0.5;
    s.xhi = mx + 0.5;
    s.ylo = floor(lo / st - 1e-9) * st;
    s.yhi = ceil(hi / st + 1e-9) * st;
    s.ystep = st;
    return s;
}

/* Searches in drawing order: the sweep's many points first, the rarer searches on top. */
static const char *const search_order[] = {"scan", "paths", NULL, "beam", "surrogate"};

static bool known_search(const char *s) {
    for (size_t k = 0; k < sizeof search_order / sizeof search_order[0]; k++)
        if (search_order[k] && !strcmp(s, search_order[k])) return true;
    return false;
}

/* y grid lines with labels, and the zero line darker. */
static void value_grid(cairo_t *cr, const report_scatter *s) {
    double st = nice_step(s->yhi - s->ylo, 6), px, py;
    cairo_set_line_width(cr, 1);
    for (double t = s->ylo; t <= s->yhi + st / 2; t += st) {
        report_scatter_xy(s, s->xlo, t, &px, &py);
        cairo_set_source_rgb(cr, 0.9, 0.9, 0.9);
        cairo_move_to(cr, s->x0, py);
        cairo_line_to(cr, s->x0 + s->w, py);
        cairo_stroke(cr);
        if (fabs(t) < st / 2) text(cr, s->x0 - 6, py + 4, 11, false, 1, "0");
        else textf(cr, s->x0 - 6, py + 4, 11, false, 1, "%+.3g", t);
    }
}

static void draw_search(cairo_t *cr, const void *vctx) {
    const report_data *d = vctx;
    report_scatter s = report_search_layout(d);
    double px, py, rgb[3];
    value_grid(cr, &s);
    report_scatter_xy(&s, 0, 0, &px, &py);
    cairo_set_source_rgb(cr, 0.45, 0.45, 0.45);
    cairo_move_to(cr, s.x0, py);
    cairo_line_to(cr, s.x0 + s.w, py);
    cairo_stroke(cr);
    double span = s.xhi - s.xlo - 1, xst = span <= 12 ? 1 : nice_step(span, 10);
    for (double e = ceil((s.xlo + 0.5) / xst) * xst; e <= s.xhi - 0.5; e += xst) {
        report_scatter_xy(&s, e, 0, &px, &py);
        textf(cr, px, s.y0 + s.h + 16, 11, false, 0.5, "%g", e);
    }
    frame(cr, s.x0, s.y0, s.w, s.h);
    /* the baseline, where every delta is measured from */
    report_scatter_xy(&s, 0, 0, &px, &py);
    cairo_set_source_rgb(cr, 0.2, 0.2, 0.2);
    cairo_set_line_width(cr, 1.5);
    cairo_arc(cr, px, py, 6, 0, 2 * M_PI);
    cairo_stroke(cr);
    /* the validated configurations' front: a staircase under the points, rings over them */
    int *front = xmalloc(((size_t)d->n_cfg + 1) * sizeof *front);
    int n_front = report_validated_front(d, front);
    cairo_set_source_rgb(cr, 0, 0, 0);
    cairo_set_line_width(cr, 1.5);
    for (int k = 0; k < n_front; k++) {
        double e = front[k] < 0 ? 0 : d->cfg[front[k]].extra, g = front[k] < 0 ? 0 : d->cfg[front[k]].combined;
        double pg = k == 0 ? g : front[k - 1] < 0 ? 0 : d->cfg[front[k - 1]].combined;
        report_scatter_xy(&s, e, pg, &px, &py);
        if (k == 0) cairo_move_to(cr, px, py);
        else cairo_line_to(cr, px, py);
        report_scatter_xy(&s, e, g, &px, &py);
        cairo_line_to(cr, px, py);
    }
    cairo_stroke(cr);
    int count[sizeof search_order / sizeof search_order[0]] = {0};
    for (size_t o = 0; o < sizeof search_order / sizeof search_order[0]; o++)
        for (int k = 0; k < d->n_cfg; k++) {
            const report_config *c = &d->cfg[k];
            if (search_order[o] ? strcmp(c->search, search_order[o]) : known_search(c->search)) continue;
            count[o]++;
            report_search_rgb(c->search, rgb);
            set_rgb(cr, rgb);
            report_scatter_xy(&s, c->extra, c->combined, &px, &py);
            cairo_arc(cr, px, py, 4, 0, 2 * M_PI);
            cairo_fill(cr);
        }
    for (int k = 0; k < n_front; k++) {
        if (front[k] < 0) continue;
        report_scatter_xy(&s, d->cfg[front[k]].extra, d->cfg[front[k]].combined, &px, &py);
        ring(cr, px, py, 8);
    }
    /* the legend */
    double lx = s.x0 + s.w + 24, ly = s.y0 + 8;
    text(cr, lx, ly, 12, true, 0, "proposed by");
    for (size_t o = 0; o < sizeof search_order / sizeof search_order[0]; o++) {
        if (!count[o]) continue;
        ly += 20;
        report_search_rgb(search_order[o] ? search_order[o] : "", rgb);
        set_rgb(cr, rgb);
        cairo_arc(cr, lx + 5, ly - 4, 5, 0, 2 * M_PI);
        cairo_fill(cr);
        textf(cr, lx + 16, ly, 11, false, 0, "%s (%d)", search_order[o] ? search_order[o] : "other", count[o]);
    }
    if (d->validation) {
        ly += 30;
        textf(cr, lx, ly, 11, false, 0, "ringed, black line: the Pareto");
        textf(cr, lx, ly + 15, 11, false, 0, "front of the %d validated", d->validation->n_cfg);
        textf(cr, lx, ly + 30, 11, false, 0, "paths (rys validate)");
    }
    free(front);
    text(cr, s.x0 + s.w / 2, s.y0 + s.h + 38, 13, false, 0.5, "extra layers (compute and KV cache over the baseline)");
    vertical_text(cr, 30, s.y0 + s.h / 2, 13, "combined delta");
    text(cr, 20, 26, 16, true, 0, "Searches: combined delta against extra layers, by the search that proposed each path");
    textf(cr, 20, 46, 12, false, 0, "%d measured paths; open circle: the baseline", d->n_cfg);
}

int report_plot_search(const report_data *d, const char *dir, const char *name) {
    report_scatter s = report_search_layout(d);
    return render(dir, name, s.width, s.height, draw_search, d);
}

report_scatter report_surrogate_layout(const report_surrogate *sur, int t) {
    report_scatter s = {70 + 400.0 * t, 110, 300, 300, 0, 0, 0, 0, 0, 1230, 480};
    const report_sur_target *g = &sur->t[t];
    double lo = INFINITY, hi = -INFINITY;
    for (int k = 0; k < g->n_holdout; k++) {
        lo = fmin(lo, fmin(g->measured[k], g->predicted[k]));
        hi = fmax(hi, fmax(g->measured[k], g->predicted[k]));
    }
    if (!(hi - lo > 1e-12)) { lo = (isfinite(lo) ? lo : 0) - 1; hi = lo + 2; }
    double pad = (hi - lo) * 0.06;
    s.xlo = s.ylo = lo - pad;
    s.xhi = s.yhi = hi + pad;
    return s;
}

/* A square scatter frame of equal axes: the grid every step with its labels,
 * the diagonal (x = y: a perfect prediction, the same rank) and the frame. */
static void square_axes(cairo_t *cr, const report_scatter *s, double step) {
    double px, py, qx, qy;
    cairo_set_line_width(cr, 1);
    for (double v = ceil(s->xlo / step) * step; v <= s->xhi; v += step) {
        report_scatter_xy(s, v, v, &px, &py);
        cairo_set_source_rgb(cr, 0.9, 0.9, 0.9);
        cairo_move_to(cr, px, s->y0);
        cairo_line_to(cr, px, s->y0 + s->h);
        cairo_move_to(cr, s->x0, py);
        cairo_line_to(cr, s->x0 + s->w, py);
        cairo_stroke(cr);
        textf(cr, px, s->y0 + s->h + 15, 10, false, 0.5, "%.3g", fabs(v) < step / 2 ? 0 : v);
        textf(cr, s->x0 - 5, py + 4, 10, false, 1, "%.3g", fabs(v) < step / 2 ? 0 : v);
    }
    report_scatter_xy(s, s->xlo, s->ylo, &px, &py);
    report_scatter_xy(s, s->xhi, s->yhi, &qx, &qy);
    cairo_set_source_rgb(cr, 0.6, 0.6, 0.6);
    cairo_move_to(cr, px, py);
    cairo_line_to(cr, qx, qy);
    cairo_stroke(cr);
    frame(cr, s->x0, s->y0, s->w, s->h);
}

static void draw_surrogate(cairo_t *cr, const void *vctx) {
    const report_surrogate *sur = vctx;
    double px, py;
    for (int t = 0; t < sur->n; t++) {
        const report_sur_target *g = &sur->t[t];
        report_scatter s = report_surrogate_layout(sur, t);
        square_axes(cr, &s, nice_step(s.xhi - s.xlo, 5));
        cairo_set_source_rgb(cr, 0.12, 0.30, 0.62);
        for (int k = 0; k < g->n_holdout; k++) {
            report_scatter_xy(&s, g->measured[k], g->predicted[k], &px, &py);
            cairo_arc(cr, px, py, 4, 0, 2 * M_PI);
            cairo_fill(cr);
        }
        text(cr, s.x0, s.y0 - 24, 13, true, 0, g->target);
        if (isnan(g->spearman))
            textf(cr, s.x0, s.y0 - 8, 11, false, 0, "Spearman undefined (constant), MAE %.3g, n = %d", g->mae, g->n_holdout);
        else textf(cr, s.x0, s.y0 - 8, 11, false, 0, "Spearman %.3f, MAE %.3g, n = %d", g->spearman, g->mae, g->n_holdout);
        text(cr, s.x0 + s.w / 2, s.y0 + s.h + 34, 12, false, 0.5, "measured");
        vertical_text(cr, s.x0 - 44, s.y0 + s.h / 2, 12, "predicted");
    }
    text(cr, 20, 26, 16, true, 0, "Surrogate: predicted against measured on its holdout");
    textf(cr, 20, 46, 12, false, 0, "trained on %d rows; the Spearman gate %s; grey: a perfect prediction", sur->n ? sur->t[0].n_train : 0,
          sur->n && sur->t[0].gate_passed ? "passed" : "FAILED (rank refuses it without --force)");
}

int report_plot_surrogate(const report_data *d, const char *dir, const char *name) {
    if (!d->surrogate || !d->surrogate->n) { rys_seterr("%s: no surrogate fit in the store", name); return -1; }
    report_scatter s = report_surrogate_layout(d->surrogate, 0);
    return render(dir, name, s.width, s.height, draw_surrogate, d->surrogate);
}

report_scatter report_prescreen_layout(const report_prescreen *p) {
    report_scatter s = {80, 100, 420, 420, 0, 0, 0, 0, 0, 560, 580};
    s.xlo = s.ylo = 0.5;
    s.xhi = s.yhi = p->n + 0.5;
    return s;
}

static void draw_prescreen(cairo_t *cr, const void *vctx) {
    const report_data *d = vctx;
    const report_prescreen *p = d->prescreen;
    report_scatter s = report_prescreen_layout(p);
    double px, py, st = nice_step(p->n, 6);
    square_axes(cr, &s, st < 1 ? 1 : st);
    for (int k = 0; k < p->n; k++) {
        const report_config *c = &d->cfg[p->cfg[k]];
        bool top = c->i == p->top_i && c->j == p->top_j, best = p->cfg[k] == p->best_cfg;
        report_scatter_xy(&s, p->measured_rank[k], p->pre_rank[k], &px, &py);
        if (top || best) cairo_set_source_rgb(cr, 0.85, 0.15, 0.10);
        else cairo_set_source_rgb(cr, 0.12, 0.30, 0.62);
        cairo_arc(cr, px, py, top || best ? 5 : 3.5, 0, 2 * M_PI);
        cairo_fill(cr);
        if (top || best) textf(cr, px + 7, py - 5, 10, false, 0, "(%d,%d)%s", c->i, c->j, top && best ? " top & best" : top ? " top" : " best");
    }
    text(cr, 20, 26, 16, true, 0, "Pre-screen rank against measured rank");
    if (isnan(p->spearman))
        textf(cr, 20, 46, 12, false, 0, "CircuitProbe %s, %d prompts; %d measured blocks; Spearman undefined", p->method, p->n_prompts, p->n);
    else
        textf(cr, 20, 46, 12, false, 0, "CircuitProbe %s, %d prompts; %d measured blocks; Spearman %.3f", p->method, p->n_prompts, p->n,
              p->spearman);
    if (p->top_measured_rank > 0)
        textf(cr, 20, 64, 12, false, 0, "top prediction (%d,%d): measured rank %g of %d", p->top_i, p->top_j, p->top_measured_rank, p->n);
    else textf(cr, 20, 64, 12, false, 0, "top prediction (%d,%d): not measured", p->top_i, p->top_j);
    text(cr, s.x0 + s.w / 2, s.y0 + s.h + 34, 12, false, 0.5, "measured rank (balanced score; 1 = best)");
    vertical_text(cr, s.x0 - 44, s.y0 + s.h / 2, 12, "pre-screen rank");
}

int report_plot_prescreen(const report_data *d, const char *dir, const char *name) {
    if (!d->prescreen || !d->prescreen->n) { rys_seterr("%s: no measured block the pre-screen ranked", name); return -1; }
    report_scatter s = report_prescreen_layout(d->prescreen);
    return render(dir, name, s.width, s.height, draw_prescreen, d);
}
