/* mathgen: generated math probe sets with exact answers, see math.h. The
 * PRNG is our own (splitmix64) so a seed gives the same file everywhere. */
#include "probes/math.h"
#include "base/util.h"

#include <errno.h>
#include <gmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *name;
    mathgen_kind kind;
    int dig_lo, dig_hi;
    bool comma;
} mix_names[] = {
    {"sqrt", MATHGEN_SQRT, 17, 18, false},
    {"cbrt", MATHGEN_CBRT, 16, 19, true},
    {"mul14", MATHGEN_MUL, 14, 14, true},
    {"mul7", MATHGEN_MUL, 6, 7, false},
    {"sqrtdiv", MATHGEN_SQRT_DIV, 10, 12, true},
    {"cbrtmul", MATHGEN_CBRT_MUL, 12, 13, true},
};
#define N_MIX_NAMES (sizeof mix_names / sizeof mix_names[0])

/* Divisors and multipliers of the two compound kinds, as in math_16. */
#define SQRT_DIV_LO 16
#define SQRT_DIV_HI 28
#define CBRT_MUL_LO 31
#define CBRT_MUL_HI 43
#define MAX_DIGITS 60

static bool parse_int(const char *s, size_t n, long lo, long hi, long *out) {
    if (n == 0 || n > 9) return false;
    long v = 0;
    for (size_t k = 0; k < n; k++) {
        if (s[k] < '0' || s[k] > '9') return false;
        v = v * 10 + (s[k] - '0');
    }
    if (v < lo || v > hi) return false;
    *out = v;
    return true;
}

mathgen_part *mathgen_parse_mix(const char *spec, int *n_parts) {
    int cap = 8, n = 0;
    mathgen_part *parts = xmalloc((size_t)cap * sizeof *parts);
    const char *p = spec;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *c1 = memchr(p, ':', len);
        const char *c2 = c1 ? memchr(c1 + 1, ':', len - (size_t)(c1 + 1 - p)) : NULL;
        size_t k = 0;
        if (c1)
            for (; k < N_MIX_NAMES; k++)
                if (strlen(mix_names[k].name) == (size_t)(c1 - p) && !memcmp(mix_names[k].name, p, (size_t)(c1 - p)))
                    break;
        if (!c1 || k == N_MIX_NAMES) {
            rys_seterr("--mix: '%.*s': expected NAME:COUNT[:LO-HI], NAME one of sqrt, cbrt, mul14, mul7, sqrtdiv, "
                       "cbrtmul", (int)len, p);
            free(parts);
            return NULL;
        }
        mathgen_part part = {mix_names[k].kind, 0, mix_names[k].dig_lo, mix_names[k].dig_hi, mix_names[k].comma};
        const char *cnt_end = c2 ? c2 : p + len;
        long v, lo, hi;
        bool ok = parse_int(c1 + 1, (size_t)(cnt_end - c1 - 1), 1, 1000000, &v);
        part.count = (int)v;
        if (ok && c2) {
            const char *dash = memchr(c2 + 1, '-', (size_t)(p + len - c2 - 1));
            ok = dash ? parse_int(c2 + 1, (size_t)(dash - c2 - 1), 1, MAX_DIGITS, &lo) &&
                            parse_int(dash + 1, (size_t)(p + len - dash - 1), lo, MAX_DIGITS, &hi)
                      : parse_int(c2 + 1, (size_t)(p + len - c2 - 1), 1, MAX_DIGITS, &lo) && (hi = lo, true);
            part.dig_lo = (int)lo;
            part.dig_hi = (int)hi;
        }
        if (!ok) {
            rys_seterr("--mix: '%.*s': COUNT must be 1..1000000 and digits LO-HI within 1..%d", (int)len, p,
                       MAX_DIGITS);
            free(parts);
            return NULL;
        }
        if (n == cap) parts = xrealloc(parts, (size_t)(cap *= 2) * sizeof *parts);
        parts[n++] = part;
        p += len + (end ? 1 : 0);
    }
    if (n == 0) {
        rys_seterr("--mix: empty");
        free(parts);
        return NULL;
    }
    *n_parts = n;
    return parts;
}

mathgen_part *mathgen_default_mix(int n, int *n_parts) {
    mathgen_part *parts = xmalloc(3 * sizeof *parts);
    parts[0] = (mathgen_part){MATHGEN_SQRT, n / 2, 9, 10, false};
    parts[1] = (mathgen_part){MATHGEN_MUL, n / 4, 6, 7, false};
    parts[2] = (mathgen_part){MATHGEN_CBRT, n - n / 2 - n / 4, 12, 13, false};
    int k = 0;
    for (int i = 0; i < 3; i++)
        if (parts[i].count > 0) parts[k++] = parts[i];
    *n_parts = k;
    return parts;
}

/* Uniform in [lo, hi] by rejection: draw as many bits as hi - lo has. */
static void uniform_mpz(mpz_t out, const mpz_t lo, const mpz_t hi, uint64_t *rng) {
    mpz_t span;
    mpz_init(span);
    mpz_sub(span, hi, lo);
    size_t bits = mpz_sizeinbase(span, 2), words = (bits + 63) / 64;
    uint64_t *w = xmalloc(words * sizeof *w);
    do {
        for (size_t k = 0; k < words; k++) w[k] = rys_splitmix64(rng);
        if (bits % 64) w[words - 1] &= (UINT64_C(1) << (bits % 64)) - 1;
        mpz_import(out, words, -1, sizeof *w, 0, 0, w);
    } while (mpz_cmp(out, span) > 0);
    mpz_add(out, out, lo);
    free(w);
    mpz_clear(span);
}

static long uniform_long(long lo, long hi, uint64_t *rng) {
    mpz_t a, b, r;
    mpz_init_set_si(a, lo);
    mpz_init_set_si(b, hi);
    mpz_init(r);
    uniform_mpz(r, a, b, rng);
    long v = mpz_get_si(r);
    mpz_clears(a, b, r, NULL);
    return v;
}

/* A number with a digit count drawn from [dlo, dhi], then uniform among them. */
static void random_digits(mpz_t out, int dlo, int dhi, uint64_t *rng) {
    int d = (int)uniform_long(dlo, dhi, rng);
    mpz_t lo, hi;
    mpz_inits(lo, hi, NULL);
    mpz_ui_pow_ui(lo, 10, (unsigned long)(d - 1));
    mpz_ui_pow_ui(hi, 10, (unsigned long)d);
    mpz_sub_ui(hi, hi, 1);
    if (d == 1) mpz_set_ui(lo, 1);   /* a 1-digit operand of 0 would make a trivial question */
    uniform_mpz(out, lo, hi, rng);
    mpz_clears(lo, hi, NULL);
}

/* round(root_k(x) / div) or floor of it, exactly. root_k(x)/div + 1/2 =
 * root_k(x * 2^k) / (2 div) + 1/2, so nearest = floor((root_k(2^k x) + div) /
 * (2 div)), and floor = floor(root_k(x) / div), using floor(floor(y)/d) =
 * floor(y/d) for an integer d > 0. */
static void rounded_root(mpz_t out, const mpz_t x, unsigned k, unsigned long div, mathgen_rounding rounding) {
    mpz_t t;
    mpz_init(t);
    if (rounding == MATHGEN_FLOOR) {
        mpz_root(t, x, k);
        mpz_fdiv_q_ui(out, t, div);
    } else {
        mpz_mul_2exp(t, x, k);
        mpz_root(t, t, k);
        mpz_add_ui(t, t, div);
        mpz_fdiv_q_ui(out, t, 2 * div);
    }
    mpz_clear(t);
}

static void append(char **buf, size_t *len, size_t *cap, const char *s) {
    size_t n = strlen(s);
    while (*len + n + 1 > *cap) *buf = xrealloc(*buf, *cap *= 2);
    memcpy(*buf + *len, s, n + 1);
    *len += n;
}

char *mathgen_json(const mathgen_part *parts, int n_parts, uint64_t seed, mathgen_rounding rounding) {
    static const char tail[] = " without any other text or commentary. Do not use commas or scientific notation in "
                               "your answer! Do not include intermediate results!";
    uint64_t rng = seed;
    size_t len = 0, cap = 4096;
    char *out = xmalloc(cap);
    out[0] = 0;
    append(&out, &len, &cap, "{");
    mpz_t a, b, ans;
    mpz_inits(a, b, ans, NULL);
    int key = 0;
    for (int p = 0; p < n_parts; p++) {
        const mathgen_part *pt = &parts[p];
        for (int c = 0; c < pt->count; c++, key++) {
            char q[512], rec[1024];
            long m = 0;
            random_digits(a, pt->dig_lo, pt->dig_hi, &rng);
            switch (pt->kind) {
            case MATHGEN_SQRT:
                rounded_root(ans, a, 2, 1, rounding);
                gmp_snprintf(q, sizeof q, "What is the square root of %Zd?", a);
                break;
            case MATHGEN_CBRT:
                rounded_root(ans, a, 3, 1, rounding);
                gmp_snprintf(q, sizeof q, "What is the cube root of %Zd?", a);
                break;
            case MATHGEN_MUL:
                random_digits(b, pt->dig_lo, pt->dig_hi, &rng);
                mpz_mul(ans, a, b);
                gmp_snprintf(q, sizeof q, "What is %Zd multiplied by %Zd?", a, b);
                break;
            case MATHGEN_SQRT_DIV:
                m = uniform_long(SQRT_DIV_LO, SQRT_DIV_HI, &rng);
                rounded_root(ans, a, 2, (unsigned long)m, rounding);
                gmp_snprintf(q, sizeof q, "What is the square root of %Zd, divided by %ld?", a, m);
                break;
            case MATHGEN_CBRT_MUL:
                /* m * cbrt(a) = cbrt(m^3 a) */
                m = uniform_long(CBRT_MUL_LO, CBRT_MUL_HI, &rng);
                mpz_mul_ui(b, a, (unsigned long)(m * m * m));
                rounded_root(ans, b, 3, 1, rounding);
                gmp_snprintf(q, sizeof q, "What is the cube root of %Zd, multiplied by %ld?", a, m);
                break;
            }
            gmp_snprintf(rec, sizeof rec,
                         "%s\n  \"%d\": {\n    \"question\": \"%s Give your guess as an integer value%s%s\",\n"
                         "    \"answer\": %Zd,\n    \"rounding\": \"%s\"\n  }",
                         key ? "," : "", key, q, pt->comma ? "," : "", tail, ans,
                         rounding == MATHGEN_FLOOR ? "floor" : "nearest");
            append(&out, &len, &cap, rec);
        }
    }
    append(&out, &len, &cap, "\n}\n");
    mpz_clears(a, b, ans, NULL);
    return out;
}
