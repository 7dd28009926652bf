/* candidates: the surrogate's candidate count vectors and their ranking (see
 * surrogate.h). The generator follows the RYS II scripts' design (random
 * vectors plus mutations around known-good paths) with our own seeded
 * generator, so a seed names the same million candidates on every machine.
 * Ranking predicts the balanced score of every distinct candidate not
 * measured yet, then walks them best first and predicts the math and EQ
 * deltas only for those it reaches: the same top as predicting and filtering
 * all of them first, for well under half the work. */
#include "search/surrogate.h"
#include "base/util.h"

#include <stdlib.h>
#include <string.h>

/* Removes traversals from random layers counted more than once until at most max_extra remain. */
static void trim(sur_rng *g, uint8_t *c, int N, int max_extra) {
    int extra = -N;
    for (int l = 0; l < N; l++) extra += c[l];
    while (extra > max_extra) {
        int l = sur_rng_below(g, N);
        if (c[l] > 1) { c[l]--; extra--; }
    }
}

void sur_candidates(const sur_cand_opts *o, const int *anchors, int n_anchors, uint8_t *out) {
    sur_rng g = {o->seed};
    const int N = o->n_layers, cap = o->max_count;
    for (int64_t k = 0; k < o->n; k++) {
        uint8_t *c = out + (size_t)k * N;
        /* anchor 0 is the baseline, then the file's anchors */
        if (sur_rng_unit(&g) < o->anchor_frac) {
            int a = sur_rng_below(&g, n_anchors + 1);
            for (int l = 0; l < N; l++) {
                int v = a ? anchors[(size_t)(a - 1) * N + l] : 1;
                c[l] = (uint8_t)(v < 1 ? 1 : v > cap ? cap : v);
            }
            int steps = 1 + sur_rng_below(&g, o->mutation_steps < 1 ? 1 : o->mutation_steps);
            for (int s = 0; s < steps; s++) {
                bool add = sur_rng_unit(&g) < 0.65;
                int room = 0;
                for (int l = 0; l < N; l++) room += add ? c[l] < cap : c[l] > 1;
                if (!room) continue;
                /* the r-th layer that can take the step: uniform among them */
                int r = sur_rng_below(&g, room);
                for (int l = 0; l < N; l++)
                    if ((add ? c[l] < cap : c[l] > 1) && r-- == 0) { c[l] = (uint8_t)(c[l] + (add ? 1 : -1)); break; }
            }
            trim(&g, c, N, o->max_extra);
        } else {
            memset(c, 1, (size_t)N);
            int extra = sur_rng_below(&g, o->max_extra + 1);
            if (extra > N * (cap - 1)) extra = N * (cap - 1);
            for (int e = 0; e < extra; e++) {
                /* uniform among the layers below the cap: draw until one is (one always is) */
                int l;
                do l = sur_rng_below(&g, N); while (c[l] >= cap);
                c[l]++;
            }
        }
    }
}

/* ---- ranking ---------------------------------------------------------------- */

typedef struct { const double *v; } score_ctx;

/* Descending score, earlier candidate first on a tie. */
static int cmp_score(const void *a, const void *b, void *ctx) {
    const double *v = ((const score_ctx *)ctx)->v;
    int64_t i = *(const int64_t *)a, j = *(const int64_t *)b;
    if (v[i] != v[j]) return v[i] > v[j] ? -1 : 1;
    return (i > j) - (i < j);
}

/* An open-addressing set of count vectors (the kept ones and the excluded ones). */
typedef struct {
    uint64_t *h;        /* hash, 0 = empty */
    const uint8_t **v;
    size_t cap;
    int N;
} vset;

static uint64_t vhash(const uint8_t *c, int N) {
    uint64_t h = 1469598103934665603ULL;
    for (int l = 0; l < N; l++) h = (h ^ c[l]) * 1099511628211ULL;
    return h ? h : 1;
}

/* Adds c (kept by pointer); false when it was there already. */
static bool vset_add(vset *s, const uint8_t *c) {
    uint64_t h = vhash(c, s->N);
    for (size_t k = h & (s->cap - 1);; k = (k + 1) & (s->cap - 1)) {
        if (!s->h[k]) { s->h[k] = h; s->v[k] = c; return true; }
        if (s->h[k] == h && !memcmp(s->v[k], c, (size_t)s->N)) return false;
    }
}

int sur_rank(const surrogate *s, const sur_cand_opts *co, const uint8_t *cand, const int *exclude, int n_exclude,
             const sur_rank_opts *o, int64_t *best, double *score, double *seconds_predict) {
    const int N = s->n_layers;
    const int64_t n = co->n;
    const int batch = 65536;
    double t0 = rys_now();
    /* the set: the excluded paths, the baseline (measured in every scan) and each candidate's first occurrence;
     * a later duplicate would score the same and come later, so only first occurrences are predicted */
    vset set = {NULL, NULL, 1024, N};
    while (set.cap < 2 * ((size_t)n + (size_t)n_exclude + 1)) set.cap *= 2;
    set.h = xcalloc(set.cap, sizeof *set.h);
    set.v = xcalloc(set.cap, sizeof *set.v);
    uint8_t *ex = xmalloc((size_t)(n_exclude + 1) * N);
    for (int k = 0; k < n_exclude; k++) {
        for (int l = 0; l < N; l++) ex[(size_t)k * N + l] = (uint8_t)(exclude[(size_t)k * N + l] > 255 ? 255 : exclude[(size_t)k * N + l]);
        vset_add(&set, ex + (size_t)k * N);
    }
    memset(ex + (size_t)n_exclude * N, 1, (size_t)N);
    vset_add(&set, ex + (size_t)n_exclude * N);
    int64_t *idx = xmalloc((size_t)(n ? n : 1) * sizeof *idx), nu = 0;
    for (int64_t k = 0; k < n; k++)
        if (vset_add(&set, cand + (size_t)k * N)) idx[nu++] = k;
    free(set.h);
    free(set.v);
    double *sc = xmalloc((size_t)(n ? n : 1) * sizeof *sc);
    float *x = xmalloc((size_t)batch * N * sizeof *x), *p = xmalloc((size_t)batch * sizeof *p);
    float *pm = xmalloc((size_t)batch * sizeof *pm), *pe = xmalloc((size_t)batch * sizeof *pe);
    int rc = -1, kept = 0;
    for (int64_t b0 = 0; b0 < nu; b0 += batch) {
        int m = (int)(nu - b0 < batch ? nu - b0 : batch);
        for (int k = 0; k < m; k++)
            for (int l = 0; l < N; l++) x[(size_t)k * N + l] = cand[(size_t)idx[b0 + k] * N + l];
        if (sur_predict(s, SUR_BALANCED, x, m, o->n_threads, p)) goto out;
        for (int k = 0; k < m; k++) {
            int extra = -N;
            for (int l = 0; l < N; l++) extra += cand[(size_t)idx[b0 + k] * N + l];
            sc[idx[b0 + k]] = p[k] - o->lambda * extra / N;
        }
    }
    score_ctx c = {sc};
    qsort_r(idx, (size_t)nu, sizeof *idx, cmp_score, &c);
    /* best first, the math and EQ filters predicted only for the candidates the walk reaches */
    for (int64_t w = 0; w < nu && kept < o->top;) {
        int m = 0;
        for (; w < nu && m < batch && m < 4 * (o->top - kept) + 64; w++, m++)
            for (int l = 0; l < N; l++) x[(size_t)m * N + l] = cand[(size_t)idx[w] * N + l];
        if (sur_predict(s, SUR_MATH, x, m, o->n_threads, pm) || (sur_has_target(s, SUR_EQ) && sur_predict(s, SUR_EQ, x, m, o->n_threads, pe)))
            goto out;
        for (int k = 0; k < m && kept < o->top; k++) {
            if (pm[k] < o->min_math || (sur_has_target(s, SUR_EQ) && pe[k] < o->min_eq)) continue;
            best[kept] = idx[w - m + k];
            score[kept++] = sc[idx[w - m + k]];
        }
    }
    rc = kept;
out:
    if (seconds_predict) *seconds_predict = rys_now() - t0;
    free(sc);
    free(x);
    free(p);
    free(pm);
    free(pe);
    free(idx);
    free(ex);
    return rc;
}
