/* attn_avx512: attention scores and value sums (quant_attn_scores_f16,
 * quant_attn_accum_f16) with AVX-512 (the Makefile adds the flags because of
 * the _avx512 suffix). Both give the AVX2 kernels' bits.
 *
 * Scores: the AVX2 dot of a query with a key keeps 16 partial sums (two
 * 8-lane chains over 16-value steps) and adds them in a fixed tree. Here the
 * 16 keys of a tile are transposed once into f32 columns, so a zmm lane is a
 * key and a partial sum is a register: the same fused multiply-adds in the
 * same order and the same tree, for 16 keys at once and without a horizontal
 * sum per key. The transposed tile serves every query of the call (the heads
 * of a GQA group, of several tokens), SCORE_Q queries per pass over it.
 *
 * Value sums: with 32 zmm registers the sums of several heads of a GQA group
 * fit at once, so each fp16 V row is converted once for all of them instead
 * of once per head. Every element still takes y = fma(p[j], v[j], y) for
 * j = 0, 1, ... in order, which is what the AVX2 kernel computes. */
#include "quant/quant_impl.h"

#include <immintrin.h>

#define TILE_HD 256 /* largest head size the transposed tile holds */

/* 16 x 16 floats: r[i] lane j becomes r[j] lane i. */
static inline __attribute__((always_inline)) void transpose16(__m512 r[16]) {
    __m512 t[16];
#pragma GCC unroll 16
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
#pragma GCC unroll 16
    for (int i = 0; i < 16; i += 4) {
        r[i] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[i]), _mm512_castps_pd(t[i + 2])));
        r[i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[i]), _mm512_castps_pd(t[i + 2])));
        r[i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[i + 1]), _mm512_castps_pd(t[i + 3])));
        r[i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[i + 1]), _mm512_castps_pd(t[i + 3])));
    }
    /* r[4a + b] now holds, per 128-bit lane c, element b of rows 4c.. of the
     * 4-row group a: gather the 128-bit lanes across groups */
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) {
        t[i] = _mm512_shuffle_f32x4(r[i], r[4 + i], 0x88);
        t[4 + i] = _mm512_shuffle_f32x4(r[i], r[4 + i], 0xdd);
        t[8 + i] = _mm512_shuffle_f32x4(r[8 + i], r[12 + i], 0x88);
        t[12 + i] = _mm512_shuffle_f32x4(r[8 + i], r[12 + i], 0xdd);
    }
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) {
        r[i] = _mm512_shuffle_f32x4(t[i], t[8 + i], 0x88);
        r[4 + i] = _mm512_shuffle_f32x4(t[4 + i], t[12 + i], 0x88);
        r[8 + i] = _mm512_shuffle_f32x4(t[i], t[8 + i], 0xdd);
        r[12 + i] = _mm512_shuffle_f32x4(t[4 + i], t[12 + i], 0xdd);
    }
}

/* kt[d*16 + j] = k row j, value d, for the nk <= 16 rows of a tile (missing
 * rows are zeros, never read from k). */
static void transpose_tile(float *kt, const uint16_t *k, size_t stride, int nk, int64_t n) {
    for (int64_t c = 0; c < n; c += 16) {
        __m512 r[16];
#pragma GCC unroll 16
        for (int j = 0; j < 16; j++)
            r[j] = j < nk ? _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(k + (size_t)j * stride + c)))
                          : _mm512_setzero_ps();
        transpose16(r);
#pragma GCC unroll 16
        for (int d = 0; d < 16; d++) _mm512_store_ps(kt + (c + d) * 16, r[d]);
    }
}

/* Queries scored together per pass over a transposed tile: each column of
 * the tile is loaded once for all of them, where one query at a time took a
 * load per multiply-add (the loads, not the multiply-adds, were the limit). */
#define SCORE_Q 6

/* u[g] = partial sums v and v+8 of query g, added: the tree's first level. */
static inline __attribute__((always_inline)) void score_pair(__m512 *u, const float *kt, const float *const *q,
                                                             int nq, int64_t n, int v) {
    __m512 a[SCORE_Q], b[SCORE_Q];
#pragma GCC unroll 6
    for (int g = 0; g < nq; g++) a[g] = b[g] = _mm512_setzero_ps();
    for (int64_t i = 0; i < n; i += 16) {
        __m512 ka = _mm512_load_ps(kt + (i + v) * 16), kb = _mm512_load_ps(kt + (i + v + 8) * 16);
#pragma GCC unroll 6
        for (int g = 0; g < nq; g++) {
            a[g] = _mm512_fmadd_ps(ka, _mm512_set1_ps(q[g][i + v]), a[g]);
            b[g] = _mm512_fmadd_ps(kb, _mm512_set1_ps(q[g][i + v + 8]), b[g]);
        }
    }
#pragma GCC unroll 6
    for (int g = 0; g < nq; g++) u[g] = _mm512_add_ps(a[g], b[g]);
}

/* Scores of nq <= SCORE_Q queries against one transposed tile. Partial sum
 * v of the AVX2 dot is a[v] (values v, v+16, v+32, ...); its horizontal sum
 * is ((u0+u4)+(u2+u6)) + ((u1+u5)+(u3+u7)) with u[l] = a[l] + a[l+8],
 * built here half by half so few sums are live at once. */
static inline __attribute__((always_inline)) void score_queries(float *s, size_t s_stride, const float *const *q,
                                                                int nq, const float *kt, int64_t n, __m512 vscale,
                                                                __mmask16 keep) {
    __m512 x[2][SCORE_Q], p0[SCORE_Q], p1[SCORE_Q], w[SCORE_Q];
#pragma GCC unroll 2
    for (int half = 0; half < 2; half++) {
        score_pair(p0, kt, q, nq, n, half);
        score_pair(p1, kt, q, nq, n, half + 4);
#pragma GCC unroll 6
        for (int g = 0; g < nq; g++) w[g] = _mm512_add_ps(p0[g], p1[g]);
        score_pair(p0, kt, q, nq, n, half + 2);
        score_pair(p1, kt, q, nq, n, half + 6);
#pragma GCC unroll 6
        for (int g = 0; g < nq; g++) x[half][g] = _mm512_add_ps(w[g], _mm512_add_ps(p0[g], p1[g]));
    }
#pragma GCC unroll 6
    for (int g = 0; g < nq; g++)
        _mm512_mask_storeu_ps(s + g * s_stride, keep, _mm512_mul_ps(_mm512_add_ps(x[0][g], x[1][g]), vscale));
}

void quant_attn_scores_f16_avx512(float *s, size_t s_stride, const float *const *q, int n_q, const uint16_t *k,
                                  size_t stride, int64_t n_rows, int64_t n, float scale) {
    if (n % 16 || n > TILE_HD) {
        quant_attn_scores_f16_avx2(s, s_stride, q, n_q, k, stride, n_rows, n, scale);
        return;
    }
    _Alignas(64) float kt[TILE_HD * 16];
    const __m512 vscale = _mm512_set1_ps(scale);
    for (int64_t j0 = 0; j0 < n_rows; j0 += 16) {
        int nk = n_rows - j0 < 16 ? (int)(n_rows - j0) : 16;
        __mmask16 keep = (__mmask16)((1u << nk) - 1);
        transpose_tile(kt, k + (size_t)j0 * stride, stride, nk, n);
        for (int h = 0; h < n_q; h += SCORE_Q) {
            float *sh = s + h * s_stride + (size_t)j0;
            /* constant query counts keep every sum in a register */
            switch (n_q - h < SCORE_Q ? n_q - h : SCORE_Q) {
            case 1: score_queries(sh, s_stride, q + h, 1, kt, n, vscale, keep); break;
            case 2: score_queries(sh, s_stride, q + h, 2, kt, n, vscale, keep); break;
            case 3: score_queries(sh, s_stride, q + h, 3, kt, n, vscale, keep); break;
            case 4: score_queries(sh, s_stride, q + h, 4, kt, n, vscale, keep); break;
            case 5: score_queries(sh, s_stride, q + h, 5, kt, n, vscale, keep); break;
            default: score_queries(sh, s_stride, q + h, SCORE_Q, kt, n, vscale, keep); break;
            }
        }
    }
}

#define HEADS 6 /* 6 heads x 4 zmm of sums + 4 zmm of V: 28 of 32 registers */

/* Columns [c0, c0 + 16*nc) of heads [h0, h0+nh), nc <= 4, nh <= HEADS. */
static inline __attribute__((always_inline)) void accum_block(float *y, size_t y_stride, const float *p,
                                                              size_t p_stride, int nh, const uint16_t *v,
                                                              size_t stride, int64_t n_rows, int nc) {
    __m512 acc[HEADS][4], vv[4];
#pragma GCC unroll 4
    for (int c = 0; c < 4; c++) { /* dead stores unless nc, nh vary; quiets -Wmaybe-uninitialized */
        vv[c] = _mm512_setzero_ps();
        for (int h = 0; h < HEADS; h++) acc[h][c] = vv[c];
    }
#pragma GCC unroll 6
    for (int h = 0; h < nh; h++)
#pragma GCC unroll 4
        for (int c = 0; c < nc; c++) acc[h][c] = _mm512_loadu_ps(y + h * y_stride + 16 * c);
    for (int64_t j = 0; j < n_rows; j++) {
        const uint16_t *row = v + (size_t)j * stride;
#pragma GCC unroll 4
        for (int c = 0; c < nc; c++) vv[c] = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(row + 16 * c)));
#pragma GCC unroll 6
        for (int h = 0; h < nh; h++) {
            __m512 a = _mm512_set1_ps(p[h * p_stride + (size_t)j]);
#pragma GCC unroll 4
            for (int c = 0; c < nc; c++) acc[h][c] = _mm512_fmadd_ps(a, vv[c], acc[h][c]);
        }
    }
#pragma GCC unroll 6
    for (int h = 0; h < nh; h++)
#pragma GCC unroll 4
        for (int c = 0; c < nc; c++) _mm512_storeu_ps(y + h * y_stride + 16 * c, acc[h][c]);
}

void quant_attn_accum_f16_avx512(float *y, size_t y_stride, const float *p, size_t p_stride, int n_heads,
                                 const uint16_t *v, size_t stride, int64_t n_rows, int64_t n) {
    if (n % 16) {
        quant_attn_accum_f16_avx2(y, y_stride, p, p_stride, n_heads, v, stride, n_rows, n);
        return;
    }
    for (int64_t c0 = 0; c0 < n; c0 += 64) {
        int nc = n - c0 >= 64 ? 4 : (int)((n - c0) / 16);
        for (int h0 = 0; h0 < n_heads; h0 += HEADS) {
            int nh = n_heads - h0 < HEADS ? n_heads - h0 : HEADS;
            float *yb = y + h0 * y_stride + c0;
            const float *pb = p + h0 * p_stride;
            /* constant head and column counts keep every sum in a register */
#define BLOCK(NH) accum_block(yb, y_stride, pb, p_stride, NH, v + c0, stride, n_rows, 4)
            if (nc < 4) accum_block(yb, y_stride, pb, p_stride, nh, v + c0, stride, n_rows, nc);
            else switch (nh) {
                case 1: BLOCK(1); break;
                case 2: BLOCK(2); break;
                case 3: BLOCK(3); break;
                case 4: BLOCK(4); break;
                case 5: BLOCK(5); break;
                default: BLOCK(HEADS); break;
                }
#undef BLOCK
        }
    }
}
