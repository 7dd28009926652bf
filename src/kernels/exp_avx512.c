/* exp_avx512: expf over arrays, with the bits of the C library's expf
 * (the Makefile adds the AVX-512 flags because of the suffix).
 *
 * Why bits and not just accuracy: softmax and SiLU feed every logit, and the
 * engine's numbers must not depend on the kernel family (a scan compares a
 * configuration with the baseline bit for bit). So this is the algorithm
 * glibc's FMA build of expf runs (x86-64, glibc 2.27 and later: 2^(k/32)
 * from a table times a degree-3 polynomial, in double, the same fused
 * operations in the same order), 16 values at a time, with |x| >= 88 (the
 * library's own special cases: overflow, underflow, inf, NaN) left to the
 * library. quant_exp_avx512_check compares it with the library on values
 * across the whole range once; dispatch uses it only if they agree. */
#include "quant/quant_impl.h"

#include <immintrin.h>
#include <math.h>
#include <pthread.h>
#include <string.h>

#define EXP_TABLE 32

static double table[EXP_TABLE]; /* bits of 2^(i/32) minus i << 47 */
static const double inv_ln2_n = 0x1.71547652b82fep+0 * EXP_TABLE, shift = 0x1.8p+52;
static const double c0 = 0x1.c6af84b912394p-5 / EXP_TABLE / EXP_TABLE / EXP_TABLE,
                    c1 = 0x1.ebfce50fac4f3p-3 / EXP_TABLE / EXP_TABLE, c2 = 0x1.62e42ff0c52d6p-1 / EXP_TABLE;

static void table_init(void) {
    for (int i = 0; i < EXP_TABLE; i++) {
        double v = (double)exp2l((long double)i / EXP_TABLE);
        uint64_t bits;
        memcpy(&bits, &v, sizeof bits);
        bits -= (uint64_t)i << (52 - 5);
        memcpy(&table[i], &bits, sizeof bits);
    }
}

/* table[i] for the 5-bit indices in the low bits of ki's lanes: two 16-entry
 * permutes and a blend on bit 4, the table in four registers (a gather of
 * 8 lanes was most of the kernel's time on Zen 4). */
static inline __attribute__((always_inline)) __m512i table_lookup(const __m512d tab[4], __m512i ki) {
    __m512d lo = _mm512_permutex2var_pd(tab[0], ki, tab[1]), hi = _mm512_permutex2var_pd(tab[2], ki, tab[3]);
    __mmask8 upper = _mm512_test_epi64_mask(ki, _mm512_set1_epi64(16));
    return _mm512_castpd_si512(_mm512_mask_blend_pd(upper, lo, hi));
}

static inline __attribute__((always_inline)) __m256 exp8(__m256 x, const __m512d tab[4]) {
    __m512d xd = _mm512_cvtps_pd(x);
    __m512d kd = _mm512_fmadd_pd(_mm512_set1_pd(inv_ln2_n), xd, _mm512_set1_pd(shift));
    __m512i ki = _mm512_castpd_si512(kd);
    kd = _mm512_sub_pd(kd, _mm512_set1_pd(shift));
    __m512d r = _mm512_fmsub_pd(_mm512_set1_pd(inv_ln2_n), xd, kd);
    __m512i t = table_lookup(tab, ki);
    __m512d s = _mm512_castsi512_pd(_mm512_add_epi64(t, _mm512_slli_epi64(ki, 52 - 5)));
    __m512d z = _mm512_fmadd_pd(_mm512_set1_pd(c0), r, _mm512_set1_pd(c1));
    __m512d r2 = _mm512_mul_pd(r, r);
    __m512d y = _mm512_fmadd_pd(r, _mm512_set1_pd(c2), _mm512_set1_pd(1.0));
    y = _mm512_fmadd_pd(z, r2, y);
    return _mm512_cvtpd_ps(_mm512_mul_pd(y, s));
}

void quant_exp_avx512(float *x, int64_t n) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, table_init);
    const __m512d tab[4] = {_mm512_loadu_pd(table), _mm512_loadu_pd(table + 8), _mm512_loadu_pd(table + 16),
                            _mm512_loadu_pd(table + 24)};
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 v = _mm512_loadu_ps(x + i);
        /* |x| >= 88 (or NaN): the library's special cases */
        __mmask16 big = _mm512_cmp_ps_mask(_mm512_abs_ps(v), _mm512_set1_ps(88.0f), _CMP_NLT_UQ);
        float in[16];
        if (big) _mm512_storeu_ps(in, v);
        __m512 y = _mm512_insertf32x8(_mm512_castps256_ps512(exp8(_mm512_castps512_ps256(v), tab)),
                                      exp8(_mm512_extractf32x8_ps(v, 1), tab), 1);
        _mm512_storeu_ps(x + i, y);
        for (int l = 0; big; l++, big >>= 1)
            if (big & 1) x[i + l] = expf(in[l]);
    }
    for (; i < n; i++) x[i] = expf(x[i]);
}

/* Agreement with the library's expf on every 4099th float bit pattern
 * (all signs and exponents, NaNs included) and around 0 and the thresholds. */
bool quant_exp_avx512_check(void) {
    enum { CHUNK = 256 };
    float x[CHUNK], y[CHUNK];
    uint32_t bits = 0;
    for (uint64_t done = 0; done < ((uint64_t)1 << 32); done += (uint64_t)4099 * CHUNK) {
        for (int k = 0; k < CHUNK; k++, bits += 4099) memcpy(&x[k], &bits, sizeof bits);
        memcpy(y, x, sizeof x);
        quant_exp_avx512(y, CHUNK);
        for (int k = 0; k < CHUNK; k++) {
            float want = expf(x[k]);
            if (memcmp(&want, &y[k], sizeof want) && !(isnan(want) && isnan(y[k]))) return false;
        }
    }
    for (float v = -104.0f; v < 89.0f; v += 0.0625f) {
        for (int k = 0; k < CHUNK; k++) x[k] = nextafterf(v, INFINITY) + (float)k * 1e-5f;
        memcpy(y, x, sizeof x);
        quant_exp_avx512(y, CHUNK);
        for (int k = 0; k < CHUNK; k++) {
            float want = expf(x[k]);
            if (memcmp(&want, &y[k], sizeof want)) return false;
        }
    }
    return true;
}
