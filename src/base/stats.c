/* stats: see stats.h. */
#include "base/stats.h"
#include "base/util.h"

#include <math.h>
#include <stdlib.h>

typedef struct { const double *v; int sign; } order_ctx;

static int cmp_order(const void *a, const void *b, void *ctx) {
    const order_ctx *c = ctx;
    int i = *(const int *)a, j = *(const int *)b;
    if (c->v[i] != c->v[j]) return (c->v[i] < c->v[j] ? -1 : 1) * c->sign;
    return (i > j) - (i < j);
}

void stat_order(const double *v, int n, bool descending, int *idx) {
    for (int k = 0; k < n; k++) idx[k] = k;
    order_ctx c = {v, descending ? -1 : 1};
    qsort_r(idx, (size_t)n, sizeof *idx, cmp_order, &c);
}

void stat_ranks(const double *v, int n, double *r) {
    int *idx = xmalloc((size_t)(n ? n : 1) * sizeof *idx);
    stat_order(v, n, false, idx);
    for (int k = 0; k < n;) {
        int e = k;
        while (e + 1 < n && v[idx[e + 1]] == v[idx[k]]) e++;
        /* positions k..e (0-based) share the mean of ranks k+1..e+1 */
        double avg = (k + e) / 2.0 + 1;
        for (int q = k; q <= e; q++) r[idx[q]] = avg;
        k = e + 1;
    }
    free(idx);
}

double stat_spearman(const double *a, const double *b, int n) {
    if (n < 2) return NAN;
    double *ra = xmalloc((size_t)n * sizeof *ra), *rb = xmalloc((size_t)n * sizeof *rb);
    stat_ranks(a, n, ra);
    stat_ranks(b, n, rb);
    double ma = 0, mb = 0;
    for (int k = 0; k < n; k++) ma += ra[k], mb += rb[k];
    ma /= n;
    mb /= n;
    double sab = 0, saa = 0, sbb = 0;
    for (int k = 0; k < n; k++) {
        sab += (ra[k] - ma) * (rb[k] - mb);
        saa += (ra[k] - ma) * (ra[k] - ma);
        sbb += (rb[k] - mb) * (rb[k] - mb);
    }
    free(ra);
    free(rb);
    if (saa <= 0 || sbb <= 0) return NAN;
    return sab / sqrt(saa * sbb);
}

double stat_mae(const double *a, const double *b, int n) {
    double s = 0;
    for (int k = 0; k < n; k++) s += fabs(a[k] - b[k]);
    return n ? s / n : 0;
}
