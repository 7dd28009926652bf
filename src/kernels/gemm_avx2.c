/* gemm_avx2: the packed matrix product (quant_impl.h) with AVX2 and FMA, for
 * CPUs without AVX-512 (the Makefile adds the flags because of the _avx2
 * suffix; dispatch only calls it on CPUs that have them).
 *
 * Why this shape: a ymm holds 4 consecutive values of 8 weight rows (half of
 * a packed 16-row group), so vpmaddubsw against 4 activation bytes
 * broadcast from memory advances 8 dot products by two products each, and
 * each weight vector loaded is reused for GEMM_NR activation rows.
 * vpmaddubsw saturates its int16 pair sums, so 8-bit weights are split into
 * nibbles; within the bound the int16 sums of several quads are exact too
 * (value_span), and vpmaddwd widens them once per span, not once per quad.
 *
 * Per scale block and row, the exact integer sum is scaled with the float
 * steps of gemm_avx512.c, lane for lane, so every x86 family that packs
 * weights gives the same bits (tests/test_quant.c checks them against a
 * scalar model of those steps). */
#include "quant/quant_impl.h"

#include <immintrin.h>
#include <string.h>
#include <time.h>

#define GEMM_NR 3
#define HALF_ROWS 8
#define ALWAYS_INLINE static inline __attribute__((always_inline))

ALWAYS_INLINE __m256i bcast_i32(const uint8_t *p) {
    int32_t v;
    memcpy(&v, p, sizeof v);
    return _mm256_set1_epi32(v);
}

/* Quads whose int16 pair sums may be added before widening: a quad's pair
 * sum is at most 2 * (2^bits - 1) * 127 (activations lie in [-127, 127]).
 * 8-bit values are split into nibbles, value = 16 * high + low, each half
 * summed as 4-bit values. */
static int value_span(int bits) { return bits <= 4 || bits == 8 ? 8 : bits == 5 ? 4 : 2; }

/* Rows h*8 .. h*8+7 of output group g for activation rows b0 .. b0+nr-1. */
ALWAYS_INLINE void gemm_tile(int quads, int span, bool split, bool has_min, int nr, const quant_packed *w, int64_t g, int h,
                             const quant_packed_act *a, int64_t b0, float *y) {
    const int64_t n_blk = w->n_blk;
    const uint8_t *wq = w->q + (size_t)(g * n_blk) * (size_t)quads * 64 + (size_t)h * 32;
    const float *ws = w->scale + (size_t)(g * n_blk) * QUANT_PACK_ROWS + h * HALF_ROWS;
    const float *wm = w->min + (size_t)(g * n_blk) * QUANT_PACK_ROWS + h * HALF_ROWS;
    const __m256i ones = _mm256_set1_epi16(1), nibble = _mm256_set1_epi8(0x0F);
    const uint8_t *xr[GEMM_NR];
    const float *dsc[GEMM_NR];
    __m256 acc[GEMM_NR];
#pragma GCC unroll 4
    for (int n = 0; n < nr; n++) {
        xr[n] = a->x + (size_t)(b0 + n) * a->row_bytes + a->sb_header;
        dsc[n] = a->dsc + (size_t)(b0 + n) * 3 * (size_t)n_blk;
        acc[n] = _mm256_setzero_ps();
    }
    int64_t blk = 0;
    for (int64_t sb = 0; blk < n_blk; sb++)
        for (int j = 0; j < a->blk_per_sb; j++, blk++, wq += quads * 64) {
            size_t at = (size_t)sb * a->sb_bytes + (size_t)j * (size_t)quads * 4;
            __m256i is[GEMM_NR];
#pragma GCC unroll 8
            for (int k0 = 0; k0 < quads; k0 += span) {
                __m256i s16[GEMM_NR], hi16[GEMM_NR];
#pragma GCC unroll 8
                for (int k = k0; k < k0 + span; k++) { /* span divides quads */
                    __m256i wv = _mm256_load_si256((const __m256i *)(wq + 64 * k)), wh = wv;
                    if (split) {
                        wh = _mm256_and_si256(_mm256_srli_epi16(wv, 4), nibble);
                        wv = _mm256_and_si256(wv, nibble);
                    }
#pragma GCC unroll 4
                    for (int n = 0; n < nr; n++) {
                        __m256i bx = bcast_i32(xr[n] + at + 4 * k);
                        __m256i p = _mm256_maddubs_epi16(wv, bx);
                        s16[n] = k == k0 ? p : _mm256_add_epi16(s16[n], p);
                        if (split) {
                            __m256i ph = _mm256_maddubs_epi16(wh, bx);
                            hi16[n] = k == k0 ? ph : _mm256_add_epi16(hi16[n], ph);
                        }
                    }
                }
#pragma GCC unroll 4
                for (int n = 0; n < nr; n++) {
                    __m256i sum = _mm256_madd_epi16(s16[n], ones);
                    if (split) sum = _mm256_add_epi32(sum, _mm256_madd_epi16(hi16[n], _mm256_set1_epi16(16)));
                    is[n] = k0 == 0 ? sum : _mm256_add_epi32(is[n], sum);
                }
            }
            __m256 sw = _mm256_load_ps(ws + blk * QUANT_PACK_ROWS);
#pragma GCC unroll 4
            for (int n = 0; n < nr; n++) {
                if (!has_min) {
                    int32_t corr;
                    memcpy(&corr, dsc[n] + 2 * n_blk + blk, sizeof corr);
                    is[n] = _mm256_sub_epi32(is[n], _mm256_set1_epi32(corr));
                }
                __m256 scale = _mm256_mul_ps(sw, _mm256_set1_ps(dsc[n][blk]));
                acc[n] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(is[n]), scale, acc[n]);
                if (has_min)
                    acc[n] = _mm256_fmadd_ps(_mm256_load_ps(wm + blk * QUANT_PACK_ROWS),
                                             _mm256_set1_ps(dsc[n][n_blk + blk]), acc[n]);
            }
        }
    int64_t o0 = g * QUANT_PACK_ROWS + h * HALF_ROWS, left = w->n_out - o0;
#pragma GCC unroll 4
    for (int n = 0; n < nr; n++) {
        float *yr = y + (size_t)(b0 + n) * (size_t)w->n_out + o0;
        if (left >= HALF_ROWS) {
            _mm256_storeu_ps(yr, acc[n]);
        } else if (left > 0) { /* the last group's padding rows are not stored */
            float v[HALF_ROWS];
            _mm256_storeu_ps(v, acc[n]);
            memcpy(yr, v, sizeof(float) * (size_t)left);
        }
    }
}

/* Constant quads / span / split / has_min / nr per instance, so every loop unrolls. */
#define TILE_NR(Q, S, X, M)                                                                            \
    switch (nr) {                                                                                      \
    case 1: gemm_tile(Q, S, X, M, 1, w, g, h, a, b0, y); break;                                        \
    case 2: gemm_tile(Q, S, X, M, 2, w, g, h, a, b0, y); break;                                        \
    default: gemm_tile(Q, S, X, M, 3, w, g, h, a, b0, y); break;                                       \
    }

typedef void (*tile_fn)(const quant_packed *w, int64_t g, int h, const quant_packed_act *a, int64_t b0, int nr,
                        float *y);
#define TILE_FN(NAME, Q, S, X, M)                                                                          \
    static void NAME(const quant_packed *w, int64_t g, int h, const quant_packed_act *a, int64_t b0, int nr, \
                     float *y) {                                                                        \
        TILE_NR(Q, S, X, M)                                                                             \
    }
TILE_FN(tile32_s8_min, 8, 8, false, true)   /* Q4_1, Q4_K */
TILE_FN(tile32_s8_off, 8, 8, false, false)  /* Q4_0 */
TILE_FN(tile32_s4_min, 8, 4, false, true)   /* Q5_1, Q5_K */
TILE_FN(tile32_s4_off, 8, 4, false, false)  /* Q5_0 */
TILE_FN(tile32_split, 8, 8, true, false)    /* Q8_0 */
TILE_FN(tile16_s2_off, 4, 2, false, false)  /* Q6_K */

static tile_fn tile_for(const quant_packed *w) {
    int span = value_span(w->value_bits);
    if (w->blk_len == 16) return tile16_s2_off;
    if (w->value_bits == 8) return tile32_split;
    if (span == 8) return w->has_min ? tile32_s8_min : tile32_s8_off;
    return w->has_min ? tile32_s4_min : tile32_s4_off;
}

void quant_gemm_avx2(const quant_packed *w, int64_t g0, int64_t g1, const quant_packed_act *a, int64_t n_batch,
                     float *y) {
    tile_fn tile = tile_for(w);
    /* Both halves of a group meet the same activation rows in turn, so the
     * rows stay in L1 while the group's weights come from L2. */
    for (int64_t g = g0; g < g1; g++)
        for (int64_t b0 = 0; b0 < n_batch; b0 += GEMM_NR) {
            int nr = n_batch - b0 < GEMM_NR ? (int)(n_batch - b0) : GEMM_NR;
            for (int h = 0; h < 2; h++) tile(w, g, h, a, b0, nr, y);
        }
}

/* Multiply-adds per second one thread gets from vpmaddubsw (32 a
 * instruction) when nothing else limits it: the compute limit rys bench
 * compares the packed kernel with. */
double quant_gemm_peak_avx2(int64_t iters) {
    __m256i acc[12], b = _mm256_set1_epi8(2);
    for (int i = 0; i < 12; i++) acc[i] = _mm256_set1_epi16((short)i);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int64_t it = 0; it < iters; it++) {
#pragma GCC unroll 12
        for (int i = 0; i < 12; i++) acc[i] = _mm256_maddubs_epi16(acc[i], b);
        __asm__ volatile("" : "+x"(b)); /* keep the loop from being folded */
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    __m256i s = acc[0];
    for (int i = 1; i < 12; i++) s = _mm256_add_epi16(s, acc[i]);
    volatile int sink = _mm256_extract_epi16(s, 0);
    (void)sink;
    double dt = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    return (double)iters * 12 * 32 / dt;
}
