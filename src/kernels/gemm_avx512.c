/* gemm_avx512: the packed matrix product (quant_impl.h) with AVX-512 VNNI
 * (the Makefile adds the flags because of the _avx512 suffix; dispatch only
 * calls it on CPUs that have them).
 *
 * Why this shape: one zmm holds 4 consecutive values of 16 weight rows, so
 * one vpdpbusd against 4 activation bytes broadcast from memory advances 16
 * dot products at once, and each weight vector loaded is reused for up to
 * GEMM_NR activation rows. Per scale block and row, the exact integer sum
 * (offset removed through the activation's integer correction) is scaled in
 * float the same way whatever the batch, tile or thread split. */
#include "quant/kquants.h"
#include "quant/legacy.h"
#include "quant/quant_impl.h"

#include <immintrin.h>
#include <string.h>
#include <time.h>

#define GEMM_NR 8
#define ALWAYS_INLINE static inline __attribute__((always_inline))

ALWAYS_INLINE int32_t load_i32(const uint8_t *p) {
    int32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* Where a block's integer sum starts: for offset formats at minus the
 * activation's integer correction (stored as int32 bits in dsc), so that no
 * subtraction follows the products (two vector operations fewer per block
 * and row of a pair tile); vpdpbusd adds exactly, so the sum ends the same. */
ALWAYS_INLINE __m512i start_sum(bool has_min, const float *corr_at) {
    if (has_min) return _mm512_setzero_si512();
    int32_t corr;
    memcpy(&corr, corr_at, sizeof corr);
    return _mm512_set1_epi32(-corr);
}

/* Output group g (16 rows) for activation rows b0 .. b0+nr-1. */
ALWAYS_INLINE void gemm_tile(int quads, bool has_min, int nr, const quant_packed *w, int64_t g,
                             const quant_packed_act *a, int64_t b0, float *y) {
    const int64_t n_blk = w->n_blk;
    const uint8_t *wq = w->q + (size_t)(g * n_blk) * (size_t)quads * 64;
    const float *ws = w->scale + (size_t)(g * n_blk) * QUANT_PACK_ROWS;
    const float *wm = w->min + (size_t)(g * n_blk) * QUANT_PACK_ROWS;
    const uint8_t *xr[GEMM_NR];
    const float *dsc[GEMM_NR];
    __m512 acc[GEMM_NR];
#pragma GCC unroll 8
    for (int n = 0; n < nr; n++) {
        xr[n] = a->x + (size_t)(b0 + n) * a->row_bytes + a->sb_header;
        dsc[n] = a->dsc + (size_t)(b0 + n) * 3 * (size_t)n_blk;
        acc[n] = _mm512_setzero_ps();
    }
    int64_t blk = 0;
    for (int64_t sb = 0; blk < n_blk; sb++)
        for (int j = 0; j < a->blk_per_sb; j++, blk++, wq += quads * 64) {
            __m512i wv[8];
#pragma GCC unroll 8
            for (int k = 0; k < quads; k++) wv[k] = _mm512_load_si512((const void *)(wq + 64 * k));
            __m512 sw = _mm512_load_ps(ws + blk * QUANT_PACK_ROWS);
            __m512 mw = has_min ? _mm512_load_ps(wm + blk * QUANT_PACK_ROWS) : _mm512_setzero_ps();
            size_t at = (size_t)sb * a->sb_bytes + (size_t)j * (size_t)quads * 4;
#pragma GCC unroll 8
            for (int n = 0; n < nr; n++) {
                const uint8_t *x = xr[n] + at;
                __m512i is = start_sum(has_min, dsc[n] + 2 * n_blk + blk);
#pragma GCC unroll 8
                for (int k = 0; k < quads; k++)
                    is = _mm512_dpbusd_epi32(is, wv[k], _mm512_set1_epi32(load_i32(x + 4 * k)));
                __m512 scale = _mm512_mul_ps(sw, _mm512_set1_ps(dsc[n][blk]));
                acc[n] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(is), scale, acc[n]);
                if (has_min) acc[n] = _mm512_fmadd_ps(mw, _mm512_set1_ps(dsc[n][n_blk + blk]), acc[n]);
            }
        }
    int64_t o0 = g * QUANT_PACK_ROWS, left = w->n_out - o0;
    __mmask16 keep = left >= QUANT_PACK_ROWS ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
#pragma GCC unroll 8
    for (int n = 0; n < nr; n++) _mm512_mask_storeu_ps(y + (size_t)(b0 + n) * (size_t)w->n_out + o0, keep, acc[n]);
}

/* Lines [first, end) of base to bring into L2, per_blk of them in each
 * block step: the next group pair's weights, spread over the current pair's
 * passes, so that a small batch (a decode step's 32 rows: a handful of
 * passes per pair) computes while the memory of the next pair arrives
 * instead of waiting on it at the start of each pair. */
typedef struct {
    const uint8_t *base;
    size_t first, end;
    int per_blk;
} prefetch_span;

/* Two groups (32 weight rows) for up to GEMM_NR2 activation rows: each
 * activation broadcast feeds two vpdpbusd, halving the loads per multiply.
 * A row's integer sums are exact and its float steps the same as in
 * gemm_tile, so which of the two tiles computed an output never shows. */
#define GEMM_NR2 6
ALWAYS_INLINE void gemm_tile2(int quads, bool has_min, int nr, const quant_packed *w, int64_t g,
                              const quant_packed_act *a, int64_t b0, float *y, const prefetch_span *pf) {
    const int64_t n_blk = w->n_blk;
    const size_t g_bytes = (size_t)n_blk * (size_t)quads * 64, g_scales = (size_t)n_blk * QUANT_PACK_ROWS;
    const uint8_t *wq = w->q + (size_t)g * g_bytes;
    const float *ws = w->scale + (size_t)g * g_scales, *wm = w->min + (size_t)g * g_scales;
    const uint8_t *xr[GEMM_NR2];
    const float *dsc[GEMM_NR2];
    __m512 acc0[GEMM_NR2], acc1[GEMM_NR2];
#pragma GCC unroll 8
    for (int n = 0; n < nr; n++) {
        xr[n] = a->x + (size_t)(b0 + n) * a->row_bytes + a->sb_header;
        dsc[n] = a->dsc + (size_t)(b0 + n) * 3 * (size_t)n_blk;
        acc0[n] = _mm512_setzero_ps();
        acc1[n] = _mm512_setzero_ps();
    }
    int64_t blk = 0;
    for (int64_t sb = 0; blk < n_blk; sb++)
        for (int j = 0; j < a->blk_per_sb; j++, blk++, wq += quads * 64) {
            size_t at = (size_t)sb * a->sb_bytes + (size_t)j * (size_t)quads * 4;
            for (int l = 0; l < pf->per_blk; l++) {
                size_t line = pf->first + (size_t)blk * (size_t)pf->per_blk + (size_t)l;
                if (line < pf->end) _mm_prefetch((const char *)pf->base + 64 * line, _MM_HINT_T1);
            }
            __m512i is0[GEMM_NR2], is1[GEMM_NR2];
#pragma GCC unroll 8
            for (int n = 0; n < nr; n++) is0[n] = is1[n] = start_sum(has_min, dsc[n] + 2 * n_blk + blk);
#pragma GCC unroll 8
            for (int k = 0; k < quads; k++) {
                __m512i w0 = _mm512_load_si512((const void *)(wq + 64 * k));
                __m512i w1 = _mm512_load_si512((const void *)(wq + g_bytes + 64 * k));
#pragma GCC unroll 8
                for (int n = 0; n < nr; n++) {
                    __m512i bx = _mm512_set1_epi32(load_i32(xr[n] + at + 4 * k));
                    is0[n] = _mm512_dpbusd_epi32(is0[n], w0, bx);
                    is1[n] = _mm512_dpbusd_epi32(is1[n], w1, bx);
                }
            }
            __m512 sw0 = _mm512_load_ps(ws + blk * QUANT_PACK_ROWS);
            __m512 sw1 = _mm512_load_ps(ws + g_scales + blk * QUANT_PACK_ROWS);
#pragma GCC unroll 8
            for (int n = 0; n < nr; n++) {
                __m512 da = _mm512_set1_ps(dsc[n][blk]);
                acc0[n] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(is0[n]), _mm512_mul_ps(sw0, da), acc0[n]);
                acc1[n] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(is1[n]), _mm512_mul_ps(sw1, da), acc1[n]);
                if (has_min) {
                    __m512 sa = _mm512_set1_ps(dsc[n][n_blk + blk]);
                    acc0[n] = _mm512_fmadd_ps(_mm512_load_ps(wm + blk * QUANT_PACK_ROWS), sa, acc0[n]);
                    acc1[n] = _mm512_fmadd_ps(_mm512_load_ps(wm + g_scales + blk * QUANT_PACK_ROWS), sa, acc1[n]);
                }
            }
        }
    int64_t o0 = g * QUANT_PACK_ROWS, left = w->n_out - o0 - QUANT_PACK_ROWS;
    __mmask16 keep = left >= QUANT_PACK_ROWS ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
#pragma GCC unroll 8
    for (int n = 0; n < nr; n++) {
        float *yr = y + (size_t)(b0 + n) * (size_t)w->n_out + o0;
        _mm512_storeu_ps(yr, acc0[n]);
        _mm512_mask_storeu_ps(yr + QUANT_PACK_ROWS, keep, acc1[n]);
    }
}

#define TILE2_NR(Q, M)                                                                                 \
    switch (nr) {                                                                                      \
    case 1: gemm_tile2(Q, M, 1, w, g, a, b0, y, pf); break;                                        \
    case 2: gemm_tile2(Q, M, 2, w, g, a, b0, y, pf); break;                                        \
    case 3: gemm_tile2(Q, M, 3, w, g, a, b0, y, pf); break;                                        \
    case 4: gemm_tile2(Q, M, 4, w, g, a, b0, y, pf); break;                                        \
    case 5: gemm_tile2(Q, M, 5, w, g, a, b0, y, pf); break;                                        \
    default: gemm_tile2(Q, M, 6, w, g, a, b0, y, pf); break;                                       \
    }

static void pair32_min(const quant_packed *w, int64_t g, const quant_packed_act *a, int64_t b0, int nr, float *y,
                       const prefetch_span *pf) {
    TILE2_NR(8, true)
}
static void pair32_off(const quant_packed *w, int64_t g, const quant_packed_act *a, int64_t b0, int nr, float *y,
                       const prefetch_span *pf) {
    TILE2_NR(8, false)
}
static void pair16_off(const quant_packed *w, int64_t g, const quant_packed_act *a, int64_t b0, int nr, float *y,
                       const prefetch_span *pf) {
    TILE2_NR(4, false)
}
static void pair16_min(const quant_packed *w, int64_t g, const quant_packed_act *a, int64_t b0, int nr, float *y,
                       const prefetch_span *pf) {
    TILE2_NR(4, true)
}

/* Constant quads / has_min / nr per instance, so every loop above unrolls. */
#define TILE_NR(Q, M)                                                                                  \
    switch (nr) {                                                                                      \
    case 1: gemm_tile(Q, M, 1, w, g, a, b0, y); break;                                                 \
    case 2: gemm_tile(Q, M, 2, w, g, a, b0, y); break;                                                 \
    case 3: gemm_tile(Q, M, 3, w, g, a, b0, y); break;                                                 \
    case 4: gemm_tile(Q, M, 4, w, g, a, b0, y); break;                                                 \
    case 5: gemm_tile(Q, M, 5, w, g, a, b0, y); break;                                                 \
    case 6: gemm_tile(Q, M, 6, w, g, a, b0, y); break;                                                 \
    case 7: gemm_tile(Q, M, 7, w, g, a, b0, y); break;                                                 \
    default: gemm_tile(Q, M, 8, w, g, a, b0, y); break;                                                \
    }

static void tile32_min(const quant_packed *w, int64_t g, const quant_packed_act *a, int64_t b0, int nr, float *y) {
    TILE_NR(8, true)
}
static void tile32_off(const quant_packed *w, int64_t g, const quant_packed_act *a, int64_t b0, int nr, float *y) {
    TILE_NR(8, false)
}
static void tile16_off(const quant_packed *w, int64_t g, const quant_packed_act *a, int64_t b0, int nr, float *y) {
    TILE_NR(4, false)
}
static void tile16_min(const quant_packed *w, int64_t g, const quant_packed_act *a, int64_t b0, int nr, float *y) {
    TILE_NR(4, true)
}

void quant_gemm_avx512(const quant_packed *w, int64_t g0, int64_t g1, const quant_packed_act *a, int64_t n_batch,
                       float *y) {
    void (*tile)(const quant_packed *, int64_t, const quant_packed_act *, int64_t, int, float *) =
        w->blk_len == 32 ? (w->has_min ? tile32_min : tile32_off) : (w->has_min ? tile16_min : tile16_off);
    void (*pair)(const quant_packed *, int64_t, const quant_packed_act *, int64_t, int, float *, const prefetch_span *) =
        w->blk_len == 32 ? (w->has_min ? pair32_min : pair32_off) : (w->has_min ? pair16_min : pair16_off);
    const size_t pair_lines = 2 * (size_t)w->n_blk * (size_t)(w->blk_len / 4); /* 64-byte lines of a group pair */
    const int64_t passes = (n_batch + GEMM_NR2 - 1) / GEMM_NR2;
    int64_t g = g0;
    for (; g + 1 < g1; g += 2)
        for (int64_t b0 = 0, pass = 0; b0 < n_batch; b0 += GEMM_NR2, pass++) {
            int nr = n_batch - b0 < GEMM_NR2 ? (int)(n_batch - b0) : GEMM_NR2;
            prefetch_span pf = {NULL, 0, 0, 0};
            if (g + 3 < g1) {
                pf.base = w->q + (size_t)(g + 2) * (pair_lines / 2) * 64;
                pf.first = (size_t)pass * pair_lines / (size_t)passes;
                pf.end = (size_t)(pass + 1) * pair_lines / (size_t)passes;
                pf.per_blk = (int)((pf.end - pf.first + (size_t)w->n_blk - 1) / (size_t)w->n_blk);
            }
            pair(w, g, a, b0, nr, y, &pf);
        }
    for (; g < g1; g++)
        for (int64_t b0 = 0; b0 < n_batch; b0 += GEMM_NR) {
            int nr = n_batch - b0 < GEMM_NR ? (int)(n_batch - b0) : GEMM_NR;
            tile(w, g, a, b0, nr, y);
        }
}

/* The activation quantizers of legacy.c and kquants.c, bit for bit: the same
 * float steps (|x| maximum, d = amax / 127, x * (1 / d)), rounding to
 * nearest even as lrintf does in the default mode, the same clamp. Only
 * faster, so every path may use them where the CPU has AVX-512. */
ALWAYS_INLINE __m512i quantize16(const float *x, __m512 id) {
    __m512i q = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(x), id));
    return _mm512_max_epi32(_mm512_min_epi32(q, _mm512_set1_epi32(127)), _mm512_set1_epi32(-127));
}

/* |x| maximum over n values, NaN ignored as the scalar loop's comparison
 * ignores it (vmaxps returns its second operand when either is NaN). */
ALWAYS_INLINE __m512 abs_max16(const float *x, int n) {
    __m512 m = _mm512_setzero_ps();
    for (int i = 0; i < n; i += 16) m = _mm512_max_ps(_mm512_abs_ps(_mm512_loadu_ps(x + i)), m);
    return m;
}

/* Reduce each of 16 vectors to one lane, all at once: four rounds of
 * pairwise shuffles halve the lanes per vector, 15 operations instead of
 * 16 separate reductions of 4 dependent steps each. Lane k of the result
 * is vector k's reduction. max and integer add are exact in any order. */
#define REDUCE16(name, T, op)                                                                             \
    ALWAYS_INLINE T name(T v[16]) {                                                                       \
        for (int k = 0; k < 8; k++) /* lanes 0-7: v[2k] halves, 8-15: v[2k+1] halves */                  \
            v[k] = op(_mm512_shuffle_f32x4(v[2 * k], v[2 * k + 1], 0x44),                                 \
                      _mm512_shuffle_f32x4(v[2 * k], v[2 * k + 1], 0xEE));                                \
        for (int k = 0; k < 4; k++) /* quarter r: vector 4k + r */                                        \
            v[k] = op(_mm512_shuffle_f32x4(v[2 * k], v[2 * k + 1], 0x88),                                 \
                      _mm512_shuffle_f32x4(v[2 * k], v[2 * k + 1], 0xDD));                                \
        for (int k = 0; k < 2; k++) /* in quarter r, elements 0-1: 8k + r, 2-3: 8k + 4 + r */             \
            v[k] = op(_mm512_shuffle_ps(v[2 * k], v[2 * k + 1], 0x44), _mm512_shuffle_ps(v[2 * k], v[2 * k + 1], 0xEE)); \
        T r = op(_mm512_shuffle_ps(v[0], v[1], 0x88), _mm512_shuffle_ps(v[0], v[1], 0xDD));               \
        /* lane 4r + e holds vector r + 4e */                                                             \
        return _mm512_permutexvar_ps(_mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15), r); \
    }
ALWAYS_INLINE __m512 max_ps(__m512 a, __m512 b) { return _mm512_max_ps(a, b); }
ALWAYS_INLINE __m512 add_epi32_ps(__m512 a, __m512 b) {
    return _mm512_castsi512_ps(_mm512_add_epi32(_mm512_castps_si512(a), _mm512_castps_si512(b)));
}
REDUCE16(reduce16_max, __m512, max_ps)
REDUCE16(reduce16_add_epi32, __m512, add_epi32_ps)

ALWAYS_INLINE __m512 fp16_round16(__m512 v) {
    return _mm512_cvtph_ps(_mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}

/* n_blk (1..16) Q8A blocks from 32 * n_blk values. */
static void q8a_blocks(const float *x, block_q8a *b, int n_blk) {
    __m512 v[16], q_sum[16];
    for (int k = 0; k < 16; k++) v[k] = k < n_blk ? abs_max16(x + 32 * k, 32) : _mm512_setzero_ps();
    __m512 amax = reduce16_max(v);
    __mmask16 pos = _mm512_cmp_ps_mask(amax, _mm512_setzero_ps(), _CMP_GT_OQ);
    __m512 d = _mm512_div_ps(amax, _mm512_set1_ps(127.0f));
    __m512 id = _mm512_maskz_div_ps(pos, _mm512_set1_ps(127.0f), amax);
    float ids[16];
    _mm512_storeu_ps(ids, id);
    for (int k = 0; k < 16; k++) {
        if (k >= n_blk) {
            q_sum[k] = _mm512_setzero_ps();
            continue;
        }
        __m512i q0 = quantize16(x + 32 * k, _mm512_set1_ps(ids[k]));
        __m512i q1 = quantize16(x + 32 * k + 16, _mm512_set1_ps(ids[k]));
        _mm_storeu_si128((__m128i *)b[k].qs, _mm512_cvtepi32_epi8(q0));
        _mm_storeu_si128((__m128i *)(b[k].qs + 16), _mm512_cvtepi32_epi8(q1));
        q_sum[k] = _mm512_castsi512_ps(_mm512_add_epi32(q0, q1));
    }
    __m512 sum = _mm512_cvtepi32_ps(_mm512_castps_si512(reduce16_add_epi32(q_sum)));
    float dr[16], sr[16];
    _mm512_storeu_ps(dr, fp16_round16(d));
    _mm512_storeu_ps(sr, fp16_round16(_mm512_mul_ps(d, sum)));
    for (int k = 0; k < n_blk; k++) {
        b[k].d = dr[k];
        b[k].s = sr[k];
    }
}

void quant_act_q8a_avx512(const float *x, void *dst, int64_t n) {
    block_q8a *b = dst;
    int64_t n_blk = n / QK_LEGACY;
    for (int64_t i = 0; i < n_blk; i += 16)
        q8a_blocks(x + i * QK_LEGACY, b + i, n_blk - i < 16 ? (int)(n_blk - i) : 16);
}

/* quant_q8_K_iscale's value: -127 over the first element of largest
 * magnitude. The maximum of |x| is exact in any order; the first element
 * equal to it is found lane by lane. A NaN makes the comparisons differ
 * from the scalar loop's, so such blocks take the scalar loop. */
static float q8_K_iscale(const float *x) {
    __m512 m = _mm512_setzero_ps();
    __mmask16 nan = 0;
    for (int j = 0; j < QK_K; j += 16) {
        __m512 v = _mm512_loadu_ps(x + j);
        nan |= _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
        m = _mm512_max_ps(m, _mm512_abs_ps(v));
    }
    if (nan) return quant_q8_K_iscale(x);
    float amax = _mm512_reduce_max_ps(m);
    if (!(amax > 0)) return 0.0f;
    for (int j = 0;; j += 16) {
        __mmask16 hit = _mm512_cmp_ps_mask(_mm512_abs_ps(_mm512_loadu_ps(x + j)), _mm512_set1_ps(amax), _CMP_EQ_OQ);
        if (hit) return -127.0f / x[j + __builtin_ctz(hit)];
    }
}

void quant_act_q8_K_avx512(const float *x, void *dst, int64_t n) {
    block_q8_K *b = dst;
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        float iscale = q8_K_iscale(x);
        __m512 q_sum[QK_K / 16];
        for (int g = 0; g < QK_K / 16; g++) {
            __m512i q = quantize16(x + 16 * g, _mm512_set1_ps(iscale));
            _mm_storeu_si128((__m128i *)(b[i].qs + 16 * g), _mm512_cvtepi32_epi8(q));
            q_sum[g] = _mm512_castsi512_ps(q);
        }
        _mm256_storeu_si256((__m256i *)b[i].bsums,
                            _mm512_cvtepi32_epi16(_mm512_castps_si512(reduce16_add_epi32(q_sum))));
        b[i].d = iscale != 0 ? 1 / iscale : 0;
    }
}

/* Multiply-adds per second one thread gets from vpdpbusd when nothing else
 * limits it (12 independent chains, register operands only): the compute
 * limit rys bench compares the packed kernel with. */
double quant_gemm_peak_avx512(int64_t iters) {
    __m512i acc[12], a = _mm512_set1_epi8(1), b = _mm512_set1_epi8(2);
    for (int i = 0; i < 12; i++) acc[i] = _mm512_set1_epi32(i);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int64_t it = 0; it < iters; it++) {
#pragma GCC unroll 12
        for (int i = 0; i < 12; i++) acc[i] = _mm512_dpbusd_epi32(acc[i], a, b);
        __asm__ volatile("" : "+v"(a)); /* keep the loop from being folded */
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    __m512i s = acc[0];
    for (int i = 1; i < 12; i++) s = _mm512_add_epi32(s, acc[i]);
    volatile int sink = _mm512_reduce_add_epi32(s);
    (void)sink;
    double dt = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    return (double)iters * 12 * 64 / dt;
}
