/* gemv_avx512: one activation row (decode) against block-format weights
 * in their interleaved form (quant_impl.h), with AVX-512 VNNI.
 *
 * Why not the packed weights: a token's product reads every weight once, so
 * decode is bound by memory, and the packed copy holds a byte per value plus
 * float scales (1.25 bytes a weight) where Q4_K's blocks hold 0.56, Q5_0's
 * 0.69 and Q6_K's 0.82. The interleaved form is those blocks with a group's
 * 16 rows woven a word at a time: one load gives a word of 16 rows, its
 * nibbles (and fifth or high bits) are unpacked in registers, and a
 * vpdpbusd against 4 activation bytes broadcast from memory advances the 16
 * rows' sums, a row per lane, with no reduction across lanes.
 *
 * Why the same bits: per 32 values (16 for Q6_K) of a row the integer sum
 * is exact in any order, and the float steps are the packed kernel's
 * (gemm_avx512.c), block by block in the same order, with the scales and
 * minimums the unpackers of legacy.c and kquants.c compute; so a row's
 * logits are the same whether it is decoded alone or in a batch. */
#include "quant/kquants.h"
#include "quant/legacy.h"
#include "quant/quant_impl.h"

#include <immintrin.h>
#include <stddef.h>
#include <string.h>

#define ALWAYS_INLINE static inline __attribute__((always_inline))
/* A group's words are one forward stream, but at two threads the hardware
 * prefetchers alone leave it short of memory's bandwidth (Qwen2.5-Coder-1.5B's
 * matrices at 15-19 GB/s here, against 21-24 with this): each line is
 * fetched a little ahead, 4 KiB, into L2. */
#define AHEAD_LINES 64
ALWAYS_INLINE void ahead(const __m512i *p) { _mm_prefetch((const char *)(p + AHEAD_LINES), _MM_HINT_T1); }

/* Group g's words: word k of block b at [b * block_words + k]. */
ALWAYS_INLINE const __m512i *group_words(const quant_interleaved *w, int64_t g) {
    return (const __m512i *)(w->w + (size_t)(g * w->n_blocks) * (size_t)w->block_words * QUANT_PACK_ROWS);
}

ALWAYS_INLINE void store_group(const quant_interleaved *w, int64_t g, __m512 acc, float *y) {
    int64_t left = w->n_out - g * QUANT_PACK_ROWS;
    __mmask16 keep = left >= QUANT_PACK_ROWS ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
    _mm512_mask_storeu_ps(y + g * QUANT_PACK_ROWS, keep, acc);
}

/* Four activation bytes in every lane. */
ALWAYS_INLINE __m512i bcast4(const int8_t *x) {
    int32_t v;
    memcpy(&v, x, sizeof v);
    return _mm512_set1_epi32(v);
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

/* Groups [g0, g1) of a Q4_K matrix. Super-block words: d, dmin (fp16),
 * 3 of 6-bit scales and minimums (kq_scale_min), 32 of nibbles: in word
 * 8c+t the low nibbles are values 64c+4t.. of block 2c, the high ones the
 * same of block 2c+1. */
void quant_gemv_q4_K_avx512(const quant_interleaved *w, int64_t g0, int64_t g1, const quant_packed_act *a, float *y) {
    const int64_t n_sb = w->n_blocks, n_blk = n_sb * 8;
    const __m512i nib = _mm512_set1_epi8(0x0F), six = _mm512_set1_epi32(63);
    const __m512 sign = _mm512_set1_ps(-0.0f);
    for (int64_t g = g0; g < g1; g++) {
        const __m512i *v = group_words(w, g);
        __m512 acc = _mm512_setzero_ps();
        for (int64_t sb = 0; sb < n_sb; sb++, v += 36) {
            const int8_t *x = (const int8_t *)(a->x + a->sb_header + (size_t)sb * a->sb_bytes);
            __m512i is[8];
#pragma GCC unroll 4
            for (int c = 0; c < 4; c++) {
                __m512i lo = _mm512_setzero_si512(), hi = _mm512_setzero_si512();
#pragma GCC unroll 8
                for (int t = 0; t < 8; t++) {
                    ahead(v + 4 + 8 * c + t);
                    __m512i q = _mm512_load_si512(v + 4 + 8 * c + t);
                    lo = _mm512_dpbusd_epi32(lo, _mm512_and_si512(q, nib), bcast4(x + 64 * c + 4 * t));
                    hi = _mm512_dpbusd_epi32(hi, _mm512_and_si512(_mm512_srli_epi16(q, 4), nib),
                                             bcast4(x + 64 * c + 32 + 4 * t));
                }
                is[2 * c] = lo;
                is[2 * c + 1] = hi;
            }
            for (int k = 0; k < 4; k++) ahead(v + k);
            __m512i h0 = _mm512_load_si512(v), h1 = _mm512_load_si512(v + 1), h2 = _mm512_load_si512(v + 2),
                    h3 = _mm512_load_si512(v + 3);
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
        store_group(w, g, acc, y);
    }
}

/* Groups [g0, g1) of a Q6_K matrix. Super-block words: 4 of signed 8-bit
 * scales, d (fp16), then for half n of the 256 values and t < 8 three
 * words: two whose low nibbles are values 128n+4t.. and 128n+32+4t.. and
 * high nibbles 128n+64+4t.. and 128n+96+4t.., and one whose bits 0-1, 2-3,
 * 4-5 and 6-7 complete those four. Values are 0..63 with offset 32,
 * removed through the activation's correction; a 16-value block per scale. */
void quant_gemv_q6_K_avx512(const quant_interleaved *w, int64_t g0, int64_t g1, const quant_packed_act *a, float *y) {
    const int64_t n_sb = w->n_blocks, n_blk = n_sb * 16;
    const __m512i nib = _mm512_set1_epi8(0x0F), top = _mm512_set1_epi8(0x30);
    for (int64_t g = g0; g < g1; g++) {
        const __m512i *v = group_words(w, g);
        __m512 acc = _mm512_setzero_ps();
        for (int64_t sb = 0; sb < n_sb; sb++, v += 53) {
            const int8_t *x = (const int8_t *)(a->x + a->sb_header + (size_t)sb * a->sb_bytes);
            __m512i h[4];
            for (int k = 0; k < 5; k++) ahead(v + k);
            for (int k = 0; k < 4; k++) h[k] = _mm512_load_si512(v + k);
            __m512 d = half_to_f32(_mm512_load_si512(v + 4));
#pragma GCC unroll 2
            for (int n = 0; n < 2; n++) {
                /* is[2m + u]: run m of 32 values, its half u */
                __m512i is[8];
#pragma GCC unroll 8
                for (int b = 0; b < 8; b++) is[b] = _mm512_setzero_si512();
#pragma GCC unroll 8
                for (int t = 0; t < 8; t++) {
                    const __m512i *nt = v + 5 + 24 * n + 3 * t;
                    ahead(nt);
                    ahead(nt + 1);
                    ahead(nt + 2);
                    __m512i la = _mm512_load_si512(nt), lb = _mm512_load_si512(nt + 1), hb = _mm512_load_si512(nt + 2);
                    __m512i q[4] = {
                        _mm512_or_si512(_mm512_and_si512(la, nib), _mm512_and_si512(_mm512_slli_epi16(hb, 4), top)),
                        _mm512_or_si512(_mm512_and_si512(lb, nib), _mm512_and_si512(_mm512_slli_epi16(hb, 2), top)),
                        _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(la, 4), nib), _mm512_and_si512(hb, top)),
                        _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(lb, 4), nib),
                                        _mm512_and_si512(_mm512_srli_epi16(hb, 2), top)),
                    };
#pragma GCC unroll 4
                    for (int m = 0; m < 4; m++) {
                        int b = 2 * m + t / 4;
                        is[b] = _mm512_dpbusd_epi32(is[b], q[m], bcast4(x + 128 * n + 32 * m + 4 * t));
                    }
                }
#pragma GCC unroll 8
                for (int j = 0; j < 8; j++) {
                    int s = 8 * n + j;
                    /* scale s: byte s % 4 of h[s / 4], sign-extended */
                    __m512i sc = _mm512_srai_epi32(_mm512_slli_epi32(h[s / 4], 24 - 8 * (s % 4)), 24);
                    __m512 sw = _mm512_mul_ps(d, _mm512_cvtepi32_ps(sc));
                    acc = block_step(false, acc, is[j], sw, _mm512_setzero_ps(), a, n_blk, sb * 16 + s);
                }
            }
        }
        store_group(w, g, acc, y);
    }
}

/* ---- 32-value formats: Q4_0, Q4_1, Q5_0, Q5_1 ---------------------------- *
 * (Not Q8_0: its blocks are 1.06 bytes a weight against the packed 1.125,
 * and unpacking them here costs more than the packed kernel's loads.) */

enum legacy_kind { LK_Q4_0, LK_Q4_1, LK_Q5_0, LK_Q5_1 };

/* Block words: d (and m) | qh' (with fifth bits) | 4 of nibbles, whose word
 * t holds values 4t.. in its low nibbles and 16+4t.. in its high ones. */
ALWAYS_INLINE void legacy_gemv(enum legacy_kind kind, const quant_interleaved *w, int64_t g0, int64_t g1,
                               const quant_packed_act *a, float *y) {
    const bool has_min = kind == LK_Q4_1 || kind == LK_Q5_1, fifth = kind == LK_Q5_0 || kind == LK_Q5_1;
    const int qs_word = fifth ? 2 : 1, block_words = qs_word + 4;
    const int64_t n_blk = w->n_blocks;
    const __m512i nib = _mm512_set1_epi8(0x0F), bit4 = _mm512_set1_epi8(0x10);
    for (int64_t g = g0; g < g1; g++) {
        const __m512i *v = group_words(w, g);
        __m512 acc = _mm512_setzero_ps();
        for (int64_t b = 0; b < n_blk; b++, v += block_words) {
            const int8_t *x = (const int8_t *)(a->x + a->sb_header + (size_t)b * a->sb_bytes);
            __m512i lo = _mm512_setzero_si512(), hi = _mm512_setzero_si512();
            __m512i qh = fifth ? _mm512_load_si512(v + 1) : _mm512_setzero_si512();
#pragma GCC unroll 4
            for (int t = 0; t < 4; t++) {
                ahead(v + qs_word + t);
                __m512i q = _mm512_load_si512(v + qs_word + t);
                __m512i ql = _mm512_and_si512(q, nib), qu = _mm512_and_si512(_mm512_srli_epi16(q, 4), nib);
                if (fifth) { /* value | (fifth bit at bit 4): 0xF8 is A | (B & C) */
                    ql = _mm512_ternarylogic_epi32(ql, _mm512_slli_epi32(qh, 4 - t), bit4, 0xF8);
                    qu = _mm512_ternarylogic_epi32(qu, _mm512_srli_epi32(qh, t), bit4, 0xF8);
                }
                lo = _mm512_dpbusd_epi32(lo, ql, bcast4(x + 4 * t));
                hi = _mm512_dpbusd_epi32(hi, qu, bcast4(x + 16 + 4 * t));
            }
            /* each row's d in the low half, m (with minimums) in the high */
            ahead(v);
            if (fifth) ahead(v + 1);
            __m512i h0 = _mm512_load_si512(v);
            acc = block_step(has_min, acc, _mm512_add_epi32(lo, hi), half_to_f32(h0),
                             half_to_f32(_mm512_srli_epi32(h0, 16)), a, n_blk, b);
        }
        store_group(w, g, acc, y);
    }
}

#define DEFINE_LEGACY(NAME, KIND)                                                                                 \
    void quant_gemv_##NAME##_avx512(const quant_interleaved *w, int64_t g0, int64_t g1, const quant_packed_act *a, \
                                    float *y) {                                                                  \
        legacy_gemv(KIND, w, g0, g1, a, y);                                                                      \
    }
DEFINE_LEGACY(q4_0, LK_Q4_0)
DEFINE_LEGACY(q4_1, LK_Q4_1)
DEFINE_LEGACY(q5_0, LK_Q5_0)
DEFINE_LEGACY(q5_1, LK_Q5_1)
