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

/* splitmix64: small, fast, and the same stream on every platform */
static uint64_t next_u64(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
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

int paired_bootstrap_ci(const paired_task *tasks, int n_tasks, int n_rep, uint64_t seed, double *lo, double *hi) {
    if (n_rep < 1 || n_tasks < 1) { rys_seterr("bootstrap: needs at least one task and one replicate"); return -1; }
    for (int t = 0; t < n_tasks; t++)
        if (tasks[t].n < 1) { rys_seterr("bootstrap: task %s has no documents", tasks[t].name ? tasks[t].name : "?"); return -1; }
    double *delta = xcalloc((size_t)(n_tasks + 1) * n_rep, sizeof *delta);
    double *avg = delta + (size_t)n_tasks * n_rep;
    for (int t = 0; t < n_tasks; t++) {
        const paired_task *T = &tasks[t];
        uint64_t s = seed ^ name_hash(T->name);
        double *d = delta + (size_t)t * n_rep;
        for (int r = 0; r < n_rep; r++) {
            long sum = 0;
            for (int i = 0; i < T->n; i++) {
                int k = (int)(((unsigned __int128)next_u64(&s) * (unsigned)T->n) >> 64);
                sum += (T->cfg[k] != 0) - (T->base[k] != 0);
            }
            d[r] = (double)sum / T->n;
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
