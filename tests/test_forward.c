/* The forward pass along layer paths against golden logits from an
 * independent float64 numpy implementation (tests/ref/numpy_forward.py via
 * make_golden.py) on tiny llama / qwen2 / qwen3 / gemma3 models with quantized
 * matrices (gemma3: sliding-window layers with a window of 7 under 32
 * tokens, one global layer, GELU, post-norms, scaled embeddings). Tolerances (see make_golden.py): quantized activations put an
 * engine 1-2.5e-2 * max|logit| from the exact values, while a wrong layer path
 * moves the logits by 0.3-0.95 * max|logit|; so the bound 5e-2 separates a
 * right path from a wrong one with a wide margin. */
#include "testutil.h"

#include "engine/forward.h"
#include "engine/model.h"
#include "engine/path.h"
#include "base/util.h"

#include <dirent.h>
#include <math.h>
#include <string.h>

#define MAXT 256
#define MAXV 1024

typedef struct {
    char model[128], spec[128];
    int path[64], n_path, tokens[MAXT], n_tok, vocab;
    double last[MAXV];
    int topk_id[MAXT][5];
    double topk_lp[MAXT][5];
} golden;

static int read_ints(char *s, int *out, int cap) {
    char *end;
    long n = strtol(s, &end, 10);
    if (n > cap) return -1;
    for (long i = 0; i < n; i++) out[i] = (int)strtol(end, &end, 10);
    return (int)n;
}

static void load(const char *file, golden *g) {
    size_t len;
    char *text = read_file(file, &len);
    if (!text) fail_msg("%s", rys_lasterr());
    memset(g, 0, sizeof *g);
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *end;
        if (!strncmp(line, "model ", 6)) snprintf(g->model, sizeof g->model, "%s", line + 6);
        else if (!strncmp(line, "spec ", 5)) snprintf(g->spec, sizeof g->spec, "%s", line + 5);
        else if (!strncmp(line, "path ", 5)) g->n_path = read_ints(line + 5, g->path, 64);
        else if (!strncmp(line, "tokens ", 7)) g->n_tok = read_ints(line + 7, g->tokens, MAXT);
        else if (!strncmp(line, "vocab ", 6)) g->vocab = atoi(line + 6);
        else if (!strncmp(line, "last ", 5)) {
            long n = strtol(line + 5, &end, 10);
            assert_true(n <= MAXV);
            for (long i = 0; i < n; i++) g->last[i] = strtod(end, &end);
        } else if (!strncmp(line, "topk ", 5)) {
            long pos = strtol(line + 5, &end, 10), k = strtol(end, &end, 10);
            assert_true(pos < MAXT && k == 5);
            for (int i = 0; i < 5; i++) {
                g->topk_id[pos][i] = (int)strtol(end, &end, 10);
                g->topk_lp[pos][i] = strtod(end, &end);
            }
        }
    }
    free(text);
    assert_true(g->n_path > 0 && g->n_tok > 0 && g->vocab > 0);
}

static void check_one(const char *file) {
    golden *g = xcalloc(1, sizeof *g);
    load(file, g);
    char mpath[512];
    snprintf(mpath, sizeof mpath, "tests/data/%s", g->model);
    model *m = model_load(mpath);
    if (!m) fail_msg("%s", rys_lasterr());
    layer_path p;
    const char *colon = strchr(g->spec, ':');
    assert_non_null(colon);
    int rc = !strncmp(g->spec, "blocks", 6) ? path_from_blocks(colon + 1, m->hp.n_layers, &p)
                                            : path_from_layers(colon + 1, m->hp.n_layers, &p);
    assert_int_equal(rc, 0);
    /* our grammar must expand the spec to the path the reference computed */
    assert_int_equal(p.n, g->n_path);
    for (int k = 0; k < p.n; k++) assert_int_equal(p.layers[k], g->path[k]);
    pool *pl = pool_new(2);
    forward_ctx *f = forward_new(m, &p, 1, g->n_tok, pl);
    assert_non_null(f);
    int32_t tok[MAXT], pos[MAXT], seq[MAXT];
    for (int t = 0; t < g->n_tok; t++) { tok[t] = g->tokens[t]; pos[t] = t; seq[t] = 0; }
    float *lg = xmalloc((size_t)g->n_tok * m->hp.n_vocab * sizeof(float));
    fwd_batch b = {g->n_tok, tok, pos, seq, NULL};
    assert_int_equal(forward_batch(f, &b, lg), g->n_tok);
    int V = m->hp.n_vocab;
    assert_int_equal(V, g->vocab);
    double mx = 0, diff = 0;
    const float *last = lg + (size_t)(g->n_tok - 1) * V;
    for (int v = 0; v < V; v++) {
        if (fabs(g->last[v]) > mx) mx = fabs(g->last[v]);
        if (fabs(last[v] - g->last[v]) > diff) diff = fabs(last[v] - g->last[v]);
    }
    if (diff > 5e-2 * mx) fail_msg("%s: last logits max|diff| %.4g > 5e-2 * %.4g", file, diff, mx);
    double worst_lp = 0;
    int top_equal = 0;
    for (int t = 0; t < g->n_tok; t++) {
        const float *row = lg + (size_t)t * V;
        double m0 = row[0], s = 0;
        int arg = 0;
        for (int v = 1; v < V; v++) if (row[v] > m0) { m0 = row[v]; arg = v; }
        for (int v = 0; v < V; v++) s += exp(row[v] - m0);
        for (int k = 0; k < 5; k++) {
            double lp = row[g->topk_id[t][k]] - m0 - log(s);
            if (fabs(lp - g->topk_lp[t][k]) > 0.5)
                fail_msg("%s: position %d token %d log-prob %.4f vs %.4f", file, t, g->topk_id[t][k], lp, g->topk_lp[t][k]);
            if (fabs(lp - g->topk_lp[t][k]) > worst_lp) worst_lp = fabs(lp - g->topk_lp[t][k]);
        }
        top_equal += arg == g->topk_id[t][0];
        if (g->topk_lp[t][0] - g->topk_lp[t][1] > 0.5 && arg != g->topk_id[t][0])
            fail_msg("%s: position %d top token %d, reference %d", file, t, arg, g->topk_id[t][0]);
    }
    if (getenv("RYS_TEST_VERBOSE"))
        fprintf(stderr, "%-44s last max|diff|/max|logit| %.2e, top-5 log-prob max|diff| %.3f, top-1 equal %d/%d\n", file,
                diff / mx, worst_lp, top_equal, g->n_tok);
    free(lg);
    forward_free(f);
    pool_free(pl);
    path_free(&p);
    model_free(m);
    free(g);
}

static void test_golden(void **state) {
    (void)state;
    DIR *d = opendir("tests/data/golden");
    if (!d) fail_msg("run from the repository root (tests/data/golden missing)");
    struct dirent *e;
    int n = 0;
    while ((e = readdir(d))) {
        if (!strstr(e->d_name, ".txt")) continue;
        char f[512];
        snprintf(f, sizeof f, "tests/data/golden/%s", e->d_name);
        check_one(f);
        n++;
    }
    closedir(d);
    assert_true(n >= 24);   /* 6 paths for each of the 4 tiny models */
}

/* Whether KV slot `slot` holds the same bits in a and b (same shape). */
static bool same_kv(const forward_ctx *a, const forward_ctx *b, int slot) {
    kv_shape kv = forward_kv_shape(a);
    size_t n = (size_t)kv.n_ctx * kv.kv_dim;
    uint16_t *ka = xmalloc(n * sizeof *ka), *va = xmalloc(n * sizeof *va), *kb = xmalloc(n * sizeof *kb),
             *vb = xmalloc(n * sizeof *vb);
    bool same = true;
    for (int s = 0; s < kv.n_seq && same; s++) {
        assert_int_equal(forward_kv_read(a, slot, s, 0, kv.n_ctx, ka, va), 0);
        assert_int_equal(forward_kv_read(b, slot, s, 0, kv.n_ctx, kb, vb), 0);
        same = !memcmp(ka, kb, n * sizeof *ka) && !memcmp(va, vb, n * sizeof *va);
    }
    free(ka); free(va); free(kb); free(vb);
    return same;
}

/* Rows that want logits come out of a trimmed last layer (the other rows get
 * only its K and V) with the bits of the untrimmed pass; so does the last
 * slot's cache, which later tokens read. Two sequences of 300 and 40 tokens
 * along a path that repeats layers: the first micro-batch (256 rows) wants
 * no logits at all. */
static void trimmed_equals_full(const char *file) {
    model *m = model_load(file);
    if (!m) fail_msg("%s", rys_lasterr());
    layer_path p;
    assert_int_equal(path_from_blocks("1,3", m->hp.n_layers, &p), 0);
    enum { LEN0 = 300, LEN1 = 40, N = LEN0 + LEN1 };
    int32_t tok[N], pos[N], seq[N];
    bool want[N];
    for (int t = 0; t < N; t++) {
        seq[t] = t >= LEN0;
        pos[t] = t - (seq[t] ? LEN0 : 0);
        tok[t] = (int32_t)((t * 7919u + 13) % (unsigned)m->hp.n_vocab);
        want[t] = t == LEN0 - 1 || t == N - 1 || t == LEN0 + 7;
    }
    pool *pl = pool_new(2);
    forward_ctx *full = forward_new(m, &p, 2, LEN0, pl), *trim = forward_new(m, &p, 2, LEN0, pl);
    size_t dim = (size_t)m->hp.dim, V = (size_t)m->hp.n_vocab;
    float *x_full = xmalloc(N * dim * sizeof(float)), *x_trim = xmalloc(N * dim * sizeof(float));
    float *lg_all = xmalloc(N * V * sizeof(float)), *lg_want = xmalloc(3 * V * sizeof(float));
    for (int t = 0; t < N; t++) model_embed(m, tok[t], x_full + t * dim);
    memcpy(x_trim, x_full, N * dim * sizeof(float));
    fwd_batch all = {N, tok, pos, seq, NULL}, some = {N, tok, pos, seq, want};
    assert_int_equal(forward_layers(full, &all, x_full, 0, p.n), 0);
    assert_int_equal(forward_layers(trim, &some, x_trim, 0, 2), 0);
    assert_int_equal(forward_layers_for_output(trim, &some, x_trim, 2), 0);
    for (int t = 0; t < N; t++)
        if (want[t] && memcmp(x_full + t * dim, x_trim + t * dim, dim * sizeof(float)))
            fail_msg("%s: row %d's hidden state differs when the last layer is trimmed", file, t);
    for (int s = 0; s < p.n; s++)
        if (!same_kv(full, trim, s)) fail_msg("%s: KV slot %d differs when the last layer is trimmed", file, s);
    /* forward_batch trims on its own when logits are wanted for some rows */
    forward_ctx *f = forward_new(m, &p, 2, LEN0, pl);
    assert_int_equal(forward_batch(f, &all, lg_all), N);
    forward_free(f);
    f = forward_new(m, &p, 2, LEN0, pl);
    assert_int_equal(forward_batch(f, &some, lg_want), 3);
    for (int t = 0, k = 0; t < N; t++)
        if (want[t] && memcmp(lg_all + t * V, lg_want + (size_t)k++ * V, V * sizeof(float)))
            fail_msg("%s: logits of row %d differ when the batch wants only some rows", file, t);
    forward_free(f);
    forward_free(full);
    forward_free(trim);
    free(x_full); free(x_trim); free(lg_all); free(lg_want);
    pool_free(pl);
    path_free(&p);
    model_free(m);
}

static void test_trimmed_last_layer(void **state) {
    (void)state;
    trimmed_equals_full("tests/data/tiny-llama.gguf");
    trimmed_equals_full("tests/data/tiny-qwen2.gguf");
    trimmed_equals_full("tests/data/tiny-qwen3.gguf");
    trimmed_equals_full("tests/data/tiny-gemma3.gguf");
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_golden), cmocka_unit_test(test_trimmed_last_layer)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
