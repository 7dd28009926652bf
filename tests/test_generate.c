/* Sampling: the greedy pick against the one-pass definition (first index of
 * the maximum, NaN never wins) on awkward inputs, and the seeded sampler's
 * reproducibility and its limits (top_p -> greedy, one dominant logit). */
#include "testutil.h"

#include "engine/generate.h"

#include <math.h>
#include <string.h>

static int32_t argmax_one_pass(const float *x, int n) {
    int32_t best = 0;
    for (int i = 1; i < n; i++) if (x[i] > x[best]) best = i;
    return best;
}

static void test_argmax_matches_definition(void **state) {
    (void)state;
    enum { N = 1000 };
    float x[N];
    rng_state r;
    rng_seed(&r, 7);
    for (int trial = 0; trial < 400; trial++) {
        int n = 1 + (int)(rng_uniform(&r) * N);
        /* few distinct values so ties are common; signed zeros and NaNs sprinkled in */
        for (int i = 0; i < n; i++) x[i] = (float)((int)(rng_uniform(&r) * 9) - 4);
        int kind = trial % 5;
        if (kind == 1) for (int i = 0; i < n; i++) x[i] = rng_uniform(&r) < 0.5 ? 0.0f : -0.0f;
        if (kind == 2) x[(int)(rng_uniform(&r) * n)] = NAN;
        if (kind == 3) x[0] = NAN;
        if (kind == 4) x[n - 1] = 100.0f;   /* the maximum in the scalar tail */
        assert_int_equal(sample_argmax(x, n), argmax_one_pass(x, n));
    }
    float all_nan[20];
    for (int i = 0; i < 20; i++) all_nan[i] = NAN;
    assert_int_equal(sample_argmax(all_nan, 20), 0);
    float neg_inf[3] = {-INFINITY, -INFINITY, -INFINITY};
    assert_int_equal(sample_argmax(neg_inf, 3), 0);
}

static void test_sampler(void **state) {
    (void)state;
    float x[64];
    for (int i = 0; i < 64; i++) x[i] = (float)(i % 7) * 0.3f;
    sample_params sp = {0.8f, 0.95f, 42, 1};
    rng_state a, b;
    rng_seed(&a, 42);
    rng_seed(&b, 42);
    for (int k = 0; k < 50; k++) assert_int_equal(sample_token(x, 64, &sp, &a), sample_token(x, 64, &sp, &b));
    sp.top_p = 1e-6f;   /* only the most likely token survives */
    for (int k = 0; k < 20; k++) assert_int_equal(sample_token(x, 64, &sp, &a), argmax_one_pass(x, 64));
    sp.top_p = 1.0f;
    x[33] = 80.0f;      /* exp(80 / 0.8 - ...) dwarfs the rest */
    for (int k = 0; k < 20; k++) assert_int_equal(sample_token(x, 64, &sp, &a), 33);
    sp.temperature = 0;
    assert_int_equal(sample_token(x, 64, &sp, &a), 33);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_argmax_matches_definition), cmocka_unit_test(test_sampler)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
