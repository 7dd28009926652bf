/* dot_avx2: the float-format dot products (F32, F16, BF16) and the fp16
 * attention kernels of quant_impl.h with AVX2, FMA and F16C (the Makefile
 * adds the flags because of the _avx2 suffix; dispatch only calls them on
 * CPUs that have those extensions). Block formats go through the packed
 * kernel (gemm_avx2.c) on this path. Only the order of float additions
 * differs from the portable path. */
#include "kernels/float_dot.h"

#include <math.h>

/* One head: 64 columns at a time stay in registers across all rows, so y
 * is loaded and stored once per call, not once per key. */
static void accum_head(int64_t n, int64_t n_rows, const float *p, const uint16_t *v, size_t stride, float *y) {
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        __m256 acc[8];
        for (int c = 0; c < 8; c++) acc[c] = _mm256_loadu_ps(y + i + 8 * c);
        for (int64_t j = 0; j < n_rows; j++) {
            const uint16_t *row = v + (size_t)j * stride + i;
            __m256 a = _mm256_set1_ps(p[j]);
            for (int c = 0; c < 8; c++)
                acc[c] = _mm256_fmadd_ps(a, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(row + 8 * c))), acc[c]);
        }
        for (int c = 0; c < 8; c++) _mm256_storeu_ps(y + i + 8 * c, acc[c]);
    }
    for (; i + 8 <= n; i += 8) {
        __m256 acc = _mm256_loadu_ps(y + i);
        for (int64_t j = 0; j < n_rows; j++)
            acc = _mm256_fmadd_ps(_mm256_set1_ps(p[j]), _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(v + (size_t)j * stride + i))), acc);
        _mm256_storeu_ps(y + i, acc);
    }
    for (; i < n; i++)
        for (int64_t j = 0; j < n_rows; j++) y[i] = fmaf(p[j], quant_fp16_to_f32(v[(size_t)j * stride + i]), y[i]);
}

void quant_attn_accum_f16_avx2(float *y, size_t y_stride, const float *p, size_t p_stride, int n_heads,
                               const uint16_t *v, size_t stride, int64_t n_rows, int64_t n) {
    for (int h = 0; h < n_heads; h++) accum_head(n, n_rows, p + h * p_stride, v, stride, y + h * y_stride);
}

/* Up to 4 queries per pass over the keys: each K row is converted from fp16
 * once for them, and each (query, key) dot keeps quant_dot_f16_avx2's
 * operations (two 8-lane chains over 16-value steps, then hsum_ps), so its
 * bits. Head sizes that are not a multiple of 16 take the plain dot. */
void quant_attn_scores_f16_avx2(float *s, size_t s_stride, const float *const *q, int n_q, const uint16_t *k,
                               size_t stride, int64_t n_rows, int64_t n, float scale) {
    if (n % 16) {
        for (int h = 0; h < n_q; h++)
            for (int64_t j = 0; j < n_rows; j++)
                s[h * s_stride + (size_t)j] = quant_dot_f16_avx2(n, k + (size_t)j * stride, q[h]) * scale;
        return;
    }
    for (int h0 = 0; h0 < n_q; h0 += 4) {
        int nh = n_q - h0 < 4 ? n_q - h0 : 4;
        const float *const *qh = q + h0;
        for (int64_t j = 0; j < n_rows; j++) {
            const uint16_t *kr = k + (size_t)j * stride;
            __m256 acc0[4], acc1[4];
            for (int h = 0; h < 4; h++) acc0[h] = acc1[h] = _mm256_setzero_ps();
            for (int64_t i = 0; i < n; i += 16) {
                __m256 w0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(kr + i)));
                __m256 w1 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(kr + i + 8)));
                for (int h = 0; h < nh; h++) {
                    acc0[h] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(qh[h] + i), acc0[h]);
                    acc1[h] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(qh[h] + i + 8), acc1[h]);
                }
            }
            for (int h = 0; h < nh; h++) s[(h0 + h) * s_stride + (size_t)j] = hsum_ps(_mm256_add_ps(acc0[h], acc1[h])) * scale;
        }
    }
}

/* F16C's conversion rounds to nearest even like quant_f32_to_fp16, subnormal
 * halves included (it does not flush them). */
void quant_round_f16_avx2(float *x, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(x + i, _mm256_cvtph_ps(_mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)));
    for (; i < n; i++) x[i] = quant_fp16_round(x[i]);
}

void quant_to_f16_avx2(const float *x, uint16_t *h, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(h + i), _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    for (; i < n; i++) h[i] = quant_f32_to_fp16(x[i]);
}

static inline __m256 load_bf16(const uint16_t *p) {
    __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
}

/* Float formats (float_dot.h's sum). With nx activation rows each weight
 * vector is loaded (and converted) once for all of them; every row gets the
 * same operations as alone. */
ALWAYS_INLINE __m256 load8_weights(enum float_kind kind, const void *w, int64_t i) {
    switch (kind) {
    case FK_F32: return _mm256_loadu_ps((const float *)w + i);
    case FK_F16: return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)w + i)));
    default: return load_bf16((const uint16_t *)w + i);
    }
}

enum { COLS_AVX2 = 4 };

ALWAYS_INLINE void float_dot(enum float_kind kind, int64_t n, const void *w, const void *x, size_t xs, int nx,
                             float *y, size_t ys) {
    __m256 acc0[COLS_AVX2], acc1[COLS_AVX2];
    const float *b[COLS_AVX2];
#pragma GCC unroll 4
    for (int c = 0; c < nx; c++) {
        acc0[c] = acc1[c] = _mm256_setzero_ps();
        b[c] = (const float *)((const uint8_t *)x + (size_t)c * xs);
    }
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256 w0 = load8_weights(kind, w, i), w1 = load8_weights(kind, w, i + 8);
#pragma GCC unroll 4
        for (int c = 0; c < nx; c++) {
            acc0[c] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(b[c] + i), acc0[c]);
            acc1[c] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(b[c] + i + 8), acc1[c]);
        }
    }
#pragma GCC unroll 4
    for (int c = 0; c < nx; c++) y[(size_t)c * ys] = float_dot_finish(kind, acc0[c], acc1[c], i, n, w, b[c]);
}

/* The exported single dot and tile for each format: the tile takes one
 * weight row per pass (nw rows in turn) against up to COLS_AVX2 activation
 * rows, instantiated with constant nx so the loops unroll and the
 * accumulators stay in registers. */
#define DEFINE_FLOAT(NAME, KIND)                                                                       \
    float quant_dot_##NAME##_avx2(int64_t n, const void *w, const void *x) {                           \
        float out;                                                                                     \
        float_dot(KIND, n, w, x, 0, 1, &out, 0);                                                       \
        return out;                                                                                    \
    }                                                                                                  \
    void quant_dot_tile_##NAME##_avx2(int64_t n, const void *w, size_t w_row, int nw, const void *x,   \
                                      size_t xs, int nx, float *y, size_t ys) {                        \
        for (int r = 0; r < nw; r++) {                                                                 \
            const void *wr = (const uint8_t *)w + (size_t)r * w_row;                                   \
            switch (nx) {                                                                              \
            case 1: float_dot(KIND, n, wr, x, xs, 1, y + r, ys); break;                                \
            case 2: float_dot(KIND, n, wr, x, xs, 2, y + r, ys); break;                                \
            case 3: float_dot(KIND, n, wr, x, xs, 3, y + r, ys); break;                                \
            default: float_dot(KIND, n, wr, x, xs, COLS_AVX2, y + r, ys); break;                       \
            }                                                                                          \
        }                                                                                              \
    }

DEFINE_FLOAT(f32, FK_F32)
DEFINE_FLOAT(f16, FK_F16)
DEFINE_FLOAT(bf16, FK_BF16)
