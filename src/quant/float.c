/* float: the unquantized formats F32, F16 and BF16. Weights in these formats
 * are multiplied with f32 activations directly: quantizing the activations
 * would only lose precision where the weights kept it.
 *
 * The conversions are bit-exact with numpy's float16 (round to nearest even,
 * NaN payload kept) and ggml's bf16 (round to nearest even, NaN made quiet),
 * which are the references the tests check them against. */
#include "quant/quant_impl.h"

#include <string.h>

static float bits_to_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static uint32_t f32_to_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

float quant_fp16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1F, man = h & 0x3FF;
    if (exp == 0x1F) return bits_to_f32(sign | 0x7F800000u | (man << 13));
    if (exp) return bits_to_f32(sign | ((exp + 112) << 23) | (man << 13));
    float sub = (float)man * 0x1p-24f; /* subnormal or zero, exact */
    return sign ? -sub : sub;
}

uint16_t quant_f32_to_fp16(float f) {
    uint32_t x = f32_to_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    uint32_t ax = x & 0x7FFFFFFFu;
    if (ax > 0x7F800000u) {
        uint16_t nan = (uint16_t)(0x7C00u | ((ax & 0x7FFFFFu) >> 13));
        return sign | (nan == 0x7C00u ? 0x7C01u : nan);
    }
    if (ax >= 0x477FF000u) return sign | 0x7C00u; /* 65520 and up round to inf */
    uint32_t m, shift;
    if (ax >= 0x38800000u) { /* normal half: rebias the exponent, drop 13 bits */
        m = ax - (112u << 23);
        shift = 13;
    } else { /* subnormal half: units of 2^-24 */
        uint32_t e = ax >> 23;
        shift = 126 - e;
        if (shift >= 25) return sign;
        m = (ax & 0x7FFFFFu) | 0x800000u;
    }
    uint32_t h = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (h & 1))) h++;
    return (uint16_t)(sign | h);
}

float quant_bf16_to_f32(uint16_t h) { return bits_to_f32((uint32_t)h << 16); }

uint16_t quant_f32_to_bf16(float f) {
    uint32_t x = f32_to_bits(f);
    if ((x & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((x >> 16) | 0x40);
    return (uint16_t)((x + 0x7FFFu + ((x >> 16) & 1)) >> 16);
}

void quant_dequant_f32(const void *src, float *dst, int64_t n) { memcpy(dst, src, (size_t)n * sizeof(float)); }

void quant_dequant_f16(const void *src, float *dst, int64_t n) {
    const uint16_t *h = src;
    for (int64_t i = 0; i < n; i++) dst[i] = quant_fp16_to_f32(h[i]);
}

void quant_dequant_bf16(const void *src, float *dst, int64_t n) {
    const uint16_t *h = src;
    for (int64_t i = 0; i < n; i++) dst[i] = quant_bf16_to_f32(h[i]);
}

/* Eight partial sums, like the vector kernels, so the portable result rounds
 * the same way to within a few ulps and the compiler can vectorize it. */
#define FLOAT_DOT(NAME, TYPE, LOAD)                                        \
    float NAME(int64_t n, const void *w, const void *x) {                 \
        const TYPE *a = w;                                                 \
        const float *b = x;                                                \
        float acc[8] = {0};                                                \
        int64_t i = 0;                                                     \
        for (; i + 8 <= n; i += 8)                                         \
            for (int l = 0; l < 8; l++) acc[l] += LOAD(a[i + l]) * b[i + l]; \
        for (; i < n; i++) acc[0] += LOAD(a[i]) * b[i];                    \
        return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])); \
    }

#define LOAD_F32(v) (v)
FLOAT_DOT(quant_dot_f32_portable, float, LOAD_F32)
FLOAT_DOT(quant_dot_f16_portable, uint16_t, quant_fp16_to_f32)
FLOAT_DOT(quant_dot_bf16_portable, uint16_t, quant_bf16_to_f32)

void quant_attn_scores_f16_portable(float *s, size_t s_stride, const float *const *q, int n_q, const uint16_t *k,
                                   size_t stride, int64_t n_rows, int64_t n, float scale) {
    for (int h = 0; h < n_q; h++)
        for (int64_t j = 0; j < n_rows; j++)
            s[h * s_stride + (size_t)j] = quant_dot_f16_portable(n, k + (size_t)j * stride, q[h]) * scale;
}

void quant_attn_accum_f16_portable(float *y, size_t y_stride, const float *p, size_t p_stride, int n_heads,
                                   const uint16_t *v, size_t stride, int64_t n_rows, int64_t n) {
    for (int h = 0; h < n_heads; h++)
        for (int64_t j = 0; j < n_rows; j++)
            for (int64_t i = 0; i < n; i++)
                y[h * y_stride + (size_t)i] += p[h * p_stride + (size_t)j] * quant_fp16_to_f32(v[(size_t)j * stride + i]);
}

void quant_round_f16_portable(float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) x[i] = quant_fp16_round(x[i]);
}

void quant_to_f16_portable(const float *x, uint16_t *h, int64_t n) {
    for (int64_t i = 0; i < n; i++) h[i] = quant_f32_to_fp16(x[i]);
}
