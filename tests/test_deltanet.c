/* The Gated DeltaNet mixer's recurrent state (engine/deltanet.c) on a
 * one-layer model built here with random F32 weights: a prompt run in one
 * batch and the same prompt run in pieces (the state carried between
 * calls) give the same bits; a token that does not continue its sequence's
 * state is refused, position 0 restarting it; a sequence copied at the
 * length its state holds continues exactly as the original, and a copy at
 * another length is refused. The numbers themselves are checked against
 * llama.cpp by tests/ref/check_qwen35.py. */
#include "testutil.h"

#include "engine/deltanet.h"
#include "base/util.h"

#include <math.h>

enum { DIM = 16, S = 4, NK = 1, NV = 2, DCONV = 3, KEY = S * NK, VAL = S * NV, CONV = 2 * KEY + VAL, NT = 7 };

static float *rnd(size_t n, double scale, uint64_t *s) {
    float *a = xmalloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) {
        *s = *s * 6364136223846793005ull + 1442695040888963407ull;
        a[i] = (float)(scale * ((double)(*s >> 11) / 9007199254740992.0 * 2 - 1));
    }
    return a;
}

static quant_matrix f32(const float *d, int n_in, int n_out) {
    return (quant_matrix){.type = QT_F32, .n_in = n_in, .n_out = n_out, .data = d};
}

typedef struct {
    model m;
    layer_weights L;
    layer_path path;
    int layer0;
    float *w[9];
} fixture;

static void fixture_init(fixture *fx) {
    uint64_t s = 12345;
    memset(fx, 0, sizeof *fx);
    float **w = fx->w;
    w[0] = rnd((size_t)CONV * DIM, 0.5, &s);
    w[1] = rnd((size_t)VAL * DIM, 0.5, &s);
    w[2] = rnd((size_t)NV * DIM, 0.5, &s);
    w[3] = rnd((size_t)NV * DIM, 0.5, &s);
    w[4] = rnd((size_t)DIM * VAL, 0.5, &s);
    fx->L.recurrent = true;
    fx->L.ssm_qkv = f32(w[0], DIM, CONV);
    fx->L.ssm_z = f32(w[1], DIM, VAL);
    fx->L.ssm_beta = f32(w[2], DIM, NV);
    fx->L.ssm_alpha = f32(w[3], DIM, NV);
    fx->L.ssm_out = f32(w[4], VAL, DIM);
    fx->L.ssm_conv = w[5] = rnd((size_t)CONV * DCONV, 0.7, &s);
    fx->L.ssm_dt = w[6] = rnd(NV, 0.5, &s);
    fx->L.ssm_a = w[7] = rnd(NV, 1.0, &s);
    for (int h = 0; h < NV; h++) fx->L.ssm_a[h] = -fabsf(fx->L.ssm_a[h]) - 0.1f;
    fx->L.ssm_norm = w[8] = rnd(S, 0.2, &s);
    for (int j = 0; j < S; j++) fx->L.ssm_norm[j] += 1;
    fx->m.hp = (model_hparams){.n_layers = 1, .dim = DIM, .rms_eps = 1e-6f, .ssm_d_conv = DCONV, .ssm_s = S,
                               .ssm_n_k = NK, .ssm_n_v = NV};
    fx->m.layers = &fx->L;
    fx->path = (layer_path){.layers = &fx->layer0, .n = 1, .n_model = 1};
}

static void fixture_free(fixture *fx) {
    for (int i = 0; i < 9; i++) free(fx->w[i]);
}

static void pieces_equal_one_batch(void **state) {
    (void)state;
    fixture fx;
    fixture_init(&fx);
    uint64_t s = 99;
    float *x = rnd((size_t)NT * DIM, 1.0, &s), whole[NT * DIM], part[NT * DIM];
    int32_t seq[NT] = {0}, pos[NT];
    for (int t = 0; t < NT; t++) pos[t] = t;

    dn_cache *a = dn_new(&fx.m, &fx.path, 2, NT), *b = dn_new(&fx.m, &fx.path, 2, NT);
    assert_true(dn_slot_recurrent(a, 0));
    assert_int_equal(dn_check(a, 0, 1, NT, seq, pos), 0);
    dn_layer(a, 0, &fx.L, x, NT, seq, pos, whole, NULL);
    /* 3 tokens, then 1, then 3: the state carries the past */
    int cuts[] = {0, 3, 4, NT};
    for (int c = 0; c < 3; c++) {
        int t0 = cuts[c], n = cuts[c + 1] - cuts[c];
        assert_int_equal(dn_check(b, 0, 1, n, seq + t0, pos + t0), 0);
        dn_layer(b, 0, &fx.L, x + t0 * DIM, n, seq + t0, pos + t0, part + t0 * DIM, NULL);
    }
    assert_memory_equal(whole, part, sizeof whole);
    double mx = 0;
    for (int i = 0; i < NT * DIM; i++) mx = fmax(mx, fabs(whole[i]));
    assert_true(mx > 1e-3 && isfinite(mx));
    /* a later token's output depends on the past: rerun token 5 alone from a fresh start */
    float alone[DIM];
    int32_t p0 = 0;
    dn_layer(b, 0, &fx.L, x + 5 * DIM, 1, seq, &p0, alone, NULL);
    assert_true(memcmp(alone, whole + 5 * DIM, sizeof alone) != 0);
    dn_free(a);
    dn_free(b);
    free(x);
    fixture_free(&fx);
}

static void order_and_copies(void **state) {
    (void)state;
    fixture fx;
    fixture_init(&fx);
    uint64_t s = 7;
    float *x = rnd((size_t)NT * DIM, 1.0, &s), out[NT * DIM], o0[DIM], o1[DIM];
    int32_t seq[NT] = {0}, pos[NT];
    for (int t = 0; t < NT; t++) pos[t] = t;
    dn_cache *c = dn_new(&fx.m, &fx.path, 2, NT);
    dn_layer(c, 0, &fx.L, x, 4, seq, pos, out, NULL);       /* sequence 0 holds 4 tokens */
    int32_t skip = 5, same = 3, restart = 0, next = 4;
    assert_int_equal(dn_check(c, 0, 1, 1, seq, &skip), -1);
    assert_non_null(strstr(rys_lasterr(), "holds 4 tokens"));
    assert_int_equal(dn_check(c, 0, 1, 1, seq, &same), -1);
    assert_int_equal(dn_check(c, 0, 1, 1, seq, &restart), 0);
    assert_int_equal(dn_check(c, 0, 1, 1, seq, &next), 0);
    /* copies: only at the length the state holds */
    assert_int_equal(dn_copy_seq(c, 0, 1, 0, 1, 3), -1);
    assert_int_equal(dn_copy_seq(c, 0, 1, 0, 1, 4), 0);
    int32_t one = 1;
    dn_layer(c, 0, &fx.L, x + 4 * DIM, 1, seq, &next, o0, NULL);
    dn_layer(c, 0, &fx.L, x + 4 * DIM, 1, &one, &next, o1, NULL);
    assert_memory_equal(o0, o1, sizeof o0);
    /* and the continuation equals the one-batch run's token 4 */
    float whole[NT * DIM];
    dn_cache *d = dn_new(&fx.m, &fx.path, 1, NT);
    dn_layer(d, 0, &fx.L, x, 5, seq, pos, whole, NULL);
    assert_memory_equal(o0, whole + 4 * DIM, sizeof o0);
    dn_free(c);
    dn_free(d);
    free(x);
    fixture_free(&fx);
}

/* A state read from one cache and written into another (what a scan's
 * configuration does with the baseline's states after the prompts)
 * continues exactly as the original; positions without a state refuse. */
static void state_read_write(void **state) {
    (void)state;
    fixture fx;
    fixture_init(&fx);
    uint64_t s = 31;
    float *x = rnd((size_t)NT * DIM, 1.0, &s), whole[NT * DIM], first[NT * DIM], o[DIM];
    int32_t seq[NT] = {0}, pos[NT];
    for (int t = 0; t < NT; t++) pos[t] = t;
    dn_cache *a = dn_new(&fx.m, &fx.path, 1, NT), *b = dn_new(&fx.m, &fx.path, 2, NT);
    dn_layer(a, 0, &fx.L, x, NT, seq, pos, whole, NULL);   /* the reference: all NT in one batch */
    dn_cache *c = dn_new(&fx.m, &fx.path, 1, NT);
    dn_layer(c, 0, &fx.L, x, 4, seq, pos, first, NULL);    /* 4 tokens absorbed */
    size_t n = dn_state_floats(c);
    assert_int_equal(n, (size_t)(DCONV - 1) * CONV + (size_t)NV * S * S);
    float *buf = xmalloc(n * sizeof *buf);
    int held;
    assert_int_equal(dn_state_read(c, 0, 0, buf, &held), 0);
    assert_int_equal(held, 4);
    assert_int_equal(dn_state_write(b, 0, 1, buf, held), 0);  /* into another cache's sequence 1 */
    int32_t one = 1, next = 4;
    dn_layer(b, 0, &fx.L, x + 4 * DIM, 1, &one, &next, o, NULL);
    assert_memory_equal(o, whole + 4 * DIM, sizeof o);
    int32_t skip = 6;
    assert_int_equal(dn_check(b, 0, 1, 1, &one, &skip), -1);   /* it holds 5 now */
    assert_int_equal(dn_state_read(c, 1, 0, buf, &held), -1);  /* no position 1 */
    assert_int_equal(dn_state_write(b, 0, 2, buf, 4), -1);     /* no sequence 2 */
    assert_int_equal(dn_state_floats(NULL), 0);
    free(buf);
    dn_free(a);
    dn_free(b);
    dn_free(c);
    free(x);
    fixture_free(&fx);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pieces_equal_one_batch),
        cmocka_unit_test(order_and_copies),
        cmocka_unit_test(state_read_write),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
