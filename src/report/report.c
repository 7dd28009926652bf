/* report data: see report.h. Reads the store read-only (store_open_readonly),
 * so a report can be made while the scan is still writing. */
#include "report/report.h"
#include "scan/store.h"
#include "base/util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void report_free(report_data *d) {
    if (!d) return;
    for (int k = 0; k < d->n_cfg; k++) {
        free(d->cfg[k].spec);
        free(d->cfg[k].path);
        free(d->cfg[k].search);
    }
    free(d->cfg);
    report_validation_free(d->validation);
    report_surrogate_free(d->surrogate);
    report_prescreen_free(d->prescreen);
    free(d);
}

/* The spec parsers accept only the whole spec, so "blocks:1,2;3,4" (a
 * multi-block path) is neither a single block nor a repeat. */
static void parse_spec(report_config *c) {
    int a, b, used = 0;
    c->repeat_layer = c->repeat_n = -1;
    if (sscanf(c->spec, "repeat:%d,%d%n", &a, &b, &used) == 2 && c->spec[used] == 0) {
        c->repeat_layer = a;
        c->repeat_n = b;
        c->i = c->j = -1;
    } else if (!(sscanf(c->spec, "blocks:%d,%d%n", &a, &b, &used) == 2 && c->spec[used] == 0 && c->i == a && c->j == b)) {
        c->i = c->j = -1;
    }
}

report_data *report_load(const char *db_path) {
    store *st = store_open_readonly(db_path);
    if (!st) return NULL;
    report_data *d = xcalloc(1, sizeof *d);
    d->math = d->eq = -1;
    store_probe_set *sets = NULL;
    store_done *rows = NULL;
    int n_sets = 0, n_rows = 0;
    char *model = NULL;
    if (!store_get_run(st, &model, &d->n_layers)) {
        /* a database of `rys validate` results alone still makes a report */
        int has = report_validation_load(db_path, &d->validation);
        if (has == 1) {
            d->n_layers = d->validation->n_layers;
            snprintf(d->model, sizeof d->model, "%s", d->validation->model);
            store_close(st);
            return d;
        }
        if (has == 0) rys_seterr("%s: not a rys scan database (no scan_run row) and no validation results", db_path);
        goto fail;
    }
    snprintf(d->model, sizeof d->model, "%s", model);
    if (d->n_layers < 1) { rys_seterr("%s: scan of %d layers", db_path, d->n_layers); goto fail; }
    if (store_probe_sets(st, &sets, &n_sets)) goto fail;
    for (int p = 0; p < n_sets; p++) {
        if (d->n_probes == REPORT_MAX_PROBES) { rys_seterr("%s: more than %d probe sets", db_path, REPORT_MAX_PROBES); goto fail; }
        snprintf(d->probe[d->n_probes], sizeof d->probe[0], "%s", sets[p].name);
        snprintf(d->kind[d->n_probes], sizeof d->kind[0], "%s", sets[p].kind);
        if (d->math < 0 && !strcmp(d->kind[d->n_probes], "math")) d->math = d->n_probes;
        if (d->eq < 0 && !strncmp(d->kind[d->n_probes], "eq", 2)) d->eq = d->n_probes;
        d->n_probes++;
    }
    if (d->n_probes == 0) { rys_seterr("%s: the scan has no probe sets", db_path); goto fail; }
    int total, done;
    if (store_counts(st, &total, &done)) goto fail;
    d->n_unfinished = total - done;
    const char *probes[REPORT_MAX_PROBES];
    for (int p = 0; p < d->n_probes; p++) probes[p] = d->probe[p];
    if (store_done_configs(st, probes, d->n_probes, &rows, &n_rows)) goto fail;
    int cap = 64;
    d->cfg = xcalloc((size_t)cap, sizeof *d->cfg);
    double base[REPORT_MAX_PROBES];
    for (int k = 0; k < n_rows; k++) {
        store_done *row = &rows[k];
        /* done without every score cannot come from store_save_result; count it as missing, never as 0 */
        if (!row->complete) { d->n_unfinished++; continue; }
        report_config c = {0};
        c.spec = row->spec;
        c.i = row->i;
        c.j = row->j;
        c.extra = row->extra_layers;
        memcpy(c.delta, row->scores, (size_t)d->n_probes * sizeof *c.delta);
        if (!strcmp(c.spec, "baseline")) {
            memcpy(base, c.delta, sizeof base);
            d->has_baseline = true;
            continue;
        }
        /* the row's strings move into d (freed with it) */
        c.path = row->path;
        c.search = row->search;
        row->spec = row->path = row->search = NULL;
        parse_spec(&c);
        if (c.i >= 0 && (c.i >= c.j || c.j > d->n_layers)) c.i = c.j = -1;
        if (c.repeat_layer >= d->n_layers || c.repeat_n < 2) c.repeat_layer = c.repeat_n = -1;
        if (d->n_cfg == cap) { cap *= 2; d->cfg = xrealloc(d->cfg, (size_t)cap * sizeof *d->cfg); }
        d->cfg[d->n_cfg++] = c;
    }
    if (report_surrogate_read(st, &d->surrogate)) goto fail;
    store_done_free(rows, n_rows);
    store_probe_sets_free(sets, n_sets);
    free(model);
    if (!d->has_baseline) {
        store_close(st);
        rys_seterr("%s: the baseline is not scored yet, and every delta needs it (resume the scan)", db_path);
        report_free(d);
        return NULL;
    }
    for (int p = 0; p < d->n_probes; p++) d->baseline[p] = base[p];
    for (int k = 0; k < d->n_cfg; k++) {
        report_config *c = &d->cfg[k];
        for (int p = 0; p < d->n_probes; p++) c->delta[p] -= base[p];
        if (c->i >= 0) d->n_blocks++;
        if (c->repeat_n >= 2) d->n_repeats++;
    }
    report_derive(d);
    int rc = report_prescreen_read(st, d, &d->prescreen);
    store_close(st);
    if (rc || report_validation_load(db_path, &d->validation) < 0) {
        report_free(d);
        return NULL;
    }
    return d;
fail:
    store_done_free(rows, n_rows);
    store_probe_sets_free(sets, n_sets);
    free(model);
    store_close(st);
    report_free(d);
    return NULL;
}

void report_zstats_of(const report_data *d, const int *idx, int n, report_zstats *z) {
    if (!idx) n = d->n_cfg;
    for (int p = 0; p < d->n_probes; p++) {
        double s = 0, ss = 0;
        for (int k = 0; k < n; k++) s += d->cfg[idx ? idx[k] : k].delta[p];
        z->mean[p] = n ? s / n : 0;
        for (int k = 0; k < n; k++) {
            double e = d->cfg[idx ? idx[k] : k].delta[p] - z->mean[p];
            ss += e * e;
        }
        z->sd[p] = n ? sqrt(ss / n) : 0;
        if (z->sd[p] < 1e-12) z->sd[p] = 1;
    }
}

/* Whether probe p counts in combined and balanced: math and EQ when the scan has both, else every one. */
static bool counted(const report_data *d, int p) {
    return !(d->math >= 0 && d->eq >= 0) || p == d->math || p == d->eq;
}

double report_balanced_of(const report_data *d, const report_zstats *z, const double *delta) {
    double b = 0;
    for (int p = 0; p < d->n_probes; p++)
        if (counted(d, p)) b += (delta[p] - z->mean[p]) / z->sd[p];
    return b;
}

void report_derive(report_data *d) {
    report_zstats z;
    report_zstats_of(d, NULL, 0, &z);
    for (int k = 0; k < d->n_cfg; k++) {
        report_config *c = &d->cfg[k];
        c->combined = 0;
        for (int p = 0; p < d->n_probes; p++)
            if (counted(d, p)) c->combined += c->delta[p];
        c->balanced = report_balanced_of(d, &z, c->delta);
    }
}

int report_find_path(const report_data *d, const char *path) {
    for (int k = 0; k < d->n_cfg; k++)
        if (d->cfg[k].path && !strcmp(d->cfg[k].path, path)) return k;
    return -1;
}

double report_value(const report_config *c, int p) {
    return p == REPORT_COMBINED ? c->combined : c->delta[p];
}

int report_compare(const report_data *d, const report_config *a, const report_config *b, double va, double vb) {
    if (va != vb) return va < vb ? 1 : -1;
    if (d->eq >= 0 && a->delta[d->eq] != b->delta[d->eq]) return a->delta[d->eq] < b->delta[d->eq] ? 1 : -1;
    if (d->math >= 0 && a->delta[d->math] != b->delta[d->math]) return a->delta[d->math] < b->delta[d->math] ? 1 : -1;
    if (a->extra != b->extra) return a->extra > b->extra ? 1 : -1;
    return 0;
}

typedef struct { const report_data *d; int p; bool balanced; } rank_ctx;

static int cmp_rank(const void *x, const void *y, void *vctx) {
    const rank_ctx *r = vctx;
    int ia = *(const int *)x, ib = *(const int *)y;
    const report_config *a = &r->d->cfg[ia], *b = &r->d->cfg[ib];
    double va = r->balanced ? a->balanced : report_value(a, r->p);
    double vb = r->balanced ? b->balanced : report_value(b, r->p);
    int o = report_compare(r->d, a, b, va, vb);
    return o ? o : ia - ib;     /* sweep order last, so the result is deterministic */
}

void report_rank_balanced(const report_data *d, int *idx) {
    rank_ctx r = {d, 0, true};
    for (int k = 0; k < d->n_cfg; k++) idx[k] = k;
    qsort_r(idx, (size_t)d->n_cfg, sizeof *idx, cmp_rank, &r);
}

void report_rank_by(const report_data *d, int p, int *idx) {
    rank_ctx r = {d, p, false};
    for (int k = 0; k < d->n_cfg; k++) idx[k] = k;
    qsort_r(idx, (size_t)d->n_cfg, sizeof *idx, cmp_rank, &r);
}

static int cmp_extra(const void *x, const void *y, void *vd) {
    const report_data *d = vd;
    const report_config *a = &d->cfg[*(const int *)x], *b = &d->cfg[*(const int *)y];
    if (a->extra != b->extra) return a->extra - b->extra;
    return *(const int *)x - *(const int *)y;
}

int report_pareto(const report_data *d, int *front) {
    int n = 0;
    for (int k = 0; k < d->n_cfg; k++) {
        const report_config *c = &d->cfg[k];
        bool dominated = false;
        for (int o = 0; o < d->n_cfg && !dominated; o++) {
            const report_config *x = &d->cfg[o];
            dominated = o != k && x->combined >= c->combined && x->extra <= c->extra &&
                        (x->combined > c->combined || x->extra < c->extra);
        }
        if (!dominated) front[n++] = k;
    }
    qsort_r(front, (size_t)n, sizeof *front, cmp_extra, (void *)d);
    return n;
}

static bool in_family(const report_config *c, report_family fam) {
    return fam == REPORT_BLOCKS ? c->i >= 0 : c->repeat_n >= 2;
}

int report_best(const report_data *d, int p, report_family fam) {
    int best = -1;
    for (int k = 0; k < d->n_cfg; k++) {
        const report_config *c = &d->cfg[k];
        if (!in_family(c, fam)) continue;
        if (best < 0 || report_compare(d, c, &d->cfg[best], report_value(c, p), report_value(&d->cfg[best], p)) < 0) best = k;
    }
    return best;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double report_clip(const report_data *d, int p, report_family fam) {
    double *v = xmalloc(((size_t)d->n_cfg + 1) * sizeof *v);
    int n = 0;
    for (int k = 0; k < d->n_cfg; k++)
        if (in_family(&d->cfg[k], fam)) v[n++] = fabs(report_value(&d->cfg[k], p));
    double clip = 0;
    if (n) {
        qsort(v, (size_t)n, sizeof *v, cmp_double);
        double pos = 0.98 * (n - 1);
        int lo = (int)floor(pos), hi = lo + 1 < n ? lo + 1 : lo;
        clip = v[lo] + (pos - lo) * (v[hi] - v[lo]);
    }
    free(v);
    return clip > 1e-9 ? clip : 1e-9;
}

int report_blocks_missing(const report_data *d) {
    return d->n_layers * (d->n_layers + 1) / 2 - d->n_blocks;
}
