/* Sampling: the greedy pick against the one-pass definition (first index of
 * the maximum, NaN never wins) on awkward inputs, the seeded sampler's
 * reproducibility and its limits (top_p -> greedy, one dominant logit), and
 * its distribution: many draws against the tempered softmax, top-p
 * renormalised over the smallest prefix whose mass reaches top_p, by a
 * chi-square test.
 * The decode loop on the tiny model: the loop as it was before runners (kept
 * here as the reference) gives the same tokens, sampled ones included; each
 * sequence's own limit gives what a run of it alone with that limit gives;
 * and a runner that orders its rows its own way changes nothing. */
#define TINY_FIXTURE_LAYERS 4
#include "testutil.h"
#include "tiny_loaded.h"

#include "engine/forward.h"
#include "engine/generate.h"
#include "engine/path.h"

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

/* ---- the decode loop -------------------------------------------------------- */

#define N_SEQ 5
#define N_CTX 64

static const char *const texts[N_SEQ] = {"hello world", "a", "The quick brown fox jumps over the lazy dog.",
                                         "<|im_start|>user\nhi<|im_end|>\n", "12345"};

typedef struct {
    int32_t *ids[N_SEQ];
    int lens[N_SEQ];
} prompts;

static void encode_all(const tokenizer *tok, prompts *p) {
    for (int s = 0; s < N_SEQ; s++) {
        size_t n;
        assert_int_equal(tokenizer_encode(tok, texts[s], strlen(texts[s]), true, true, &p->ids[s], &n), 0);
        p->lens[s] = (int)n;
    }
}

static void free_all(prompts *p) {
    for (int s = 0; s < N_SEQ; s++) free(p->ids[s]);
}

static void assert_same_outputs(const gen_output *a, const gen_output *b, int n) {
    for (int s = 0; s < n; s++) {
        assert_int_equal(a[s].n, b[s].n);
        assert_int_equal(a[s].hit_eog, b[s].hit_eog);
        assert_memory_equal(a[s].tokens, b[s].tokens, (size_t)a[s].n * sizeof(int32_t));
    }
}

/* The generation loop as generate() ran it before the loop took runners:
 * one prefill batch, then one forward_batch per step over the going
 * sequences in id order. */
static int reference_generate(forward_ctx *f, const tokenizer *tok, const int32_t *const *ps, const int *lens, int n,
                              const sample_params *sp, gen_output *out) {
    int n_vocab = tokenizer_n_vocab(tok), total = 0;
    for (int s = 0; s < n; s++) total += lens[s];
    int cap = total > n ? total : n;
    int32_t *tokens = xmalloc((size_t)cap * sizeof *tokens), *pos = xmalloc((size_t)cap * sizeof *pos),
            *seq = xmalloc((size_t)cap * sizeof *seq);
    bool *want = xmalloc((size_t)cap * sizeof *want), *active = xmalloc((size_t)n * sizeof *active);
    float *logits = xmalloc((size_t)n * n_vocab * sizeof(float));
    int *cur_len = xmalloc((size_t)n * sizeof *cur_len), *row_of = xmalloc((size_t)n * sizeof *row_of);
    rng_state rng;
    rng_seed(&rng, sp->seed);
    int rc = -1, k = 0;
    for (int s = 0; s < n; s++) {
        out[s] = (gen_output){xmalloc((size_t)(sp->n_predict > 0 ? sp->n_predict : 1) * sizeof(int32_t)), 0, false, -1};
        for (int i = 0; i < lens[s]; i++, k++) {
            tokens[k] = ps[s][i];
            pos[k] = i;
            seq[k] = s;
            want[k] = i == lens[s] - 1;
        }
        cur_len[s] = lens[s];
        active[s] = sp->n_predict > 0;
        row_of[s] = s;
    }
    fwd_batch b = {k, tokens, pos, seq, want};
    if (forward_batch(f, &b, logits) < 0) goto done;
    for (int step = 0; step < sp->n_predict; step++) {
        k = 0;
        for (int s = 0; s < n; s++) {
            if (!active[s]) continue;
            int32_t t = sample_token(logits + (size_t)row_of[s] * n_vocab, n_vocab, sp, &rng);
            if (tokenizer_is_eog(tok, t)) { active[s] = false; out[s].hit_eog = true; continue; }
            out[s].tokens[out[s].n++] = t;
            if (out[s].n >= sp->n_predict) { active[s] = false; continue; }
            tokens[k] = t;
            pos[k] = cur_len[s]++;
            seq[k] = s;
            want[k] = true;
            row_of[s] = k++;
        }
        if (k == 0) break;
        fwd_batch d = {k, tokens, pos, seq, want};
        if (forward_batch(f, &d, logits) < 0) goto done;
    }
    rc = 0;
done:
    free(tokens); free(pos); free(seq); free(want); free(active); free(logits); free(cur_len); free(row_of);
    return rc;
}

static forward_ctx *fresh(const fixture *fx, int n_seq) {
    layer_path p;
    path_baseline(fx->m->hp.n_layers, &p);
    forward_ctx *f = forward_new(fx->m, &p, n_seq, N_CTX, fx->pool);
    assert_non_null(f);
    path_free(&p);
    return f;
}

static void test_loop_as_before(void **state) {
    fixture *fx = *state;
    prompts p;
    encode_all(fx->tok, &p);
    const sample_params params[] = {{0.0f, 1.0f, 0, 10}, {0.9f, 0.95f, 7, 10}, {1.5f, 1.0f, 3, 6}, {0.0f, 1.0f, 0, 0}};
    for (size_t i = 0; i < sizeof params / sizeof *params; i++) {
        gen_output want[N_SEQ], got[N_SEQ];
        forward_ctx *f = fresh(fx, N_SEQ);
        assert_int_equal(reference_generate(f, fx->tok, (const int32_t *const *)p.ids, p.lens, N_SEQ, &params[i], want), 0);
        forward_free(f);
        f = fresh(fx, N_SEQ);
        assert_int_equal(generate(f, fx->tok, (const int32_t *const *)p.ids, p.lens, N_SEQ, &params[i], got, NULL, NULL), 0);
        forward_free(f);
        assert_same_outputs(got, want, N_SEQ);
        gen_output_free(want, N_SEQ);
        gen_output_free(got, N_SEQ);
    }
    free_all(&p);
}

static void test_per_sequence_limits(void **state) {
    fixture *fx = *state;
    prompts p;
    encode_all(fx->tok, &p);
    const int limits[N_SEQ] = {3, 0, 11, 1, 7};
    gen_request rq = {N_SEQ, (const int32_t *const *)p.ids, p.lens, limits, NULL};
    sample_params sp = {0.0f, 1.0f, 0, 999};   /* n_predict is each sequence's own here */
    gen_output got[N_SEQ];
    forward_ctx *f = fresh(fx, N_SEQ);
    assert_int_equal(generate_seqs(f, fx->tok, &rq, &sp, got, NULL, NULL), 0);
    forward_free(f);
    for (int s = 0; s < N_SEQ; s++) {
        gen_output alone;
        sample_params one = {0.0f, 1.0f, 0, limits[s]};
        const int32_t *ids[1] = {p.ids[s]};
        f = fresh(fx, 1);
        assert_int_equal(generate(f, fx->tok, ids, &p.lens[s], 1, &one, &alone, NULL, NULL), 0);
        forward_free(f);
        assert_true(got[s].n <= limits[s]);
        assert_same_outputs(&got[s], &alone, 1);
        gen_output_free(&alone, 1);
    }
    gen_output_free(got, N_SEQ);
    /* a limit beyond the context is refused */
    int too_many[N_SEQ] = {3, 0, N_CTX, 1, 7};
    rq.n_predict = too_many;
    f = fresh(fx, N_SEQ);
    assert_int_equal(generate_seqs(f, fx->tok, &rq, &sp, got, NULL, NULL), -1);
    forward_free(f);
    free_all(&p);
}

/* A runner that runs each batch's rows in reverse order (the prompts one by
 * one, the last first), reporting where each row's logits went. */
typedef struct {
    forward_ctx *f;
    int n_vocab, steps;
} reversed_runner;

static int reversed_prefill(void *self, const gen_request *rq, float *logits, int *logit_row) {
    reversed_runner *r = self;
    for (int s = rq->n - 1, row = 0; s >= 0; s--, row++) {
        int len = rq->prompt_len[s];
        int32_t *pos = xmalloc((size_t)len * sizeof *pos), *seq = xmalloc((size_t)len * sizeof *seq);
        bool *want = xmalloc((size_t)len * sizeof *want);
        for (int i = 0; i < len; i++) {
            pos[i] = i;
            seq[i] = s;
            want[i] = i == len - 1;
        }
        fwd_batch b = {len, rq->prompts[s], pos, seq, want};
        int rows = forward_batch(r->f, &b, logits + (size_t)row * r->n_vocab);
        free(pos); free(seq); free(want);
        if (rows != 1) return -1;
        logit_row[s] = row;
    }
    return 0;
}

static int reversed_step(void *self, const fwd_batch *rows, float *logits, int *logit_row) {
    reversed_runner *r = self;
    int n = rows->n;
    int32_t *tok = xmalloc((size_t)n * sizeof *tok), *pos = xmalloc((size_t)n * sizeof *pos),
            *seq = xmalloc((size_t)n * sizeof *seq);
    for (int i = 0; i < n; i++) {
        /* the loop's rows: one per sequence, in sequence order, all wanting logits */
        if (i > 0) assert_true(rows->seq[i] > rows->seq[i - 1]);
        assert_true(rows->want_logits == NULL || rows->want_logits[i]);
        tok[n - 1 - i] = rows->tokens[i];
        pos[n - 1 - i] = rows->pos[i];
        seq[n - 1 - i] = rows->seq[i];
        logit_row[i] = n - 1 - i;
    }
    fwd_batch b = {n, tok, pos, seq, NULL};
    int got = forward_batch(r->f, &b, logits);
    free(tok); free(pos); free(seq);
    r->steps++;
    return got == n ? 0 : -1;
}

static void test_runner_orders_rows(void **state) {
    fixture *fx = *state;
    prompts p;
    encode_all(fx->tok, &p);
    const int limits[N_SEQ] = {8, 2, 12, 0, 5};
    gen_request rq = {N_SEQ, (const int32_t *const *)p.ids, p.lens, limits, NULL};
    sample_params sp = {0.7f, 0.9f, 99, 0};
    gen_output want[N_SEQ], got[N_SEQ];
    forward_ctx *f = fresh(fx, N_SEQ);
    assert_int_equal(generate_seqs(f, fx->tok, &rq, &sp, want, NULL, NULL), 0);
    forward_free(f);
    reversed_runner r = {fresh(fx, N_SEQ), fx->m->hp.n_vocab, 0};
    gen_runner gr = {&r, fx->m->hp.n_vocab, reversed_prefill, reversed_step};
    assert_int_equal(generate_loop(&gr, fx->tok, &rq, &sp, got, NULL, NULL), 0);
    forward_free(r.f);
    assert_same_outputs(got, want, N_SEQ);
    assert_true(r.steps > 0 && r.steps < 12);   /* the longest limit's last token is not fed back */
    gen_output_free(want, N_SEQ);
    gen_output_free(got, N_SEQ);
    free_all(&p);
}

/* Sequences admitted into a running loop at different steps, in slots that
 * others left, each give exactly their generation alone (greedy, and
 * sampled with a generator of their own); a dropped slot takes no more
 * tokens and a new sequence can use it. */
static void test_loop_admits_mid_flight(void **state) {
    fixture *fx = *state;
    prompts p;
    encode_all(fx->tok, &p);
    enum { SLOTS = 2 };
    const int limits[N_SEQ] = {9, 4, 12, 6, 7};
    const sample_params params[] = {{0.0f, 1.0f, 0, 0}, {0.8f, 0.9f, 5, 0}};
    for (size_t k = 0; k < sizeof params / sizeof *params; k++) {
        forward_ctx *f = fresh(fx, SLOTS);
        gen_runner r = gen_runner_forward(f);
        gen_loop *g = gen_loop_new(&r, fx->tok, SLOTS);
        gen_output got[N_SEQ];
        rng_state rng[N_SEQ];
        int next = 0, steps = 0;
        for (int s = 0; s < N_SEQ; s++) rng_seed(&rng[s], params[k].seed);
        /* admit one sequence per step while a slot is free, so each joins a
         * loop that is already decoding others */
        while (next < N_SEQ || steps == 0) {
            for (int slot = 0; slot < SLOTS && next < N_SEQ; slot++) {
                if (gen_loop_busy(g, slot)) continue;
                gen_seq q = {p.ids[next], p.lens[next], limits[next], &params[k], &rng[next]};
                assert_int_equal(gen_loop_admit(g, slot, &q, &got[next]), 0);
                assert_int_equal(gen_loop_admit(g, slot, &q, &got[next]), -1);   /* busy now */
                next++;
                break;
            }
            assert_true(gen_loop_step(g, NULL, NULL) >= 0);
            steps++;
        }
        while (gen_loop_step(g, NULL, NULL) > 0) {}
        for (int s = 0; s < N_SEQ; s++) {
            gen_output alone;
            sample_params one = params[k];
            one.n_predict = limits[s];
            const int32_t *ids[1] = {p.ids[s]};
            forward_ctx *f1 = fresh(fx, 1);
            assert_int_equal(generate(f1, fx->tok, ids, &p.lens[s], 1, &one, &alone, NULL, NULL), 0);
            forward_free(f1);
            assert_same_outputs(&got[s], &alone, 1);
            gen_output_free(&alone, 1);
        }
        gen_output_free(got, N_SEQ);
        /* a dropped sequence stops where it was, its slot free for the next */
        gen_output a, b;
        rng_state ra, rb;
        rng_seed(&ra, 1);
        rng_seed(&rb, 1);
        gen_seq qa = {p.ids[0], p.lens[0], 10, &params[0], &ra}, qb = {p.ids[1], p.lens[1], 3, &params[0], &rb};
        assert_int_equal(gen_loop_admit(g, 0, &qa, &a), 0);
        assert_int_equal(gen_loop_step(g, NULL, NULL), 1);
        gen_loop_drop(g, 0);
        assert_false(gen_loop_busy(g, 0));
        assert_int_equal(gen_loop_step(g, NULL, NULL), 0);
        assert_int_equal(a.n, 1);
        assert_int_equal(gen_loop_admit(g, 0, &qb, &b), 0);
        while (gen_loop_step(g, NULL, NULL) > 0) {}
        assert_true(b.n >= 1 && b.n <= 3);
        gen_output_free(&a, 1);
        gen_output_free(&b, 1);
        gen_loop_free(g);
        forward_free(f);
    }
    free_all(&p);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_argmax_matches_definition), cmocka_unit_test(test_sampler),
                                       cmocka_unit_test(test_gamma_q), cmocka_unit_test(test_sampler_distribution),
                                       cmocka_unit_test(test_loop_as_before), cmocka_unit_test(test_per_sequence_limits),
                                       cmocka_unit_test(test_runner_orders_rows), cmocka_unit_test(test_loop_admits_mid_flight)};
    return cmocka_run_group_tests(tests, setup, teardown);
}
