/* The mixture-of-experts feed-forward (engine/moe.c): the router's choice
 * and weights against values worked out by hand, and the grouped-by-expert
 * batch against a plain per-token loop in double precision written here
 * (router product, softmax, top-k, renormalisation, each chosen expert's
 * SwiGLU, the weighted sum), with several tokens per expert, unchosen
 * experts, and a batch split across two threads. The end-to-end numbers
 * against llama.cpp are tests/ref/check_moe.py's. */
#include "testutil.h"

#include "engine/moe.h"
#include "base/pool.h"
#include "base/util.h"

#include <math.h>

/* logits 1, 3, 2, 0 and k = 2: experts 1 then 2, weights e^3 / (e^3 + e^2)
 * = 1 / (1 + e^-1) and 1 / (1 + e). */
static void route_by_hand(void **state) {
    (void)state;
    float logits[] = {1, 3, 2, 0}, probs[4], w[2];
    int chosen[2];
    moe_route(logits, 4, 2, probs, chosen, w);
    assert_int_equal(chosen[0], 1);
    assert_int_equal(chosen[1], 2);
    assert_true(fabs(w[0] - 1 / (1 + exp(-1.0))) < 1e-6);
    assert_true(fabs(w[1] - 1 / (1 + exp(1.0))) < 1e-6);
    /* the probabilities before renormalisation are the softmax */
    double z = exp(1) + exp(3) + exp(2) + exp(0);
    for (int e = 0; e < 4; e++) assert_true(fabs(probs[e] - exp(logits[e]) / z) < 1e-6);
    /* all k experts: weights equal the softmax itself; a tie goes to the lower index */
    float tie[] = {2, 5, 5}, p3[3], w3[3];
    int c3[3];
    moe_route(tie, 3, 3, p3, c3, w3);
    assert_int_equal(c3[0], 1);
    assert_int_equal(c3[1], 2);
    assert_int_equal(c3[2], 0);
    double z3 = exp(2) + 2 * exp(5);
    assert_true(fabs(w3[0] - exp(5) / z3) < 1e-6 && fabs(w3[2] - exp(2) / z3) < 1e-6);
}

enum { DIM = 32, NE = 8, K = 3, FFN = 16, NT = 40 };

static double randn(uint64_t *s) {
    /* xorshift64* to two uniforms, Box-Muller */
    double u[2];
    for (int i = 0; i < 2; i++) {
        *s ^= *s >> 12; *s ^= *s << 25; *s ^= *s >> 27;
        u[i] = ((*s * 2685821657736338717ull) >> 11) * (1.0 / 9007199254740992.0);
    }
    return sqrt(-2 * log(u[0] + 1e-300)) * cos(6.283185307179586 * u[1]);
}

static void fill(float *a, size_t n, double scale, uint64_t *s) {
    for (size_t i = 0; i < n; i++) a[i] = (float)(scale * randn(s));
}

/* y[o] = sum_i W[o][i] x[i] in double */
static void matvec(const float *W, int n_out, int n_in, const double *x, double *y) {
    for (int o = 0; o < n_out; o++) {
        double acc = 0;
        for (int i = 0; i < n_in; i++) acc += (double)W[(size_t)o * n_in + i] * x[i];
        y[o] = acc;
    }
}

/* One token's feed-forward, the textbook way. */
static void reference_token(const float *router, const float *gate, const float *up, const float *down,
                            const float *x, double *out) {
    double xd[DIM], logits[NE], p[NE], g[FFN], u[FFN], h[FFN], y[DIM];
    for (int i = 0; i < DIM; i++) xd[i] = x[i];
    matvec(router, NE, DIM, xd, logits);
    double max = logits[0], z = 0;
    for (int e = 1; e < NE; e++) max = fmax(max, logits[e]);
    for (int e = 0; e < NE; e++) z += p[e] = exp(logits[e] - max);
    for (int e = 0; e < NE; e++) p[e] /= z;
    int chosen[K];
    double sum = 0;
    for (int r = 0; r < K; r++) {
        int best = -1;
        for (int e = 0; e < NE; e++) {
            int taken = 0;
            for (int q = 0; q < r; q++) taken |= chosen[q] == e;
            if (!taken && (best < 0 || p[e] > p[best])) best = e;
        }
        chosen[r] = best;
        sum += p[best];
    }
    memset(out, 0, DIM * sizeof *out);
    for (int r = 0; r < K; r++) {
        int e = chosen[r];
        matvec(gate + (size_t)e * FFN * DIM, FFN, DIM, xd, g);
        matvec(up + (size_t)e * FFN * DIM, FFN, DIM, xd, u);
        for (int i = 0; i < FFN; i++) h[i] = g[i] / (1 + exp(-g[i])) * u[i];
        matvec(down + (size_t)e * DIM * FFN, DIM, FFN, h, y);
        for (int i = 0; i < DIM; i++) out[i] += p[e] / sum * y[i];
    }
}

static quant_matrix f32_matrix(const float *data, int n_in, int n_out) {
    return (quant_matrix){.type = QT_F32, .n_in = n_in, .n_out = n_out, .data = data};
}

/* moe_ffn over a batch of NT tokens, with 1 and 2 threads, against the
 * per-token reference; then token by token (a decode step's batch of one)
 * must give each token's row of the batch exactly. */
static void batch_matches_per_token(void **state) {
    (void)state;
    uint64_t s = 0x9e3779b97f4a7c15ull;
    float *router = xmalloc(sizeof(float) * NE * DIM), *gate = xmalloc(sizeof(float) * NE * FFN * DIM);
    float *up = xmalloc(sizeof(float) * NE * FFN * DIM), *down = xmalloc(sizeof(float) * NE * DIM * FFN);
    float *x = xmalloc(sizeof(float) * NT * DIM), *out = xmalloc(sizeof(float) * NT * DIM);
    float *one = xmalloc(sizeof(float) * DIM);
    fill(router, (size_t)NE * DIM, 1.5 / sqrt(DIM), &s);
    fill(gate, (size_t)NE * FFN * DIM, 1 / sqrt(DIM), &s);
    fill(up, (size_t)NE * FFN * DIM, 1 / sqrt(DIM), &s);
    fill(down, (size_t)NE * DIM * FFN, 1 / sqrt(FFN), &s);
    fill(x, (size_t)NT * DIM, 1, &s);

    layer_weights L = {.router = f32_matrix(router, DIM, NE)};
    quant_matrix g[NE], u[NE], d[NE];
    for (int e = 0; e < NE; e++) {
        g[e] = f32_matrix(gate + (size_t)e * FFN * DIM, DIM, FFN);
        u[e] = f32_matrix(up + (size_t)e * FFN * DIM, DIM, FFN);
        d[e] = f32_matrix(down + (size_t)e * DIM * FFN, FFN, DIM);
    }
    L.gate_exps = g;
    L.up_exps = u;
    L.down_exps = d;
    model_hparams hp = {.dim = DIM, .n_expert = NE, .n_expert_used = K, .expert_ffn_dim = FFN};
    moe_scratch *ms = moe_new(&hp, NT);

    /* the batch spreads over the experts: each used by several tokens, not all by all */
    int uses[NE] = {0};
    float lg[NE], pr[NE], w[K];
    int ch[K];
    for (int t = 0; t < NT; t++) {
        double xd[DIM], ld[NE];
        for (int i = 0; i < DIM; i++) xd[i] = x[t * DIM + i];
        matvec(router, NE, DIM, xd, ld);
        for (int e = 0; e < NE; e++) lg[e] = (float)ld[e];
        moe_route(lg, NE, K, pr, ch, w);
        for (int r = 0; r < K; r++) uses[ch[r]]++;
    }
    int busy = 0;
    for (int e = 0; e < NE; e++) busy += uses[e] >= 2;
    assert_true(busy >= NE / 2);

    for (int threads = 1; threads <= 2; threads++) {
        pool *p = pool_new(threads);
        moe_ffn(ms, &L, x, NT, out, p);
        double worst = 0, scale = 0;
        for (int t = 0; t < NT; t++) {
            double ref[DIM];
            reference_token(router, gate, up, down, x + t * DIM, ref);
            for (int i = 0; i < DIM; i++) {
                worst = fmax(worst, fabs(out[t * DIM + i] - ref[i]));
                scale = fmax(scale, fabs(ref[i]));
            }
        }
        assert_true(scale > 0.1);
        if (worst > 1e-5 * scale) fail_msg("%d threads: max|diff| %g of max %g", threads, worst, scale);
        for (int t = 0; t < NT; t++) {
            moe_ffn(ms, &L, x + t * DIM, 1, one, p);
            assert_memory_equal(one, out + t * DIM, DIM * sizeof(float));
        }
        pool_free(p);
    }
    moe_free(ms);
    free(router); free(gate); free(up); free(down); free(x); free(out); free(one);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(route_by_hand),
        cmocka_unit_test(batch_matches_per_token),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
