/* search views: the data behind the report's figures of searches (see
 * report.h): the surrogate's holdout fit read from the store, the colour of
 * each search, the Pareto front of the validated configurations, and the
 * pre-screen ranked against the measured blocks. */
#include "report/report.h"
#include "scan/store.h"
#include "base/stats.h"
#include "base/util.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int report_surrogate_read(struct store *st, report_surrogate **out) {
    *out = NULL;
    store_surrogate_fit *f;
    int n;
    if (store_surrogate_fits(st, &f, &n)) return -1;
    if (n == 0) return 0;
    report_surrogate *s = xcalloc(1, sizeof *s);
    for (int k = 0; k < n && s->n < REPORT_SUR_TARGETS; k++) {
        report_sur_target *t = &s->t[s->n++];
        snprintf(t->target, sizeof t->target, "%s", f[k].target);
        t->spearman = f[k].spearman;
        t->mae = f[k].mae;
        t->n_train = f[k].n_train;
        t->n_holdout = f[k].n_holdout;
        t->gate_passed = f[k].gate_passed;
        t->measured = xmalloc((size_t)(t->n_holdout + 1) * sizeof *t->measured);
        t->predicted = xmalloc((size_t)(t->n_holdout + 1) * sizeof *t->predicted);
        memcpy(t->measured, f[k].measured, (size_t)t->n_holdout * sizeof *t->measured);
        memcpy(t->predicted, f[k].predicted, (size_t)t->n_holdout * sizeof *t->predicted);
    }
    store_surrogate_fits_free(f, n);
    *out = s;
    return 0;
}

void report_surrogate_free(report_surrogate *s) {
    if (!s) return;
    for (int k = 0; k < s->n; k++) {
        free(s->t[k].measured);
        free(s->t[k].predicted);
    }
    free(s);
}

void report_search_rgb(const char *search, double rgb[3]) {
    static const struct { const char *name; double rgb[3]; } known[] = {
        {"scan", {0.55, 0.60, 0.68}},      /* grey-blue: the sweep, the bulk of the points */
        {"paths", {0.90, 0.55, 0.05}},     /* orange */
        {"beam", {0.13, 0.55, 0.13}},      /* green */
        {"surrogate", {0.80, 0.10, 0.45}}, /* magenta */
    };
    for (size_t k = 0; k < sizeof known / sizeof known[0]; k++)
        if (!strcmp(search, known[k].name)) { memcpy(rgb, known[k].rgb, sizeof known[k].rgb); return; }
    rgb[0] = 0.45, rgb[1] = 0.25, rgb[2] = 0.70;   /* purple: anything else */
}

/* Whether `rys validate` scored configuration c's spec. */
static bool validated(const report_data *d, const report_config *c) {
    for (int k = 0; d->validation && k < d->validation->n_cfg; k++)
        if (!strcmp(d->validation->cfg[k].spec, c->spec)) return true;
    return false;
}

static double extra_of(const report_data *d, int k) { return k < 0 ? 0 : d->cfg[k].extra; }
static double gain_of(const report_data *d, int k) { return k < 0 ? 0 : d->cfg[k].combined; }

int report_validated_front(const report_data *d, int *front) {
    if (!d->validation) return 0;
    int n = 0;
    /* candidates: the baseline (-1) and each validated configuration */
    for (int a = -1; a < d->n_cfg; a++) {
        if (a >= 0 && !validated(d, &d->cfg[a])) continue;
        bool beaten = false;
        for (int b = -1; b < d->n_cfg && !beaten; b++) {
            if (b == a || (b >= 0 && !validated(d, &d->cfg[b]))) continue;
            double ea = extra_of(d, a), eb = extra_of(d, b), ga = gain_of(d, a), gb = gain_of(d, b);
            beaten = eb <= ea && gb >= ga && (eb < ea || gb > ga);
        }
        if (!beaten) front[n++] = a;
    }
    /* sorted by extra layers (insertion: fronts are short); equal points keep the earlier */
    for (int k = 1; k < n; k++)
        for (int q = k; q > 0 && extra_of(d, front[q]) < extra_of(d, front[q - 1]); q--) {
            int t = front[q];
            front[q] = front[q - 1];
            front[q - 1] = t;
        }
    return n;
}

int report_prescreen_read(struct store *st, const report_data *d, report_prescreen **out) {
    *out = NULL;
    store_prescreen_block *b;
    int nb;
    char *about;
    if (store_prescreen_get(st, &b, &nb, &about)) return -1;
    if (nb == 0) { free(about); return 0; }
    report_prescreen *p = xcalloc(1, sizeof *p);
    json_t *o = about ? json_loads(about, 0, NULL) : NULL;
    snprintf(p->method, sizeof p->method, "%s", json_string_value(json_object_get(o, "method")) ? json_string_value(json_object_get(o, "method")) : "?");
    p->n_prompts = (int)json_integer_value(json_object_get(o, "n_prompts"));
    json_decref(o);
    free(about);
    p->n_scored = nb;
    p->top_i = b[0].i;
    p->top_j = b[0].j;
    p->cfg = xmalloc((size_t)(d->n_cfg + 1) * sizeof *p->cfg);
    p->score = xmalloc((size_t)(d->n_cfg + 1) * sizeof *p->score);
    double *balanced = xmalloc((size_t)(d->n_cfg + 1) * sizeof *balanced), *neg = xmalloc((size_t)(d->n_cfg + 1) * sizeof *neg);
    for (int k = 0; k < d->n_cfg; k++) {
        const report_config *c = &d->cfg[k];
        if (c->i < 0) continue;
        for (int q = 0; q < nb; q++)
            if (b[q].i == c->i && b[q].j == c->j) {
                p->cfg[p->n] = k;
                p->score[p->n] = b[q].score;
                balanced[p->n++] = c->balanced;
                break;
            }
    }
    p->pre_rank = xmalloc((size_t)(p->n + 1) * sizeof *p->pre_rank);
    p->measured_rank = xmalloc((size_t)(p->n + 1) * sizeof *p->measured_rank);
    /* rank 1 = best: ranks of the negated values */
    for (int k = 0; k < p->n; k++) neg[k] = -p->score[k];
    stat_ranks(neg, p->n, p->pre_rank);
    for (int k = 0; k < p->n; k++) neg[k] = -balanced[k];
    stat_ranks(neg, p->n, p->measured_rank);
    p->spearman = stat_spearman(p->score, balanced, p->n);
    p->best_cfg = -1;
    for (int k = 0; k < p->n; k++) {
        const report_config *c = &d->cfg[p->cfg[k]];
        if (p->best_cfg < 0 || report_compare(d, c, &d->cfg[p->best_cfg], c->balanced, d->cfg[p->best_cfg].balanced) < 0)
            p->best_cfg = p->cfg[k];
        if (c->i == p->top_i && c->j == p->top_j) p->top_measured_rank = p->measured_rank[k];
    }
    free(balanced);
    free(neg);
    free(b);
    *out = p;
    return 0;
}

void report_prescreen_free(report_prescreen *p) {
    if (!p) return;
    free(p->cfg);
    free(p->score);
    free(p->pre_rank);
    free(p->measured_rank);
    free(p);
}
