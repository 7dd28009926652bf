/* Sampling: the greedy pick against the one-pass definition (first index of
 * the maximum, NaN never wins) on awkward inputs, the seeded sampler's
 * reproducibility and its limits (top_p -> greedy, one dominant logit), and
 * its distribution: many draws against the tempered softmax, top-p
 * renormalised over the smallest prefix whose mass reaches top_p, by a
 * chi-square test. */
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

/* ---- the sampler's distribution --------------------------------------------- */

/* Q(a, x) = Gamma(a, x) / Gamma(a), the regularized upper incomplete gamma
 * function: a series for P below a + 1, Lentz's continued fraction above
 * (Numerical Recipes 6.2). The chi-square survival function is Q(df/2, x/2). */
static double gamma_q(double a, double x) {
    if (x <= 0) return 1.0;
    double lg = lgamma(a);
    if (x < a + 1) {
        double ap = a, del = 1.0 / a, sum = del;
        for (int n = 0; n < 1000 && fabs(del) > fabs(sum) * 1e-16; n++) { ap += 1; del *= x / ap; sum += del; }
        return 1.0 - sum * exp(-x + a * log(x) - lg);
    }
    const double tiny = 1e-300;
    double b = x + 1 - a, c = 1 / tiny, d = 1 / b, h = d;
    for (int i = 1; i < 1000; i++) {
        double an = -i * (i - a);
        b += 2;
        d = an * d + b;
        if (fabs(d) < tiny) d = tiny;
        c = b + an / c;
        if (fabs(c) < tiny) c = tiny;
        d = 1 / d;
        double del = d * c;
        h *= del;
        if (fabs(del - 1) < 1e-16) break;
    }
    return exp(-x + a * log(x) - lg) * h;
}

/* gamma_q itself against the closed form for integer a (even degrees of
 * freedom): Q(k, x) = exp(-x) sum_{i<k} x^i / i!. */
static void test_gamma_q(void **state) {
    (void)state;
    for (int k = 1; k <= 8; k++)
        for (double x = 0.25; x < 80; x *= 1.7) {
            double term = 1, sum = 0;
            for (int i = 0; i < k; i++) { sum += term; term *= x / (i + 1); }
            double want = exp(-x) * sum, got = gamma_q(k, x);
            if (fabs(got - want) > 1e-12 * want + 1e-300)
                fail_msg("Q(%d, %g) = %.17g, closed form %.17g", k, x, got, want);
        }
    /* chi-square, 1 degree of freedom: Q(1/2, x/2) = erfc(sqrt(x/2)) */
    for (double x = 0.1; x < 60; x *= 1.9)
        if (fabs(gamma_q(0.5, x / 2) - erfc(sqrt(x / 2))) > 1e-12 * erfc(sqrt(x / 2)))
            fail_msg("Q(1/2, %g) = %.17g, erfc %.17g", x / 2, gamma_q(0.5, x / 2), erfc(sqrt(x / 2)));
}

/* The distribution the sampler must draw from, computed here in double from
 * the definition: p_i = exp(l_i / T) / sum_j exp(l_j / T); with top_p < 1, the
 * tokens by descending p, the smallest prefix whose mass reaches top_p kept
 * and renormalised, the rest 0 (top-p over the tempered distribution, as
 * transformers' warpers order it; llama.cpp's default chain cuts before the
 * temperature, which case 5 below tells apart). Returns how many are kept.
 * Requires distinct
 * probabilities and the cut far from top_p (margin), so that float rounding
 * in the sampler cannot move it. */
static int reference_dist(const float *logits, int n, float temperature, float top_p, double *want) {
    double mx = -INFINITY, sum = 0;
    for (int i = 0; i < n; i++) mx = logits[i] > mx ? logits[i] : mx;
    for (int i = 0; i < n; i++) sum += want[i] = exp(((double)logits[i] - mx) / (double)temperature);
    for (int i = 0; i < n; i++) want[i] /= sum;
    if (top_p >= 1.0f) return n;
    int order[64];
    assert_true(n <= 64);
    for (int i = 0; i < n; i++) order[i] = i;
    for (int i = 1; i < n; i++)   /* insertion sort by descending probability */
        for (int j = i; j > 0 && want[order[j]] > want[order[j - 1]]; j--) { int t = order[j]; order[j] = order[j - 1]; order[j - 1] = t; }
    double c = 0, before = 0;
    int keep = n;
    for (int i = 0; i < n; i++) {
        before = c;
        c += want[order[i]];
        if (c >= top_p) { keep = i + 1; break; }
    }
    /* the test's cases keep the cut well clear of top_p */
    assert_true(keep >= 2 && keep < n);
    assert_true(top_p - before > 0.02 && c - top_p > 0.02);
    for (int i = keep; i < n; i++) want[order[i]] = 0;
    for (int i = 0; i < n; i++) want[i] /= c;
    return keep;
}

/* N draws of sample_token at (temperature, top_p) against reference_dist:
 * no draw outside the kept set, and Pearson's chi-square over the kept
 * tokens (those expected fewer than 20 times pooled into one cell) with a
 * p-value above 1e-6. The seed is fixed, so the outcome is reproducible; a
 * correct sampler fails with probability 1e-6 over seeds, while the
 * distributions a wrong sampler draws from (argmax only, temperature
 * ignored, one token too many or too few kept by top-p) differ from the
 * reference by chi-square values in the thousands at this N. */
static void check_distribution(const float *logits, int n, float temperature, float top_p, uint64_t seed) {
    enum { N = 40000 };
    double want[64];
    int keep = reference_dist(logits, n, temperature, top_p, want);
    long count[64] = {0};
    sample_params sp = {temperature, top_p, seed, 1};
    rng_state r;
    rng_seed(&r, seed);
    for (int k = 0; k < N; k++) {
        int32_t t = sample_token(logits, n, &sp, &r);
        if (t < 0 || t >= n) fail_msg("T=%g top_p=%g: token %d outside the vocabulary", temperature, top_p, t);
        count[t]++;
    }
    double chi2 = 0, pooled_want = 0;
    long pooled_got = 0;
    int cells = 0;
    for (int i = 0; i < n; i++) {
        if (want[i] == 0) {
            if (count[i]) fail_msg("T=%g top_p=%g: token %d drawn %ld times, outside the top-p set of %d", temperature, top_p, i, count[i], keep);
            continue;
        }
        double e = N * want[i];
        if (e < 20) { pooled_want += e; pooled_got += count[i]; continue; }
        chi2 += (count[i] - e) * (count[i] - e) / e;
        cells++;
    }
    if (pooled_want > 0) {
        chi2 += (pooled_got - pooled_want) * (pooled_got - pooled_want) / pooled_want;
        cells++;
    }
    assert_true(cells >= 2);
    double p = gamma_q((cells - 1) / 2.0, chi2 / 2);
    if (getenv("RYS_TEST_VERBOSE"))
        fprintf(stderr, "T=%g top_p=%g: %d kept, chi2 %.2f on %d df, p %.3g\n", temperature, top_p, keep, chi2, cells - 1, p);
    if (!(p > 1e-6)) {
        char buf[1024];
        int len = 0;
        for (int i = 0; i < n && len < 900; i++) len += snprintf(buf + len, sizeof buf - len, " %d:%ld/%.0f", i, count[i], N * want[i]);
        fail_msg("T=%g top_p=%g (%d kept): chi-square %.1f on %d df, p = %.3g < 1e-6; drawn/expected:%s", temperature,
                 top_p, keep, chi2, cells - 1, p, buf);
    }
}

static void test_sampler_distribution(void **state) {
    (void)state;
    /* distinct logits, the largest not first, so the sort matters */
    static const float x[10] = {0.3f, 2.1f, -1.0f, 1.4f, 0.9f, -0.2f, 1.8f, -2.5f, 0.6f, 1.1f};
    static const struct { float temperature, top_p; } cases[] = {
        {1.0f, 1.0f},     /* the softmax itself */
        {0.6f, 1.0f},     /* sharper */
        {1.7f, 1.0f},     /* flatter */
        {0.8f, 0.75f},    /* tempered mass 0.71 after 3 tokens, 0.81 after 4: keeps 4 */
        {1.7f, 0.45f},    /* 0.38 after 2, 0.52 after 3: keeps 3 (at T = 1 it would keep 2) */
        {1.0f, 0.88f},    /* 0.84 after 5, 0.91 after 6: keeps 6 */
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++)
        check_distribution(x, 10, cases[k].temperature, cases[k].top_p, 1000 + k);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_argmax_matches_definition), cmocka_unit_test(test_sampler),
                                       cmocka_unit_test(test_gamma_q), cmocka_unit_test(test_sampler_distribution)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
