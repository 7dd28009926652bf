/* gemv_avx2: one activation row (decode) against block-format weights in
 * their interleaved form (quant_impl.h), with AVX2, for CPUs without
 * AVX-512 (Zen 3 and older, the client cores).
 *
 * Why: decode reads every weight once and is bound by memory; the packed
 * copy the AVX2 gemm reads holds 1.25 bytes a weight where Q4_K's blocks
 * hold 0.56, Q5_0's 0.69 and Q6_K's 0.82 (gemv_avx512.c says the same for
 * AVX-512, on the same interleaved blocks).
 *
 * The shape: a group's 64-byte word holds one word of each of 16 rows; a
 * ymm holds half of it (8 rows). Each half is taken in turn over a block
 * (or a super-block), whose words are then still in L1: the second half
 * costs no memory traffic. vpmaddubsw against 4 activation bytes broadcast
 * advances the 8 rows' dot products by two products each into int16 pair
 * sums, added as int16 while they are bounded (span below) and widened by
 * vpmaddwd once per block, not once per word.
 *
 * Why the same bits: per block of a row the integer sum is exact in any
 * order, and the float steps are gemm_avx2.c's (and so gemm_avx512.c's),
 * block by block in the same order, with the scales and minimums the
 * unpackers compute: a row's logits are the same alone or in a batch, on
 * AVX2 or AVX-512 (tests/test_quant.c checks both). */
#include "quant/quant_impl.h"

#include <immintrin.h>
#include <stddef.h>
#include <string.h>

#define ALWAYS_INLINE static inline __attribute__((always_inline))
#define HALF_ROWS 8
/* The same software prefetch distance as gemv_avx512.c: a group's words are
 * one forward stream, each line requested 4 KiB ahead into L2. */
#define AHEAD_BYTES 4096
ALWAYS_INLINE void ahead(const uint8_t *p) { _mm_prefetch((const char *)(p + AHEAD_BYTES), _MM_HINT_T1); }

/* Group g's words: word k of the group at byte 64 * k. */
ALWAYS_INLINE const uint8_t *group_words(const quant_interleaved *w, int64_t g) {
    return (const uint8_t *)(w->w + (size_t)(g * w->n_blocks) * (size_t)w->block_words * QUANT_PACK_ROWS);
}

/* Half h (rows 8h..8h+7) of word k from v. */
ALWAYS_INLINE __m256i half_word(const uint8_t *v, int k, int h) {
    return _mm256_load_si256((const __m256i *)(v + 64 * k + 32 * h));
}

ALWAYS_INLINE void store_half(const quant_interleaved *w, int64_t g, int h, __m256 acc, float *y) {
    int64_t o0 = g * QUANT_PACK_ROWS + h * HALF_ROWS, left = w->n_out - o0;
    if (left >= HALF_ROWS) {
        _mm256_storeu_ps(y + o0, acc);
    } else if (left > 0) { /* the last group's padding rows are not stored */
        float v[HALF_ROWS];
        _mm256_storeu_ps(v, acc);
        memcpy(y + o0, v, sizeof(float) * (size_t)left);
    }
}

/* Four activation bytes in every lane. */
ALWAYS_INLINE __m256i bcast4(const int8_t *x) {
    int32_t v;
    memcpy(&v, x, sizeof v);
    return _mm256_set1_epi32(v);
}

/* The fp16 in the low half of each 32-bit lane, as a float. */
ALWAYS_INLINE __m256 half_to_f32(__m256i v) {
    __m256i lo = _mm256_and_si256(v, _mm256_set1_epi32(0xFFFF));
    __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(lo, lo), 0x08); /* lanes 0-3, 4-7 in order */
    return _mm256_cvtph_ps(_mm256_castsi256_si128(packed));
}

/* Byte k of each lane, as an integer in 0..255. */
ALWAYS_INLINE __m256i byte_of(__m256i v, int k) {
    return _mm256_and_si256(_mm256_srli_epi32(v, 8 * k), _mm256_set1_epi32(0xFF));
}

/* int16 pair sums widened to each lane's int32 sum. */
ALWAYS_INLINE __m256i widen(__m256i s16) { return _mm256_madd_epi16(s16, _mm256_set1_epi16(1)); }

/* The packed kernel's float steps for one block of 8 rows (block_step of
 * gemv_avx512.c, lane for lane). */
ALWAYS_INLINE __m256 block_step(bool has_min, __m256 acc, __m256i is, __m256 sw, __m256 mw, const quant_packed_act *a,
                                int64_t n_blk, int64_t blk) {
    const float *dsc = a->dsc;
    if (!has_min) {
        int32_t corr;
        memcpy(&corr, dsc + 2 * n_blk + blk, sizeof corr);
        is = _mm256_sub_epi32(is, _mm256_set1_epi32(corr));
    }
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(is), _mm256_mul_ps(sw, _mm256_set1_ps(dsc[blk])), acc);
    if (has_min) acc = _mm256_fmadd_ps(mw, _mm256_set1_ps(dsc[n_blk + blk]), acc);
    return acc;
}

/* Groups [g0, g1) of a Q4_K matrix (the super-block's words as in
 * gemv_avx512.c). Both halves of a word are taken together, so each
 * activation broadcast serves 16 rows; a pair of blocks' 8 words make 16
 * products per int16 lane, at most 16 * 15 * 127 = 30480: one widening per
 * block. */
void quant_gemv_q4_K_avx2(const quant_interleaved *w, int64_t g0, int64_t g1, const quant_packed_act *a, float *y) {
    const int64_t n_sb = w->n_blocks, n_blk = n_sb * 8;
    const __m256i nib = _mm256_set1_epi8(0x0F), six = _mm256_set1_epi32(63);
    const __m256 sign = _mm256_set1_ps(-0.0f);
    for (int64_t g = g0; g < g1; g++) {
        const uint8_t *v0 = group_words(w, g);
        __m256 acc[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
        for (int64_t sb = 0; sb < n_sb; sb++) {
            const uint8_t *v = v0 + (size_t)sb * 36 * 64;
            const int8_t *x = (const int8_t *)(a->x + a->sb_header + (size_t)sb * a->sb_bytes);
#pragma GCC unroll 4
            for (int c = 0; c < 4; c++) {
                /* is[2h + u]: half h, block 2c + u */
                __m256i s16[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(),
                                  _mm256_setzero_si256()};
#pragma GCC unroll 8
                for (int t = 0; t < 8; t++) {
                    ahead(v + 64 * (4 + 8 * c + t));
                    __m256i xl = bcast4(x + 64 * c + 4 * t), xh = bcast4(x + 64 * c + 32 + 4 * t);
#pragma GCC unroll 2
                    for (int h = 0; h < 2; h++) {
                        __m256i q = half_word(v, 4 + 8 * c + t, h);
                        s16[2 * h] = _mm256_add_epi16(s16[2 * h], _mm256_maddubs_epi16(_mm256_and_si256(q, nib), xl));
                        s16[2 * h + 1] = _mm256_add_epi16(
                            s16[2 * h + 1], _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(q, 4), nib), xh));
                    }
                }
                if (c == 0)
                    for (int k = 0; k < 4; k++) ahead(v + 64 * k);
#pragma GCC unroll 2
                for (int h = 0; h < 2; h++) {
                    __m256i h0 = half_word(v, 0, h), h1 = half_word(v, 1, h), h2 = half_word(v, 2, h),
                            h3 = half_word(v, 3, h);
                    __m256 d = half_to_f32(h0), dmin = half_to_f32(_mm256_srli_epi32(h0, 16));
#pragma GCC unroll 2
                    for (int u = 0; u < 2; u++) {
                        int j = 2 * c + u;
                        __m256i sc, m;
                        if (j < 4) {
                            sc = _mm256_and_si256(_mm256_srli_epi32(h1, 8 * j), six);
                            m = _mm256_and_si256(_mm256_srli_epi32(h2, 8 * j), six);
                        } else { /* low 4 bits from bytes 8..11, high 2 from the tops of bytes 0..7 */
                            __m256i lo4 = byte_of(h3, j - 4);
                            sc = _mm256_or_si256(_mm256_and_si256(lo4, _mm256_set1_epi32(0xF)),
                                                 _mm256_slli_epi32(_mm256_srli_epi32(byte_of(h1, j - 4), 6), 4));
                            m = _mm256_or_si256(_mm256_srli_epi32(lo4, 4),
                                                _mm256_slli_epi32(_mm256_srli_epi32(byte_of(h2, j - 4), 6), 4));
                        }
                        __m256 sw = _mm256_mul_ps(d, _mm256_cvtepi32_ps(sc));
                        __m256 mw = _mm256_xor_ps(_mm256_mul_ps(dmin, _mm256_cvtepi32_ps(m)), sign);
                        acc[h] = block_step(true, acc[h], widen(s16[2 * h + u]), sw, mw, a, n_blk, sb * 8 + j);
                    }
                }
            }
        }
        store_half(w, g, 0, acc[0], y);
        store_half(w, g, 1, acc[1], y);
    }
}

/* Groups [g0, g1) of a Q6_K matrix (words as in gemv_avx512.c). Values
 * are 0..63, so two words' pair sums (2 * 2 * 63 * 127 = 32004) fit an
 * int16 lane: a 16-value block (4 words) is widened twice. */
void quant_gemv_q6_K_avx2(const quant_interleaved *w, int64_t g0, int64_t g1, const quant_packed_act *a, float *y) {
    const int64_t n_sb = w->n_blocks, n_blk = n_sb * 16;
    const __m256i nib = _mm256_set1_epi8(0x0F), top = _mm256_set1_epi8(0x30);
    for (int64_t g = g0; g < g1; g++) {
        const uint8_t *v0 = group_words(w, g);
        __m256 acc[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
        for (int64_t sb = 0; sb < n_sb; sb++) {
            const uint8_t *v = v0 + (size_t)sb * 53 * 64;
            const int8_t *x = (const int8_t *)(a->x + a->sb_header + (size_t)sb * a->sb_bytes);
            for (int k = 0; k < 53; k++) ahead(v + 64 * k);
            for (int h = 0; h < 2; h++) {
                __m256 d = half_to_f32(half_word(v, 4, h));
#pragma GCC unroll 2
                for (int n = 0; n < 2; n++) {
                    /* is[2m + u]: run m of 32 values, its half u */
                    __m256i is[8], s16[4];
#pragma GCC unroll 8
                    for (int b = 0; b < 8; b++) is[b] = _mm256_setzero_si256();
#pragma GCC unroll 8
                    for (int t = 0; t < 8; t++) {
                        int at = 5 + 24 * n + 3 * t;
                        __m256i la = half_word(v, at, h), lb = half_word(v, at + 1, h), hb = half_word(v, at + 2, h);
                        __m256i q[4] = {
                            _mm256_or_si256(_mm256_and_si256(la, nib), _mm256_and_si256(_mm256_slli_epi16(hb, 4), top)),
                            _mm256_or_si256(_mm256_and_si256(lb, nib), _mm256_and_si256(_mm256_slli_epi16(hb, 2), top)),
                            _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(la, 4), nib), _mm256_and_si256(hb, top)),
                            _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(lb, 4), nib),
                                            _mm256_and_si256(_mm256_srli_epi16(hb, 2), top)),
                        };
#pragma GCC unroll 4
                        for (int m = 0; m < 4; m++) {
                            __m256i p = _mm256_maddubs_epi16(q[m], bcast4(x + 128 * n + 32 * m + 4 * t));
                            if (t % 2 == 0) {
                                s16[m] = p;
                            } else {
                                int b = 2 * m + t / 4;
                                is[b] = _mm256_add_epi32(is[b], widen(_mm256_add_epi16(s16[m], p)));
                            }
                        }
                    }
#pragma GCC unroll 8
                    for (int j = 0; j < 8; j++) {
                        int s = 8 * n + j;
                        /* scale s: byte s % 4 of word s / 4, sign-extended */
                        __m256i sc = _mm256_srai_epi32(_mm256_slli_epi32(half_word(v, s / 4, h), 24 - 8 * (s % 4)), 24);
                        __m256 sw = _mm256_mul_ps(d, _mm256_cvtepi32_ps(sc));
                        acc[h] = block_step(false, acc[h], is[j], sw, _mm256_setzero_ps(), a, n_blk, sb * 16 + s);
                    }
                }
            }
        }
        store_half(w, g, 0, acc[0], y);
        store_half(w, g, 1, acc[1], y);
    }
}

/* ---- 32-value formats: Q4_0, Q4_1, Q5_0, Q5_1 ---------------------------- */

enum legacy_kind { LK_Q4_0, LK_Q4_1, LK_Q5_0, LK_Q5_1 };

/* Block words: d (and m) | qh' (with fifth bits) | 4 of nibbles, as in
 * gemv_avx512.c. Four words' pair sums stay within int16 for 5-bit values
 * (4 * 2 * 31 * 127 = 31496), so each half of a block is widened once. */
ALWAYS_INLINE void legacy_gemv(enum legacy_kind kind, const quant_interleaved *w, int64_t g0, int64_t g1,
                               const quant_packed_act *a, float *y) {
    const bool has_min = kind == LK_Q4_1 || kind == LK_Q5_1, fifth = kind == LK_Q5_0 || kind == LK_Q5_1;
    const int qs_word = fifth ? 2 : 1, block_words = qs_word + 4;
    const int64_t n_blk = w->n_blocks;
    const __m256i nib = _mm256_set1_epi8(0x0F), bit4 = _mm256_set1_epi8(0x10);
    for (int64_t g = g0; g < g1; g++) {
        const uint8_t *v = group_words(w, g);
        __m256 acc[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
        for (int64_t b = 0; b < n_blk; b++, v += 64 * block_words) {
            const int8_t *x = (const int8_t *)(a->x + a->sb_header + (size_t)b * a->sb_bytes);
            for (int k = 0; k < block_words; k++) ahead(v + 64 * k);
#pragma GCC unroll 2
            for (int h = 0; h < 2; h++) {
                __m256i lo = _mm256_setzero_si256(), hi = _mm256_setzero_si256();
                __m256i qh = fifth ? half_word(v, 1, h) : _mm256_setzero_si256();
#pragma GCC unroll 4
                for (int t = 0; t < 4; t++) {
                    __m256i q = half_word(v, qs_word + t, h);
                    __m256i ql = _mm256_and_si256(q, nib), qu = _mm256_and_si256(_mm256_srli_epi16(q, 4), nib);
                    if (fifth) {
                        ql = _mm256_or_si256(ql, _mm256_and_si256(_mm256_slli_epi32(qh, 4 - t), bit4));
                        qu = _mm256_or_si256(qu, _mm256_and_si256(_mm256_srli_epi32(qh, t), bit4));
                    }
                    lo = _mm256_add_epi16(lo, _mm256_maddubs_epi16(ql, bcast4(x + 4 * t)));
                    hi = _mm256_add_epi16(hi, _mm256_maddubs_epi16(qu, bcast4(x + 16 + 4 * t)));
                }
                /* each row's d in the low half, m (with minimums) in the high */
                __m256i h0 = half_word(v, 0, h);
                acc[h] = block_step(has_min, acc[h], _mm256_add_epi32(widen(lo), widen(hi)), half_to_f32(h0),
                                    half_to_f32(_mm256_srli_epi32(h0, 16)), a, n_blk, b);
            }
        }
        store_half(w, g, 0, acc[0], y);
        store_half(w, g, 1, acc[1], y);
    }
}

#define DEFINE_LEGACY(NAME, KIND)                                                                               \
    void quant_gemv_##NAME##_avx2(const quant_interleaved *w, int64_t g0, int64_t g1, const quant_packed_act *a, \
                                  float *y) {                                                                  \
        legacy_gemv(KIND, w, g0, g1, a, y);                                                                    \
    }
DEFINE_LEGACY(q4_0, LK_Q4_0)
DEFINE_LEGACY(q4_1, LK_Q4_1)
DEFINE_LEGACY(q5_0, LK_Q5_0)
DEFINE_LEGACY(q5_1, LK_Q5_1)
