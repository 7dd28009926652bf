/* report: see report.h. Figures are drawn once into a cairo context and
 * rendered to both PNG and SVG, so the two never disagree. */
#include "report.h"
#include "util.h"

#include <cairo-svg.h>
#include <cairo.h>
#include <errno.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ---- data --------------------------------------------------------------------- */

void report_free(report_data *d) {
    if (!d) return;
    free(d->cfg);
    free(d);
}

static const char *txt(sqlite3_stmt *q, int c) {
    const unsigned char *t = sqlite3_column_text(q, c);
    return t ? (const char *)t : "";
}

report_data *report_load(const char *db_path) {
    sqlite3 *db;
    if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        rys_seterr("%s: cannot open: %s", db_path, sqlite3_errmsg(db));
        sqlite3_close(db);
        return NULL;
    }
    report_data *d = xcalloc(1, sizeof *d);
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(db, "SELECT n_layers, model_path FROM scan_run WHERE id = 1", -1, &q, NULL) != SQLITE_OK ||
        sqlite3_step(q) != SQLITE_ROW) {
        rys_seterr("%s: not a rys scan database (no scan_run row)", db_path);
        goto fail;
    }
    d->n_layers = sqlite3_column_int(q, 0);
    snprintf(d->model, sizeof d->model, "%s", txt(q, 1));
    sqlite3_finalize(q);
    if (sqlite3_prepare_v2(db, "SELECT name, kind FROM probe_set ORDER BY position", -1, &q, NULL) != SQLITE_OK) goto sqlfail;
    while (sqlite3_step(q) == SQLITE_ROW && d->n_probes < REPORT_MAX_PROBES) {
        snprintf(d->probe[d->n_probes], sizeof d->probe[0], "%s", txt(q, 0));
        snprintf(d->kind[d->n_probes], sizeof d->kind[0], "%s", txt(q, 1));
        d->n_probes++;
    }
    sqlite3_finalize(q);
    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM config WHERE status != 'done'", -1, &q, NULL) != SQLITE_OK) goto sqlfail;
    sqlite3_step(q);
    d->n_pending = sqlite3_column_int(q, 0);
    sqlite3_finalize(q);
    if (sqlite3_prepare_v2(db, "SELECT c.id, c.spec, coalesce(c.i, -1), coalesce(c.j, -1), c.extra_layers FROM config c "
                               "WHERE c.status = 'done' ORDER BY c.sweep_order", -1, &q, NULL) != SQLITE_OK) goto sqlfail;
    int cap = 64;
    d->cfg = xcalloc((size_t)cap, sizeof *d->cfg);
    sqlite3_stmt *sq;
    if (sqlite3_prepare_v2(db, "SELECT score FROM score WHERE config_id = ? AND probe = ?", -1, &sq, NULL) != SQLITE_OK) goto sqlfail;
    double *scores = xcalloc(REPORT_MAX_PROBES, sizeof *scores);
    report_config base = {0};
    while (sqlite3_step(q) == SQLITE_ROW) {
        report_config c = {0};
        snprintf(c.spec, sizeof c.spec, "%s", txt(q, 1));
        c.i = sqlite3_column_int(q, 2);
        c.j = sqlite3_column_int(q, 3);
        c.extra = sqlite3_column_int(q, 4);
        for (int p = 0; p < d->n_probes; p++) {
            sqlite3_reset(sq);
            sqlite3_bind_int64(sq, 1, sqlite3_column_int64(q, 0));
            sqlite3_bind_text(sq, 2, d->probe[p], -1, SQLITE_STATIC);
            c.delta[p] = sqlite3_step(sq) == SQLITE_ROW ? sqlite3_column_double(sq, 0) : NAN;
        }
        if (!strcmp(c.spec, "baseline")) { base = c; d->has_baseline = true; continue; }
        if (d->n_cfg == cap) { cap *= 2; d->cfg = xrealloc(d->cfg, (size_t)cap * sizeof *d->cfg); }
        d->cfg[d->n_cfg++] = c;
    }
    free(scores);
    sqlite3_finalize(sq);
    sqlite3_finalize(q);
    sqlite3_close(db);
    /* scores -> deltas against the baseline */
    for (int p = 0; p < d->n_probes; p++) d->baseline[p] = d->has_baseline ? base.delta[p] : 0;
    for (int k = 0; k < d->n_cfg; k++) {
        d->cfg[k].combined = 0;
        for (int p = 0; p < d->n_probes; p++) {
            d->cfg[k].delta[p] -= d->baseline[p];
            d->cfg[k].combined += d->cfg[k].delta[p];
        }
    }
    return d;
sqlfail:
    rys_seterr("%s: %s", db_path, sqlite3_errmsg(db));
fail:
    sqlite3_finalize(q);
    sqlite3_close(db);
    report_free(d);
    return NULL;
}

static int probe_of_kind(const report_data *d, const char *kind) {
    for (int p = 0; p < d->n_probes; p++) if (!strcmp(d->kind[p], kind)) return p;
    return -1;
}

static const report_data *sort_d;
static int sort_probe;

static int cmp_balanced(const void *a, const void *b) {
    const report_config *x = &sort_d->cfg[*(const int *)a], *y = &sort_d->cfg[*(const int *)b];
    if (x->balanced != y->balanced) return x->balanced < y->balanced ? 1 : -1;
    int eq = probe_of_kind(sort_d, "eq"), math = probe_of_kind(sort_d, "math");
    if (eq >= 0 && x->delta[eq] != y->delta[eq]) return x->delta[eq] < y->delta[eq] ? 1 : -1;
    if (math >= 0 && x->delta[math] != y->delta[math]) return x->delta[math] < y->delta[math] ? 1 : -1;
    return *(const int *)a - *(const int *)b;
}

void report_rank_balanced(report_data *d, int *idx) {
    double z_mean[REPORT_MAX_PROBES], z_std[REPORT_MAX_PROBES];
    for (int p = 0; p < d->n_probes; p++) {
        double s = 0, ss = 0;
        for (int k = 0; k < d->n_cfg; k++) s += d->cfg[k].delta[p];
        z_mean[p] = d->n_cfg ? s / d->n_cfg : 0;
        for (int k = 0; k < d->n_cfg; k++) ss += (d->cfg[k].delta[p] - z_mean[p]) * (d->cfg[k].delta[p] - z_mean[p]);
        z_std[p] = d->n_cfg ? sqrt(ss / d->n_cfg) : 0;   /* population std, as the reference */
        if (z_std[p] < 1e-12) z_std[p] = 1;
    }
    for (int k = 0; k < d->n_cfg; k++) {
        d->cfg[k].balanced = 0;
        for (int p = 0; p < d->n_probes; p++) d->cfg[k].balanced += (d->cfg[k].delta[p] - z_mean[p]) / z_std[p];
        idx[k] = k;
    }
    sort_d = d;
    qsort(idx, (size_t)d->n_cfg, sizeof *idx, cmp_balanced);
}

static int cmp_probe(const void *a, const void *b) {
    double x = sort_probe < 0 ? sort_d->cfg[*(const int *)a].combined : sort_d->cfg[*(const int *)a].delta[sort_probe];
    double y = sort_probe < 0 ? sort_d->cfg[*(const int *)b].combined : sort_d->cfg[*(const int *)b].delta[sort_probe];
    if (x != y) return x < y ? 1 : -1;
    return *(const int *)a - *(const int *)b;
}

void report_rank_probe(const report_data *d, int probe, int *idx) {
    for (int k = 0; k < d->n_cfg; k++) idx[k] = k;
    sort_d = d;
    sort_probe = probe;
    qsort(idx, (size_t)d->n_cfg, sizeof *idx, cmp_probe);
}

static int cmp_extra(const void *a, const void *b) {
    const report_config *x = &sort_d->cfg[*(const int *)a], *y = &sort_d->cfg[*(const int *)b];
    if (x->extra != y->extra) return x->extra - y->extra;
    return x->combined < y->combined ? 1 : x->combined > y->combined ? -1 : 0;
}

int report_pareto(const report_data *d, int *front) {
    int n = 0;
    for (int k = 0; k < d->n_cfg; k++) {
        const report_config *c = &d->cfg[k];
        bool dominated = false;
        for (int o = 0; o < d->n_cfg && !dominated; o++) {
            const report_config *x = &d->cfg[o];
            if (o != k && x->combined >= c->combined && x->extra <= c->extra &&
                (x->combined > c->combined || x->extra < c->extra))
                dominated = true;
        }
        if (!dominated) front[n++] = k;
    }
    sort_d = d;
    qsort(front, (size_t)n, sizeof *front, cmp_extra);
    return n;
}

/* ---- colours and layout ----------------------------------------------------------- */

void report_colour(double delta, double clip, double rgb[3]) {
    static const double red[3] = {0.70, 0.05, 0.10}, blue[3] = {0.05, 0.25, 0.65}, white[3] = {0.98, 0.98, 0.98};
    double t = clip > 0 ? delta / clip : 0;
    if (t > 1) t = 1;
    if (t < -1) t = -1;
    const double *end = t >= 0 ? red : blue;
    double a = fabs(t);
    for (int c = 0; c < 3; c++) rgb[c] = white[c] + (end[c] - white[c]) * a;
}

static const double mask_rgb[3] = {0.80, 0.80, 0.80};

heat_layout report_heat_layout(int n_layers) {
    heat_layout L;
    L.n = n_layers;
    L.cell = n_layers > 0 ? 640.0 / n_layers : 20;
    if (L.cell > 28) L.cell = 28;
    if (L.cell < 6) L.cell = 6;
    L.cell = floor(L.cell);
    L.x0 = 80;
    L.y0 = 70;
    return L;
}

void report_cell_centre(const heat_layout *L, int i, int j, double *x, double *y) {
    *x = L->x0 + (j - 1 + 0.5) * L->cell;   /* columns: j = 1..N */
    *y = L->y0 + (i + 0.5) * L->cell;       /* rows: i = 0..N-1 */
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double report_clip(const report_data *d, int probe) {
    if (d->n_cfg == 0) return 1e-6;
    double *v = xmalloc((size_t)d->n_cfg * sizeof *v);
    for (int k = 0; k < d->n_cfg; k++) v[k] = fabs(probe < 0 ? d->cfg[k].combined : d->cfg[k].delta[probe]);
    qsort(v, (size_t)d->n_cfg, sizeof *v, cmp_double);
    double c = v[(int)floor(0.98 * (d->n_cfg - 1))];
    free(v);
    return c > 1e-6 ? c : 1e-6;
}

/* ---- drawing ------------------------------------------------------------------------ */

static void text(cairo_t *cr, double x, double y, double size, const char *s, double align, bool bold) {
    cairo_select_font_face(cr, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL, bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
    cairo_set_font_size(cr, size);
    cairo_text_extents_t e;
    cairo_text_extents(cr, s, &e);
    cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
    cairo_move_to(cr, x - align * e.x_advance, y);
    cairo_show_text(cr, s);
}

typedef void (*draw_fn)(cairo_t *cr, const void *ctx);

/* Renders one figure to DIR/NAME.png and DIR/NAME.svg. */
static int render(const char *dir, const char *name, int w, int h, draw_fn draw, const void *ctx) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.png", dir, name);
    cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, w, h);
    cairo_t *cr = cairo_create(s);
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    draw(cr, ctx);
    cairo_destroy(cr);
    cairo_status_t st = cairo_surface_write_to_png(s, path);
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

typedef struct {
    const report_data *d;
    int probe;              /* -1 = combined */
    double clip;
    char title[256];
} heat_ctx;

static double value_of(const report_config *c, int probe) { return probe < 0 ? c->combined : c->delta[probe]; }

static int tick_step(int n) { return n <= 12 ? 1 : n <= 30 ? 2 : n <= 60 ? 5 : 10; }

static void colour_bar(cairo_t *cr, double x, double y, double h, double clip) {
    for (int k = 0; k < 100; k++) {
        double rgb[3];
        report_colour(clip * (1 - 2.0 * k / 99), clip, rgb);
        cairo_set_source_rgb(cr, rgb[0], rgb[1], rgb[2]);
        cairo_rectangle(cr, x, y + h * k / 100, 16, h / 100 + 0.5);
        cairo_fill(cr);
    }
    cairo_set_source_rgb(cr, 0.3, 0.3, 0.3);
    cairo_set_line_width(cr, 1);
    cairo_rectangle(cr, x, y, 16, h);
    cairo_stroke(cr);
    char b[64];
    snprintf(b, sizeof b, "%+.3g", clip);
    text(cr, x + 20, y + 10, 11, b, 0, false);
    text(cr, x + 20, y + h / 2 + 4, 11, "0", 0, false);
    snprintf(b, sizeof b, "%+.3g", -clip);
    text(cr, x + 20, y + h, 11, b, 0, false);
    text(cr, x, y - 8, 11, "better", 0, false);
    text(cr, x, y + h + 16, 11, "worse", 0, false);
}

static void draw_heat(cairo_t *cr, const void *vctx) {
    const heat_ctx *h = vctx;
    const report_data *d = h->d;
    heat_layout L = report_heat_layout(d->n_layers);
    int N = d->n_layers;
    /* mask everything, then paint measured cells */
    for (int i = 0; i < N; i++)
        for (int j = 1; j <= N; j++) {
            cairo_set_source_rgb(cr, mask_rgb[0], mask_rgb[1], mask_rgb[2]);
            cairo_rectangle(cr, L.x0 + (j - 1) * L.cell, L.y0 + i * L.cell, L.cell, L.cell);
            cairo_fill(cr);
        }
    int best = -1;
    for (int k = 0; k < d->n_cfg; k++) {
        const report_config *c = &d->cfg[k];
        if (c->i < 0 || c->j < 1 || c->j > N || c->i >= c->j) continue;
        double rgb[3];
        report_colour(value_of(c, h->probe), h->clip, rgb);
        cairo_set_source_rgb(cr, rgb[0], rgb[1], rgb[2]);
        cairo_rectangle(cr, L.x0 + (c->j - 1) * L.cell, L.y0 + c->i * L.cell, L.cell, L.cell);
        cairo_fill(cr);
        if (best < 0 || value_of(c, h->probe) > value_of(&d->cfg[best], h->probe)) best = k;
    }
    cairo_set_source_rgb(cr, 0.4, 0.4, 0.4);
    cairo_set_line_width(cr, 1);
    cairo_rectangle(cr, L.x0, L.y0, N * L.cell, N * L.cell);
    cairo_stroke(cr);
    if (best >= 0) {
        double x, y;
        report_cell_centre(&L, d->cfg[best].i, d->cfg[best].j, &x, &y);
        cairo_set_source_rgb(cr, 0, 0, 0);
        cairo_set_line_width(cr, 2);
        cairo_arc(cr, x, y, L.cell * 0.75, 0, 2 * M_PI);
        cairo_stroke(cr);
    }
    int step = tick_step(N);
    char b[320];
    for (int i = 0; i < N; i += step) {
        snprintf(b, sizeof b, "%d", i);
        text(cr, L.x0 - 6, L.y0 + (i + 0.5) * L.cell + 4, 11, b, 1, false);
    }
    for (int j = 1; j <= N; j++) {
        if (j % step && j != N) continue;
        snprintf(b, sizeof b, "%d", j);
        text(cr, L.x0 + (j - 0.5) * L.cell, L.y0 + N * L.cell + 16, 11, b, 0.5, false);
    }
    text(cr, L.x0 + N * L.cell / 2, L.y0 + N * L.cell + 36, 13, "end layer j (block is layers i..j-1)", 0.5, false);
    cairo_save(cr);
    cairo_translate(cr, 24, L.y0 + N * L.cell / 2);
    cairo_rotate(cr, -M_PI / 2);
    text(cr, 0, 0, 13, "start layer i", 0.5, false);
    cairo_restore(cr);
    text(cr, L.x0, 26, 15, h->title, 0, true);
    if (best >= 0) {
        snprintf(b, sizeof b, "circled: best %s, delta %+.4f; colours clipped at +/-%.3g; grey = not measured",
                 d->cfg[best].spec, value_of(&d->cfg[best], h->probe), h->clip);
        text(cr, L.x0, 48, 11, b, 0, false);
    }
    colour_bar(cr, L.x0 + N * L.cell + 30, L.y0, N * L.cell > 200 ? N * L.cell : 200, h->clip);
}

typedef struct { const report_data *d; int probe; char title[256]; } sky_ctx;

static void draw_bars(cairo_t *cr, double x0, double y0, double w, double hgt, const double *v, const int *cnt, int n,
                      int first, const char *xlabel) {
    double mx = 1e-9;
    for (int k = 0; k < n; k++) if (cnt[k] && fabs(v[k]) > mx) mx = fabs(v[k]);
    double bw = w / n, mid = y0 + hgt / 2;
    for (int k = 0; k < n; k++) {
        if (!cnt[k]) continue;
        double rgb[3];
        report_colour(v[k], mx, rgb);
        cairo_set_source_rgb(cr, rgb[0] * 0.9, rgb[1] * 0.9, rgb[2] * 0.9);
        double bh = v[k] / mx * (hgt / 2 - 4);
        cairo_rectangle(cr, x0 + k * bw + 1, bh > 0 ? mid - bh : mid, bw - 2, fabs(bh));
        cairo_fill(cr);
    }
    cairo_set_source_rgb(cr, 0.3, 0.3, 0.3);
    cairo_set_line_width(cr, 1);
    cairo_move_to(cr, x0, mid);
    cairo_line_to(cr, x0 + w, mid);
    cairo_stroke(cr);
    char b[64];
    int step = tick_step(n);
    for (int k = 0; k < n; k += step) {
        snprintf(b, sizeof b, "%d", k + first);
        text(cr, x0 + (k + 0.5) * bw, y0 + hgt + 14, 10, b, 0.5, false);
    }
    snprintf(b, sizeof b, "%+.3g", mx);
    text(cr, x0 - 4, y0 + 8, 10, b, 1, false);
    snprintf(b, sizeof b, "%+.3g", -mx);
    text(cr, x0 - 4, y0 + hgt, 10, b, 1, false);
    text(cr, x0 + w / 2, y0 + hgt + 30, 12, xlabel, 0.5, false);
}

static void draw_skyline(cairo_t *cr, const void *vctx) {
    const sky_ctx *s = vctx;
    const report_data *d = s->d;
    int N = d->n_layers;
    double *vi = xcalloc((size_t)N + 1, sizeof *vi), *vj = xcalloc((size_t)N + 1, sizeof *vj);
    int *ci = xcalloc((size_t)N + 1, sizeof *ci), *cj = xcalloc((size_t)N + 1, sizeof *cj);
    for (int k = 0; k < d->n_cfg; k++) {
        const report_config *c = &d->cfg[k];
        if (c->i < 0 || c->j < 1 || c->j > N) continue;
        vi[c->i] += value_of(c, s->probe); ci[c->i]++;
        vj[c->j] += value_of(c, s->probe); cj[c->j]++;
    }
    for (int k = 0; k <= N; k++) { if (ci[k]) vi[k] /= ci[k]; if (cj[k]) vj[k] /= cj[k]; }
    text(cr, 70, 26, 15, s->title, 0, true);
    draw_bars(cr, 70, 50, 700, 150, vi, ci, N, 0, "start layer i: mean delta over all blocks starting here");
    draw_bars(cr, 70, 260, 700, 150, vj + 1, cj + 1, N, 1, "end layer j: mean delta over all blocks ending here");
    free(vi); free(vj); free(ci); free(cj);
}

typedef struct { const report_data *d; const int *front; int n_front; } pareto_ctx;

static void draw_pareto(cairo_t *cr, const void *vctx) {
    const pareto_ctx *p = vctx;
    const report_data *d = p->d;
    double x0 = 80, y0 = 50, w = 640, h = 380;
    int mx_extra = 1;
    double lo = 0, hi = 0;
    for (int k = 0; k < d->n_cfg; k++) {
        if (d->cfg[k].extra > mx_extra) mx_extra = d->cfg[k].extra;
        if (d->cfg[k].combined < lo) lo = d->cfg[k].combined;
        if (d->cfg[k].combined > hi) hi = d->cfg[k].combined;
    }
    if (hi - lo < 1e-9) { hi += 0.5; lo -= 0.5; }
    double pad = (hi - lo) * 0.05;
    hi += pad; lo -= pad;
#define PX(e) (x0 + (double)(e) / mx_extra * w)
#define PY(v) (y0 + (hi - (v)) / (hi - lo) * h)
    cairo_set_source_rgb(cr, 0.4, 0.4, 0.4);
    cairo_set_line_width(cr, 1);
    cairo_rectangle(cr, x0, y0, w, h);
    cairo_stroke(cr);
    cairo_move_to(cr, x0, PY(0));
    cairo_line_to(cr, x0 + w, PY(0));
    cairo_stroke(cr);
    for (int k = 0; k < d->n_cfg; k++) {
        cairo_set_source_rgba(cr, 0.3, 0.3, 0.3, 0.6);
        cairo_arc(cr, PX(d->cfg[k].extra), PY(d->cfg[k].combined), 2.5, 0, 2 * M_PI);
        cairo_fill(cr);
    }
    cairo_set_source_rgb(cr, 0.75, 0.05, 0.1);
    cairo_set_line_width(cr, 2);
    for (int k = 0; k < p->n_front; k++) {
        const report_config *c = &d->cfg[p->front[k]];
        if (k == 0) cairo_move_to(cr, PX(c->extra), PY(c->combined));
        else cairo_line_to(cr, PX(c->extra), PY(c->combined));
    }
    cairo_stroke(cr);
    char b[96];
    for (int k = 0; k < p->n_front; k++) {
        const report_config *c = &d->cfg[p->front[k]];
        cairo_set_source_rgb(cr, 0.75, 0.05, 0.1);
        cairo_arc(cr, PX(c->extra), PY(c->combined), 4.5, 0, 2 * M_PI);
        cairo_fill(cr);
        text(cr, PX(c->extra) + 6, PY(c->combined) - 6, 10, c->spec, 0, false);
    }
    snprintf(b, sizeof b, "%+.3g", hi);
    text(cr, x0 - 6, y0 + 10, 11, b, 1, false);
    snprintf(b, sizeof b, "%+.3g", lo);
    text(cr, x0 - 6, y0 + h, 11, b, 1, false);
    text(cr, x0 - 6, PY(0) + 4, 11, "0", 1, false);
    for (int e = 0; e <= mx_extra; e += tick_step(mx_extra)) {
        snprintf(b, sizeof b, "%d", e);
        text(cr, PX(e), y0 + h + 16, 11, b, 0.5, false);
    }
    text(cr, x0 + w / 2, y0 + h + 36, 13, "extra layers (compute and KV cost)", 0.5, false);
    text(cr, x0, 24, 15, "Pareto front: combined delta vs extra layers", 0, true);
    text(cr, x0, 42, 11, "red: no other configuration is both better and smaller", 0, false);
#undef PX
#undef PY
}

typedef struct { const report_data *d; int probe; double clip; int max_r; char title[256]; } repeat_ctx;

static void draw_repeat(cairo_t *cr, const void *vctx) {
    const repeat_ctx *r = vctx;
    const report_data *d = r->d;
    int N = d->n_layers;
    double cell = 640.0 / N > 24 ? 24 : floor(640.0 / N), x0 = 90, y0 = 70;
    for (int k = 0; k < d->n_cfg; k++) {
        int l, n;
        if (sscanf(d->cfg[k].spec, "repeat:%d,%d", &l, &n) != 2 || l < 0 || l >= N || n < 2 || n > r->max_r) continue;
        double rgb[3];
        report_colour(value_of(&d->cfg[k], r->probe), r->clip, rgb);
        cairo_set_source_rgb(cr, rgb[0], rgb[1], rgb[2]);
        cairo_rectangle(cr, x0 + l * cell, y0 + (n - 2) * cell, cell, cell);
        cairo_fill(cr);
    }
    char b[64];
    for (int l = 0; l < N; l += tick_step(N)) {
        snprintf(b, sizeof b, "%d", l);
        text(cr, x0 + (l + 0.5) * cell, y0 + (r->max_r - 1) * cell + 16, 11, b, 0.5, false);
    }
    for (int n = 2; n <= r->max_r; n++) {
        snprintf(b, sizeof b, "x%d", n);
        text(cr, x0 - 6, y0 + (n - 1.5) * cell + 4, 11, b, 1, false);
    }
    text(cr, x0 + N * cell / 2, y0 + (r->max_r - 1) * cell + 36, 13, "layer L (traversed r times in a row)", 0.5, false);
    text(cr, x0, 30, 15, r->title, 0, true);
    colour_bar(cr, x0 + N * cell + 30, y0, 200, r->clip);
}

/* ---- files ------------------------------------------------------------------------------ */

static void html_escape(FILE *f, const char *s) {
    for (; *s; s++) {
        if (*s == '<') fputs("&lt;", f);
        else if (*s == '>') fputs("&gt;", f);
        else if (*s == '&') fputs("&amp;", f);
        else fputc(*s, f);
    }
}

static void html_table(FILE *f, const report_data *d, const int *idx, int n, bool balanced) {
    fputs("<table><tr><th>#</th><th>configuration</th><th>extra layers</th><th>size</th>", f);
    for (int p = 0; p < d->n_probes; p++) fprintf(f, "<th>&Delta; %s</th>", d->probe[p]);
    fputs("<th>&Delta; combined</th>", f);
    if (balanced) fputs("<th>balanced z</th>", f);
    fputs("</tr>\n", f);
    for (int r = 0; r < n; r++) {
        const report_config *c = &d->cfg[idx[r]];
        fprintf(f, "<tr><td>%d</td><td>%s</td><td>%d</td><td>+%.2f%%</td>", r + 1, c->spec, c->extra,
                100.0 * c->extra / d->n_layers);
        for (int p = 0; p < d->n_probes; p++) fprintf(f, "<td class=%s>%+.4f</td>", c->delta[p] >= 0 ? "pos" : "neg", c->delta[p]);
        fprintf(f, "<td class=%s>%+.4f</td>", c->combined >= 0 ? "pos" : "neg", c->combined);
        if (balanced) fprintf(f, "<td>%+.3f</td>", c->balanced);
        fputs("</tr>\n", f);
    }
    fputs("</table>\n", f);
}

int report_write(const report_data *dconst, const char *dir, double clip_override, int top_k) {
    report_data *d = (report_data *)dconst;   /* ranking fills cfg[].balanced */
    if (mkdir(dir, 0755) && errno != EEXIST) { rys_seterr("%s: cannot create: %s", dir, strerror(errno)); return -1; }
    int n_figs = d->n_probes + 1;
    bool any_repeat = false;
    int max_r = 2;
    for (int k = 0; k < d->n_cfg; k++) {
        int l, n;
        if (sscanf(d->cfg[k].spec, "repeat:%d,%d", &l, &n) == 2) { any_repeat = true; if (n > max_r) max_r = n; }
    }
    heat_layout L = report_heat_layout(d->n_layers);
    int hw = (int)(L.x0 + d->n_layers * L.cell + 130), hh = (int)(L.y0 + d->n_layers * L.cell + 60);
    if (hh < 340) hh = 340;
    for (int f = 0; f < n_figs; f++) {
        int probe = f < d->n_probes ? f : -1;
        if (probe < 0 && d->n_probes < 2) break;
        heat_ctx h = {d, probe, clip_override > 0 ? clip_override : report_clip(d, probe), ""};
        sky_ctx s = {d, probe, ""};
        char name[96];
        if (probe >= 0) {
            snprintf(h.title, sizeof h.title, "%s: score delta vs baseline %.4f", d->probe[probe], d->baseline[probe]);
            snprintf(s.title, sizeof s.title, "%s skylines", d->probe[probe]);
        } else {
            snprintf(h.title, sizeof h.title, "combined: sum of the %d probe deltas", d->n_probes);
            snprintf(s.title, sizeof s.title, "combined skylines");
        }
        snprintf(name, sizeof name, "heatmap_%s", probe >= 0 ? d->probe[probe] : "combined");
        if (render(dir, name, hw, hh, draw_heat, &h)) return -1;
        snprintf(name, sizeof name, "skyline_%s", probe >= 0 ? d->probe[probe] : "combined");
        if (render(dir, name, 820, 460, draw_skyline, &s)) return -1;
        if (any_repeat) {
            repeat_ctx r = {d, probe, h.clip, max_r, ""};
            snprintf(r.title, sizeof r.title, "single-layer repeats, %s delta", probe >= 0 ? d->probe[probe] : "combined");
            snprintf(name, sizeof name, "repeat_%s", probe >= 0 ? d->probe[probe] : "combined");
            if (render(dir, name, (int)(90 + d->n_layers * 24 + 130), 340 + max_r * 24, draw_repeat, &r)) return -1;
        }
    }
    int *idx = xmalloc((size_t)(d->n_cfg + 1) * sizeof *idx), *front = xmalloc((size_t)(d->n_cfg + 1) * sizeof *front);
    int n_front = report_pareto(d, front);
    pareto_ctx pc = {d, front, n_front};
    if (render(dir, "pareto", 760, 480, draw_pareto, &pc)) { free(idx); free(front); return -1; }

    char path[4096];
    snprintf(path, sizeof path, "%s/index.html", dir);
    FILE *f = fopen(path, "w");
    if (!f) { free(idx); free(front); rys_seterr("%s: %s", path, strerror(errno)); return -1; }
    int full = d->n_layers * (d->n_layers + 1) / 2;
    fputs("<!doctype html><html><head><meta charset=utf-8><title>rys scan report</title><style>"
          "body{font-family:'DejaVu Sans',sans-serif;margin:24px;color:#222;max-width:1100px}"
          "table{border-collapse:collapse;margin:8px 0 20px}td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px;text-align:right}"
          "td:nth-child(2),th:nth-child(2){text-align:left}.pos{color:#a00}.neg{color:#035}img{max-width:100%;border:1px solid #eee}"
          "p.cap{color:#555;font-size:14px;max-width:900px}</style></head><body>\n", f);
    fputs("<h1>rys brain scan</h1>\n<p>model <code>", f);
    html_escape(f, d->model);
    fprintf(f, "</code>, %d layers. %d configurations measured", d->n_layers, d->n_cfg);
    if (d->n_pending) fprintf(f, ", <b>%d still pending</b> in the store", d->n_pending);
    if (d->n_cfg < full) fprintf(f, " (%d of the %d single blocks are missing from this report)", full - d->n_cfg, full);
    fputs(".</p>\n<table><tr><th>probe set</th><th>kind</th><th>baseline score</th></tr>\n", f);
    for (int p = 0; p < d->n_probes; p++)
        fprintf(f, "<tr><td>%s</td><td>%s</td><td>%.4f</td></tr>\n", d->probe[p], d->kind[p], d->baseline[p]);
    fputs("</table>\n<h2>Heatmaps</h2><p class=cap>Each cell is one configuration (i, j): layers 0..j-1 then i..N-1, so "
          "layers i..j-1 run twice. Colour is the score delta against the unmodified model: red better, blue worse, "
          "clipped symmetrically (the clip is printed on each map); grey cells were not measured. The circle marks the best "
          "cell. The combined map sums the probe deltas.</p>\n", f);
    for (int p = 0; p <= d->n_probes; p++) {
        if (p == d->n_probes && d->n_probes < 2) break;
        const char *nm = p < d->n_probes ? d->probe[p] : "combined";
        fprintf(f, "<h3>%s</h3><img src=\"heatmap_%s.png\" alt=\"heatmap %s\"><br><img src=\"skyline_%s.png\" alt=\"skyline %s\">\n",
                nm, nm, nm, nm, nm);
        if (any_repeat) fprintf(f, "<br><img src=\"repeat_%s.png\" alt=\"repeats %s\">\n", nm, nm);
    }
    fputs("<p class=cap>Skylines average the map along rows (by start layer) and columns (by end layer): where in the "
          "stack does repeating help.</p>\n", f);
    int k = top_k < d->n_cfg ? top_k : d->n_cfg;
    report_rank_balanced(d, idx);
    fputs("<h2>Rankings</h2><p class=cap>Balanced: z(delta) summed over the probe sets, population standard deviation "
          "over all measured configurations (the reference's ranking); ties go to the EQ delta, then math.</p>\n", f);
    html_table(f, d, idx, k, true);
    for (int p = 0; p < d->n_probes; p++) {
        report_rank_probe(d, p, idx);
        fprintf(f, "<h3>best by %s</h3>\n", d->probe[p]);
        html_table(f, d, idx, k, false);
    }
    fputs("<h2>Pareto front</h2><p class=cap>Configurations for which no other is both better (combined delta) and "
          "smaller (extra layers).</p><img src=\"pareto.png\" alt=\"pareto front\">\n", f);
    html_table(f, d, front, n_front, false);
    fputs("</body></html>\n", f);
    int bad = ferror(f);
    if (fclose(f) || bad) { free(idx); free(front); rys_seterr("%s: write failed", path); return -1; }
    free(idx);
    free(front);
    return 0;
}
