/* legacy: reference dequantizers, the Q8A activation quantizer and portable
 * dot products for Q4_0, Q4_1, Q5_0, Q5_1 and Q8_0 (layouts in legacy.h).
 *
 * The portable dots are the oracle for the ISA kernels: integer sums per
 * block, one float multiply-add per block, nothing clever. */
#include "quant/legacy.h"
#include "quant/quant_impl.h"

#include <math.h>
#include <string.h>

static uint32_t q5_high_bits(const uint8_t qh[4]) {
    uint32_t h;
    memcpy(&h, qh, sizeof h); /* little-endian, as ggml stores it */
    return h;
}

void quant_dequant_q4_0(const void *src, float *dst, int64_t n) {
    const block_q4_0 *b = src;
    for (int64_t i = 0; i < n / QK_LEGACY; i++, dst += QK_LEGACY) {
        float d = quant_fp16_to_f32(b[i].d);
        for (int j = 0; j < QK_LEGACY / 2; j++) {
            dst[j] = (float)((b[i].qs[j] & 0xF) - 8) * d;
            dst[j + QK_LEGACY / 2] = (float)((b[i].qs[j] >> 4) - 8) * d;
        }
    }
}

void quant_dequant_q4_1(const void *src, float *dst, int64_t n) {
    const block_q4_1 *b = src;
    for (int64_t i = 0; i < n / QK_LEGACY; i++, dst += QK_LEGACY) {
        float d = quant_fp16_to_f32(b[i].d), m = quant_fp16_to_f32(b[i].m);
        for (int j = 0; j < QK_LEGACY / 2; j++) {
            dst[j] = (float)(b[i].qs[j] & 0xF) * d + m;
            dst[j + QK_LEGACY / 2] = (float)(b[i].qs[j] >> 4) * d + m;
        }
    }
}

void quant_dequant_q5_0(const void *src, float *dst, int64_t n) {
    const block_q5_0 *b = src;
    for (int64_t i = 0; i < n / QK_LEGACY; i++, dst += QK_LEGACY) {
        float d = quant_fp16_to_f32(b[i].d);
        uint32_t qh = q5_high_bits(b[i].qh);
        for (int j = 0; j < QK_LEGACY / 2; j++) {
            int lo = (b[i].qs[j] & 0xF) | (int)(((qh >> j) & 1) << 4);
            int hi = (b[i].qs[j] >> 4) | (int)(((qh >> (j + 16)) & 1) << 4);
            dst[j] = (float)(lo - 16) * d;
            dst[j + QK_LEGACY / 2] = (float)(hi - 16) * d;
        }
    }
}

void quant_dequant_q5_1(const void *src, float *dst, int64_t n) {
    const block_q5_1 *b = src;
    for (int64_t i = 0; i < n / QK_LEGACY; i++, dst += QK_LEGACY) {
        float d = quant_fp16_to_f32(b[i].d), m = quant_fp16_to_f32(b[i].m);
        uint32_t qh = q5_high_bits(b[i].qh);
        for (int j = 0; j < QK_LEGACY / 2; j++) {
            int lo = (b[i].qs[j] & 0xF) | (int)(((qh >> j) & 1) << 4);
            int hi = (b[i].qs[j] >> 4) | (int)(((qh >> (j + 16)) & 1) << 4);
            dst[j] = (float)lo * d + m;
            dst[j + QK_LEGACY / 2] = (float)hi * d + m;
        }
    }
}

void quant_dequant_q8_0(const void *src, float *dst, int64_t n) {
    const block_q8_0 *b = src;
    for (int64_t i = 0; i < n / QK_LEGACY; i++, dst += QK_LEGACY) {
        float d = quant_fp16_to_f32(b[i].d);
        for (int j = 0; j < QK_LEGACY; j++) dst[j] = (float)b[i].qs[j] * d;
    }
}

/* Symmetric, 127 steps each side: no -128, so kernels may negate values.
 * Bit for bit what llama.cpp's x86 quantize_row_q8_0 / q8_1 store: values
 * x * (127 / amax) rounded half to even, the scale amax / 127 and the scaled
 * sum (taken with the unrounded scale) rounded to fp16. Matching them is what
 * keeps our logits within float rounding of llama.cpp's: a different rounding
 * of one activation flips values, and flips compound over dozens of layers. */
void quant_act_q8a(const float *x, void *dst, int64_t n) {
    block_q8a *b = dst;
    for (int64_t i = 0; i < n / QK_LEGACY; i++, x += QK_LEGACY) {
        float amax = 0;
        for (int j = 0; j < QK_LEGACY; j++) amax = fabsf(x[j]) > amax ? fabsf(x[j]) : amax; /* no libm call */
        float d = amax / 127.0f, id = amax > 0 ? 127.0f / amax : 0.0f;
        int sum = 0;
        for (int j = 0; j < QK_LEGACY; j++) {
            int q = (int)lrintf(x[j] * id);
            q = q > 127 ? 127 : q < -127 ? -127 : q;
            b[i].qs[j] = (int8_t)q;
            sum += q;
        }
        b[i].d = quant_fp16_round(d);
        b[i].s = quant_fp16_round(d * (float)sum);
    }
}

/* Sum over a block of (weight value) * (activation value), weights given as
 * 32 small integers in element order. */
static int block_isum(const int w[QK_LEGACY], const int8_t *a) {
    int s = 0;
    for (int j = 0; j < QK_LEGACY; j++) s += w[j] * a[j];
    return s;
}

static void unpack_nibbles(const uint8_t *qs, int out[QK_LEGACY]) {
    for (int j = 0; j < QK_LEGACY / 2; j++) {
        out[j] = qs[j] & 0xF;
        out[j + QK_LEGACY / 2] = qs[j] >> 4;
    }
}

static void unpack_q5(const uint8_t *qs, const uint8_t qh_bytes[4], int out[QK_LEGACY]) {
    uint32_t qh = q5_high_bits(qh_bytes);
    unpack_nibbles(qs, out);
    for (int j = 0; j < QK_LEGACY; j++) out[j] |= (int)(((qh >> j) & 1) << 4);
}

float quant_dot_q4_0_portable(int64_t n, const void *w, const void *x) {
    const block_q4_0 *b = w;
    const block_q8a *a = x;
    float acc = 0;
    int q[QK_LEGACY];
    for (int64_t i = 0; i < n / QK_LEGACY; i++) {
        unpack_nibbles(b[i].qs, q);
        for (int j = 0; j < QK_LEGACY; j++) q[j] -= 8;
        acc += quant_fp16_to_f32(b[i].d) * a[i].d * (float)block_isum(q, a[i].qs);
    }
    return acc;
}

float quant_dot_q4_1_portable(int64_t n, const void *w, const void *x) {
    const block_q4_1 *b = w;
    const block_q8a *a = x;
    float acc = 0;
    int q[QK_LEGACY];
    for (int64_t i = 0; i < n / QK_LEGACY; i++) {
        unpack_nibbles(b[i].qs, q);
        acc += quant_fp16_to_f32(b[i].d) * a[i].d * (float)block_isum(q, a[i].qs) +
               quant_fp16_to_f32(b[i].m) * a[i].s;
    }
    return acc;
}

float quant_dot_q5_0_portable(int64_t n, const void *w, const void *x) {
    const block_q5_0 *b = w;
    const block_q8a *a = x;
    float acc = 0;
    int q[QK_LEGACY];
    for (int64_t i = 0; i < n / QK_LEGACY; i++) {
        unpack_q5(b[i].qs, b[i].qh, q);
        for (int j = 0; j < QK_LEGACY; j++) q[j] -= 16;
        acc += quant_fp16_to_f32(b[i].d) * a[i].d * (float)block_isum(q, a[i].qs);
    }
    return acc;
}

float quant_dot_q5_1_portable(int64_t n, const void *w, const void *x) {
    const block_q5_1 *b = w;
    const block_q8a *a = x;
    float acc = 0;
    int q[QK_LEGACY];
    for (int64_t i = 0; i < n / QK_LEGACY; i++) {
        unpack_q5(b[i].qs, b[i].qh, q);
        acc += quant_fp16_to_f32(b[i].d) * a[i].d * (float)block_isum(q, a[i].qs) +
               quant_fp16_to_f32(b[i].m) * a[i].s;
    }
    return acc;
}

float quant_dot_q8_0_portable(int64_t n, const void *w, const void *x) {
    const block_q8_0 *b = w;
    const block_q8a *a = x;
    float acc = 0;
    for (int64_t i = 0; i < n / QK_LEGACY; i++) {
        int s = 0;
        for (int j = 0; j < QK_LEGACY; j++) s += b[i].qs[j] * a[i].qs[j];
        acc += quant_fp16_to_f32(b[i].d) * a[i].d * (float)s;
    }
    return acc;
}

/* Unpackers for the packed matrix layout (quant_impl.h): unsigned values
 * and the float scale and minimum of each 32-element block, such that
 * weight = scale * (value - offset) + min, offset the format's constant. */
void quant_unpack_q4_0(const void *src, int64_t n, uint8_t *q, float *scale, float *min) {
    const block_q4_0 *b = src;
    int v[QK_LEGACY];
    for (int64_t i = 0; i < n / QK_LEGACY; i++, q += QK_LEGACY) {
        unpack_nibbles(b[i].qs, v);
        for (int j = 0; j < QK_LEGACY; j++) q[j] = (uint8_t)v[j];
        scale[i] = quant_fp16_to_f32(b[i].d);
        min[i] = 0;
    }
}

void quant_unpack_q4_1(const void *src, int64_t n, uint8_t *q, float *scale, float *min) {
    const block_q4_1 *b = src;
    int v[QK_LEGACY];
    for (int64_t i = 0; i < n / QK_LEGACY; i++, q += QK_LEGACY) {
        unpack_nibbles(b[i].qs, v);
        for (int j = 0; j < QK_LEGACY; j++) q[j] = (uint8_t)v[j];
        scale[i] = quant_fp16_to_f32(b[i].d);
        min[i] = quant_fp16_to_f32(b[i].m);
    }
}

void quant_unpack_q5_0(const void *src, int64_t n, uint8_t *q, float *scale, float *min) {
    const block_q5_0 *b = src;
    int v[QK_LEGACY];
    for (int64_t i = 0; i < n / QK_LEGACY; i++, q += QK_LEGACY) {
        unpack_q5(b[i].qs, b[i].qh, v);
        for (int j = 0; j < QK_LEGACY; j++) q[j] = (uint8_t)v[j];
        scale[i] = quant_fp16_to_f32(b[i].d);
        min[i] = 0;
    }
}

void quant_unpack_q5_1(const void *src, int64_t n, uint8_t *q, float *scale, float *min) {
    const block_q5_1 *b = src;
    int v[QK_LEGACY];
    for (int64_t i = 0; i < n / QK_LEGACY; i++, q += QK_LEGACY) {
        unpack_q5(b[i].qs, b[i].qh, v);
        for (int j = 0; j < QK_LEGACY; j++) q[j] = (uint8_t)v[j];
        scale[i] = quant_fp16_to_f32(b[i].d);
        min[i] = quant_fp16_to_f32(b[i].m);
    }
}

/* Offset 128: signed values made unsigned. */
void quant_unpack_q8_0(const void *src, int64_t n, uint8_t *q, float *scale, float *min) {
    const block_q8_0 *b = src;
    for (int64_t i = 0; i < n / QK_LEGACY; i++, q += QK_LEGACY) {
        for (int j = 0; j < QK_LEGACY; j++) q[j] = (uint8_t)(b[i].qs[j] + 128);
        scale[i] = quant_fp16_to_f32(b[i].d);
        min[i] = 0;
    }
}
