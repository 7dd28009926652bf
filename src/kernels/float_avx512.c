/* float_avx512: float-weight products (F32, F16, BF16) in register tiles of
 * TILE_ROWS weight rows by up to TILE_COLS activation rows (the Makefile adds
 * the AVX-512 flags because of the suffix).
 *
 * Why: the AVX2 dot loads each weight vector once for four activation rows
 * but every activation vector once per weight row, so a product of big
 * batches runs on loads, not multiply-adds. Here a zmm is one 16-value step
 * of one (weight row, activation row) pair: lanes 0-7 are the AVX2 dot's
 * first chain and 8-15 its second, and the halves are added and summed the
 * same way (float_dot.h), so every output has the AVX2 dot's bits while a
 * step costs 4 weight and 6 activation loads for 24 multiply-adds. */
#include "kernels/float_dot.h"

enum { TILE_ROWS = 4, TILE_COLS = 6 };

ALWAYS_INLINE __m512 load16_weights(enum float_kind kind, const void *w, int64_t i) {
    switch (kind) {
    case FK_F32: return _mm512_loadu_ps((const float *)w + i);
    case FK_F16: return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)((const uint16_t *)w + i)));
    default: {
        __m512i v = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)((const uint16_t *)w + i)));
        return _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
    }
    }
}

/* Rows past nw repeat the last one (computed, not stored), so the inner loop
 * always has TILE_ROWS independent weight vectors; nx is a constant in each
 * instantiation. */
ALWAYS_INLINE void float_tile(enum float_kind kind, int64_t n, const void *w, size_t w_row, int nw, const void *x,
                              size_t xs, int nx, float *y, size_t ys) {
    const void *wr[TILE_ROWS];
    const float *b[TILE_COLS];
    __m512 acc[TILE_COLS][TILE_ROWS];
#pragma GCC unroll 4
    for (int r = 0; r < TILE_ROWS; r++) wr[r] = (const uint8_t *)w + (size_t)(r < nw ? r : nw - 1) * w_row;
#pragma GCC unroll 6
    for (int c = 0; c < nx; c++) {
        b[c] = (const float *)((const uint8_t *)x + (size_t)c * xs);
#pragma GCC unroll 4
        for (int r = 0; r < TILE_ROWS; r++) acc[c][r] = _mm512_setzero_ps();
    }
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 wv[TILE_ROWS];
#pragma GCC unroll 4
        for (int r = 0; r < TILE_ROWS; r++) wv[r] = load16_weights(kind, wr[r], i);
#pragma GCC unroll 6
        for (int c = 0; c < nx; c++) {
            __m512 xv = _mm512_loadu_ps(b[c] + i);
#pragma GCC unroll 4
            for (int r = 0; r < TILE_ROWS; r++) acc[c][r] = _mm512_fmadd_ps(wv[r], xv, acc[c][r]);
        }
    }
    for (int c = 0; c < nx; c++)
        for (int r = 0; r < nw; r++)
            y[(size_t)c * ys + (size_t)r] =
                float_dot_finish(kind, _mm512_castps512_ps256(acc[c][r]), _mm512_extractf32x8_ps(acc[c][r], 1), i,
                                 n, wr[r], b[c]);
}

/* Below four activation rows a product is bound by reading the weights,
 * and the AVX2 dot's one weight stream reads them faster than four (F32
 * Qwen2.5-Coder-0.5B, one thread: batch 1 about 100 ms a pass against 150
 * in tiles; equal at batch 4); same bits either way. */
#define DEFINE_TILE(NAME, KIND)                                                                       \
    void quant_dot_tile_##NAME##_avx512(int64_t n, const void *w, size_t w_row, int nw, const void *x, \
                                        size_t xs, int nx, float *y, size_t ys) {                      \
        switch (nx) {                                                                                  \
        case 1: case 2: case 3: quant_dot_tile_##NAME##_avx2(n, w, w_row, nw, x, xs, nx, y, ys); break; \
        case 4: float_tile(KIND, n, w, w_row, nw, x, xs, 4, y, ys); break;                             \
        case 5: float_tile(KIND, n, w, w_row, nw, x, xs, 5, y, ys); break;                             \
        default: float_tile(KIND, n, w, w_row, nw, x, xs, TILE_COLS, y, ys); break;                    \
        }                                                                                              \
    }

DEFINE_TILE(f32, FK_F32)
DEFINE_TILE(f16, FK_F16)
DEFINE_TILE(bf16, FK_BF16)
