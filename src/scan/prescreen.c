/* prescreen: see prescreen.h. */
#include "scan/prescreen.h"
#include "engine/forward.h"
#include "engine/path.h"
#include "engine/prefix.h"
#include "base/util.h"

#include <jansson.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *const prescreen_method_name[3] = {"composite", "stability", "anomaly"};

/* Eigenvalues of the symmetric n x n matrix a (destroyed) into ev, by
 * cyclic Jacobi rotations: exact enough for a Gram matrix of a few dozen
 * prompts, and no dependency for it. */
static void jacobi_eigenvalues(double *a, int n, double *ev) {
    for (int sweep = 0; sweep < 100; sweep++) {
        double off = 0, diag = 0;
        for (int p = 0; p < n; p++)
            for (int q = 0; q < n; q++) {
                double v = a[p * n + q] * a[p * n + q];
                if (p == q) diag += v;
                else off += v;
            }
        if (off <= 1e-24 * (diag > 0 ? diag : 1)) break;
        for (int p = 0; p < n; p++)
            for (int q = p + 1; q < n; q++) {
                double apq = a[p * n + q];
                if (apq == 0) continue;
                double theta = (a[q * n + q] - a[p * n + p]) / (2 * apq);
                double t = (theta >= 0 ? 1 : -1) / (fabs(theta) + sqrt(theta * theta + 1));
                double c = 1 / sqrt(t * t + 1), s = t * c;
                for (int k = 0; k < n; k++) {       /* columns p, q */
                    double akp = a[k * n + p], akq = a[k * n + q];
                    a[k * n + p] = c * akp - s * akq;
                    a[k * n + q] = s * akp + c * akq;
                }
                for (int k = 0; k < n; k++) {       /* rows p, q */
                    double apk = a[p * n + k], aqk = a[q * n + k];
                    a[p * n + k] = c * apk - s * aqk;
                    a[q * n + k] = s * apk + c * aqk;
                }
            }
    }
    for (int p = 0; p < n; p++) ev[p] = a[p * n + p];
}

double prescreen_eff_rank(const double *rows, int n, int dim) {
    double *g = xcalloc((size_t)n * n, sizeof *g), *ev = xmalloc((size_t)n * sizeof *ev);
    for (int p = 0; p < n; p++)
        for (int q = p; q < n; q++) {
            double s = 0;
            for (int d = 0; d < dim; d++) s += rows[(size_t)p * dim + d] * rows[(size_t)q * dim + d];
            g[p * n + q] = g[q * n + p] = s;
        }
    jacobi_eigenvalues(g, n, ev);
    double total = 0;
    for (int p = 0; p < n; p++) total += ev[p] = sqrt(ev[p] > 0 ? ev[p] : 0);
    double h = 0;
    for (int p = 0; p < n; p++) {
        double w = ev[p] / (total + 1e-10);
        if (w > 1e-10) h -= w * log(w);
    }
    free(g);
    free(ev);
    return exp(h);
}

/* mean[e][d] = the mean over sequence e's rows of x (rows of a sequence are
 * contiguous, lens[e] of them). */
static void seq_means(const float *x, const int *lens, int n, int dim, double *mean) {
    size_t row = 0;
    for (int e = 0; e < n; e++) {
        double *m = mean + (size_t)e * dim;
        for (int d = 0; d < dim; d++) m[d] = 0;
        for (int t = 0; t < lens[e]; t++, row++)
            for (int d = 0; d < dim; d++) m[d] += x[row * dim + d];
        for (int d = 0; d < dim; d++) m[d] /= lens[e];
    }
}

/* One layer's statistics from the prompts' mean states entering (a) and
 * leaving (b) it; change is scratch of n x dim. */
static prescreen_layer layer_stats(const double *a, const double *b, int n, int dim, double *change) {
    prescreen_layer L = {0};
    for (int e = 0; e < n; e++) {
        const double *ae = a + (size_t)e * dim, *be = b + (size_t)e * dim;
        double *ce = change + (size_t)e * dim, dd = 0, ab = 0, aa = 0, bb = 0;
        for (int d = 0; d < dim; d++) {
            ce[d] = be[d] - ae[d];
            dd += ce[d] * ce[d];
            ab += ae[d] * be[d];
            aa += ae[d] * ae[d];
            bb += be[d] * be[d];
        }
        L.change += sqrt(dd) / n;
        L.self_sim += (aa > 0 && bb > 0 ? ab / sqrt(aa * bb) : 0) / n;
    }
    for (int d = 0; d < dim; d++) {
        double s = 0, ss = 0;
        for (int e = 0; e < n; e++) s += b[(size_t)e * dim + d];
        s /= n;
        for (int e = 0; e < n; e++) ss += (b[(size_t)e * dim + d] - s) * (b[(size_t)e * dim + d] - s);
        L.variance += ss / n / dim;
    }
    L.eff_rank = n >= 5 ? prescreen_eff_rank(change, n, dim) : 0;
    return L;
}

int prescreen_layer_stats(const model *m, const int32_t *const *prompts, const int *lens, int n, pool *pool,
                          prescreen_layer *out) {
    if (n < 2) { rys_seterr("the pre-screen needs at least 2 calibration prompts, got %d", n); return -1; }
    int N = m->hp.n_layers, dim = m->hp.dim, total = 0, max_len = 0;
    for (int e = 0; e < n; e++) {
        if (lens[e] < 1) { rys_seterr("pre-screen: calibration prompt %d is empty", e); return -1; }
        total += lens[e];
        if (lens[e] > max_len) max_len = lens[e];
    }
    layer_path path;
    path_baseline(N, &path);
    forward_ctx *f = forward_new(m, &path, n, max_len, pool);
    path_free(&path);
    if (!f) return -1;
    int32_t *tok = xmalloc((size_t)total * sizeof *tok), *pos = xmalloc((size_t)total * sizeof *pos),
            *seq = xmalloc((size_t)total * sizeof *seq);
    for (int e = 0, r = 0; e < n; e++)
        for (int t = 0; t < lens[e]; t++, r++) tok[r] = prompts[e][t], pos[r] = t, seq[r] = e;
    fwd_batch b = {total, tok, pos, seq, NULL};
    float *x = xmalloc((size_t)total * dim * sizeof *x);
    double *in = xmalloc((size_t)n * dim * sizeof *in), *outm = xmalloc((size_t)n * dim * sizeof *outm),
           *change = xmalloc((size_t)n * dim * sizeof *change);
    int rc = -1;
    if (prefix_start(m, &b, 0, NULL, NULL, x)) goto done;
    seq_means(x, lens, n, dim, in);
    for (int l = 0; l < N; l++) {
        if (forward_layers(f, &b, x, l, l + 1)) goto done;
        seq_means(x, lens, n, dim, outm);
        out[l] = layer_stats(in, outm, n, dim, change);
        double *t = in;
        in = outm;
        outm = t;
    }
    rc = 0;
done:
    forward_free(f);
    free(tok);
    free(pos);
    free(seq);
    free(x);
    free(in);
    free(outm);
    free(change);
    return rc;
}

static double mean_of(const double *v, int lo, int hi) {
    double s = 0;
    for (int k = lo; k < hi; k++) s += v[k];
    return hi > lo ? s / (hi - lo) : 0;
}

static double sd_of(const double *v, int lo, int hi) {
    double m = mean_of(v, lo, hi), s = 0;
    for (int k = lo; k < hi; k++) s += (v[k] - m) * (v[k] - m);
    return hi > lo ? sqrt(s / (hi - lo)) : 0;
}

/* z of the mean of v[lo..hi) against all of v[0..n). */
static double z_of(const double *v, int n, int lo, int hi) {
    return (mean_of(v, lo, hi) - mean_of(v, 0, n)) / (sd_of(v, 0, n) + 1e-10);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median_of(const double *v, int n) {
    double *s = xmalloc((size_t)n * sizeof *s);
    memcpy(s, v, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, cmp_double);
    double m = n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
    free(s);
    return m;
}

static double anomaly_score(const double *change, const double *sim, const double *var, const double *rank, int N,
                            int i, int j) {
    return z_of(change, N, i, j) - z_of(sim, N, i, j) + z_of(var, N, i, j) + z_of(rank, N, i, j);
}

static double stability_score(const double *change, const double *var, const double *rank, int N, int i, int j) {
    double score = 0;
    if (j < N && N >= 2) {
        double *delta = xmalloc((size_t)(N - 1) * sizeof *delta);
        for (int l = 0; l + 1 < N; l++) delta[l] = fabs(change[l + 1] - change[l]);
        score += -1.5 * z_of(delta, N - 1, i, j);
        free(delta);
    }
    if (j < N && i > 0) {
        double *growth = xmalloc((size_t)N * sizeof *growth), *dev = xmalloc((size_t)N * sizeof *dev);
        for (int l = 1; l < N; l++) growth[l - 1] = var[l] / (var[l - 1] > 1e-10 ? var[l - 1] : 1e-10);
        double med = median_of(growth, N - 1);
        for (int l = 0; l < N - 1; l++) dev[l] = fabs(growth[l] - med);
        /* growth[l - 1] belongs to layer l: the block's layers max(i,1)..j-1 */
        double block_dev = fabs(mean_of(growth, i - 1, j - 1) - med);
        score += -(block_dev - mean_of(dev, 0, N - 1)) / (sd_of(dev, 0, N - 1) + 1e-10);
        free(growth);
        free(dev);
    }
    if (i > 2) {
        double before = mean_of(change, i - 3, i);
        if (before > 0) {
            double t = 1 - mean_of(change, i, j) / before;
            score += t > 0 ? t : 0;
        }
    }
    return score + 0.5 * z_of(rank, N, i, j);
}

double prescreen_block_score(const prescreen_layer *layers, int n_layers, int i, int j, enum prescreen_method method) {
    int N = n_layers;
    double *change = xmalloc((size_t)N * 4 * sizeof *change), *sim = change + N, *var = sim + N, *rank = var + N;
    for (int l = 0; l < N; l++) {
        change[l] = isfinite(layers[l].change) ? layers[l].change : 0;
        sim[l] = layers[l].self_sim;
        var[l] = isfinite(layers[l].variance) ? layers[l].variance : 0;
        rank[l] = layers[l].eff_rank;
    }
    double s = 0;
    if (method != PRESCREEN_ANOMALY) s += stability_score(change, var, rank, N, i, j);
    if (method != PRESCREEN_STABILITY) s += anomaly_score(change, sim, var, rank, N, i, j);
    if (method == PRESCREEN_COMPOSITE) s /= 2;
    free(change);
    return s;
}

static int cmp_block(const void *a, const void *b) {
    const store_prescreen_block *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    if (x->i != y->i) return x->i - y->i;
    return x->j - y->j;
}

int prescreen_run(const model *m, const evalset *es, int n_prompts, enum prescreen_method method, pool *pool,
                  prescreen_result *out) {
    memset(out, 0, sizeof *out);
    double t0 = rys_now();
    int total = evalset_n_prompts(es), n_sets = evalset_n_sets(es), N = m->hp.n_layers;
    const int32_t *const *all = evalset_prompts(es);
    const int *all_lens = evalset_lens(es);
    /* in turn from each set: the k-th prompt of every set before the (k+1)-th of any */
    int *pick = xmalloc((size_t)(total ? total : 1) * sizeof *pick), n = 0;
    for (int round = 0; n < n_prompts; round++) {
        int added = 0;
        for (int s = 0; s < n_sets && n < n_prompts; s++) {
            int seen = 0;
            for (int k = 0; k < total; k++)
                if (evalset_prompt_set(es, k) == s && seen++ == round) { pick[n++] = k; added++; break; }
        }
        if (!added) break;
    }
    if (n < 2) {
        free(pick);
        rys_seterr("the pre-screen calibrates on probe prompts (math, EQ) and got %d; a benchmark objective has none", n);
        return -1;
    }
    const int32_t **prompts = xmalloc((size_t)n * sizeof *prompts);
    int *lens = xmalloc((size_t)n * sizeof *lens);
    out->prompt_keys = xcalloc((size_t)n, sizeof *out->prompt_keys);
    out->prompt_index = xmalloc((size_t)n * sizeof *out->prompt_index);
    for (int e = 0; e < n; e++) {
        prompts[e] = all[pick[e]];
        lens[e] = all_lens[pick[e]];
        out->prompt_index[e] = pick[e];
        const char *set = evalset_set_name(es, evalset_prompt_set(es, pick[e])), *key = evalset_prompt_key(es, pick[e]);
        out->prompt_keys[e] = xmalloc(strlen(set) + strlen(key) + 2);
        sprintf(out->prompt_keys[e], "%s/%s", set, key);
    }
    out->n_prompts = n;
    out->method = method;
    out->n_layers = N;
    out->layers = xcalloc((size_t)N, sizeof *out->layers);
    int rc = prescreen_layer_stats(m, prompts, lens, n, pool, out->layers);
    free(pick);
    free(prompts);
    free(lens);
    if (rc) { prescreen_result_free(out); return -1; }
    out->blocks = xmalloc((size_t)N * (N + 1) / 2 * sizeof *out->blocks);
    for (int i = 0; i < N; i++)
        for (int j = i + 1; j <= N; j++)
            out->blocks[out->n_blocks++] = (store_prescreen_block){i, j, prescreen_block_score(out->layers, N, i, j, method)};
    qsort(out->blocks, (size_t)out->n_blocks, sizeof *out->blocks, cmp_block);
    out->seconds = rys_now() - t0;
    return 0;
}

void prescreen_result_free(prescreen_result *r) {
    for (int e = 0; r->prompt_keys && e < r->n_prompts; e++) free(r->prompt_keys[e]);
    free(r->prompt_keys);
    free(r->prompt_index);
    free(r->layers);
    free(r->blocks);
    memset(r, 0, sizeof *r);
}

char *prescreen_about_json(const prescreen_result *r) {
    json_t *keys = json_array(), *layers = json_array();
    for (int e = 0; e < r->n_prompts; e++) json_array_append_new(keys, json_string(r->prompt_keys[e]));
    for (int l = 0; l < r->n_layers; l++) {
        const prescreen_layer *L = &r->layers[l];
        json_array_append_new(layers, json_pack("{s:i, s:f, s:f, s:f, s:f}", "layer", l, "change", L->change, "self_sim",
                                                L->self_sim, "variance", L->variance, "eff_rank", L->eff_rank));
    }
    json_t *o = json_pack("{s:s, s:s, s:i, s:o, s:o}", "paper", "CircuitProbe, arXiv 2604.00716", "method",
                          prescreen_method_name[r->method], "n_prompts", r->n_prompts, "prompts", keys, "layers", layers);
    char *text = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(17));
    json_decref(o);
    return text;
}

int prescreen_run_save(store *st, const model *m, const evalset *es, int n_prompts, enum prescreen_method method, pool *pool,
                       prescreen_result *out) {
    if (prescreen_run(m, es, n_prompts, method, pool, out)) return -1;
    char *about = prescreen_about_json(out);
    int rc = store_prescreen_save(st, about, out->blocks, out->n_blocks);
    free(about);
    if (rc) prescreen_result_free(out);
    return rc;
}
