/* Damped repeats: residual scales and the damped-Euler rule on layer paths.
 *  - Grammar and keys: "@1" is the unscaled path (same key), scaled keys
 *    differ and read back as the same path, both spellings of one path agree,
 *    bad specs are refused with the problem named.
 *  - The forward pass on the four tiny models: "@1" gives the unscaled
 *    path's bits, "@0" the baseline's, "@euler:2" (h = 1) the plain block's;
 *    a damped-Euler path equals the traversal rule x0 + h (G(x0) - x0) done by
 *    hand between forward_layers calls on the plain path.
 *  - The fold: quant_scale_row against dequantization (exact for a power of
 *    two, within fp16 rounding otherwise), and a materialized export of
 *    "i,j@0.5" run as a plain file gives the bits of the scaled path. */
#include "testutil.h"

#include "engine/forward.h"
#include "engine/model.h"
#include "engine/path.h"
#include "export/export.h"
#include "quant/quant.h"
#include "base/util.h"

#include <math.h>

/* ---- grammar and keys --------------------------------------------------- */

static void parse(const char *blocks, const char *layers, int n_model, layer_path *p) {
    if (path_from_specs(blocks, layers, n_model, p)) fail_msg("%s", rys_lasterr());
}

static void expect_key(const char *blocks, const char *layers, int n_model, const char *want) {
    layer_path p;
    parse(blocks, layers, n_model, &p);
    char *k = path_canonical(&p);
    assert_string_equal(k, want);
    /* the key reads back as the same path, and gives the same key again */
    layer_path q;
    assert_int_equal(path_from_layers(k + 7, n_model, &q), 0);
    assert_true(path_equal(&p, &q));
    char *k2 = path_canonical(&q);
    assert_string_equal(k2, k);
    free(k);
    free(k2);
    path_free(&p);
    path_free(&q);
}

static void expect_refused(const char *blocks, const char *layers, int n_model, const char *needle) {
    layer_path p;
    assert_int_equal(path_from_specs(blocks, layers, n_model, &p), -1);
    if (!strstr(rys_lasterr(), needle)) fail_msg("error '%s' lacks '%s'", rys_lasterr(), needle);
}

static void test_keys(void **s) {
    (void)s;
    /* @1 is the unscaled path: same key as before scales existed */
    expect_key("3,6", NULL, 8, "layers:0,1,2,3,4,5,3,4,5,6,7");
    expect_key("3,6@1", NULL, 8, "layers:0,1,2,3,4,5,3,4,5,6,7");
    expect_key("3,6@1.0", NULL, 8, "layers:0,1,2,3,4,5,3,4,5,6,7");
    expect_key("3,6@euler:2", NULL, 8, "layers:0,1,2,3,4,5,3,4,5,6,7");
    /* the block's second traversal scaled */
    expect_key("3,6@0.5", NULL, 8, "layers:0,1,2,3,4,5,3@0.5,4@0.5,5@0.5,6,7");
    expect_key(NULL, "0-5,3-5@0.5,6-7", 8, "layers:0,1,2,3,4,5,3@0.5,4@0.5,5@0.5,6,7");
    expect_key("3,6@0", NULL, 8, "layers:0,1,2,3,4,5,3@0,4@0,5@0,6,7");
    expect_key("3,6@0.1", NULL, 8, "layers:0,1,2,3,4,5,3@0.1,4@0.1,5@0.1,6,7");
    /* reference's multi-block example, each block its own scale */
    expect_key("1,3@0.5;2,4@0.25", NULL, 6, "layers:0,1,2,1@0.5,2@0.5,3,2@0.25,3@0.25,4,5");
    /* a scale per position in layers */
    expect_key(NULL, "0-2,1@0.75,2@0.5,3", 4, "layers:0,1,2,1@0.75,2@0.5,3");
    /* the paper's rule: both traversals of layers 3..5 at h = alpha / 2 */
    expect_key("3,6@euler", NULL, 8, "layers:0,1,2,3,4,5,3,4,5,6,7+euler:3-5@0.5,6-8@0.5");
    expect_key("3,6@euler:0.5", NULL, 8, "layers:0,1,2,3,4,5,3,4,5,6,7+euler:3-5@0.25,6-8@0.25");
    expect_key(NULL, "0-5,3-7+euler:3-5@0.5,6-8@0.5", 8, "layers:0,1,2,3,4,5,3,4,5,6,7+euler:3-5@0.5,6-8@0.5");

    layer_path a, b;
    parse("3,6@1", NULL, 8, &a);
    assert_false(path_is_damped(&a));
    assert_null(a.scale);
    /* path_scale_repeats (the scan's --scales) means what the grammar means */
    assert_int_equal(path_scale_repeats(&a, 0.5f), 0);
    parse("3,6@0.5", NULL, 8, &b);
    assert_true(path_equal(&a, &b));
    assert_true(path_is_damped(&b));
    char *r = path_ranges(&b);
    assert_string_equal(r, "0-5,3-5@0.5,6-7");
    free(r);
    path_free(&a);
    path_free(&b);
    parse("3,6", NULL, 8, &a);
    assert_int_equal(path_scale_repeats(&a, 1.0f), 0);
    assert_null(a.scale);
    assert_int_equal(path_scale_repeats(&a, -1.0f), -1);
    path_free(&a);

    /* what a run may borrow from the baseline stops at the first damped position */
    parse("3,6@0.5", NULL, 8, &a);
    assert_int_equal(path_shared_prefix(&a), 6);
    path_free(&a);
    parse("3,6@euler", NULL, 8, &a);
    assert_int_equal(path_shared_prefix(&a), 3);
    path_free(&a);
    parse(NULL, "0-1,2@0.5,3-7", 8, &a);
    assert_int_equal(path_shared_prefix(&a), 2);
    path_copy(&a, &b);
    assert_true(path_equal(&a, &b));
    path_free(&a);
    path_free(&b);
}

static void test_refusals(void **s) {
    (void)s;
    expect_refused("3,6@", NULL, 8, "a scale after '@'");
    expect_refused("3,6@-1", NULL, 8, "a scale after '@'");
    expect_refused("3,6@17", NULL, 8, "a scale after '@'");
    expect_refused("3,6@nan", NULL, 8, "a scale after '@'");
    expect_refused("3,6@0.5x", NULL, 8, "expected");
    expect_refused("3,6@euler:x", NULL, 8, "a scale after '@'");
    expect_refused("0,0@0.5", NULL, 8, "repeats nothing");
    expect_refused("1,3@euler;2,4", NULL, 6, "one block");
    expect_refused(NULL, "0-3@x,4-7", 8, "a scale after '@'");
    expect_refused(NULL, "0-7+euler:5-2@0.5", 8, "damped traversal");
    expect_refused(NULL, "0-7+euler:1-3@0.5,2-4@0.5", 8, "damped traversal");
    expect_refused(NULL, "0-7+euler:1-9@0.5", 8, "damped traversal");
    expect_refused(NULL, "0-7+euler:1-3", 8, "+euler:");
    expect_refused(NULL, "0-7+eulr:1-3@1", 8, "expected");
}

/* ---- forward pass --------------------------------------------------------- */

#define N_TOK 11

/* Logits of every token of a fixed prompt along spec (blocks grammar). */
static float *logits_of(const model *m, pool *pl, const char *blocks, const char *layers) {
    layer_path p;
    parse(blocks, layers, m->hp.n_layers, &p);
    int32_t tok[N_TOK], pos[N_TOK], seq[N_TOK];
    for (int t = 0; t < N_TOK; t++) {
        tok[t] = (int32_t)((t * 7919u + 13) % (unsigned)m->hp.n_vocab);
        pos[t] = t;
        seq[t] = 0;
    }
    forward_ctx *f = forward_new(m, &p, 1, N_TOK, pl);
    assert_non_null(f);
    float *lg = xmalloc((size_t)N_TOK * m->hp.n_vocab * sizeof *lg);
    fwd_batch b = {N_TOK, tok, pos, seq, NULL};
    assert_int_equal(forward_batch(f, &b, lg), N_TOK);
    forward_free(f);
    path_free(&p);
    return lg;
}

static void expect_same_bits(const model *m, const float *a, const float *b, const char *what) {
    if (memcmp(a, b, (size_t)N_TOK * m->hp.n_vocab * sizeof *a)) fail_msg("%s: logits differ", what);
}

static double max_rel_diff(const model *m, const float *a, const float *b) {
    double d = 0, scale = 0;
    for (size_t i = 0; i < (size_t)N_TOK * m->hp.n_vocab; i++) {
        d = fmax(d, fabs((double)a[i] - b[i]));
        scale = fmax(scale, fabs((double)b[i]));
    }
    return d / scale;
}

/* Hidden states of the prompt along the plain block (1,3) with the damped
 * traversal rule applied by hand: x0 kept entering each traversal of layers
 * 1..2, x = x0 + h (x - x0) leaving it; against forward_layers of "1,3@euler". */
static void euler_by_hand(const model *m, pool *pl) {
    layer_path plain, damped;
    parse("1,3", NULL, m->hp.n_layers, &plain);
    parse("1,3@euler", NULL, m->hp.n_layers, &damped);
    int32_t tok[N_TOK], pos[N_TOK], seq[N_TOK];
    for (int t = 0; t < N_TOK; t++) {
        tok[t] = (int32_t)((t * 104729u + 7) % (unsigned)m->hp.n_vocab);
        pos[t] = t;
        seq[t] = 0;
    }
    size_t dim = (size_t)m->hp.dim, n = N_TOK * dim;
    float *x = xmalloc(n * sizeof *x), *y = xmalloc(n * sizeof *y), *x0 = xmalloc(n * sizeof *x0);
    for (int t = 0; t < N_TOK; t++) model_embed(m, tok[t], x + t * dim);
    memcpy(y, x, n * sizeof *x);
    fwd_batch b = {N_TOK, tok, pos, seq, NULL};
    forward_ctx *fp = forward_new(m, &plain, 1, N_TOK, pl), *fd = forward_new(m, &damped, 1, N_TOK, pl);
    /* positions: 0 | 1 2 (first traversal) | 1 2 (second) | 3 .. N-1 */
    const float h = 0.5f;
    assert_int_equal(forward_layers(fp, &b, x, 0, 1), 0);
    for (int trav = 0; trav < 2; trav++) {
        memcpy(x0, x, n * sizeof *x);
        assert_int_equal(forward_layers(fp, &b, x, 1 + 2 * trav, 3 + 2 * trav), 0);
        for (size_t i = 0; i < n; i++) x[i] = x0[i] + h * (x[i] - x0[i]);
    }
    assert_int_equal(forward_layers(fp, &b, x, 5, plain.n), 0);
    /* the damped context in uneven pieces: a traversal may span calls */
    assert_int_equal(forward_layers(fd, &b, y, 0, 2), 0);
    assert_int_equal(forward_layers(fd, &b, y, 2, 4), 0);
    assert_int_equal(forward_layers(fd, &b, y, 4, damped.n), 0);
    if (memcmp(x, y, n * sizeof *x)) fail_msg("@euler differs from the traversal rule done by hand (%d layers)", m->hp.n_layers);
    forward_free(fp);
    forward_free(fd);
    free(x); free(y); free(x0);
    path_free(&plain);
    path_free(&damped);
}

/* A damped traversal that ends at the path's last position, where rows that
 * want no logits are dropped after their K and V: the wanted rows keep the
 * bits of the untrimmed pass (the kept rows' entry states are found by
 * sequence and position, not by row). */
static void euler_trimmed(const model *m, pool *pl) {
    char spec[32];
    snprintf(spec, sizeof spec, "%d,%d@euler", m->hp.n_layers - 2, m->hp.n_layers);
    layer_path p;
    parse(spec, NULL, m->hp.n_layers, &p);
    int32_t tok[N_TOK], pos[N_TOK], seq[N_TOK];
    bool want[N_TOK];
    for (int t = 0; t < N_TOK; t++) {
        tok[t] = (int32_t)((t * 31u + 5) % (unsigned)m->hp.n_vocab);
        pos[t] = t;
        seq[t] = 0;
        want[t] = t == 3 || t == N_TOK - 1;
    }
    size_t V = (size_t)m->hp.n_vocab;
    float *all = xmalloc(N_TOK * V * sizeof *all), *some = xmalloc(2 * V * sizeof *some);
    forward_ctx *f = forward_new(m, &p, 1, N_TOK, pl);
    fwd_batch b = {N_TOK, tok, pos, seq, NULL};
    assert_int_equal(forward_batch(f, &b, all), N_TOK);
    forward_free(f);
    f = forward_new(m, &p, 1, N_TOK, pl);
    b.want_logits = want;
    assert_int_equal(forward_batch(f, &b, some), 2);
    forward_free(f);
    if (memcmp(all + 3 * V, some, V * sizeof *all) || memcmp(all + (N_TOK - 1) * V, some + V, V * sizeof *all))
        fail_msg("%s: a trimmed last position changes the wanted rows' logits", spec);
    free(all);
    free(some);
    path_free(&p);
}

static void identities(const char *file) {
    model *m = model_load(file);
    if (!m) fail_msg("%s", rys_lasterr());
    pool *pl = pool_new(2);
    float *base = logits_of(m, pl, NULL, NULL), *plain = logits_of(m, pl, "1,3", NULL);
    float *one = logits_of(m, pl, "1,3@1", NULL), *zero = logits_of(m, pl, "1,3@0", NULL);
    float *e2 = logits_of(m, pl, "1,3@euler:2", NULL), *half = logits_of(m, pl, "1,3@0.5", NULL);
    float *lay = logits_of(m, pl, NULL, "0-2,1-2@0.5,3-3");
    expect_same_bits(m, one, plain, "@1 vs the unscaled path");
    expect_same_bits(m, zero, base, "@0 vs the baseline");
    expect_same_bits(m, e2, plain, "@euler:2 (h = 1) vs the unscaled path");
    /* the layers spelling of a 4-layer model's (1,3)@0.5 */
    if (m->hp.n_layers == 4) expect_same_bits(m, lay, half, "layers 0-2,1-2@0.5,3 vs blocks 1,3@0.5");
    /* a scale in between moves the logits, by less than the whole repeat does */
    double d_half = max_rel_diff(m, half, plain), d_rep = max_rel_diff(m, base, plain);
    if (!(d_half > 0 && d_half < d_rep))
        fail_msg("%s: @0.5 moves the logits by %.3g of max|logit|, the repeat itself by %.3g", file, d_half, d_rep);
    free(base); free(plain); free(one); free(zero); free(e2); free(half); free(lay);
    if (m->hp.n_layers >= 4) euler_by_hand(m, pl);
    euler_trimmed(m, pl);
    pool_free(pl);
    model_free(m);
}

static void test_forward_identities(void **s) {
    (void)s;
    identities("tests/data/tiny-llama.gguf");
    identities("tests/data/tiny-qwen2.gguf");
    identities("tests/data/tiny-qwen3.gguf");
    identities("tests/data/tiny-gemma3.gguf");
}

/* ---- the fold ------------------------------------------------------------- */

static uint32_t le32(const uint8_t *p) { return p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }

/* quant_scale_row on the golden rows of every format (real model blocks
 * included): a = 2 must give exactly twice every dequantized value whose
 * double the format holds (the golden rows include fp16's largest, 65504),
 * a = 0.3 each value within
 * fp16 rounding of its scale fields: 2^-10 of the row's largest |value|
 * (two fields of up to 2^-11 relative error each, K-quants' sub-block terms
 * bounded by the row's range). */
static void test_scale_row(void **s) {
    (void)s;
    static const char *const names[] = {"F32", "F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q4_K", "Q5_K", "Q6_K"};
    for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
        char path[256];
        snprintf(path, sizeof path, "tests/data/quant/%s.bin", names[k]);
        size_t len;
        char *file = read_file(path, &len);
        if (!file) fail_msg("%s", rys_lasterr());
        const uint8_t *p = (const uint8_t *)file;
        uint32_t type = le32(p + 8), n = le32(p + 12);
        size_t raw = quant_row_size(type, n);
        uint8_t *row = xmalloc(raw);
        float *before = xmalloc(n * sizeof *before), *after = xmalloc(n * sizeof *after);
        assert_int_equal(quant_dequantize_row(type, p + 24, before, n), 0);
        double top = 0;
        for (uint32_t i = 0; i < n; i++)
            if (isfinite(before[i])) top = fmax(top, fabs(before[i]));
        memcpy(row, p + 24, raw);
        assert_int_equal(quant_scale_row(type, row, n, 2.0f), 0);
        assert_int_equal(quant_dequantize_row(type, row, after, n), 0);
        for (uint32_t i = 0; i < n; i++)
            if (fabs(2.0 * before[i]) <= (type == QT_F32 || type == QT_BF16 ? 1e38 : 65504) &&
                (isnan(before[i]) ? !isnan(after[i]) : after[i] != 2.0f * before[i])) fail_msg("%s element %u: %.9g * 2 gave %.9g", names[k], i, before[i], after[i]);
        memcpy(row, p + 24, raw);
        assert_int_equal(quant_scale_row(type, row, n, 0.3f), 0);
        assert_int_equal(quant_dequantize_row(type, row, after, n), 0);
        double bound = 0.3 * top * (type == QT_F32 ? 1e-7 : type == QT_BF16 ? 1.0 / 128 : 1.0 / 1024);
        for (uint32_t i = 0; i < n; i++)
            if (isfinite(before[i]) && fabs(after[i] - 0.3 * before[i]) > bound)
                fail_msg("%s element %u: %.9g * 0.3 gave %.9g (bound %.3g)", names[k], i, before[i], after[i], bound);
        free(row); free(before); free(after); free(file);
    }
    uint8_t junk[64] = {0};
    assert_int_equal(quant_scale_row(QT_Q8_K, junk, 256, 0.5f), -1);
}

/* Materialized export of blocks@a run as a plain file against the scaled
 * path on the source, within bound of max|logit|. At a = 0.5 scales and
 * float weights halve exactly, except values that fall below fp16's normal
 * range (tiny-qwen2's F16 ffn_down holds some near 2e-6): 1e-6. */
static void fold_one(const char *file, const char *blocks, const char *scaled, float bound) {
    const char *out = test_tmp_path("fold.gguf");
    export_opts o = {.blocks = scaled};
    if (export_gguf(file, out, &o)) fail_msg("%s", rys_lasterr());
    model *src = model_load(file), *dst = model_load(out);
    if (!src || !dst) fail_msg("%s", rys_lasterr());
    pool *pl = pool_new(2);
    float *want = logits_of(src, pl, scaled, NULL), *got = logits_of(dst, pl, NULL, NULL);
    float *plain = logits_of(src, pl, blocks, NULL);
    double d = max_rel_diff(src, got, want);
    if (d > bound)
        fail_msg("%s: the folded export of %s differs from the scaled path by %.3g of max|logit|", file, scaled, d);
    /* and the fold did something: the unscaled path is elsewhere */
    assert_true(max_rel_diff(src, plain, want) > 10 * d);
    free(want); free(got); free(plain);
    pool_free(pl);
    model_free(src);
    model_free(dst);
    unlink(out);
}

static void test_fold_export(void **s) {
    (void)s;
    fold_one("tests/data/tiny-llama.gguf", "1,3", "1,3@0.5", 1e-6f);
    fold_one("tests/data/tiny-qwen2.gguf", "1,3", "1,3@0.5", 1e-6f);
    fold_one("tests/data/tiny-qwen3.gguf", "1,3", "1,3@0.5", 1e-6f);
    /* gemma3: the post-norm weights take the scale; a whole-stack block
     * keeps every layer's attention kind at its position */
    fold_one("tests/data/tiny-gemma3.gguf", "0,6", "0,6@0.5", 1e-6f);
    /* a scale that is no power of two: fp16 block scales round (2^-11) */
    fold_one("tests/data/tiny-llama.gguf", "1,3", "1,3@0.3", 1e-2f);

    /* @euler cannot be folded: refused with the reason, nothing written */
    const char *out = test_tmp_path("euler.gguf");
    export_opts o = {.blocks = "1,3@euler"};
    assert_int_equal(export_gguf("tests/data/tiny-llama.gguf", out, &o), -1);
    if (!strstr(rys_lasterr(), "--virtual")) fail_msg("%s", rys_lasterr());
    assert_int_equal(access(out, F_OK), -1);
    /* the virtual export keeps it, and reads back as the same path */
    o.virtual_path = true;
    assert_int_equal(export_gguf("tests/data/tiny-llama.gguf", out, &o), 0);
    gguf_file *g = gguf_open(out);
    assert_non_null(g);
    layer_path got, want;
    assert_int_equal(export_read_virtual_path(g, &got), 1);
    parse("1,3@euler", NULL, 4, &want);
    assert_true(path_equal(&got, &want));
    path_free(&got);
    path_free(&want);
    gguf_close(g);
    unlink(out);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keys),         cmocka_unit_test(test_refusals),   cmocka_unit_test(test_forward_identities),
        cmocka_unit_test(test_scale_row),    cmocka_unit_test(test_fold_export),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
