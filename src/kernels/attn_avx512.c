/* attn_avx512: the attention value sum (quant_attn_accum_f16) with AVX-512
 * (the Makefile adds the flags because of the _avx512 suffix).
 *
 * Why: with 32 zmm registers the sums of several heads of a GQA group fit
 * at once, so each fp16 V row is converted once for all of them instead of
 * once per head. Every element still takes y = fma(p[j], v[j], y) for
 * j = 0, 1, ... in order, which is what the AVX2 kernel computes, so the
 * bits are the same. */
#include "quant/quant_impl.h"

#include <immintrin.h>

#define HEADS 6 /* 6 heads x 4 zmm of sums + 4 zmm of V: 28 of 32 registers */

/* Columns [c0, c0 + 16*nc) of heads [h0, h0+nh), nc <= 4, nh <= HEADS. */
static inline __attribute__((always_inline)) void accum_block(float *y, size_t y_stride, const float *p,
                                                              size_t p_stride, int nh, const uint16_t *v,
                                                              size_t stride, int64_t n_rows, int nc) {
    __m512 acc[HEADS][4];
    for (int h = 0; h < nh; h++)
        for (int c = 0; c < nc; c++) acc[h][c] = _mm512_loadu_ps(y + h * y_stride + 16 * c);
    for (int64_t j = 0; j < n_rows; j++) {
        const uint16_t *row = v + (size_t)j * stride;
        __m512 vv[4];
        for (int c = 0; c < nc; c++) vv[c] = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(row + 16 * c)));
        for (int h = 0; h < nh; h++) {
            __m512 a = _mm512_set1_ps(p[h * p_stride + (size_t)j]);
            for (int c = 0; c < nc; c++) acc[h][c] = _mm512_fmadd_ps(a, vv[c], acc[h][c]);
        }
    }
    for (int h = 0; h < nh; h++)
        for (int c = 0; c < nc; c++) _mm512_storeu_ps(y + h * y_stride + 16 * c, acc[h][c]);
}

void quant_attn_accum_f16_avx512(float *y, size_t y_stride, const float *p, size_t p_stride, int n_heads,
                                 const uint16_t *v, size_t stride, int64_t n_rows, int64_t n) {
    if (n % 16) {
        quant_attn_accum_f16_avx2(y, y_stride, p, p_stride, n_heads, v, stride, n_rows, n);
        return;
    }
    for (int64_t c0 = 0; c0 < n; c0 += 64) {
        int nc = n - c0 >= 64 ? 4 : (int)((n - c0) / 16);
        for (int h0 = 0; h0 < n_heads; h0 += HEADS) {
            int nh = n_heads - h0 < HEADS ? n_heads - h0 : HEADS;
            float *yb = y + h0 * y_stride + c0;
            const float *pb = p + h0 * p_stride;
            if (nc == 4 && nh == HEADS) accum_block(yb, y_stride, pb, p_stride, HEADS, v + c0, stride, n_rows, 4);
            else accum_block(yb, y_stride, pb, p_stride, nh, v + c0, stride, n_rows, nc);
        }
    }
}
