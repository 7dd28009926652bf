/* quant: formats, conversions and matrix kernels against independent
 * references.
 *  - Dequantization and the fp16/bf16 conversions against golden vectors the
 *    Python gguf package and ggml's own quantizer produced
 *    (tests/ref/make_quant_golden.py -> tests/data/quant/), real model blocks
 *    included.
 *  - quant_matmul against dequantize + double-precision dot, within the error
 *    8-bit activation quantization allows (a worst-case bound per output and
 *    a statistical bound over all outputs), at the qwen2.5-0.5B widths.
 *  - Every kernel family this CPU runs against the portable one.
 *  - Dispatch: RYS_CPU, refusals of paths that cannot run. */
#include "testutil.h"

#include <sys/mman.h>
#include <sys/stat.h>
#include "base/pool.h"
#include "quant/quant.h"
#include "quant/kquants.h"
#include "quant/legacy.h"
#include "quant/quant_impl.h"
#include "base/util.h"

#include <math.h>
#include <string.h>

static const uint32_t computed_types[] = {QT_F32,  QT_F16,  QT_BF16, QT_Q4_0, QT_Q4_1, QT_Q5_0,
                                          QT_Q5_1, QT_Q8_0, QT_Q4_K, QT_Q5_K, QT_Q6_K};
#define N_COMPUTED (sizeof computed_types / sizeof *computed_types)

/* ---- deterministic random numbers ------------------------------------------ */

static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;

static uint64_t rng_u64(void) {
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static double rng_uniform(void) { return (double)(rng_u64() >> 11) * 0x1p-53; }

static double rng_normal(void) {
    double u = rng_uniform() + 1e-300, v = rng_uniform();
    return sqrt(-2 * log(u)) * cos(6.283185307179586 * v);
}

/* ---- table ------------------------------------------------------------------ */

/* Block sizes and bytes per block from ggml's ggml.c type_traits. */
static void test_info(void **state) {
    (void)state;
    static const struct { uint32_t type; const char *name; int bs; size_t ts; bool supported; } want[] = {
        {QT_F32, "F32", 1, 4, true},       {QT_F16, "F16", 1, 2, true},       {QT_BF16, "BF16", 1, 2, true},
        {QT_Q4_0, "Q4_0", 32, 18, true},   {QT_Q4_1, "Q4_1", 32, 20, true},   {QT_Q5_0, "Q5_0", 32, 22, true},
        {QT_Q5_1, "Q5_1", 32, 24, true},   {QT_Q8_0, "Q8_0", 32, 34, true},   {QT_Q8_1, "Q8_1", 32, 36, false},
        {QT_Q2_K, "Q2_K", 256, 84, false}, {QT_Q3_K, "Q3_K", 256, 110, false}, {QT_Q4_K, "Q4_K", 256, 144, true},
        {QT_Q5_K, "Q5_K", 256, 176, true}, {QT_Q6_K, "Q6_K", 256, 210, true}, {QT_Q8_K, "Q8_K", 256, 292, false},
        {23, "IQ4_XS", 256, 136, false},   {39, "MXFP4", 32, 17, false},
    };
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        const quant_info *qi = quant_get_info(want[i].type);
        assert_non_null(qi);
        assert_string_equal(qi->name, want[i].name);
        assert_int_equal(qi->block_size, want[i].bs);
        assert_int_equal(qi->type_size, want[i].ts);
        assert_int_equal(qi->supported, want[i].supported);
    }
    assert_null(quant_get_info(4));
    assert_null(quant_get_info(QT_COUNT));
    assert_null(quant_get_info(0xFFFFFFFFu));
    assert_int_equal(quant_row_size(QT_Q4_K, 896), 0);
    assert_int_equal(quant_row_size(QT_Q4_K, 4864), 19 * 144);
    assert_int_equal(quant_row_size(QT_Q5_0, 896), 28 * 22);
    assert_int_equal(quant_row_size(QT_F16, 7), 14);
    assert_int_equal(quant_row_size(4, 32), 0);
}

/* ---- golden vectors ------------------------------------------------------- */

typedef struct {
    uint32_t type, n;
    bool has_source;
    uint8_t *raw;
    float *expected, *source;
    char *file;
} golden;

static uint32_t le32(const uint8_t *p) { return p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }

static void golden_load(const char *name, golden *g) {
    char path[256];
    snprintf(path, sizeof path, "tests/data/quant/%s.bin", name);
    size_t len;
    char *file = read_file(path, &len);
    if (!file) fail_msg("%s (run the tests from the repository root; regenerate with tests/ref/make_quant_golden.py)",
                        rys_lasterr());
    const uint8_t *p = (const uint8_t *)file;
    assert_true(len >= 24 && !memcmp(p, "RYSQGLD1", 8));
    g->type = le32(p + 8);
    g->n = le32(p + 12);
    g->has_source = le32(p + 16);
    size_t raw = quant_row_size(g->type, g->n);
    assert_true(raw > 0);
    assert_int_equal(len, 24 + raw + 4 * (size_t)g->n * (g->has_source ? 2 : 1));
    g->file = file;
    g->raw = (uint8_t *)file + 24;
    g->expected = xmalloc(4 * (size_t)g->n);
    memcpy(g->expected, g->raw + raw, 4 * (size_t)g->n);
    g->source = NULL;
    if (g->has_source) {
        g->source = xmalloc(4 * (size_t)g->n);
        memcpy(g->source, g->raw + raw + 4 * (size_t)g->n, 4 * (size_t)g->n);
    }
}

static void golden_free(golden *g) {
    free(g->file);
    free(g->expected);
    free(g->source);
}

static uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

/* Same bits, or both NaN, or one ulp apart (a reference that rounds a
 * product differently). */
static bool within_ulp(float a, float b) {
    if (isnan(a) || isnan(b)) return isnan(a) && isnan(b);
    uint32_t x = f32_bits(a), y = f32_bits(b);
    if (x == y) return true;
    if ((x ^ y) >> 31) return a == b; /* +0 / -0 */
    return (x > y ? x - y : y - x) <= 1;
}

static void test_golden_dequantize(void **state) {
    (void)state;
    for (size_t t = 0; t < N_COMPUTED; t++) {
        const char *name = quant_get_info(computed_types[t])->name;
        golden g;
        golden_load(name, &g);
        assert_int_equal(g.type, computed_types[t]);
        float *got = xmalloc(4 * (size_t)g.n);
        assert_int_equal(quant_dequantize_row(g.type, g.raw, got, g.n), 0);
        for (uint32_t i = 0; i < g.n; i++)
            if (!within_ulp(got[i], g.expected[i]))
                fail_msg("%s element %u: got %.9g (0x%08x), gguf says %.9g (0x%08x)", name, i, got[i],
                         f32_bits(got[i]), g.expected[i], f32_bits(g.expected[i]));
        free(got);
        golden_free(&g);
    }
}

/* The f32 -> fp16/bf16 conversions against numpy (gguf.quants.quantize). */
static void test_golden_float_conversions(void **state) {
    (void)state;
    const struct { const char *name; uint16_t (*conv)(float); } convs[] = {
        {"F16", quant_f32_to_fp16}, {"BF16", quant_f32_to_bf16}};
    for (size_t c = 0; c < 2; c++) {
        golden g;
        golden_load(convs[c].name, &g);
        assert_true(g.has_source);
        for (uint32_t i = 0; i < g.n; i++) {
            uint16_t want = (uint16_t)(g.raw[2 * i] | g.raw[2 * i + 1] << 8);
            uint16_t got = convs[c].conv(g.source[i]);
            if (got != want)
                fail_msg("%s of %.9g (0x%08x): got 0x%04x, numpy says 0x%04x", convs[c].name, g.source[i],
                         f32_bits(g.source[i]), got, want);
        }
        golden_free(&g);
    }
    golden g;
    golden_load("F32", &g);
    assert_true(g.has_source);
    assert_memory_equal(g.raw, g.source, 4 * (size_t)g.n);
    golden_free(&g);
}

/* Every finite half and bf16 survives the trip through f32 unchanged. */
static void test_half_round_trip(void **state) {
    (void)state;
    for (uint32_t h = 0; h < 65536; h++) {
        if ((h & 0x7C00) != 0x7C00) assert_int_equal(quant_f32_to_fp16(quant_fp16_to_f32((uint16_t)h)), h);
        if ((h & 0x7F80) != 0x7F80) assert_int_equal(quant_f32_to_bf16(quant_bf16_to_f32((uint16_t)h)), h);
    }
    assert_true(quant_fp16_to_f32(0x3C00) == 1.0f);
    assert_true(quant_fp16_to_f32(0x0001) == 0x1p-24f);
    assert_true(quant_bf16_to_f32(0xC040) == -3.0f);
}

/* ---- random weights -------------------------------------------------------- */

/* Byte offsets of the fp16 scale fields of one block, per ggml's layouts. */
static int scale_offsets(uint32_t type, int off[2]) {
    switch (type) {
    case QT_Q4_0: case QT_Q5_0: case QT_Q8_0: off[0] = 0; return 1;
    case QT_Q4_1: case QT_Q5_1: case QT_Q4_K: case QT_Q5_K: off[0] = 0; off[1] = 2; return 2;
    case QT_Q6_K: off[0] = 208; return 1;
    default: return 0;
    }
}

/* Random but valid rows: float formats from normal values, block formats
 * from random bytes with finite, moderate fp16 scales. */
static uint8_t *random_weights(uint32_t type, int64_t n_in, int64_t n_out) {
    const quant_info *qi = quant_get_info(type);
    size_t row = quant_row_size(type, n_in), total = row * (size_t)n_out;
    uint8_t *w = xmalloc(total);
    if (qi->block_size == 1) {
        for (size_t i = 0; i < (size_t)(n_in * n_out); i++) {
            float v = (float)(rng_normal() * 0.05);
            if (type == QT_F32) memcpy(w + 4 * i, &v, 4);
            else {
                uint16_t h = type == QT_F16 ? quant_f32_to_fp16(v) : quant_f32_to_bf16(v);
                memcpy(w + 2 * i, &h, 2);
            }
        }
        return w;
    }
    for (size_t i = 0; i < total; i++) w[i] = (uint8_t)rng_u64();
    int off[2], k = scale_offsets(type, off);
    for (size_t b = 0; b < total / qi->type_size; b++)
        for (int s = 0; s < k; s++) {
            double mag = 0.002 + 0.02 * rng_uniform();
            uint16_t h = quant_f32_to_fp16((float)(rng_u64() & 1 ? -mag : mag));
            memcpy(w + b * qi->type_size + off[s], &h, 2);
        }
    return w;
}

/* Activations with a varying scale and mean along the row and a few
 * outliers, like the hidden states of a real model (a mean makes the
 * weights' minimums and offsets matter). */
static float *random_activations(int64_t n_in, int64_t n_batch) {
    float *x = xmalloc(sizeof(float) * (size_t)(n_in * n_batch));
    for (int64_t i = 0; i < n_in * n_batch; i++) {
        double scale = 0.5 + sin((double)(i % n_in) * 0.01) * 0.4;
        double mean = 0.6 * cos((double)(i % n_in) * 0.03);
        x[i] = (float)(mean + rng_normal() * scale * (rng_u64() % 97 == 0 ? 20 : 1));
    }
    return x;
}

/* ---- matmul against dequantize + double dot ------------------------------- */

/* qwen2.5-0.5B widths (896 is no multiple of 256: k-quant tensors there
 * all have 4864 inputs), and one more for the k-quants; shapes a type's
 * block size does not divide are skipped. */
typedef struct { int64_t n_in, n_out; } shape;
static const shape shapes[] = {{896, 37}, {4864, 19}, {256, 130}, {1280, 23}};
static const int64_t batches[] = {1, 3, 6, 17};

static void check_matmul_vs_reference(uint32_t type, shape s, int64_t n_batch, pool *p) {
    const char *name = quant_get_info(type)->name;
    if (!quant_row_size(type, s.n_in)) return;
    uint8_t *w = random_weights(type, s.n_in, s.n_out);
    float *x = random_activations(s.n_in, n_batch);
    float *y = xmalloc(sizeof(float) * (size_t)(s.n_out * n_batch));
    float *wrow = xmalloc(sizeof(float) * (size_t)s.n_in);
    quant_matrix m = {.type = type, .n_in = s.n_in, .n_out = s.n_out, .data = w};
    if (quant_matmul(&m, x, n_batch, y, p)) fail_msg("%s", rys_lasterr());
    bool quantized = quant_get_info(type)->block_size > 1;
    size_t row = quant_row_size(type, s.n_in);
    double sum_err2 = 0, sum_var = 0;
    for (int64_t o = 0; o < s.n_out; o++) {
        assert_int_equal(quant_dequantize_row(type, w + (size_t)o * row, wrow, s.n_in), 0);
        for (int64_t b = 0; b < n_batch; b++) {
            const float *xb = x + b * s.n_in;
            /* Each activation moves by at most half a step of its 8-bit
             * block (127 steps for the block's largest magnitude; blocks of
             * 256 here, wider than any activation block, so the bound holds
             * for every format). */
            double ref = 0, abs_sum = 0, bound = 0, var = 0;
            for (int64_t k0 = 0; k0 < s.n_in; k0 += 256) {
                double amax = 0;
                for (int64_t k = k0; k < k0 + 256 && k < s.n_in; k++) amax = fmax(amax, fabs(xb[k]));
                double step = quantized ? amax / 127 : 0;
                for (int64_t k = k0; k < k0 + 256 && k < s.n_in; k++) {
                    ref += (double)wrow[k] * xb[k];
                    abs_sum += fabs((double)wrow[k] * xb[k]);
                    bound += fabs(wrow[k]) * step / 2;
                    var += (double)wrow[k] * wrow[k] * step * step / 4;
                }
            }
            double got = y[b * s.n_out + o], err = got - ref, tol = bound * 1.01 + 1e-5 * abs_sum + 1e-30;
            if (fabs(err) > tol)
                fail_msg("%s %lldx%lld batch %lld: y[%lld][%lld] = %.7g, reference %.7g (error %.3g > %.3g)", name,
                         (long long)s.n_out, (long long)s.n_in, (long long)n_batch, (long long)b, (long long)o, got,
                         ref, err, tol);
            sum_err2 += err * err;
            sum_var += var + (1e-6 * abs_sum) * (1e-6 * abs_sum);
        }
    }
    /* Rounding errors are independent and zero-mean across activations, each
     * at most half a step: over all outputs the squared error stays below the
     * summed worst-case variance, far below what any misplaced bit or scale
     * would cause. */
    if (sum_err2 > 1.5 * sum_var + 1e-30)
        fail_msg("%s %lldx%lld batch %lld: mean squared error %.3g, expected about %.3g", name, (long long)s.n_out,
                 (long long)s.n_in, (long long)n_batch, sum_err2, sum_var);
    free(w);
    free(x);
    free(y);
    free(wrow);
}

/* On every kernel family this CPU runs. */
static void test_matmul_vs_reference(void **state) {
    (void)state;
    enum quant_path best = quant_cpu_path();
    pool *p = pool_new(2);
    for (int path = QP_PORTABLE; path <= QP_AMX; path++) {
        if (!quant_path_available((enum quant_path)path)) continue;
        assert_int_equal(quant_set_path((enum quant_path)path), 0);
        for (size_t t = 0; t < N_COMPUTED; t++)
            for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
                for (size_t b = 0; b < sizeof batches / sizeof *batches; b++)
                    check_matmul_vs_reference(computed_types[t], shapes[s], batches[b], b == 1 ? NULL : p);
        /* Float rows need not be a multiple of any vector width. */
        check_matmul_vs_reference(QT_F32, (shape){101, 9}, 2, p);
        check_matmul_vs_reference(QT_F16, (shape){7, 3}, 1, p);
        check_matmul_vs_reference(QT_BF16, (shape){1003, 5}, 3, p);
    }
    assert_int_equal(quant_set_path(best), 0);
    pool_free(p);
}

/* The pool splits output rows; each output is computed the same way
 * whatever the thread count, so results are bit-identical. */
static void test_matmul_threads_identical(void **state) {
    (void)state;
    pool *p = pool_new(3);
    for (size_t t = 0; t < N_COMPUTED; t++) {
        uint32_t type = computed_types[t];
        shape s = {1536, 71};
        uint8_t *w = random_weights(type, s.n_in, s.n_out);
        float *x = random_activations(s.n_in, 5);
        float *y1 = xmalloc(sizeof(float) * 71 * 5), *y3 = xmalloc(sizeof(float) * 71 * 5);
        quant_matrix m = {.type = type, .n_in = s.n_in, .n_out = s.n_out, .data = w};
        assert_int_equal(quant_matmul(&m, x, 5, y1, NULL), 0);
        assert_int_equal(quant_matmul(&m, x, 5, y3, p), 0);
        assert_memory_equal(y1, y3, sizeof(float) * 71 * 5);
        free(w);
        free(x);
        free(y1);
        free(y3);
    }
    pool_free(p);
}

/* The scanner batches prompts and decodes shrinking sets of sequences, and
 * compares a configuration's rows with the baseline's bit for bit: a row's
 * result must not depend on how many rows share the call, which ones, or
 * the thread count, on every path. Every row of each batch is compared
 * with the row alone (300 rows: many kernel tiles and AMX chunks, with
 * remainders). */
static void test_matmul_rows_independent_of_batch(void **state) {
    (void)state;
    enum quant_path best = quant_cpu_path();
    pool *p2 = pool_new(2);
    enum { N_ROWS = 300 };
    static const int64_t sizes[] = {1, 3, 16, 100, 300};
    for (int path = QP_PORTABLE; path <= QP_AMX; path++) {
        if (!quant_path_available((enum quant_path)path)) continue;
        assert_int_equal(quant_set_path((enum quant_path)path), 0);
        for (size_t t = 0; t < N_COMPUTED; t++) {
            uint32_t type = computed_types[t];
            /* 71 outputs: 5 groups of 16, tiled as pairs and a single, split
             * differently for each thread count; 32-value formats also with
             * an odd number of blocks (the decode kernels take them in pairs) */
            for (int shape = 0; shape < 2; shape++) {
                int64_t n_in = quant_row_size(type, 896) ? (shape ? 864 : 896) : 4864, n_out = 71;
                if (shape && n_in == 4864) continue;
                uint8_t *w = random_weights(type, n_in, n_out);
                float *x = random_activations(n_in, N_ROWS);
                size_t y_bytes = sizeof(float) * (size_t)(n_out * N_ROWS);
                float *ref = xmalloc(y_bytes), *y = xmalloc(y_bytes);
                quant_matrix m = {.type = type, .n_in = n_in, .n_out = n_out, .data = w};
                for (int64_t r = 0; r < N_ROWS; r++)
                    assert_int_equal(quant_matmul(&m, x + r * n_in, 1, ref + r * n_out, NULL), 0);
                for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++)
                    for (int threads = 1; threads <= 2; threads++) {
                        /* a different place in the rows for each size */
                        int64_t first = (int64_t)(s * 37) % (N_ROWS - sizes[s] + 1);
                        assert_int_equal(quant_matmul(&m, x + first * n_in, sizes[s], y, threads == 2 ? p2 : NULL), 0);
                        for (int64_t r = 0; r < sizes[s]; r++)
                            if (memcmp(y + r * n_out, ref + (first + r) * n_out, sizeof(float) * (size_t)n_out))
                                fail_msg("%s on %s: row %lld of a batch of %lld differs from the row alone (%d threads)",
                                         quant_get_info(type)->name, quant_path_name((enum quant_path)path), (long long)r,
                                         (long long)sizes[s], threads);
                    }
                free(w);
                free(x);
                free(ref);
                free(y);
            }
        }
    }
    assert_int_equal(quant_set_path(best), 0);
    pool_free(p2);
}

/* A layer's Q, K, V (and gate, up) go through quant_matmul_many: one input
 * quantized once per activation format, all products in one pool job split
 * across matrix boundaries. Each output must be exactly what quant_matmul
 * gives the matrix alone, on every path, for mixed formats (two activation
 * formats, different scale blocks and offsets), float matrices (which take
 * the dot kernels), decode's one row and batches, one and three threads. */
static void test_matmul_many_equals_separate(void **state) {
    (void)state;
    enum quant_path best = quant_cpu_path();
    pool *p3 = pool_new(3);
    enum { N_IN = 1536, MAX_OUT = 53 };
    static const uint32_t sets[][3] = {{QT_Q5_0, QT_Q5_0, QT_Q6_K}, {QT_Q4_K, QT_Q4_1, QT_Q8_0},
                                       {QT_Q8_0, QT_F32, QT_Q4_0}, {QT_Q6_K, QT_Q5_K, QT_BF16}};
    static const int64_t n_out[3] = {53, 21, 19};
    static const int64_t batches_many[] = {1, 5, 33};
    for (int path = QP_PORTABLE; path <= QP_AMX; path++) {
        if (!quant_path_available((enum quant_path)path)) continue;
        assert_int_equal(quant_set_path((enum quant_path)path), 0);
        for (size_t set = 0; set < sizeof sets / sizeof *sets; set++)
            for (int n = 1; n <= 3; n++) {
                uint8_t *w[3];
                quant_matrix m[3];
                const quant_matrix *mp[3];
                for (int i = 0; i < n; i++) {
                    w[i] = random_weights(sets[set][i], N_IN, n_out[i]);
                    m[i] = (quant_matrix){.type = sets[set][i], .n_in = N_IN, .n_out = n_out[i], .data = w[i]};
                    mp[i] = &m[i];
                }
                for (size_t b = 0; b < sizeof batches_many / sizeof *batches_many; b++) {
                    int64_t nb = batches_many[b];
                    float *x = random_activations(N_IN, nb);
                    size_t bytes = sizeof(float) * (size_t)(MAX_OUT * nb);
                    float *ref[3], *y[3];
                    for (int i = 0; i < n; i++) {
                        ref[i] = xmalloc(bytes);
                        y[i] = xmalloc(bytes);
                        assert_int_equal(quant_matmul(&m[i], x, nb, ref[i], NULL), 0);
                    }
                    for (int threads = 1; threads <= 3; threads += 2) {
                        for (int i = 0; i < n; i++) memset(y[i], 0xA5, bytes);
                        assert_int_equal(quant_matmul_many(mp, n, x, nb, y, threads == 3 ? p3 : NULL), 0);
                        for (int i = 0; i < n; i++)
                            if (memcmp(y[i], ref[i], sizeof(float) * (size_t)(n_out[i] * nb)))
                                fail_msg("%s, matrix %d of %d (%s), batch %lld, %d threads: differs from the matrix alone",
                                         quant_path_name((enum quant_path)path), i, n,
                                         quant_get_info(sets[set][i])->name, (long long)nb, threads);
                    }
                    for (int i = 0; i < n; i++) {
                        free(ref[i]);
                        free(y[i]);
                    }
                    free(x);
                }
                for (int i = 0; i < n; i++) free(w[i]);
            }
    }
    assert_int_equal(quant_set_path(best), 0);
    pool_free(p3);
}

/* The tile kernel takes whole chunks of 16 activation rows and leaves the
 * rest (and batches under 16) to the VNNI kernel: every row of every batch
 * must come out with the VNNI kernel's bits, for every block format, odd
 * and even group counts, one and two threads. */
static void test_amx_equals_vnni(void **state) {
    (void)state;
    if (!quant_path_available(QP_AMX)) skip();
    enum quant_path best = quant_cpu_path();
    pool *p2 = pool_new(2);
    static const int64_t batches[] = {15, 16, 17, 31, 32, 48, 77};
    static const int64_t outs[] = {16, 71, 130};
    for (size_t t = 0; t < N_COMPUTED; t++) {
        uint32_t type = computed_types[t];
        if (quant_get_info(type)->block_size == 1) continue; /* float weights take no packed kernel */
        int64_t n_in = quant_row_size(type, 896) ? 896 : 1024;
        for (size_t o = 0; o < sizeof outs / sizeof *outs; o++) {
            int64_t n_out = outs[o];
            uint8_t *w = random_weights(type, n_in, n_out);
            float *x = random_activations(n_in, 77);
            float *y0 = xmalloc(sizeof(float) * (size_t)(n_out * 77)), *y1 = xmalloc(sizeof(float) * (size_t)(n_out * 77));
            quant_matrix m = {.type = type, .n_in = n_in, .n_out = n_out, .data = w};
            for (size_t b = 0; b < sizeof batches / sizeof *batches; b++)
                for (int threads = 1; threads <= 2; threads++) {
                    pool *pl = threads == 2 ? p2 : NULL;
                    assert_int_equal(quant_set_path(QP_AVX512), 0);
                    assert_int_equal(quant_matmul(&m, x, batches[b], y0, pl), 0);
                    assert_int_equal(quant_set_path(QP_AMX), 0);
                    assert_int_equal(quant_matmul(&m, x, batches[b], y1, pl), 0);
                    if (memcmp(y0, y1, sizeof(float) * (size_t)(n_out * batches[b])))
                        fail_msg("%s %lldx%lld batch %lld (%d threads): AMX differs from VNNI",
                                 quant_get_info(type)->name, (long long)n_out, (long long)n_in,
                                 (long long)batches[b], threads);
                }
            free(w);
            free(x);
            free(y0);
            free(y1);
        }
    }
    assert_int_equal(quant_set_path(best), 0);
    pool_free(p2);
}

/* Float weights: the AVX-512 tiles (4 weight rows by 4 to 6 activation
 * rows, rows past the end repeated; fewer activation rows go to the AVX2
 * dot) must give every output the bits of the AVX2 single dot, for every
 * remainder (71 outputs, batches leaving 1..5 rows), a row length with a
 * scalar tail, one and two threads. */
static void test_float_tiles_equal_avx2_dot(void **state) {
    (void)state;
    if (!quant_path_available(QP_AVX2)) skip();
    enum quant_path best = quant_cpu_path();
    const quant_kernels *k2 = quant_path_kernels(QP_AVX2);
    pool *p2 = pool_new(2);
    static const int64_t sizes[] = {1, 2, 3, 4, 5, 6, 7, 10, 13, 32};
    static const int64_t lengths[] = {896, 901};
    int checked = 0;
    for (size_t t = 0; t < N_COMPUTED; t++) {
        uint32_t type = computed_types[t];
        if (quant_get_info(type)->block_size != 1) continue;
        for (size_t l = 0; l < sizeof lengths / sizeof *lengths; l++) {
            int64_t n_in = lengths[l], n_out = 71, n_max = 32;
            size_t w_row = quant_row_size(type, n_in);
            uint8_t *w = random_weights(type, n_in, n_out);
            float *x = random_activations(n_in, n_max);
            float *ref = xmalloc(sizeof(float) * (size_t)(n_out * n_max)), *y = xmalloc(sizeof(float) * (size_t)(n_out * n_max));
            for (int64_t b = 0; b < n_max; b++)
                for (int64_t o = 0; o < n_out; o++)
                    ref[b * n_out + o] = k2->dot[type](n_in, w + (size_t)o * w_row, x + b * n_in);
            quant_matrix m = {.type = type, .n_in = n_in, .n_out = n_out, .data = w};
            for (int path = QP_AVX2; path <= QP_AMX; path++) {
                if (!quant_path_available((enum quant_path)path)) continue;
                assert_int_equal(quant_set_path((enum quant_path)path), 0);
                for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++)
                    for (int threads = 1; threads <= 2; threads++) {
                        assert_int_equal(quant_matmul(&m, x, sizes[s], y, threads == 2 ? p2 : NULL), 0);
                        for (int64_t i = 0; i < n_out * sizes[s]; i++)
                            if (f32_bits(y[i]) != f32_bits(ref[i]))
                                fail_msg("%s on %s, n_in %lld, batch %lld, %d threads: y[%lld][%lld] = %a, AVX2 dot %a",
                                         quant_get_info(type)->name, quant_path_name((enum quant_path)path),
                                         (long long)n_in, (long long)sizes[s], threads, (long long)(i / n_out),
                                         (long long)(i % n_out), (double)y[i], (double)ref[i]);
                        checked++;
                    }
            }
            free(w);
            free(x);
            free(ref);
            free(y);
        }
    }
    assert_true(checked > 0);
    assert_int_equal(quant_set_path(best), 0);
    pool_free(p2);
}

/* Every family that packs weights (AVX2, AVX-512 VNNI, AMX) must give the
 * bits of this scalar model of the packed product: per weight scale block
 * the exact integer sum of value times activation, the offset taken off
 * through the activation sum, then fmaf(sum, scale_w * d_x, acc) and, for
 * formats with minimums, fmaf(min_w, s_x, acc), blocks in order. So the
 * families give each other's bits, wherever the tests run. */
static float packed_model(const quant_packed *p, const uint8_t *xq, bool k_act, int64_t o) {
    int64_t g = o / QUANT_PACK_ROWS, r = o % QUANT_PACK_ROWS, quads = p->blk_len / 4;
    float acc = 0;
    for (int64_t blk = 0; blk < p->n_blk; blk++) {
        int64_t e0 = blk * p->blk_len, sum = 0, dot = 0;
        float d, sx;
        const int8_t *qs;
        if (k_act) {
            const block_q8_K *b = (const block_q8_K *)xq + e0 / QK_K;
            qs = b->qs + e0 % QK_K;
            d = b->d;
        } else {
            const block_q8a *b = (const block_q8a *)xq + e0 / QK_LEGACY;
            qs = b->qs;
            d = b->d;
        }
        const uint8_t *wq = p->q + (size_t)((g * p->n_blk + blk) * quads) * 64 + (size_t)r * 4;
        for (int k = 0; k < p->blk_len; k++) {
            dot += (int64_t)wq[(k / 4) * 64 + k % 4] * qs[k];
            sum += qs[k];
        }
        sx = k_act ? d * (float)sum : ((const block_q8a *)xq + e0 / QK_LEGACY)->s;
        size_t at = (size_t)(g * p->n_blk + blk) * QUANT_PACK_ROWS + (size_t)r;
        acc = fmaf((float)(int32_t)(dot - p->offset * sum), p->scale[at] * d, acc);
        if (p->has_min) acc = fmaf(p->min[at], sx, acc);
    }
    return acc;
}

static void test_packed_kernels_exact(void **state) {
    (void)state;
    enum quant_path best = quant_cpu_path();
    pool *p2 = pool_new(2);
    int checked = 0;
    for (int path = QP_AVX2; path <= QP_AMX; path++) {
        if (!quant_path_available((enum quant_path)path) || !quant_path_kernels((enum quant_path)path)->gemm) continue;
        checked++;
        assert_int_equal(quant_set_path((enum quant_path)path), 0);
        for (size_t t = 0; t < N_COMPUTED; t++) {
            uint32_t type = computed_types[t];
            if (quant_get_info(type)->block_size == 1) continue;
            bool k_act = quant_get_info(type)->block_size == QK_K;
            int64_t n_in = k_act ? 1024 : 896, n_out = 71, n_batch = 21;
            uint8_t *w = random_weights(type, n_in, n_out);
            float *x = random_activations(n_in, n_batch), *y = xmalloc(sizeof(float) * (size_t)(n_out * n_batch));
            quant_matrix m = {.type = type, .n_in = n_in, .n_out = n_out, .data = w};
            assert_int_equal(quant_matmul(&m, x, n_batch, y, p2), 0);
            const quant_packed *pk = quant_packed_get(&m, 8, NULL);
            assert_non_null(pk);
            size_t xq_row = k_act ? (size_t)(n_in / QK_K) * sizeof(block_q8_K) : (size_t)(n_in / QK_LEGACY) * sizeof(block_q8a);
            uint8_t *xq = xmalloc(xq_row);
            for (int64_t b = 0; b < n_batch; b++) {
                if (k_act) quant_act_q8_K(x + b * n_in, xq, n_in);
                else quant_act_q8a(x + b * n_in, xq, n_in);
                for (int64_t o = 0; o < n_out; o++) {
                    float want = packed_model(pk, xq, k_act, o), got = y[b * n_out + o];
                    if (memcmp(&want, &got, sizeof want))
                        fail_msg("%s on %s: y[%lld][%lld] = %a, the packed model gives %a", quant_get_info(type)->name,
                                 quant_path_name((enum quant_path)path), (long long)b, (long long)o, got, want);
                }
            }
            quant_release(w, quant_row_size(type, n_in) * (size_t)n_out);
            free(xq);
            free(w);
            free(x);
            free(y);
        }
    }
    assert_int_equal(quant_set_path(best), 0);
    pool_free(p2);
    if (!checked) skip();
}

/* Paths that pack weights cache them by address: new bytes at an address
 * already seen (memory freed and reused) must be noticed, with or without
 * quant_release, and give what the same bytes elsewhere give; for batches
 * (the packed copy) and single rows (the interleaved one). */
static void reused_address(int64_t n_batch) {
    int64_t n_in = 896, n_out = 40;
    size_t bytes = quant_row_size(QT_Q5_0, n_in) * (size_t)n_out;
    uint8_t *w = random_weights(QT_Q5_0, n_in, n_out), *other = random_weights(QT_Q5_0, n_in, n_out);
    float *x = random_activations(n_in, n_batch);
    size_t y_bytes = sizeof(float) * (size_t)(n_out * n_batch);
    float *y = xmalloc(y_bytes), *want = xmalloc(y_bytes);
    quant_matrix m = {.type = QT_Q5_0, .n_in = n_in, .n_out = n_out, .data = w};
    quant_matrix m_other = {.type = QT_Q5_0, .n_in = n_in, .n_out = n_out, .data = other};
    assert_int_equal(quant_matmul(&m, x, n_batch, y, NULL), 0);
    assert_int_equal(quant_matmul(&m_other, x, n_batch, want, NULL), 0);
    for (int release = 0; release < 2; release++) {
        uint8_t *fresh = random_weights(QT_Q5_0, n_in, n_out);
        memcpy(other, fresh, bytes);
        assert_int_equal(quant_matmul(&m_other, x, n_batch, want, NULL), 0);
        if (release) quant_release(w, bytes);
        memcpy(w, fresh, bytes);
        assert_int_equal(quant_matmul(&m, x, n_batch, y, NULL), 0);
        assert_memory_equal(y, want, y_bytes);
        free(fresh);
    }
    quant_release(w, bytes);
    quant_release(other, bytes);
    free(w);
    free(other);
    free(x);
    free(y);
    free(want);
}

static void test_matmul_reused_address(void **state) {
    (void)state;
    reused_address(5);
    reused_address(1);
}

/* The AVX-512 activation quantizers must give the portable ones' bytes:
 * every path's results then start from the same integers. Random rows plus
 * exact ties (x * 127 / amax = k + 0.5) and all-zero blocks. */
static void test_act_quantizers_identical(void **state) {
    (void)state;
    if (!quant_cpu_supports(QP_AVX512)) skip();
    enum { N = 4864, ROWS = 6 };
    float *x = random_activations(N, ROWS);
    for (int i = 0; i < 256; i++) x[i] = (float)(i % 64) * 0.5f - 16.0f; /* many values on rounding ties */
    x[127] = 127.0f / 8.0f;
    memset(x + 256, 0, 256 * sizeof(float));
    /* equal magnitudes of both signs: the first one sets Q8_K's scale sign */
    x[512 + 3] = 1000.0f; x[512 + 7] = -1000.0f; x[768 + 3] = -1000.0f; x[768 + 200] = 1000.0f;
    for (int i = 1024; i < 1056; i++) x[i] = (float)(i - 1040) * 1e-7f; /* d below fp16's normal range */
    static uint8_t a[N / 32 * 40], b[N / 32 * 40], c[N / 256 * 292], d[N / 256 * 292];
    for (int r = 0; r < ROWS; r++) {
        quant_act_q8a(x + r * N, a, N);
        quant_act_q8a_avx512(x + r * N, b, N);
        assert_memory_equal(a, b, sizeof a);
        quant_act_q8_K(x + r * N, c, N);
        quant_act_q8_K_avx512(x + r * N, d, N);
        assert_memory_equal(c, d, sizeof c);
    }
    free(x);
}

/* ---- kernel families against the portable one ------------------------------ */

static void test_paths_vs_portable(void **state) {
    (void)state;
    enum quant_path best = quant_cpu_path();
    int checked = 0;
    for (int path = QP_PORTABLE + 1; path <= QP_AMX; path++) {
        if (!quant_path_available((enum quant_path)path)) continue;
        checked++;
        for (size_t t = 0; t < N_COMPUTED; t++)
            for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
                uint32_t type = computed_types[t];
                int64_t n_batch = 3, n_in = shapes[s].n_in, n_out = shapes[s].n_out;
                if (!quant_row_size(type, n_in)) continue;
                uint8_t *w = random_weights(type, n_in, n_out);
                float *x = random_activations(n_in, n_batch);
                float *y0 = xmalloc(sizeof(float) * (size_t)(n_out * n_batch));
                float *y1 = xmalloc(sizeof(float) * (size_t)(n_out * n_batch));
                float *wrow = xmalloc(sizeof(float) * (size_t)n_in);
                quant_matrix m = {.type = type, .n_in = n_in, .n_out = n_out, .data = w};
                assert_int_equal(quant_set_path(QP_PORTABLE), 0);
                assert_int_equal(quant_matmul(&m, x, n_batch, y0, NULL), 0);
                assert_int_equal(quant_set_path((enum quant_path)path), 0);
                assert_int_equal(quant_cpu_path(), path);
                assert_int_equal(quant_matmul(&m, x, n_batch, y1, NULL), 0);
                for (int64_t o = 0; o < n_out; o++) {
                    quant_dequantize_row(type, w + (size_t)o * quant_row_size(type, n_in), wrow, n_in);
                    for (int64_t b = 0; b < n_batch; b++) {
                        double abs_sum = 0;
                        for (int64_t k = 0; k < n_in; k++) abs_sum += fabs((double)wrow[k] * x[b * n_in + k]);
                        double a = y0[b * n_out + o], c = y1[b * n_out + o];
                        /* Same integers, different float summation order. */
                        if (fabs(a - c) > 2e-6 * abs_sum + 1e-30)
                            fail_msg("%s on %s, %lldx%lld: y[%lld][%lld] = %.8g, portable %.8g",
                                     quant_get_info(type)->name, quant_path_name((enum quant_path)path),
                                     (long long)n_out, (long long)n_in, (long long)b, (long long)o, c, a);
                    }
                }
                free(w);
                free(x);
                free(y0);
                free(y1);
                free(wrow);
            }
    }
    assert_int_equal(quant_set_path(best), 0);
    if (quant_cpu_supports(QP_AVX2)) assert_true(checked >= 1);
}

/* Attention kernels: the fp16 rounding must give the scalar rounding's bits on
 * every path (ties, subnormal halves, overflow to inf included); scores and
 * weighted sums agree with a double-precision reference within float rounding;
 * on each path a call for a GQA group of heads (any number of them) and many
 * rows gives, for every (head, row), the bits of a call for that head and row
 * alone, and the AVX-512 scores and value sums the AVX2 ones' bits. */
static void test_attention_kernels(void **state) {
    (void)state;
    enum quant_path best = quant_cpu_path();
    /* HD 72: 64 columns in registers plus a tail; HD 64: the whole-16 kernels */
    enum { KEYS = 37, STRIDE = 200, NR = 4096, HEADS = 7, QS = 128, PS = 40 };
    uint16_t *kv = xmalloc(sizeof(uint16_t) * KEYS * STRIDE);
    float q[HEADS * QS], p[HEADS * PS], *r = xmalloc(sizeof(float) * NR), *r0 = xmalloc(sizeof(float) * NR);
    uint32_t seed = 7;
    for (int i = 0; i < KEYS * STRIDE; i++) {
        seed = seed * 1664525u + 1013904223u;
        kv[i] = quant_f32_to_fp16(((float)(seed >> 8) / 16777216.0f - 0.5f) * 4.0f);
    }
    for (int i = 0; i < HEADS * QS; i++) q[i] = sinf((float)i * 0.37f);
    for (int i = 0; i < HEADS * PS; i++) p[i] = quant_fp16_round(1.0f / (float)(i % PS + 2 + i / PS));
    for (int i = 0; i < NR; i++) {
        seed = seed * 1664525u + 1013904223u;
        float u = (float)(seed >> 8) / 16777216.0f;
        r0[i] = i < 512 ? ldexpf((float)(i % 64) + 0.5f, -24 - i / 64)    /* halves' ties and subnormals */
                        : (u - 0.5f) * ldexpf(1.0f, (int)(seed % 48) - 30);
    }
    r0[0] = 65519.0f; r0[1] = 65520.0f; r0[2] = -1e9f; r0[3] = 0.0f; r0[4] = -0.0f;
    static const int head_dims[] = {72, 64, 128};
    float y_avx2[3][HEADS * QS], s_avx2[3][HEADS * PS];
    const float *qrows[HEADS];
    for (int h = 0; h < HEADS; h++) qrows[h] = q + h * QS;
    bool have_avx2 = false;
    for (int path = QP_PORTABLE; path <= QP_AMX; path++) {
        if (!quant_path_available((enum quant_path)path)) continue;
        assert_int_equal(quant_set_path((enum quant_path)path), 0);
        const char *pname = quant_path_name((enum quant_path)path);
        memcpy(r, r0, sizeof(float) * NR);
        quant_fp16_round_n(r, NR);
        uint16_t h[NR];
        quant_f32_to_fp16_n(r0, h, NR);
        for (int i = 0; i < NR; i++) {
            if (f32_bits(r[i]) != f32_bits(quant_fp16_round(r0[i])))
                fail_msg("%s: fp16 rounding of %a gives %a, scalar %a", pname, r0[i], r[i], quant_fp16_round(r0[i]));
            if (h[i] != quant_f32_to_fp16(r0[i]))
                fail_msg("%s: fp16 of %a is %04x, scalar %04x", pname, r0[i], h[i], quant_f32_to_fp16(r0[i]));
        }
        for (size_t d = 0; d < sizeof head_dims / sizeof *head_dims; d++) {
            int HD = head_dims[d];
            float s[HEADS * PS], s1, y[HEADS * QS], y1[QS];
            quant_attn_scores_f16(s, PS, qrows, HEADS, kv, STRIDE, KEYS, HD, 0.125f);
            for (int nq = 1; nq < HEADS; nq++) { /* kernels take queries in groups: every group size */
                float s2[HEADS * PS];
                quant_attn_scores_f16(s2, PS, qrows, nq, kv, STRIDE, KEYS, HD, 0.125f);
                for (int hh = 0; hh < nq; hh++)
                    if (memcmp(s2 + hh * PS, s + hh * PS, sizeof(float) * KEYS))
                        fail_msg("%s hd %d: head %d's scores differ in a call for %d heads", pname, HD, hh, nq);
            }
            for (int i = 0; i < HEADS * QS; i++) y[i] = (float)(i % QS);
            quant_attn_accum_f16(y, QS, p, PS, HEADS, kv, STRIDE, KEYS, HD);
            for (int hh = 0; hh < HEADS; hh++) {
                for (int j = 0; j < KEYS; j++) {
                    quant_attn_scores_f16(&s1, 1, qrows + hh, 1, kv + (size_t)j * STRIDE, STRIDE, 1, HD, 0.125f);
                    if (f32_bits(s1) != f32_bits(s[hh * PS + j]))
                        fail_msg("%s hd %d: score (%d,%d) %a alone, %a in a group", pname, HD, hh, j, s1, s[hh * PS + j]);
                    double ref = 0, mag = 0;
                    for (int i = 0; i < HD; i++) {
                        ref += (double)quant_fp16_to_f32(kv[j * STRIDE + i]) * q[hh * QS + i];
                        mag += fabs((double)quant_fp16_to_f32(kv[j * STRIDE + i]) * q[hh * QS + i]);
                    }
                    assert_true(fabs(s[hh * PS + j] - 0.125 * ref) <= 0.125 * 1e-6 * mag + 1e-30);
                }
                for (int i = 0; i < HD; i++) y1[i] = (float)i;
                for (int j = 0; j < KEYS; j++)
                    quant_attn_accum_f16(y1, QS, p + hh * PS + j, PS, 1, kv + (size_t)j * STRIDE, STRIDE, 1, HD);
                if (memcmp(y1, y + hh * QS, sizeof(float) * (size_t)HD))
                    fail_msg("%s hd %d: head %d's value sum differs in a group", pname, HD, hh);
                for (int i = 0; i < HD; i++) {
                    double ref = i, mag = i;
                    for (int j = 0; j < KEYS; j++) {
                        ref += (double)p[hh * PS + j] * quant_fp16_to_f32(kv[j * STRIDE + i]);
                        mag += fabs((double)p[hh * PS + j] * quant_fp16_to_f32(kv[j * STRIDE + i]));
                    }
                    assert_true(fabs(y[hh * QS + i] - ref) <= 1e-6 * mag);
                }
            }
            if (path == QP_AVX2) { memcpy(y_avx2[d], y, sizeof y); memcpy(s_avx2[d], s, sizeof s); }
            if (path >= QP_AVX512 && have_avx2 && memcmp(y_avx2[d], y, sizeof(float) * (size_t)(HEADS * QS)))
                fail_msg("%s hd %d: value sums differ from the AVX2 kernel's", pname, HD);
            for (int hh = 0; path >= QP_AVX512 && have_avx2 && hh < HEADS; hh++)
                if (memcmp(s_avx2[d] + hh * PS, s + hh * PS, sizeof(float) * KEYS))
                    fail_msg("%s hd %d: head %d's scores differ from the AVX2 kernel's", pname, HD, hh);
        }
        if (path == QP_AVX2) have_avx2 = true;
    }
    assert_int_equal(quant_set_path(best), 0);
    free(kv); free(r); free(r0);
}

/* quant_expf_n gives the C library's expf bits on every path: bit patterns
 * across all signs and exponents (NaNs compared as NaNs) and dense values
 * around the special-case thresholds (|x| = 88, underflow near -104,
 * overflow near 88.7). Where the CPU has AVX-512 the vector kernel must
 * pass its own check here, or the test would compare the library with
 * itself. */
static void test_expf_n(void **state) {
    (void)state;
    enum quant_path best = quant_cpu_path();
    if (quant_cpu_supports(QP_AVX512)) assert_true(quant_exp_avx512_check());
    enum { N = 4096 };
    float *x = xmalloc(sizeof(float) * N), *y = xmalloc(sizeof(float) * N);
    for (int path = QP_PORTABLE; path <= QP_AMX; path++) {
        if (!quant_path_available((enum quant_path)path)) continue;
        assert_int_equal(quant_set_path((enum quant_path)path), 0);
        for (int round = 0; round < 64; round++) {
            for (int i = 0; i < N; i++) {
                uint32_t bits = (uint32_t)((uint64_t)(round * N + i) * 16411u * 1021u);
                if (round % 2) x[i] = -104.5f + (float)(round * N + i) * (194.0f / (64.0f * N));
                else memcpy(&x[i], &bits, sizeof bits);
            }
            x[0] = 88.0f; x[1] = -88.0f; x[2] = 88.72284f; x[3] = -103.97208f; x[4] = -INFINITY; x[5] = INFINITY;
            memcpy(y, x, sizeof(float) * N);
            quant_expf_n(y, N - round); /* odd lengths: the scalar tail */
            for (int i = 0; i < N - round; i++) {
                float want = expf(x[i]);
                if (f32_bits(want) != f32_bits(y[i]) && !(isnan(want) && isnan(y[i])))
                    fail_msg("%s: expf(%a) = %a, library %a", quant_path_name((enum quant_path)path), x[i], y[i], want);
            }
        }
    }
    assert_int_equal(quant_set_path(best), 0);
    free(x);
    free(y);
}

/* ---- dispatch -------------------------------------------------------------- */

static void test_dispatch(void **state) {
    (void)state;
    assert_string_equal(quant_path_name(QP_PORTABLE), "portable");
    assert_string_equal(quant_path_name(QP_AVX512), "avx512");
    assert_true(quant_path_available(QP_PORTABLE));

    setenv("RYS_CPU", "portable", 1);
    assert_int_equal(quant_init(), 0);
    assert_int_equal(quant_cpu_path(), QP_PORTABLE);

    setenv("RYS_CPU", "sse9", 1);
    assert_int_equal(quant_init(), -1);
    assert_non_null(strstr(rys_lasterr(), "RYS_CPU=sse9"));

    /* Paths without kernels are refused, never silently mapped to another. */
    for (int path = QP_AVX2; path <= QP_AMX; path++)
        if (!quant_path_available((enum quant_path)path)) {
            assert_int_equal(quant_set_path((enum quant_path)path), -1);
            assert_non_null(strstr(rys_lasterr(), quant_path_name((enum quant_path)path)));
            setenv("RYS_CPU", quant_path_name((enum quant_path)path), 1);
            assert_int_equal(quant_init(), -1);
            assert_non_null(strstr(rys_lasterr(), "RYS_CPU="));
        }
    assert_int_equal(quant_cpu_path(), QP_PORTABLE);

    unsetenv("RYS_CPU");
    assert_int_equal(quant_init(), 0);
    int best = QP_AMX;
    while (!quant_path_available((enum quant_path)best)) best--;
    assert_int_equal(quant_cpu_path(), best);
}

static void test_errors(void **state) {
    (void)state;
    float x[64] = {0}, y[4];
    uint8_t w[256] = {0};
    quant_matrix m = {.type = QT_Q2_K, .n_in = 256, .n_out = 1, .data = w};
    assert_int_equal(quant_matmul(&m, x, 1, y, NULL), -1);
    assert_non_null(strstr(rys_lasterr(), "Q2_K"));
    m = (quant_matrix){.type = QT_Q4_0, .n_in = 48, .n_out = 1, .data = w};
    assert_int_equal(quant_matmul(&m, x, 1, y, NULL), -1);
    assert_non_null(strstr(rys_lasterr(), "48"));
    /* several matrices sharing one input: a count out of range, different widths */
    quant_matrix a = {.type = QT_Q4_0, .n_in = 64, .n_out = 1, .data = w},
                 b = {.type = QT_Q4_0, .n_in = 32, .n_out = 1, .data = w};
    const quant_matrix *ab[5] = {&a, &b, &a, &a, &a};
    float *ys[5] = {y, y, y, y, y};
    assert_int_equal(quant_matmul_many(ab, 0, x, 1, ys, NULL), -1);
    assert_int_equal(quant_matmul_many(ab, QUANT_MANY_MAX + 1, x, 1, ys, NULL), -1);
    assert_non_null(strstr(rys_lasterr(), "matrices"));
    assert_int_equal(quant_matmul_many(ab, 2, x, 1, ys, NULL), -1);
    assert_non_null(strstr(rys_lasterr(), "64 and 32"));
    assert_int_equal(quant_dequantize_row(4, w, y, 4), -1);
    assert_int_equal(quant_dequantize_row(QT_Q8_0, w, y, 31), -1);
}

/* ---- copies kept on disk --------------------------------------------------- */

/* A products' run over two matrices of a file mapped at this call: batch 5
 * (packed copies) and batch 1 (interleaved), outputs into y (4 x 40 floats),
 * with the cache file at cache_path; returns the copies read from it. */
static size_t cached_products(const char *model_path, const char *cache_path, float *y, size_t *made) {
    int fd = open(model_path, O_RDONLY);
    assert_true(fd >= 0);
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    const uint8_t *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    assert_true(map != MAP_FAILED);
    quant_cache_file(map, (size_t)st.st_size, cache_path);
    int64_t n_in = 896, n_out = 40;
    size_t q5 = quant_row_size(QT_Q5_0, n_in) * (size_t)n_out;
    quant_matrix a = {.type = QT_Q5_0, .n_in = n_in, .n_out = n_out, .data = map};
    quant_matrix b = {.type = QT_Q4_0, .n_in = n_in, .n_out = n_out, .data = map + q5};
    rng_state = 77;
    float *x = random_activations(n_in, 5);
    assert_int_equal(quant_matmul(&a, x, 5, y, NULL), 0);
    assert_int_equal(quant_matmul(&b, x, 5, y + 5 * n_out, NULL), 0);
    assert_int_equal(quant_matmul(&a, x, 1, y + 10 * n_out, NULL), 0);
    assert_int_equal(quant_matmul(&b, x, 1, y + 11 * n_out, NULL), 0);
    size_t loaded;
    quant_cache_file_counts(map, &loaded, made);
    quant_release(map, (size_t)st.st_size);
    munmap((void *)map, (size_t)st.st_size);
    free(x);
    return loaded;
}

/* Copies written at release are read back by the next run with the same
 * bits; a damaged copy, a truncated file or a changed source are rebuilt. */
static void test_cache_file(void **state) {
    (void)state;
    const char *model = test_tmp_path("cached-weights.bin"), *cache = test_tmp_path("cached-weights.pack");
    unlink(cache);
    int64_t n_in = 896, n_out = 40;
    size_t q5 = quant_row_size(QT_Q5_0, n_in) * (size_t)n_out, q4 = quant_row_size(QT_Q4_0, n_in) * (size_t)n_out;
    rng_state = 5;
    uint8_t *wa = random_weights(QT_Q5_0, n_in, n_out), *wb = random_weights(QT_Q4_0, n_in, n_out);
    FILE *f = fopen(model, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(wa, 1, q5, f), q5);
    assert_int_equal(fwrite(wb, 1, q4, f), q4);
    fclose(f);
    float want[12 * 40], got[12 * 40];
    size_t made;
    assert_int_equal(cached_products(model, cache, want, &made), 0);       /* no file yet: every copy built */
    assert_int_equal(made, 4);
    struct stat st;
    assert_int_equal(stat(cache, &st), 0);
    assert_int_equal(cached_products(model, cache, got, &made), 4);        /* all four from the file */
    assert_int_equal(made, 0);
    assert_memory_equal(got, want, sizeof want);
    /* a flipped byte inside a copy: that copy is rebuilt, the others still read */
    int fd = open(cache, O_RDWR);
    uint8_t byte;
    off_t at = st.st_size - 100;
    assert_int_equal(pread(fd, &byte, 1, at), 1);
    byte ^= 0x40;
    assert_int_equal(pwrite(fd, &byte, 1, at), 1);
    close(fd);
    assert_int_equal(cached_products(model, cache, got, &made), 3);
    assert_int_equal(made, 1);
    assert_memory_equal(got, want, sizeof want);
    /* the rewritten file is whole again; a truncated one is ignored */
    assert_int_equal(cached_products(model, cache, got, &made), 4);
    assert_int_equal(truncate(cache, 200), 0);
    assert_int_equal(cached_products(model, cache, got, &made), 0);
    assert_int_equal(made, 4);
    assert_memory_equal(got, want, sizeof want);
    /* new weights at the same offsets: the file's copies no longer match them */
    rng_state = 6;
    uint8_t *wc = random_weights(QT_Q5_0, n_in, n_out);
    f = fopen(model, "r+b");
    assert_int_equal(fwrite(wc, 1, q5, f), q5);
    fclose(f);
    assert_int_equal(cached_products(model, cache, got, &made), 2);         /* only the Q4_0 matrix's copies */
    assert_int_equal(made, 2);
    assert_memory_not_equal(got, want, 5 * 40 * sizeof(float));
    assert_memory_equal(got + 5 * 40, want + 5 * 40, 5 * 40 * sizeof(float));
    free(wa);
    free(wb);
    free(wc);
    unlink(model);
    unlink(cache);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_info),
        cmocka_unit_test(test_golden_dequantize),
        cmocka_unit_test(test_golden_float_conversions),
        cmocka_unit_test(test_half_round_trip),
        cmocka_unit_test(test_matmul_vs_reference),
        cmocka_unit_test(test_matmul_threads_identical),
        cmocka_unit_test(test_matmul_rows_independent_of_batch),
        cmocka_unit_test(test_matmul_many_equals_separate),
        cmocka_unit_test(test_amx_equals_vnni),
        cmocka_unit_test(test_packed_kernels_exact),
        cmocka_unit_test(test_float_tiles_equal_avx2_dot),
        cmocka_unit_test(test_matmul_reused_address),
        cmocka_unit_test(test_act_quantizers_identical),
        cmocka_unit_test(test_paths_vs_portable),
        cmocka_unit_test(test_attention_kernels),
        cmocka_unit_test(test_expf_n),
        cmocka_unit_test(test_dispatch),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_cache_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
