/* float_dot: what the AVX2 and AVX-512 float-weight kernels (F32, F16, BF16)
 * share, so that both give one sum's bits: a dot product is two 8-lane FMA
 * chains over 16-value steps (lanes 0-7 and 8-15 of each step), the chains
 * added, hsum_ps's tree, then the tail one value at a time. Included only
 * by src/kernels files compiled with at least AVX2, FMA and F16C. */
#ifndef RYS_KERNELS_FLOAT_DOT_H
#define RYS_KERNELS_FLOAT_DOT_H

#include "quant/quant_impl.h"

#include <immintrin.h>

#define ALWAYS_INLINE static inline __attribute__((always_inline))

enum float_kind { FK_F32, FK_F16, FK_BF16 };

ALWAYS_INLINE float hsum_ps(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

ALWAYS_INLINE float weight_at(enum float_kind kind, const void *w, int64_t i) {
    switch (kind) {
    case FK_F32: return ((const float *)w)[i];
    case FK_F16: return quant_fp16_to_f32(((const uint16_t *)w)[i]);
    default: return quant_bf16_to_f32(((const uint16_t *)w)[i]);
    }
}

/* The end of one dot product: the two chains' sum, then the tail from i. */
ALWAYS_INLINE float float_dot_finish(enum float_kind kind, __m256 acc0, __m256 acc1, int64_t i, int64_t n,
                                     const void *w, const float *x) {
    float s = hsum_ps(_mm256_add_ps(acc0, acc1));
    for (; i < n; i++) s += weight_at(kind, w, i) * x[i];
    return s;
}

#endif
