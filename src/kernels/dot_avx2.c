/* dot_avx2: the dot-product kernels of quant_impl.h with AVX2, FMA and F16C
 * (the Makefile adds the flags because of the _avx2 suffix; dispatch only
 * calls them on CPUs that have those extensions).
 *
 * The integer work per block is the same as the portable kernels': unsigned
 * weight values times signed activations (vpmaddubsw), with weight offsets
 * and minimums applied through the activation sums the activation blocks
 * carry. Only the order of float additions differs from the portable path. */
#include "quant/kquants.h"
#include "quant/legacy.h"
#include "quant/quant_impl.h"

#include <immintrin.h>
#include <math.h>

static inline float hsum_ps(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline __m256i load256(const void *p) { return _mm256_loadu_si256((const __m256i *)p); }

/* 8 int32 lanes of sums of unsigned u[i] * signed s[i] (4 products each). */
static inline __m256i dot_u8s8(__m256i u, __m256i s) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}

/* 16 bytes of nibble pairs -> 32 values: low nibbles, then high nibbles. */
static inline __m256i unpack_nibbles(const uint8_t *qs) {
    __m128i q = _mm_loadu_si128((const __m128i *)qs);
    return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), _mm256_set1_epi8(0x0F));
}

/* Byte j = 0x10 if bit j of the 32-bit little-endian qh is set, else 0. */
static inline __m256i q5_high_bits(const uint8_t qh[4]) {
    uint32_t bits = (uint32_t)qh[0] | (uint32_t)qh[1] << 8 | (uint32_t)qh[2] << 16 | (uint32_t)qh[3] << 24;
    __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32((int)bits),
                                    _mm256_setr_epi64x(0, 0x0101010101010101, 0x0202020202020202,
                                                       0x0303030303030303));
    const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ULL);
    return _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(v, bit), bit), _mm256_set1_epi8(0x10));
}

/* One head: 64 columns at a time stay in registers across all rows, so y
 * is loaded and stored once per call, not once per key. */
static void accum_head(int64_t n, int64_t n_rows, const float *p, const uint16_t *v, size_t stride, float *y) {
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        __m256 acc[8];
        for (int c = 0; c < 8; c++) acc[c] = _mm256_loadu_ps(y + i + 8 * c);
        for (int64_t j = 0; j < n_rows; j++) {
            const uint16_t *row = v + (size_t)j * stride + i;
            __m256 a = _mm256_set1_ps(p[j]);
            for (int c = 0; c < 8; c++)
                acc[c] = _mm256_fmadd_ps(a, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(row + 8 * c))), acc[c]);
        }
        for (int c = 0; c < 8; c++) _mm256_storeu_ps(y + i + 8 * c, acc[c]);
    }
    for (; i + 8 <= n; i += 8) {
        __m256 acc = _mm256_loadu_ps(y + i);
        for (int64_t j = 0; j < n_rows; j++)
            acc = _mm256_fmadd_ps(_mm256_set1_ps(p[j]), _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(v + (size_t)j * stride + i))), acc);
        _mm256_storeu_ps(y + i, acc);
    }
    for (; i < n; i++)
        for (int64_t j = 0; j < n_rows; j++) y[i] = fmaf(p[j], quant_fp16_to_f32(v[(size_t)j * stride + i]), y[i]);
}

void quant_attn_accum_f16_avx2(float *y, size_t y_stride, const float *p, size_t p_stride, int n_heads,
                               const uint16_t *v, size_t stride, int64_t n_rows, int64_t n) {
    for (int h = 0; h < n_heads; h++) accum_head(n, n_rows, p + h * p_stride, v, stride, y + h * y_stride);
}

/* Up to 4 queries per pass over the keys: each K row is converted from fp16
 * once for them, and each (query, key) dot keeps quant_dot_f16_avx2's
 * operations (two 8-lane chains over 16-value steps, then hsum_ps), so its
 * bits. Head sizes that are not a multiple of 16 take the plain dot. */
void quant_attn_scores_f16_avx2(float *s, size_t s_stride, const float *const *q, int n_q, const uint16_t *k,
                               size_t stride, int64_t n_rows, int64_t n, float scale) {
    if (n % 16) {
        for (int h = 0; h < n_q; h++)
            for (int64_t j = 0; j < n_rows; j++)
                s[h * s_stride + (size_t)j] = quant_dot_f16_avx2(n, k + (size_t)j * stride, q[h]) * scale;
        return;
    }
    for (int h0 = 0; h0 < n_q; h0 += 4) {
        int nh = n_q - h0 < 4 ? n_q - h0 : 4;
        const float *const *qh = q + h0;
        for (int64_t j = 0; j < n_rows; j++) {
            const uint16_t *kr = k + (size_t)j * stride;
            __m256 acc0[4], acc1[4];
            for (int h = 0; h < 4; h++) acc0[h] = acc1[h] = _mm256_setzero_ps();
            for (int64_t i = 0; i < n; i += 16) {
                __m256 w0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(kr + i)));
                __m256 w1 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(kr + i + 8)));
                for (int h = 0; h < nh; h++) {
                    acc0[h] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(qh[h] + i), acc0[h]);
                    acc1[h] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(qh[h] + i + 8), acc1[h]);
                }
            }
            for (int h = 0; h < nh; h++) s[(h0 + h) * s_stride + (size_t)j] = hsum_ps(_mm256_add_ps(acc0[h], acc1[h])) * scale;
        }
    }
}

/* F16C's conversion rounds to nearest even like quant_f32_to_fp16, subnormal
 * halves included (it does not flush them). */
void quant_round_f16_avx2(float *x, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(x + i, _mm256_cvtph_ps(_mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)));
    for (; i < n; i++) x[i] = quant_fp16_round(x[i]);
}

void quant_to_f16_avx2(const float *x, uint16_t *h, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(h + i), _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    for (; i < n; i++) h[i] = quant_f32_to_fp16(x[i]);
}

static inline __m256 load_bf16(const uint16_t *p) {
    __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
}

#define ALWAYS_INLINE static inline __attribute__((always_inline))

/* Each quantized kernel below is written once for nx activation rows; the
 * exported single and multi-column functions instantiate it with constant
 * nx, so the column loops unroll and the accumulators stay in registers. */
#define DEFINE_COLS(NAME, IMPL)                                                                     \
    float quant_dot_##NAME##_avx2(int64_t n, const void *w, const void *x) {                        \
        float out;                                                                                  \
        IMPL(n, w, x, 0, 1, &out);                                                                  \
        return out;                                                                                 \
    }                                                                                               \
    void quant_dot_cols_##NAME##_avx2(int64_t n, const void *w, const void *x, size_t xs, int nx,   \
                                      float *out) {                                                 \
        switch (nx) {                                                                               \
        case 1: IMPL(n, w, x, xs, 1, out); break;                                                   \
        case 2: IMPL(n, w, x, xs, 2, out); break;                                                   \
        case 3: IMPL(n, w, x, xs, 3, out); break;                                                   \
        default: IMPL(n, w, x, xs, 4, out); break;                                                  \
        }                                                                                           \
    }

/* Float formats: two 8-lane chains over 16-value steps, added and summed in
 * hsum_ps's tree, then the tail one value at a time. With nx rows each
 * weight vector is loaded (and converted) once for all of them; every row
 * gets the same operations as alone. */
enum float_kind { FK_F32, FK_F16, FK_BF16 };

ALWAYS_INLINE __m256 load8_weights(enum float_kind kind, const void *w, int64_t i) {
    switch (kind) {
    case FK_F32: return _mm256_loadu_ps((const float *)w + i);
    case FK_F16: return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)w + i)));
    default: return load_bf16((const uint16_t *)w + i);
    }
}

ALWAYS_INLINE float weight_at(enum float_kind kind, const void *w, int64_t i) {
    switch (kind) {
    case FK_F32: return ((const float *)w)[i];
    case FK_F16: return quant_fp16_to_f32(((const uint16_t *)w)[i]);
    default: return quant_bf16_to_f32(((const uint16_t *)w)[i]);
    }
}

ALWAYS_INLINE void float_dot(enum float_kind kind, int64_t n, const void *w, const void *x, size_t xs, int nx,
                             float *out) {
    __m256 acc0[QUANT_COLS], acc1[QUANT_COLS];
    const float *b[QUANT_COLS];
#pragma GCC unroll 4
    for (int c = 0; c < nx; c++) {
        acc0[c] = acc1[c] = _mm256_setzero_ps();
        b[c] = (const float *)((const uint8_t *)x + (size_t)c * xs);
    }
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256 w0 = load8_weights(kind, w, i), w1 = load8_weights(kind, w, i + 8);
#pragma GCC unroll 4
        for (int c = 0; c < nx; c++) {
            acc0[c] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(b[c] + i), acc0[c]);
            acc1[c] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(b[c] + i + 8), acc1[c]);
        }
    }
#pragma GCC unroll 4
    for (int c = 0; c < nx; c++) {
        float s = hsum_ps(_mm256_add_ps(acc0[c], acc1[c]));
        for (int64_t k = i; k < n; k++) s += weight_at(kind, w, k) * b[c][k];
        out[c] = s;
    }
}

#define F32_IMPL(n, w, x, xs, nx, out) float_dot(FK_F32, n, w, x, xs, nx, out)
#define F16_IMPL(n, w, x, xs, nx, out) float_dot(FK_F16, n, w, x, xs, nx, out)
#define BF16_IMPL(n, w, x, xs, nx, out) float_dot(FK_BF16, n, w, x, xs, nx, out)
DEFINE_COLS(f32, F32_IMPL)
DEFINE_COLS(f16, F16_IMPL)
DEFINE_COLS(bf16, BF16_IMPL)

/* Legacy formats: per block and activation row, d_w * d_x * <q - offset, x>
 * goes to a vector accumulator (the offset of Q4_0/Q5_0 taken off in
 * integers, exactly, as llama.cpp does), the minimum of Q4_1/Q5_1 times the
 * activation block's fp16 scaled sum s_x to a scalar one. */
enum legacy_kind { LK_Q4_0, LK_Q4_1, LK_Q5_0, LK_Q5_1, LK_Q8_0 };

ALWAYS_INLINE void legacy_dot(enum legacy_kind kind, int64_t n, const void *w, const void *x, size_t xs, int nx,
                              float *out) {
    static const size_t block_bytes[] = {sizeof(block_q4_0), sizeof(block_q4_1), sizeof(block_q5_0),
                                         sizeof(block_q5_1), sizeof(block_q8_0)};
    const uint8_t *wb = w;
    __m256 acc[QUANT_COLS];
    float extra[QUANT_COLS];
    for (int c = 0; c < nx; c++) {
        acc[c] = _mm256_setzero_ps();
        extra[c] = 0;
    }
    for (int64_t i = 0; i < n / QK_LEGACY; i++, wb += block_bytes[kind]) {
        __m256i q;
        float dw, coef = 0; /* coef: what multiplies s_x */
        int offset = 0;
        switch (kind) {
        case LK_Q4_0: {
            const block_q4_0 *b = (const block_q4_0 *)wb;
            q = unpack_nibbles(b->qs);
            dw = _cvtsh_ss(b->d);
            offset = 8;
            break;
        }
        case LK_Q4_1: {
            const block_q4_1 *b = (const block_q4_1 *)wb;
            q = unpack_nibbles(b->qs);
            dw = _cvtsh_ss(b->d);
            coef = _cvtsh_ss(b->m);
            break;
        }
        case LK_Q5_0: {
            const block_q5_0 *b = (const block_q5_0 *)wb;
            q = _mm256_or_si256(unpack_nibbles(b->qs), q5_high_bits(b->qh));
            dw = _cvtsh_ss(b->d);
            offset = 16;
            break;
        }
        case LK_Q5_1: {
            const block_q5_1 *b = (const block_q5_1 *)wb;
            q = _mm256_or_si256(unpack_nibbles(b->qs), q5_high_bits(b->qh));
            dw = _cvtsh_ss(b->d);
            coef = _cvtsh_ss(b->m);
            break;
        }
        default: {
            const block_q8_0 *b = (const block_q8_0 *)wb;
            q = load256(b->qs);
            dw = _cvtsh_ss(b->d);
            break;
        }
        }
        /* Q8_0 is signed times signed: move the weight's sign onto the
         * activation (never -128, so negating it cannot overflow). */
        __m256i u = kind == LK_Q8_0 ? _mm256_abs_epi8(q) : q;
        for (int c = 0; c < nx; c++) {
            const block_q8a *a = (const block_q8a *)((const uint8_t *)x + (size_t)c * xs) + i;
            __m256i y = load256(a->qs);
            if (kind == LK_Q8_0) y = _mm256_sign_epi8(y, q);
            __m256i iy = dot_u8s8(u, y);
            if (offset)
                iy = _mm256_sub_epi32(iy, _mm256_mullo_epi32(dot_u8s8(_mm256_set1_epi8(1), y), _mm256_set1_epi32(offset)));
            acc[c] = _mm256_fmadd_ps(_mm256_set1_ps(dw * a->d), _mm256_cvtepi32_ps(iy), acc[c]);
            if (coef != 0) extra[c] += coef * a->s;
        }
    }
    for (int c = 0; c < nx; c++) out[c] = hsum_ps(acc[c]) + extra[c];
}

#define Q4_0_IMPL(n, w, x, xs, nx, out) legacy_dot(LK_Q4_0, n, w, x, xs, nx, out)
#define Q4_1_IMPL(n, w, x, xs, nx, out) legacy_dot(LK_Q4_1, n, w, x, xs, nx, out)
#define Q5_0_IMPL(n, w, x, xs, nx, out) legacy_dot(LK_Q5_0, n, w, x, xs, nx, out)
#define Q5_1_IMPL(n, w, x, xs, nx, out) legacy_dot(LK_Q5_1, n, w, x, xs, nx, out)
#define Q8_0_IMPL(n, w, x, xs, nx, out) legacy_dot(LK_Q8_0, n, w, x, xs, nx, out)
DEFINE_COLS(q4_0, Q4_0_IMPL)
DEFINE_COLS(q4_1, Q4_1_IMPL)
DEFINE_COLS(q5_0, Q5_0_IMPL)
DEFINE_COLS(q5_1, Q5_1_IMPL)
DEFINE_COLS(q8_0, Q8_0_IMPL)

static inline const block_q8_K *col_q8_K(const void *x, size_t xs, int c, int64_t i) {
    return (const block_q8_K *)((const uint8_t *)x + (size_t)c * xs) + i;
}

/* Q4_K / Q5_K: per 64 elements, one 32-byte load holds two sub-blocks
 * (low and high nibbles); each product is scaled by its sub-block scale in
 * the 16-to-32-bit widening step. Minimums go through the block sums. */
static inline int kq_mins(const uint8_t m[8], const int16_t *bsums) {
    int s = 0;
    for (int j = 0; j < 8; j++) s += m[j] * (bsums[2 * j] + bsums[2 * j + 1]);
    return s;
}

ALWAYS_INLINE void q45_K_dot(bool five, int64_t n, const void *w, const void *x, size_t xs, int nx, float *out) {
    const __m256i low4 = _mm256_set1_epi8(0x0F), one = _mm256_set1_epi8(1);
    const uint8_t *wb = w;
    __m256 acc[QUANT_COLS];
    float mins[QUANT_COLS];
    for (int c = 0; c < nx; c++) {
        acc[c] = _mm256_setzero_ps();
        mins[c] = 0;
    }
    for (int64_t i = 0; i < n / QK_K; i++, wb += five ? sizeof(block_q5_K) : sizeof(block_q4_K)) {
        const block_q4_K *b4 = (const block_q4_K *)wb;
        const block_q5_K *b5 = (const block_q5_K *)wb;
        const uint8_t *scales = five ? b5->scales : b4->scales, *qs = five ? b5->qs : b4->qs;
        uint8_t sc[8], m[8];
        for (int j = 0; j < 8; j++) kq_scale_min(j, scales, &sc[j], &m[j]);
        __m256i qh = five ? load256(b5->qh) : _mm256_setzero_si256(); /* bit j of byte l: element 32*j + l */
        __m256i sumi[QUANT_COLS];
        for (int c = 0; c < nx; c++) sumi[c] = _mm256_setzero_si256();
        for (int ch = 0; ch < 4; ch++) {
            __m256i q = load256(qs + 32 * ch);
            __m256i lo = _mm256_and_si256(q, low4), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), low4);
            if (five) {
                lo = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(qh, one), 4));
                hi = _mm256_or_si256(hi, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 1), one), 4));
                qh = _mm256_srli_epi16(qh, 2);
            }
            __m256i s0 = _mm256_set1_epi16(sc[2 * ch]), s1 = _mm256_set1_epi16(sc[2 * ch + 1]);
            for (int c = 0; c < nx; c++) {
                const int8_t *y = col_q8_K(x, xs, c, i)->qs + 64 * ch;
                __m256i p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, load256(y)), s0);
                __m256i p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, load256(y + 32)), s1);
                sumi[c] = _mm256_add_epi32(sumi[c], _mm256_add_epi32(p0, p1));
            }
        }
        float d = _cvtsh_ss(five ? b5->d : b4->d), dmin = _cvtsh_ss(five ? b5->dmin : b4->dmin);
        for (int c = 0; c < nx; c++) {
            const block_q8_K *a = col_q8_K(x, xs, c, i);
            acc[c] = _mm256_fmadd_ps(_mm256_set1_ps(d * a->d), _mm256_cvtepi32_ps(sumi[c]), acc[c]);
            mins[c] += dmin * a->d * (float)kq_mins(m, a->bsums);
        }
    }
    for (int c = 0; c < nx; c++) out[c] = hsum_ps(acc[c]) - mins[c];
}

#define Q4_K_IMPL(n, w, x, xs, nx, out) q45_K_dot(false, n, w, x, xs, nx, out)
#define Q5_K_IMPL(n, w, x, xs, nx, out) q45_K_dot(true, n, w, x, xs, nx, out)
DEFINE_COLS(q4_K, Q4_K_IMPL)
DEFINE_COLS(q5_K, Q5_K_IMPL)

/* Q6_K: unsigned 6-bit values (offset 32 removed through the block sums);
 * a maddubs result's low 8 lanes cover 16 elements of one scale, its high
 * 8 lanes the next 16 elements and the next scale. */
ALWAYS_INLINE void q6_K_dot(int64_t n, const void *w, const void *x, size_t xs, int nx, float *out) {
    const block_q6_K *b = w;
    const __m256i low4 = _mm256_set1_epi8(0x0F), low2 = _mm256_set1_epi8(3);
    __m256 acc[QUANT_COLS];
    float offset[QUANT_COLS];
    for (int c = 0; c < nx; c++) {
        acc[c] = _mm256_setzero_ps();
        offset[c] = 0;
    }
    for (int64_t i = 0; i < n / QK_K; i++) {
        const int8_t *sc = b[i].scales;
        __m256i sumi[QUANT_COLS];
        for (int c = 0; c < nx; c++) sumi[c] = _mm256_setzero_si256();
        for (int h = 0; h < 2; h++) {
            __m256i ql0 = load256(b[i].ql + 64 * h), ql1 = load256(b[i].ql + 64 * h + 32);
            __m256i qh = load256(b[i].qh + 32 * h);
            __m256i lows[4] = {
                _mm256_and_si256(ql0, low4),
                _mm256_and_si256(ql1, low4),
                _mm256_and_si256(_mm256_srli_epi16(ql0, 4), low4),
                _mm256_and_si256(_mm256_srli_epi16(ql1, 4), low4),
            };
            for (int k = 0; k < 4; k++) {
                __m256i v = _mm256_or_si256(lows[k], _mm256_slli_epi16(_mm256_and_si256(qh, low2), 4));
                qh = _mm256_srli_epi16(qh, 2);
                int g = 8 * h + 2 * k;
                __m256i s = _mm256_set_m128i(_mm_set1_epi16(sc[g + 1]), _mm_set1_epi16(sc[g]));
                for (int c = 0; c < nx; c++) {
                    __m256i y = load256(col_q8_K(x, xs, c, i)->qs + 128 * h + 32 * k);
                    sumi[c] = _mm256_add_epi32(sumi[c], _mm256_madd_epi16(_mm256_maddubs_epi16(v, y), s));
                }
            }
        }
        float d = _cvtsh_ss(b[i].d);
        for (int c = 0; c < nx; c++) {
            const block_q8_K *a = col_q8_K(x, xs, c, i);
            int off = 0;
            for (int g = 0; g < QK_K / 16; g++) off += sc[g] * a->bsums[g];
            float da = d * a->d;
            acc[c] = _mm256_fmadd_ps(_mm256_set1_ps(da), _mm256_cvtepi32_ps(sumi[c]), acc[c]);
            offset[c] += da * (float)off;
        }
    }
    for (int c = 0; c < nx; c++) out[c] = hsum_ps(acc[c]) - 32.0f * offset[c];
}

DEFINE_COLS(q6_K, q6_K_dot)
