/* math: exact partial-credit scoring of math probe answers, see math.h. */
#include "probes/math.h"
#include "probes/probe_text.h"
#include "base/util.h"

#include <gmp.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Correctly rounded double of n/d for 0 < n < d. The quotient is taken to 62
 * or 63 bits with a sticky bit for a non-zero remainder, so converting it to
 * double (round to nearest even) rounds exactly as the true value would. */
static double ratio_to_double(const mpz_t n, const mpz_t d) {
    long k = 62 - (long)mpz_sizeinbase(n, 2) + (long)mpz_sizeinbase(d, 2);
    mpz_t q, r;
    mpz_inits(q, r, NULL);
    mpz_mul_2exp(q, n, (mp_bitcnt_t)k);
    mpz_tdiv_qr(q, r, q, d);
    uint64_t bits = 0;
    mpz_export(&bits, NULL, -1, sizeof bits, 0, 0, q);
    if (mpz_sgn(r)) bits |= 1;
    mpz_clears(q, r, NULL);
    return ldexp((double)bits, (int)-k);
}

/* Integer text with an optional "-" and ASCII digits, at least one. */
static bool integer_text(const char *s) {
    if (*s == '-') s++;
    if (!*s) return false;
    for (; *s; s++)
        if (*s < '0' || *s > '9') return false;
    return true;
}

/* Canonical text of an integer text: what Python's str(int(s)) prints. */
static char *canonical(const char *s) {
    mpz_t z;
    mpz_init_set_str(z, s, 10);
    char *r = mpz_get_str(xmalloc(mpz_sizeinbase(z, 10) + 2), 10, z);
    mpz_clear(z);
    return r;
}

double math_partial_credit(const char *answer, const char *guess) {
    if (!integer_text(answer) || !integer_text(guess)) {
        rys_seterr("partial credit: '%s' or '%s' is not an integer", answer, guess);
        return -1;
    }
    char *a = canonical(answer), *g = canonical(guess);
    size_t la = strlen(a), lg = strlen(g), L = la > lg ? la : lg, pad = L - (la < lg ? la : lg);
    mpz_t A, G, M, diff, num, den;
    mpz_inits(A, G, M, diff, num, den, NULL);
    /* Right-padding with '0' multiplies by a power of ten; the sign, if any,
     * is part of the text's length exactly as in the reference's ljust. */
    mpz_set_str(A, a, 10);
    mpz_set_str(G, g, 10);
    mpz_ui_pow_ui(num, 10, L - la);
    mpz_mul(A, A, num);
    mpz_ui_pow_ui(num, 10, L - lg);
    mpz_mul(G, G, num);
    mpz_set(M, mpz_cmp(A, G) >= 0 ? A : G);
    double score = 0;
    if (mpz_sgn(M) != 0) {
        /* (1 - |A-G|/M) * (1 - pad/L) = (M - |A-G|) * (L - pad) / (M * L) */
        mpz_sub(diff, A, G);
        mpz_abs(diff, diff);
        mpz_sub(num, M, diff);
        mpz_mul_ui(num, num, L - pad);
        mpz_mul_ui(den, M, L);
        if (mpz_sgn(den) < 0) { mpz_neg(den, den); mpz_neg(num, num); }
        if (mpz_sgn(num) <= 0) score = 0;
        else if (mpz_cmp(num, den) >= 0) score = 1;
        else score = ratio_to_double(num, den);
    }
    mpz_clears(A, G, M, diff, num, den, NULL);
    free(a);
    free(g);
    return score;
}

/* Maximal digit runs of valid UTF-8 text, canonical, appended to r. */
static void collect_candidates(const char *s, math_result *r) {
    size_t i = 0, n = strlen(s), run = 0;
    bool in_run = false;
    int cap = 0;
    while (i <= n) {
        size_t at = i;
        bool digit = i < n && probe_digit_value(probe_utf8_next(s, &i)) >= 0;
        if (digit && !in_run) { run = at; in_run = true; }
        if (!digit && in_run) {
            if (r->n == cap) {
                cap = cap ? cap * 2 : 8;
                r->cand = xrealloc(r->cand, (size_t)cap * sizeof *r->cand);
            }
            r->cand[r->n++] = probe_digits_canonical(s + run, at - run);
            in_run = false;
        }
        if (at == n) break;
    }
}

double math_score(const char *answer, const char *text, math_result *out) {
    math_result r = {0};
    r.best = -1;
    char *clean = probe_utf8_sanitize(text);
    char *stripped = probe_strip_think(clean);
    collect_candidates(stripped, &r);
    if (r.n == 0) {
        collect_candidates(clean, &r);
        r.from_raw = r.n > 0;
    }
    free(stripped);
    free(clean);
    double best = 0;
    r.score = xcalloc((size_t)r.n + 1, sizeof *r.score);
    for (int k = 0; k < r.n; k++) {
        r.score[k] = math_partial_credit(answer, r.cand[k]);
        if (r.score[k] < 0) r.score[k] = 0;   /* a malformed answer text scores nothing */
        if (r.best < 0 || r.score[k] > best) { best = r.score[k]; r.best = k; }
    }
    if (out) *out = r;
    else math_result_free(&r);
    return best;
}

void math_result_free(math_result *r) {
    for (int k = 0; k < r->n; k++) free(r->cand[k]);
    free(r->cand);
    free(r->score);
    memset(r, 0, sizeof *r);
}

char *math_result_json(const math_result *r) {
    json_t *o = json_object(), *c = json_array(), *s = json_array();
    for (int k = 0; k < r->n; k++) {
        json_array_append_new(c, json_string(r->cand[k]));
        json_array_append_new(s, json_real(r->score[k]));
    }
    json_object_set_new(o, "candidates", c);
    json_object_set_new(o, "scores", s);
    json_object_set_new(o, "best", json_integer(r->best));
    json_object_set_new(o, "from_raw", json_boolean(r->from_raw));
    char *txt = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17));
    json_decref(o);
    char *res = xstrdup(txt);
    free(txt);
    return res;
}
