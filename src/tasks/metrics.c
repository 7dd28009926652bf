/* metrics: see metrics.h. */
#include "tasks/metrics.h"
#include "base/util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const names[METRIC_COUNT] = {"acc_raw", "acc_per_char", "acc_per_token", "acc_uncond"};

const char *metric_name(metric_kind k) { return k >= 0 && k < METRIC_COUNT ? names[k] : "?"; }

int metric_from_name(const char *name) {
    for (int k = 0; k < METRIC_COUNT; k++)
        if (!strcmp(names[k], name)) return k;
    return -1;
}

double metric_choice_value(metric_kind k, const choice_score *c) {
    switch (k) {
    case METRIC_ACC_RAW: return c->logprob;
    case METRIC_ACC_PER_CHAR: return c->logprob / (c->n_chars > 0 ? c->n_chars : 1);
    case METRIC_ACC_PER_TOKEN: return c->logprob / (c->n_tokens > 0 ? c->n_tokens : 1);
    case METRIC_ACC_UNCOND: return c->logprob - c->uncond_logprob;
    default: return NAN;
    }
}

int metric_predict(metric_kind k, const choice_score *choices, int n) {
    if (n < 1 || k < 0 || k >= METRIC_COUNT) return -1;
    int best = 0;
    double best_v = metric_choice_value(k, &choices[0]);
    if (isnan(best_v)) return -1;
    for (int c = 1; c < n; c++) {
        double v = metric_choice_value(k, &choices[c]);
        if (isnan(v)) return -1;
        if (v > best_v) { best_v = v; best = c; }
    }
    return best;
}

void accuracy_stderr(const uint8_t *correct, int n, double *acc, double *stderr_out) {
    if (n < 1) { *acc = NAN; *stderr_out = 0; return; }
    long k = 0;
    for (int i = 0; i < n; i++) k += correct[i] != 0;
    double mean = (double)k / n;
    *acc = mean;
    /* sum of squared deviations of 0/1 values: k(1-mean)^2 + (n-k)mean^2 */
    double ss = k * (1 - mean) * (1 - mean) + (n - k) * mean * mean;
    *stderr_out = n < 2 ? 0 : sqrt(ss / (n - 1)) / sqrt((double)n);
}

double mcnemar_exact_p(int b, int c) {
    int n = b + c, k = b < c ? b : c;
    if (n <= 0) return 1.0;
    /* P(X <= k) summed in log space: C(n,i) 2^-n overflows doubles past n ~ 1000 */
    double lfn = lgamma(n + 1.0), tail = 0;
    for (int i = 0; i <= k; i++) tail += exp(lfn - lgamma(i + 1.0) - lgamma(n - i + 1.0) - n * log(2.0));
    double p = 2 * tail;
    return p < 1 ? p : 1;
}

static uint64_t name_hash(const char *s) {
    uint64_t h = 0xcbf29ce484222325ull;    /* FNV-1a */
    for (; s && *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return h;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double percentile(const double *sorted, int n, double q) {
    double h = (n - 1) * q;
    int lo = (int)floor(h);
    if (lo >= n - 1) return sorted[n - 1];
    return sorted[lo] + (h - lo) * (sorted[lo + 1] - sorted[lo]);
}

/* The bootstrap behind both entry points: per task, n_rep resamples of its
 * per-document differences (cfg - base), each task from its own generator;
 * diff[t] has n[t] entries. Fills lo/hi as paired_bootstrap_ci says. */
static int bootstrap_diffs(const char *const *names, const double *const *diff, const int *n, int n_tasks, int n_rep, uint64_t seed,
                           double *lo, double *hi) {
    if (n_rep < 1 || n_tasks < 1) { rys_seterr("bootstrap: needs at least one task and one replicate"); return -1; }
    for (int t = 0; t < n_tasks; t++)
        if (n[t] < 1) { rys_seterr("bootstrap: task %s has no documents", names[t] ? names[t] : "?"); return -1; }
    double *delta = xcalloc((size_t)(n_tasks + 1) * n_rep, sizeof *delta);
    double *avg = delta + (size_t)n_tasks * n_rep;
    for (int t = 0; t < n_tasks; t++) {
        uint64_t s = seed ^ name_hash(names[t]);
        double *d = delta + (size_t)t * n_rep;
        for (int r = 0; r < n_rep; r++) {
            double sum = 0;     /* exact for 0/1 differences: integers far below 2^53 */
            for (int i = 0; i < n[t]; i++) {
                int k = (int)(((unsigned __int128)rys_splitmix64(&s) * (unsigned)n[t]) >> 64);
                sum += diff[t][k];
            }
            d[r] = sum / n[t];
            avg[r] += d[r] / n_tasks;
        }
    }
    for (int t = 0; t <= n_tasks; t++) {
        double *d = delta + (size_t)t * n_rep;
        qsort(d, (size_t)n_rep, sizeof *d, cmp_double);
        lo[t] = percentile(d, n_rep, 0.025);
        hi[t] = percentile(d, n_rep, 0.975);
    }
    free(delta);
    return 0;
}

int paired_bootstrap_ci(const paired_task *tasks, int n_tasks, int n_rep, uint64_t seed, double *lo, double *hi) {
    if (n_tasks < 1) return bootstrap_diffs(NULL, NULL, NULL, 0, n_rep, seed, lo, hi);
    const char **names = xcalloc((size_t)n_tasks, sizeof *names);
    double **diff = xcalloc((size_t)n_tasks, sizeof *diff);
    int *n = xcalloc((size_t)n_tasks, sizeof *n);
    for (int t = 0; t < n_tasks; t++) {
        names[t] = tasks[t].name;
        n[t] = tasks[t].n;
        diff[t] = xcalloc((size_t)(n[t] > 0 ? n[t] : 1), sizeof **diff);
        for (int i = 0; i < n[t]; i++) diff[t][i] = (tasks[t].cfg[i] != 0) - (tasks[t].base[i] != 0);
    }
    int rc = bootstrap_diffs(names, (const double *const *)diff, n, n_tasks, n_rep, seed, lo, hi);
    for (int t = 0; t < n_tasks; t++) free(diff[t]);
    free(diff);
    free(names);
    free(n);
    return rc;
}

int paired_bootstrap_scores(const char *name, const double *base, const double *cfg, int n, int n_rep, uint64_t seed, double *lo,
                            double *hi) {
    double *diff = xcalloc((size_t)(n > 0 ? n : 1), sizeof *diff);
    for (int i = 0; i < n; i++) diff[i] = cfg[i] - base[i];
    double l[2], h[2];
    const double *d = diff;
    int rc = bootstrap_diffs(&name, &d, &n, 1, n_rep, seed, l, h);
    free(diff);
    if (!rc) {
        *lo = l[0];
        *hi = h[0];
    }
    return rc;
}
