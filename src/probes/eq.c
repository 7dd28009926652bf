/* eq: EQ probe answer parsing and scoring, see eq.h. The patterns are
 * written with PCRE2 in UTF + Unicode-property mode, with digit, space and
 * word classes spelled out so they accept what Python 3's re does (\d = Nd
 * digits, \s = str.isspace, \w = letters, numbers and "_"). */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "probes/eq.h"
#include "probes/probe_text.h"
#include "base/util.h"

#include <jansson.h>
#include <math.h>
#include <pcre2.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REVISE_WEIGHT 0.5   /* weight of the revised scores when both sections are there */
#define NEUTRAL 5.0         /* fills emotions the text gave no value for */

enum { RE_REVISED, RE_FIRST, RE_END, RE_CRITIQUE, RE_ITEM, RE_NUMBER, N_RE };
static pcre2_code *re[N_RE];
static pthread_once_t re_once = PTHREAD_ONCE_INIT;

static void compile_patterns(void) {
    const char *d = probe_digit_class(), *s = probe_space_class();
    char item[4096], number[4096];
    /* "Name: 7" or "1. Name: 7.5"; the captured value is what counts. */
    snprintf(item, sizeof item, "(?:%s\\.%s*)?[A-Za-z]+:%s*(%s+(?:\\.%s+)?)", d, s, s, d, d);
    /* A number standing alone: Python's \b(\d+(?:\.\d+)?)\b. */
    snprintf(number, sizeof number, "(?<![\\p{L}\\p{N}_])(%s+(?:\\.%s+)?)(?![\\p{L}\\p{N}_])", d, d);
    const struct { const char *pat; uint32_t flags; } src[N_RE] = {
        [RE_REVISED] = {"Revised scores:", PCRE2_CASELESS},
        [RE_FIRST] = {"First pass scores:", PCRE2_CASELESS},
        [RE_END] = {"\\[End of answer\\]", PCRE2_CASELESS},
        [RE_CRITIQUE] = {"Critique:", PCRE2_CASELESS},
        [RE_ITEM] = {item, 0},
        [RE_NUMBER] = {number, 0},
    };
    for (int k = 0; k < N_RE; k++) {
        int err;
        PCRE2_SIZE off;
        re[k] = pcre2_compile((PCRE2_SPTR)src[k].pat, PCRE2_ZERO_TERMINATED, src[k].flags | PCRE2_UTF | PCRE2_UCP,
                              &err, &off, NULL);
        if (!re[k]) {
            /* The patterns are fixed text: failing to compile them is a bug. */
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(err, msg, sizeof msg);
            fprintf(stderr, "rys: eq pattern %d: %s at %zu\n", k, (char *)msg, (size_t)off);
            abort();
        }
    }
}

/* First match of pattern k in s[from..n): start and end offsets, or false. */
static bool find(int k, const char *s, size_t n, size_t from, size_t *start, size_t *end, size_t *g_start,
                 size_t *g_end) {
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re[k], NULL);
    int rc = pcre2_match(re[k], (PCRE2_SPTR)s, n, from, PCRE2_NO_UTF_CHECK, md, NULL);
    bool ok = rc > 0;
    if (ok) {
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        *start = ov[0];
        *end = ov[1];
        if (g_start) { *g_start = ov[2]; *g_end = ov[3]; }
    }
    pcre2_match_data_free(md);
    return ok;
}

/* Value of a captured number (Unicode digits, optional ".digits"). */
static double number_value(const char *s, size_t n) {
    char *ascii = xmalloc(n + 1);
    size_t o = 0, i = 0;
    while (i < n) {
        uint32_t cp = probe_utf8_next(s, &i);
        ascii[o++] = cp == '.' ? '.' : (char)('0' + probe_digit_value(cp));
    }
    ascii[o] = 0;
    double v = strtod(ascii, NULL);
    free(ascii);
    return v;
}

/* Scores of one section s[0..n): the first four "Name: number" items, those
 * within 0..10 kept; true with four values (padded from three), false when
 * fewer than three are usable. */
static bool section_scores(const char *s, size_t n, double out[4]) {
    int seen = 0, kept = 0;
    size_t at = 0, a, b, ga, gb;
    while (seen < 4 && find(RE_ITEM, s, n, at, &a, &b, &ga, &gb)) {
        seen++;
        at = b;
        double v = number_value(s + ga, gb - ga);
        if (v >= 0 && v <= 10) out[kept++] = v;
    }
    if (kept < 3) return false;
    for (int e = kept; e < 4; e++) out[e] = NEUTRAL;
    return true;
}

void eq_parse(const char *text, eq_parsed *out) {
    pthread_once(&re_once, compile_patterns);
    char *clean = probe_utf8_sanitize(text);
    char *s = probe_strip_think(clean);
    free(clean);
    size_t n = strlen(s), a, b, c, d;
    double first[4], revised[4];
    bool have_revised = false, have_first = false;
    if (find(RE_REVISED, s, n, 0, &a, &b, NULL, NULL)) {
        size_t end = find(RE_END, s, n, b, &c, &d, NULL, NULL) ? c : n;
        have_revised = section_scores(s + b, end - b, revised);
    }
    if (find(RE_FIRST, s, n, 0, &a, &b, NULL, NULL)) {
        size_t end = find(RE_CRITIQUE, s, n, b, &c, &d, NULL, NULL) ? c : n;
        have_first = section_scores(s + b, end - b, first);
    }
    memset(out, 0, sizeof *out);
    if (have_revised && have_first) {
        for (int e = 0; e < 4; e++) out->pred[e] = (1 - REVISE_WEIGHT) * first[e] + REVISE_WEIGHT * revised[e];
        out->confidence = 1.0;
        out->source = EQ_FROM_BOTH;
    } else if (have_revised) {
        memcpy(out->pred, revised, sizeof revised);
        out->confidence = 0.9;
        out->source = EQ_FROM_REVISED;
    } else if (have_first) {
        memcpy(out->pred, first, sizeof first);
        out->confidence = 0.8;
        out->source = EQ_FROM_FIRST_PASS;
    } else {
        double vals[4];
        int count = 0;
        /* Every number counts toward count/8 only up to 4: beyond that the
         * confidence is the flat 0.5. */
        size_t at = 0, ga, gb;
        while (find(RE_NUMBER, s, n, at, &a, &b, &ga, &gb)) {
            at = b;
            double v = number_value(s + ga, gb - ga);
            if (v >= 0 && v <= 10) {
                if (count < 4) vals[count] = v;
                count++;
            }
        }
        for (int e = 0; e < 4; e++) out->pred[e] = e < count ? vals[e] : NEUTRAL;
        out->n_numbers = count;
        out->source = count ? EQ_FROM_NUMBERS : EQ_FROM_NOTHING;
        out->confidence = count >= 4 ? 0.5 : count / 8.0;
    }
    free(s);
}

double eq_item_score(const double pred[4], const double ref[4], double confidence) {
    double total = 0;
    for (int e = 0; e < 4; e++) total += fabs(pred[e] - ref[e]);
    double raw = 1.0 - total / 40.0;
    if (raw < 0) raw = 0;
    return confidence * raw + (1 - confidence) * 0.5;
}

double eq_score(const double ref[4], const char *text, eq_parsed *out) {
    eq_parsed p;
    eq_parse(text, &p);
    if (out) *out = p;
    return eq_item_score(p.pred, ref, p.confidence);
}

const char *eq_source_name(eq_source s) {
    static const char *const names[] = {"both", "revised", "first_pass", "numbers", "nothing"};
    return names[s];
}

char *eq_parsed_json(const eq_parsed *p, double score) {
    json_t *o = json_object(), *em = json_array();
    for (int e = 0; e < 4; e++) json_array_append_new(em, json_real(p->pred[e]));
    json_object_set_new(o, "emotions", em);
    json_object_set_new(o, "confidence", json_real(p->confidence));
    json_object_set_new(o, "source", json_string(eq_source_name(p->source)));
    json_object_set_new(o, "score", json_real(score));
    char *txt = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17));
    json_decref(o);
    char *r = xstrdup(txt);
    free(txt);
    return r;
}

double eq_logit_score(const double probs[4][11], const double ref[4], double expected[4]) {
    double ev[4];
    for (int e = 0; e < 4; e++) {
        double sum = 0, acc = 0;
        for (int v = 0; v <= 10; v++) {
            if (!(probs[e][v] >= 0) || !isfinite(probs[e][v])) {
                rys_seterr("eq logit score: emotion %d: probability of %d is %g", e + 1, v, probs[e][v]);
                return -1;
            }
            sum += probs[e][v];
            acc += v * probs[e][v];
        }
        if (!(sum > 0)) {
            rys_seterr("eq logit score: emotion %d: probabilities sum to 0", e + 1);
            return -1;
        }
        ev[e] = acc / sum;
    }
    if (expected) memcpy(expected, ev, sizeof ev);
    return eq_item_score(ev, ref, 1.0);
}
