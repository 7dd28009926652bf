/* kquants: block layouts of ggml's k-quant formats (256-element super-blocks
 * split into sub-blocks with their own quantized scales) and of Q8_K, the
 * 8-bit activation block they are multiplied with.
 *
 * All are ggml's byte for byte. Q8_K carries per-16-element sums of its
 * values so kernels can apply the weights' minimums and offsets per
 * sub-block without summing the activations again. */
#ifndef RYS_QUANT_KQUANTS_H
#define RYS_QUANT_KQUANTS_H

#include <assert.h>
#include <stdint.h>

#define QK_K 256
#define K_SCALE_SIZE 12

/* 8 sub-blocks of 32: x = d*sc*q - dmin*m, 6-bit sc and m packed in scales. */
typedef struct { uint16_t d, dmin; uint8_t scales[K_SCALE_SIZE]; uint8_t qs[QK_K / 2]; } block_q4_K;
/* As Q4_K with a fifth bit per value in qh. */
typedef struct {
    uint16_t d, dmin;
    uint8_t scales[K_SCALE_SIZE];
    uint8_t qh[QK_K / 8];
    uint8_t qs[QK_K / 2];
} block_q5_K;
/* 16 sub-blocks of 16: x = d*sc*(q-32), 6-bit q split into ql (low 4) and qh (high 2). */
typedef struct { uint8_t ql[QK_K / 2]; uint8_t qh[QK_K / 4]; int8_t scales[QK_K / 16]; uint16_t d; } block_q6_K;
/* Activations: x[i] ~= d * qs[i]; bsums[g] = sum of qs over elements 16g..16g+15. */
typedef struct { float d; int8_t qs[QK_K]; int16_t bsums[QK_K / 16]; } block_q8_K;
static_assert(sizeof(block_q4_K) == 144, "block_q4_K layout");
static_assert(sizeof(block_q5_K) == 176, "block_q5_K layout");
static_assert(sizeof(block_q6_K) == 210, "block_q6_K layout");
static_assert(sizeof(block_q8_K) == 292, "block_q8_K layout");

/* The 6-bit scale and minimum of sub-block j (0..7) of a Q4_K/Q5_K block. */
static inline void kq_scale_min(int j, const uint8_t *q, uint8_t *sc, uint8_t *m) {
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

#endif
