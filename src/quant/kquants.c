/* kquants: reference dequantizers, the Q8_K activation quantizer and
 * portable dot products for Q4_K, Q5_K and Q6_K (layouts in kquants.h).
 *
 * Each super-block is first unpacked into plain integers (values, sub-block
 * scales and minimums); dequantization and the portable dots both read that
 * unpacked form, so the bit layout is decoded in exactly one place. The
 * portable dots are the oracle for the ISA kernels. */
#include "quant/kquants.h"
#include "quant/quant_impl.h"

#include <math.h>

/* A Q4_K or Q5_K super-block: x[i] = d*sc[i/32]*q[i] - dmin*m[i/32]. */
typedef struct {
    float d, dmin;
    uint8_t sc[8], m[8];
    uint8_t q[QK_K];
} unpacked_k;

static void unpack_scales(const uint8_t *scales, unpacked_k *u) {
    for (int j = 0; j < 8; j++) kq_scale_min(j, scales, &u->sc[j], &u->m[j]);
}

/* Nibbles of 32 bytes hold two sub-blocks: low nibbles the first. */
static void unpack_q4_values(const uint8_t *qs, uint8_t *q) {
    for (int c = 0; c < QK_K / 64; c++, qs += 32, q += 64)
        for (int l = 0; l < 32; l++) {
            q[l] = qs[l] & 0xF;
            q[l + 32] = qs[l] >> 4;
        }
}

static void unpack_q4_K(const block_q4_K *b, unpacked_k *u) {
    u->d = quant_fp16_to_f32(b->d);
    u->dmin = quant_fp16_to_f32(b->dmin);
    unpack_scales(b->scales, u);
    unpack_q4_values(b->qs, u->q);
}

/* Bit j of qh[l] is the fifth bit of element 32*j + l. */
static void unpack_q5_K(const block_q5_K *b, unpacked_k *u) {
    u->d = quant_fp16_to_f32(b->d);
    u->dmin = quant_fp16_to_f32(b->dmin);
    unpack_scales(b->scales, u);
    unpack_q4_values(b->qs, u->q);
    for (int j = 0; j < 8; j++)
        for (int l = 0; l < 32; l++) u->q[32 * j + l] |= (uint8_t)(((b->qh[l] >> j) & 1) << 4);
}

static void dequant_unpacked(const unpacked_k *u, float *dst) {
    for (int j = 0; j < 8; j++) {
        float d1 = u->d * (float)u->sc[j], m1 = u->dmin * (float)u->m[j];
        for (int l = 0; l < 32; l++) dst[32 * j + l] = d1 * (float)u->q[32 * j + l] - m1;
    }
}

void quant_dequant_q4_K(const void *src, float *dst, int64_t n) {
    const block_q4_K *b = src;
    unpacked_k u;
    for (int64_t i = 0; i < n / QK_K; i++, dst += QK_K) {
        unpack_q4_K(&b[i], &u);
        dequant_unpacked(&u, dst);
    }
}

void quant_dequant_q5_K(const void *src, float *dst, int64_t n) {
    const block_q5_K *b = src;
    unpacked_k u;
    for (int64_t i = 0; i < n / QK_K; i++, dst += QK_K) {
        unpack_q5_K(&b[i], &u);
        dequant_unpacked(&u, dst);
    }
}

/* Q6_K values centred: q[i] in [-32, 31]; x[i] = d * scales[i/16] * q[i].
 * Per 128 elements: 64 bytes ql and 32 bytes qh hold four runs of 32. */
static void unpack_q6_K(const block_q6_K *b, int8_t *q) {
    const uint8_t *ql = b->ql, *qh = b->qh;
    for (int c = 0; c < QK_K / 128; c++, ql += 64, qh += 32, q += 128)
        for (int l = 0; l < 32; l++) {
            q[l] = (int8_t)(((ql[l] & 0xF) | ((qh[l] & 3) << 4)) - 32);
            q[l + 32] = (int8_t)(((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32);
            q[l + 64] = (int8_t)(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
            q[l + 96] = (int8_t)(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
        }
}

void quant_dequant_q6_K(const void *src, float *dst, int64_t n) {
    const block_q6_K *b = src;
    int8_t q[QK_K];
    for (int64_t i = 0; i < n / QK_K; i++, dst += QK_K) {
        unpack_q6_K(&b[i], q);
        float d = quant_fp16_to_f32(b[i].d);
        for (int g = 0; g < QK_K / 16; g++) {
            float dg = d * (float)b[i].scales[g];
            for (int l = 0; l < 16; l++) dst[16 * g + l] = dg * (float)q[16 * g + l];
        }
    }
}

void quant_dequant_q8_K(const void *src, float *dst, int64_t n) {
    const block_q8_K *b = src;
    for (int64_t i = 0; i < n / QK_K; i++, dst += QK_K)
        for (int j = 0; j < QK_K; j++) dst[j] = b[i].d * (float)b[i].qs[j];
}

/* Symmetric, 127 steps each side: no -128, so kernels may negate values. */
void quant_act_q8_K(const float *x, void *dst, int64_t n) {
    block_q8_K *b = dst;
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        float iscale = quant_q8_K_iscale(x);
        for (int g = 0; g < QK_K / 16; g++) {
            int sum = 0;
            for (int l = 0; l < 16; l++) {
                int q = (int)lrintf(x[16 * g + l] * iscale);
                q = q > 127 ? 127 : q < -127 ? -127 : q;
                b[i].qs[16 * g + l] = (int8_t)q;
                sum += q;
            }
            b[i].bsums[g] = (int16_t)sum;
        }
        b[i].d = iscale != 0 ? 1 / iscale : 0;
    }
}

/* llama.cpp's Q8_K scale (quantize_row_q8_K_ref): -127 / (the first value of
 * largest magnitude), so that value becomes -127; the scale is negative when
 * it is positive. Kept exactly, sign included, for the same values as
 * llama.cpp (see quant_act_q8a). 0 for an all-zero block. */
float quant_q8_K_iscale(const float *x) {
    float amax = 0, max = 0;
    for (int j = 0; j < QK_K; j++)
        if (fabsf(x[j]) > amax) { amax = fabsf(x[j]); max = x[j]; }
    return amax > 0 ? -127.0f / max : 0.0f;
}

/* d*sum_j sc_j*<q_j,a_j> - dmin*sum_j m_j*sum(a_j), the minimums applied
 * through the activation block sums. */
static float dot_unpacked(const unpacked_k *u, const block_q8_K *a) {
    int sumi = 0, summ = 0;
    for (int j = 0; j < 8; j++) {
        int s = 0;
        for (int l = 0; l < 32; l++) s += u->q[32 * j + l] * a->qs[32 * j + l];
        sumi += u->sc[j] * s;
        summ += u->m[j] * (a->bsums[2 * j] + a->bsums[2 * j + 1]);
    }
    return a->d * (u->d * (float)sumi - u->dmin * (float)summ);
}

float quant_dot_q4_K_portable(int64_t n, const void *w, const void *x) {
    const block_q4_K *b = w;
    const block_q8_K *a = x;
    unpacked_k u;
    float acc = 0;
    for (int64_t i = 0; i < n / QK_K; i++) {
        unpack_q4_K(&b[i], &u);
        acc += dot_unpacked(&u, &a[i]);
    }
    return acc;
}

float quant_dot_q5_K_portable(int64_t n, const void *w, const void *x) {
    const block_q5_K *b = w;
    const block_q8_K *a = x;
    unpacked_k u;
    float acc = 0;
    for (int64_t i = 0; i < n / QK_K; i++) {
        unpack_q5_K(&b[i], &u);
        acc += dot_unpacked(&u, &a[i]);
    }
    return acc;
}

float quant_dot_q6_K_portable(int64_t n, const void *w, const void *x) {
    const block_q6_K *b = w;
    const block_q8_K *a = x;
    int8_t q[QK_K];
    float acc = 0;
    for (int64_t i = 0; i < n / QK_K; i++) {
        unpack_q6_K(&b[i], q);
        int sumi = 0;
        for (int g = 0; g < QK_K / 16; g++) {
            int s = 0;
            for (int l = 0; l < 16; l++) s += q[16 * g + l] * a[i].qs[16 * g + l];
            sumi += b[i].scales[g] * s;
        }
        acc += quant_fp16_to_f32(b[i].d) * a[i].d * (float)sumi;
    }
    return acc;
}

/* Unpackers for the packed matrix layout (quant_impl.h). Q4_K/Q5_K: per 32
 * elements scale d*sc and minimum -dmin*m, both exact in f32 (11-bit by
 * 6-bit products). Q6_K: per 16 elements scale d*sc, values 0..63 with
 * offset 32. */
static void unpack_k_packed(const unpacked_k *u, uint8_t *q, float *scale, float *min) {
    for (int j = 0; j < 8; j++) {
        scale[j] = u->d * (float)u->sc[j];
        min[j] = -(u->dmin * (float)u->m[j]);
    }
    for (int l = 0; l < QK_K; l++) q[l] = u->q[l];
}

void quant_unpack_q4_K(const void *src, int64_t n, uint8_t *q, float *scale, float *min) {
    const block_q4_K *b = src;
    unpacked_k u;
    for (int64_t i = 0; i < n / QK_K; i++) {
        unpack_q4_K(&b[i], &u);
        unpack_k_packed(&u, q + i * QK_K, scale + 8 * i, min + 8 * i);
    }
}

void quant_unpack_q5_K(const void *src, int64_t n, uint8_t *q, float *scale, float *min) {
    const block_q5_K *b = src;
    unpacked_k u;
    for (int64_t i = 0; i < n / QK_K; i++) {
        unpack_q5_K(&b[i], &u);
        unpack_k_packed(&u, q + i * QK_K, scale + 8 * i, min + 8 * i);
    }
}

void quant_unpack_q6_K(const void *src, int64_t n, uint8_t *q, float *scale, float *min) {
    const block_q6_K *b = src;
    int8_t v[QK_K];
    for (int64_t i = 0; i < n / QK_K; i++) {
        unpack_q6_K(&b[i], v);
        float d = quant_fp16_to_f32(b[i].d);
        for (int l = 0; l < QK_K; l++) q[i * QK_K + l] = (uint8_t)(v[l] + 32);
        for (int g = 0; g < QK_K / 16; g++) {
            scale[16 * i + g] = d * (float)b[i].scales[g];
            min[16 * i + g] = 0;
        }
    }
}
