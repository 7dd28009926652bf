/* gemv_avx512: one activation row (decode) against block-format weights
 * read where they lie in the model's mapping, with AVX-512 VNNI.
 *
 * Why not the packed weights: a token's product reads every weight once, so
 * decode is bound by memory, and the packed copy holds a byte per value plus
 * float scales (1.25 bytes a weight) where Q4_K's blocks hold 0.56, Q5_0's
 * 0.69 and Q6_K's 0.82. Why the same bits: per 32 values (16 for Q6_K) of a
 * row the integer sum is exact in any order, and the float steps are the
 * packed kernel's (gemm_avx512.c), block by block in the same order, with
 * the scales and minimums the unpackers of legacy.c and kquants.c compute;
 * so a row's logits are the same whether it is decoded alone or in a batch.
 *
 * Shape: for 16 output rows at a time, one vpdpbusd per row and 64 values
 * leaves 16 partial sums per row; a tree of unpacks and adds turns the 16
 * rows' vectors into vectors with a row per lane and a block per vector,
 * which is the packed kernel's layout for the float steps. Scales come from
 * the 16 rows' block headers with gathers, a row per lane. */
#include "quant/kquants.h"
#include "quant/legacy.h"
#include "quant/quant_impl.h"

#include <immintrin.h>
#include <stddef.h>
#include <string.h>

#define ALWAYS_INLINE static inline __attribute__((always_inline))

/* Four rows' partial sums to one vector: 128-bit lane L holds, for rows
 * 0..3 in turn, the sum of that row's lanes 4L..4L+3. */
ALWAYS_INLINE __m512i sum4_rows(const __m512i p[4]) {
    __m512i q0 = _mm512_add_epi32(_mm512_unpacklo_epi32(p[0], p[1]), _mm512_unpackhi_epi32(p[0], p[1]));
    __m512i q1 = _mm512_add_epi32(_mm512_unpacklo_epi32(p[2], p[3]), _mm512_unpackhi_epi32(p[2], p[3]));
    return _mm512_add_epi32(_mm512_unpacklo_epi64(q0, q1), _mm512_unpackhi_epi64(q0, q1));
}

/* 32-value blocks: sum4_rows of rows 4q.. in r[q]; each row's vector held
 * two blocks (lanes 0-7, 8-15). Out: block a and block b, lane = row. */
ALWAYS_INLINE void rows_to_halves(const __m512i r[4], __m512i *a, __m512i *b) {
    __m512i t01 = _mm512_add_epi32(_mm512_shuffle_i32x4(r[0], r[1], 0x88), _mm512_shuffle_i32x4(r[0], r[1], 0xDD));
    __m512i t23 = _mm512_add_epi32(_mm512_shuffle_i32x4(r[2], r[3], 0x88), _mm512_shuffle_i32x4(r[2], r[3], 0xDD));
    *a = _mm512_shuffle_i32x4(t01, t23, 0x88);
    *b = _mm512_shuffle_i32x4(t01, t23, 0xDD);
}

/* 16-value blocks: each row's vector held four (one per 128-bit lane), so
 * only the lanes of r[0..3] are transposed. Out: block L in out[L]. */
ALWAYS_INLINE void rows_to_quarters(const __m512i r[4], __m512i out[4]) {
    __m512i t0 = _mm512_shuffle_i32x4(r[0], r[1], 0x44), t1 = _mm512_shuffle_i32x4(r[0], r[1], 0xEE);
    __m512i t2 = _mm512_shuffle_i32x4(r[2], r[3], 0x44), t3 = _mm512_shuffle_i32x4(r[2], r[3], 0xEE);
    out[0] = _mm512_shuffle_i32x4(t0, t2, 0x88);
    out[1] = _mm512_shuffle_i32x4(t0, t2, 0xDD);
    out[2] = _mm512_shuffle_i32x4(t1, t3, 0x88);
    out[3] = _mm512_shuffle_i32x4(t1, t3, 0xDD);
}

/* The 16 rows are read a block of each at a time: 16 streams, which the
 * hardware prefetchers follow poorly, while the group's bytes are one run.
 * So the next group's run is fetched in order, two lines per row step
 * (enough for the 3.3 lines of a Q6_K block, evenly spread so that the
 * misses in flight never pile up). */
typedef struct { const char *p, *end; } run_prefetch;

ALWAYS_INLINE void prefetch_step(run_prefetch *pf) {
    if (pf->p < pf->end) {
        _mm_prefetch(pf->p, _MM_HINT_T1);
        _mm_prefetch(pf->p + 64, _MM_HINT_T1);
        pf->p += 128;
    }
}

/* The 16 rows of group g: byte offsets from the group's first row, rows
 * past the matrix repeating its last one (computed, never stored), and the
 * prefetch of group g + 1 if it is in [g, g1). */
typedef struct {
    const uint8_t *base;
    int32_t off[QUANT_PACK_ROWS];
    __m512i offs;
    __mmask16 keep;
    run_prefetch pf;
} row_group;

static void group_rows(const quant_matrix *w, size_t row_bytes, int64_t g, int64_t g1, row_group *rg) {
    int64_t first = g * QUANT_PACK_ROWS, left = w->n_out - first;
    rg->base = (const uint8_t *)w->data + (size_t)first * row_bytes;
    const char *next = (const char *)rg->base + QUANT_PACK_ROWS * row_bytes;
    rg->pf = (run_prefetch){next, g + 1 < g1 ? next + QUANT_PACK_ROWS * row_bytes : next};
    for (int r = 0; r < QUANT_PACK_ROWS; r++) rg->off[r] = (int32_t)((size_t)(r < left ? r : left - 1) * row_bytes);
    rg->offs = _mm512_loadu_si512(rg->off);
    rg->keep = left >= QUANT_PACK_ROWS ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
}

ALWAYS_INLINE __m512i gather32(const row_group *rg, const uint8_t *at) {
    return _mm512_i32gather_epi32(rg->offs, (const void *)at, 1);
}

ALWAYS_INLINE __m512 half_to_f32(__m512i v) { return _mm512_cvtph_ps(_mm512_cvtepi32_epi16(v)); }

/* Byte k of each lane, as an integer in 0..255. */
ALWAYS_INLINE __m512i byte_of(__m512i v, int k) {
    return _mm512_and_si512(_mm512_srli_epi32(v, 8 * k), _mm512_set1_epi32(0xFF));
}

/* The packed kernel's float steps (gemm_tile) for one block of the 16
 * rows: the integer sum, less the activation's correction where the format
 * has an offset, times weight scale x activation scale; then, where it has
 * minimums, the minimum times the activation's scaled sum. */
ALWAYS_INLINE __m512 block_step(bool has_min, __m512 acc, __m512i is, __m512 sw, __m512 mw, const quant_packed_act *a,
                                int64_t n_blk, int64_t blk) {
    const float *dsc = a->dsc;
    if (!has_min) {
        int32_t corr;
        memcpy(&corr, dsc + 2 * n_blk + blk, sizeof corr);
        is = _mm512_sub_epi32(is, _mm512_set1_epi32(corr));
    }
    acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(is), _mm512_mul_ps(sw, _mm512_set1_ps(dsc[blk])), acc);
    if (has_min) acc = _mm512_fmadd_ps(mw, _mm512_set1_ps(dsc[n_blk + blk]), acc);
    return acc;
}

enum k_kind { KK_Q4_K, KK_Q6_K };

/* Part k of 2 of a K-quant super-block at row: two vectors of 64 unsigned
 * values. Q4_K: low and high nibbles of 64 bytes (blocks 4k, 4k+2 and
 * 4k+1, 4k+3). Q6_K: values 128k..128k+63 and the next 64, each four
 * 16-value blocks. */
ALWAYS_INLINE void k_values(enum k_kind kind, const uint8_t *row, int k, __m512i *v0, __m512i *v1) {
    const __m512i nib = _mm512_set1_epi8(0x0F);
    if (kind == KK_Q4_K) {
        __m512i v = _mm512_loadu_si512(row + offsetof(block_q4_K, qs) + 64 * k);
        *v0 = _mm512_and_si512(v, nib);
        *v1 = _mm512_and_si512(_mm512_srli_epi16(v, 4), nib);
        return;
    }
    const __m512i top = _mm512_set1_epi8(0x30);
    __m512i l = _mm512_loadu_si512(row + offsetof(block_q6_K, ql) + 64 * k);
    __m256i hb = _mm256_loadu_si256((const __m256i *)(row + offsetof(block_q6_K, qh) + 32 * k));
    /* byte l of hz: bits 0-1 and 4-5 are the high parts of values l and l+64 */
    __m512i hz = _mm512_inserti64x4(_mm512_castsi256_si512(hb), _mm256_srli_epi16(hb, 2), 1);
    *v0 = _mm512_or_si512(_mm512_and_si512(l, nib), _mm512_and_si512(_mm512_slli_epi16(hz, 4), top));
    *v1 = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(l, 4), nib), _mm512_and_si512(hz, top));
}

/* Part k of super-block blk0 for the group's 16 rows against activation
 * vectors x0, x1: per four rows, sum4_rows of each value vector. */
ALWAYS_INLINE void k_part(enum k_kind kind, row_group *rg, const uint8_t *blk0, int k, __m512i x0, __m512i x1,
                          __m512i r0[4], __m512i r1[4]) {
#pragma GCC unroll 4
    for (int q = 0; q < 4; q++) {
        __m512i p0[4], p1[4];
#pragma GCC unroll 4
        for (int rr = 0; rr < 4; rr++) {
            prefetch_step(&rg->pf);
            __m512i v0, v1;
            k_values(kind, blk0 + rg->off[4 * q + rr], k, &v0, &v1);
            p0[rr] = _mm512_dpbusd_epi32(_mm512_setzero_si512(), v0, x0);
            p1[rr] = _mm512_dpbusd_epi32(_mm512_setzero_si512(), v1, x1);
        }
        r0[q] = sum4_rows(p0);
        r1[q] = sum4_rows(p1);
    }
}

/* Groups [g0, g1) of a Q4_K matrix. Super-block: d, dmin (fp16), 12 bytes
 * of 6-bit scales and minimums (kq_scale_min), 128 bytes of nibbles, the
 * low ones of 32 bytes one block and the high ones the next. */
void quant_gemv_q4_K_avx512(const quant_matrix *w, int64_t g0, int64_t g1, const quant_packed_act *a, float *y) {
    const int64_t n_sb = w->n_in / QK_K, n_blk = n_sb * 8;
    const size_t row_bytes = (size_t)n_sb * sizeof(block_q4_K);
    const __m512i six = _mm512_set1_epi32(63);
    const __m512 sign = _mm512_set1_ps(-0.0f);
    for (int64_t g = g0; g < g1; g++) {
        row_group rg;
        group_rows(w, row_bytes, g, g1, &rg);
        __m512 acc = _mm512_setzero_ps();
        for (int64_t sb = 0; sb < n_sb; sb++) {
            const uint8_t *blk0 = rg.base + (size_t)sb * sizeof(block_q4_K);
            const int8_t *x = (const int8_t *)(a->x + a->sb_header + (size_t)sb * a->sb_bytes);
            __m512i is[8];
            for (int k = 0; k < 2; k++) {
                /* activations in the nibbles' order: blocks 4k, 4k+2 | 4k+1, 4k+3 */
                __m512i x0 = _mm512_loadu_si512(x + 128 * k), x1 = _mm512_loadu_si512(x + 128 * k + 64);
                __m512i xa = _mm512_shuffle_i64x2(x0, x1, 0x44), xb = _mm512_shuffle_i64x2(x0, x1, 0xEE);
                __m512i rlo[4], rhi[4];
                k_part(KK_Q4_K, &rg, blk0, k, xa, xb, rlo, rhi);
                rows_to_halves(rlo, &is[4 * k], &is[4 * k + 2]);
                rows_to_halves(rhi, &is[4 * k + 1], &is[4 * k + 3]);
            }
            __m512i h0 = gather32(&rg, blk0), h1 = gather32(&rg, blk0 + 4), h2 = gather32(&rg, blk0 + 8),
                    h3 = gather32(&rg, blk0 + 12);
            __m512 d = half_to_f32(h0), dmin = half_to_f32(_mm512_srli_epi32(h0, 16));
#pragma GCC unroll 8
            for (int j = 0; j < 8; j++) {
                __m512i sc, m;
                if (j < 4) {
                    sc = _mm512_and_si512(_mm512_srli_epi32(h1, 8 * j), six);
                    m = _mm512_and_si512(_mm512_srli_epi32(h2, 8 * j), six);
                } else { /* low 4 bits from bytes 8..11, high 2 from the tops of bytes 0..7 */
                    __m512i lo = byte_of(h3, j - 4);
                    sc = _mm512_or_si512(_mm512_and_si512(lo, _mm512_set1_epi32(0xF)),
                                         _mm512_slli_epi32(_mm512_srli_epi32(byte_of(h1, j - 4), 6), 4));
                    m = _mm512_or_si512(_mm512_srli_epi32(lo, 4),
                                        _mm512_slli_epi32(_mm512_srli_epi32(byte_of(h2, j - 4), 6), 4));
                }
                __m512 sw = _mm512_mul_ps(d, _mm512_cvtepi32_ps(sc));
                __m512 mw = _mm512_xor_ps(_mm512_mul_ps(dmin, _mm512_cvtepi32_ps(m)), sign);
                acc = block_step(true, acc, is[j], sw, mw, a, n_blk, sb * 8 + j);
            }
        }
        _mm512_mask_storeu_ps(y + g * QUANT_PACK_ROWS, rg.keep, acc);
    }
}

/* Groups [g0, g1) of a Q6_K matrix. Super-block: 128 bytes of low nibbles,
 * 64 of 2-bit high parts, 16 signed 8-bit scales, d (fp16); per 128 values
 * the low nibbles of 64 bytes are values 0..63 and their high nibbles
 * 64..127, bits 2k..2k+1 of 32 high-part bytes complete run k of 32. Values
 * are 0..63 with offset 32, removed through the activation's correction. */
void quant_gemv_q6_K_avx512(const quant_matrix *w, int64_t g0, int64_t g1, const quant_packed_act *a, float *y) {
    const int64_t n_sb = w->n_in / QK_K, n_blk = n_sb * 16;
    const size_t row_bytes = (size_t)n_sb * sizeof(block_q6_K);
    for (int64_t g = g0; g < g1; g++) {
        row_group rg;
        group_rows(w, row_bytes, g, g1, &rg);
        __m512 acc = _mm512_setzero_ps();
        for (int64_t sb = 0; sb < n_sb; sb++) {
            const uint8_t *blk0 = rg.base + (size_t)sb * sizeof(block_q6_K);
            const uint8_t *hdr = blk0 + offsetof(block_q6_K, scales);
            __m512i h[4];
            for (int k = 0; k < 4; k++) h[k] = gather32(&rg, hdr + 4 * k);
            /* d is the block's last two bytes: read from two before, so the
             * last row's gather stays inside the matrix */
            __m512 d = half_to_f32(_mm512_srli_epi32(gather32(&rg, blk0 + offsetof(block_q6_K, d) - 2), 16));
            const int8_t *x = (const int8_t *)(a->x + a->sb_header + (size_t)sb * a->sb_bytes);
            for (int c = 0; c < 2; c++) {
                __m512i x0 = _mm512_loadu_si512(x + 128 * c), x1 = _mm512_loadu_si512(x + 128 * c + 64);
                __m512i r0[4], r1[4];
                k_part(KK_Q6_K, &rg, blk0, c, x0, x1, r0, r1);
                __m512i is[8];
                rows_to_quarters(r0, is);
                rows_to_quarters(r1, is + 4);
#pragma GCC unroll 8
                for (int j = 0; j < 8; j++) {
                    int s = 8 * c + j;
                    /* scale s: byte s % 4 of h[s / 4], sign-extended */
                    __m512i sc = _mm512_srai_epi32(_mm512_slli_epi32(h[s / 4], 24 - 8 * (s % 4)), 24);
                    __m512 sw = _mm512_mul_ps(d, _mm512_cvtepi32_ps(sc));
                    acc = block_step(false, acc, is[j], sw, _mm512_setzero_ps(), a, n_blk, sb * 16 + s);
                }
            }
        }
        _mm512_mask_storeu_ps(y + g * QUANT_PACK_ROWS, rg.keep, acc);
    }
}

/* ---- 32-value formats: Q4_0, Q4_1, Q5_0, Q5_1 ---------------------------- *
 * (Not Q8_0: its blocks are 1.06 bytes a weight against the packed 1.125,
 * and unpacking them here costs more than the packed kernel's loads.) */

enum legacy_kind { LK_Q4_0, LK_Q4_1, LK_Q5_0, LK_Q5_1 };

/* The unsigned values (legacy.c's unpackers: nibbles and fifth bits) of
 * the blocks at b0 and b1, in element order: 64 bytes. */
ALWAYS_INLINE __m512i legacy_values(enum legacy_kind kind, const uint8_t *b0, const uint8_t *b1) {
    size_t qs = kind == LK_Q4_0 ? offsetof(block_q4_0, qs) : kind == LK_Q4_1 ? offsetof(block_q4_1, qs)
              : kind == LK_Q5_0 ? offsetof(block_q5_0, qs) : offsetof(block_q5_1, qs);
    __m256i y = _mm256_loadu2_m128i((const __m128i *)(b1 + qs), (const __m128i *)(b0 + qs));
    __m256i nib = _mm256_set1_epi8(0x0F);
    __m256i lo = _mm256_and_si256(y, nib), hi = _mm256_and_si256(_mm256_srli_epi16(y, 4), nib);
    /* low nibbles are elements 0..15 of a block, high ones 16..31 */
    __m512i v = _mm512_permutex2var_epi64(_mm512_castsi256_si512(lo), _mm512_setr_epi64(0, 1, 8, 9, 2, 3, 10, 11),
                                          _mm512_castsi256_si512(hi));
    if (kind == LK_Q5_0 || kind == LK_Q5_1) { /* bit j of qh: the fifth bit of element j */
        size_t qh = kind == LK_Q5_0 ? offsetof(block_q5_0, qh) : offsetof(block_q5_1, qh);
        uint32_t h0, h1;
        memcpy(&h0, b0 + qh, 4);
        memcpy(&h1, b1 + qh, 4);
        v = _mm512_mask_add_epi8(v, (__mmask64)h0 | (__mmask64)h1 << 32, v, _mm512_set1_epi8(16));
    }
    return v;
}

/* Two blocks a step; an odd last block is paired with itself against zero
 * activations, and its second half dropped. */
ALWAYS_INLINE void legacy_gemv(enum legacy_kind kind, size_t blk_bytes, const quant_matrix *w, int64_t g0, int64_t g1,
                               const quant_packed_act *a, float *y) {
    const bool has_min = kind == LK_Q4_1 || kind == LK_Q5_1;
    const int64_t n_blk = w->n_in / QK_LEGACY;
    const size_t row_bytes = (size_t)n_blk * blk_bytes;
    const uint8_t *x = a->x + a->sb_header;
    for (int64_t g = g0; g < g1; g++) {
        row_group rg;
        group_rows(w, row_bytes, g, g1, &rg);
        __m512 acc = _mm512_setzero_ps();
        for (int64_t b = 0; b < n_blk; b += 2) {
            bool pair = b + 1 < n_blk;
            size_t at0 = (size_t)b * blk_bytes, at1 = pair ? at0 + blk_bytes : at0;
            __m256i x1 = pair ? _mm256_loadu_si256((const __m256i *)(x + (size_t)(b + 1) * a->sb_bytes))
                              : _mm256_setzero_si256();
            __m512i xv = _mm512_inserti64x4(
                _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(x + (size_t)b * a->sb_bytes))), x1, 1);
            __m512i r[4];
#pragma GCC unroll 4
            for (int q = 0; q < 4; q++) {
                __m512i p[4];
#pragma GCC unroll 4
                for (int rr = 0; rr < 4; rr++) {
                    prefetch_step(&rg.pf);
                    const uint8_t *row = rg.base + rg.off[4 * q + rr];
                    p[rr] = _mm512_dpbusd_epi32(_mm512_setzero_si512(), legacy_values(kind, row + at0, row + at1), xv);
                }
                r[q] = sum4_rows(p);
            }
            __m512i is0, is1;
            rows_to_halves(r, &is0, &is1);
            /* each row's d in the low half, m (with minimums) in the high */
            __m512i h0 = gather32(&rg, rg.base + at0);
            acc = block_step(has_min, acc, is0, half_to_f32(h0), half_to_f32(_mm512_srli_epi32(h0, 16)), a, n_blk, b);
            if (pair) {
                __m512i h1 = gather32(&rg, rg.base + at1);
                acc = block_step(has_min, acc, is1, half_to_f32(h1), half_to_f32(_mm512_srli_epi32(h1, 16)), a, n_blk,
                                 b + 1);
            }
        }
        _mm512_mask_storeu_ps(y + g * QUANT_PACK_ROWS, rg.keep, acc);
    }
}

#define DEFINE_LEGACY(NAME, KIND)                                                                              \
    void quant_gemv_##NAME##_avx512(const quant_matrix *w, int64_t g0, int64_t g1, const quant_packed_act *a, \
                                    float *y) {                                                               \
        legacy_gemv(KIND, sizeof(block_##NAME), w, g0, g1, a, y);                                             \
    }
DEFINE_LEGACY(q4_0, LK_Q4_0)
DEFINE_LEGACY(q4_1, LK_Q4_1)
DEFINE_LEGACY(q5_0, LK_Q5_0)
DEFINE_LEGACY(q5_1, LK_Q5_1)
