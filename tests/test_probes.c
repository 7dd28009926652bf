/* Probe files, math and EQ scoring, and the math generator.
 *
 * Expected values are independent of our code: partial credits are the
 * correctly rounded doubles of the exact rationals (Python's fractions, or
 * small enough to be exact double divisions), EQ parses and scores are what
 * the reference scorer (dnhkng/RYS src/workers/eq_worker.py, run on these
 * very texts) returns, and generated answers are checked with GMP
 * inequalities (r^2 <= N < (r+1)^2 and the like), not the generator's path. */
#include "testutil.h"
#include "probes/eq.h"
#include "probes/math.h"
#include "probes/probe_file.h"
#include "probes/probe_text.h"
#include "base/util.h"

#include <gmp.h>
#include <math.h>
#include <string.h>

#define assert_double_exact(got, want)                                                                          \
    do {                                                                                                        \
        double g_ = (got), w_ = (want);                                                                         \
        if (g_ != w_) fail_msg("%s = %.17g, expected %.17g", #got, g_, w_);                                     \
    } while (0)

/* ---- partial credit --------------------------------------------------------- */

static const struct { const char *answer, *guess; double want; } credit_cases[] = {
    /* the reference's examples */
    {"4302459", "430245", 25814700.0 / 30117213.0},          /* (1 - 9/4302459) * 6/7 ~ 0.857141 */
    {"123456789", "123356789", 123356789.0 / 123456789.0},   /* ~ 0.999190 */
    {"100", "100", 1.0},
    {"5", "7", 5.0 / 7.0},
    {"12", "1200", 0.5},
    /* a dropped digit: 596252160 vs 596252164, pad 1 of 9 */
    {"596252164", "59625216", 596252160.0 * 8 / (596252164.0 * 9)},
    /* an extra digit: 1480278800 vs 1480278801, pad 1 of 10 */
    {"148027880", "1480278801", 13322509200.0 / 14802788010.0},
    {"0", "0", 0.0},
    {"0", "5", 0.0},
    {"5", "0", 0.0},
    {"7", "70", 0.5},
    {"10", "1", 0.5},
    {"999", "1000", 3000.0 / 39960.0},                        /* 9990 vs 1000, pad 1 of 4 */
    {"1", "9", 1.0 / 9.0},
    {"6116", "6117", 6116.0 / 6117.0},
    {"596252164", "596", 0.3331923616576873},                /* 596000000/596252164 * 3/9 */
    /* 28-digit answers, beyond 64 bits */
    {"6201399810632809383082905801", "6201399810632809383082905801", 1.0},
    {"6201399810632809383082905801", "6200000000000000000000000000", 0.9997742750547369},
    {"6201399810632809383082905801", "62013998106328", 0.4999999999999992},
    {"6201399810632809383082905801", "6201399810632809383082905802", 1.0},   /* 1 - 1.6e-28 rounds to 1 */
    {"1026287304795574396225275003", "1026287304795574396225275003000", 28.0 / 31.0},
    /* leading zeros are dropped first, as str(int(run)) does */
    {"596252164", "00596252164", 1.0},
    {"-5", "5", 0.0},
};

static void test_partial_credit(void **st) {
    (void)st;
    for (size_t k = 0; k < sizeof credit_cases / sizeof credit_cases[0]; k++) {
        double got = math_partial_credit(credit_cases[k].answer, credit_cases[k].guess);
        if (got != credit_cases[k].want)
            fail_msg("partial_credit(%s, %s) = %.17g, expected %.17g", credit_cases[k].answer, credit_cases[k].guess,
                     got, credit_cases[k].want);
    }
    assert_true(fabs(math_partial_credit("4302459", "430245") - 0.857141) < 5e-7);
    assert_true(math_partial_credit("12a", "5") < 0);
    assert_true(math_partial_credit("", "5") < 0);
}

static void test_math_score(void **st) {
    (void)st;
    math_result r;
    /* garbage with no digits */
    assert_double_exact(math_score("596252164", "I cannot compute that.", &r), 0.0);
    assert_int_equal(r.n, 0);
    assert_int_equal(r.best, -1);
    math_result_free(&r);
    /* several candidates: the best wins */
    assert_double_exact(math_score("596252164", "Maybe 1000, no: 596252164. Or 7", &r), 1.0);
    assert_int_equal(r.n, 3);
    assert_string_equal(r.cand[0], "1000");
    assert_string_equal(r.cand[1], "596252164");
    assert_string_equal(r.cand[2], "7");
    assert_int_equal(r.best, 1);
    assert_false(r.from_raw);
    math_result_free(&r);
    /* leading zeros and an all-zero run */
    assert_double_exact(math_score("596252164", "000 0596252164", &r), 1.0);
    assert_string_equal(r.cand[0], "0");
    assert_string_equal(r.cand[1], "596252164");
    math_result_free(&r);
    /* a think block is dropped when digits remain outside it */
    assert_double_exact(math_score("596252164", "<think>596252164</think>It is 5", &r), 500000000.0 / 5366269476.0);
    assert_int_equal(r.n, 1);
    assert_string_equal(r.cand[0], "5");
    math_result_free(&r);
    /* ... and an unterminated one leaves nothing: the raw text is used */
    assert_double_exact(math_score("596252164", "<think>about 596252164 I guess", &r), 1.0);
    assert_true(r.from_raw);
    math_result_free(&r);
    assert_double_exact(math_score("12", "<think>1200</think>", &r), 0.5);
    assert_true(r.from_raw);
    math_result_free(&r);
    /* commas split the number; the best part is 596 (see credit_cases) */
    assert_double_exact(math_score("596252164", "596,252,164", &r), 0.3331923616576873);
    assert_int_equal(r.n, 3);
    assert_int_equal(r.best, 0);
    math_result_free(&r);
    /* Unicode digits count, as Python's \d does; "1e9" is two numbers */
    assert_double_exact(math_score("596252164", "\xef\xbc\x95\xef\xbc\x99\xef\xbc\x96\xef\xbc\x92\xef\xbc\x95"
                                                "\xef\xbc\x92\xef\xbc\x91\xef\xbc\x96\xef\xbc\x94", &r), 1.0);
    assert_string_equal(r.cand[0], "596252164");
    math_result_free(&r);
    assert_double_exact(math_score("9", "1e9", NULL), 1.0);
    /* invalid UTF-8 does not break the scan */
    assert_double_exact(math_score("42", "\xff\xfe" "42\xc3", NULL), 1.0);
    char *js;
    math_score("7", "7 and 8", &r);
    js = math_result_json(&r);
    assert_non_null(strstr(js, "\"candidates\":[\"7\",\"8\"]"));
    assert_non_null(strstr(js, "\"best\":0"));
    free(js);
    math_result_free(&r);
}

static void test_strip_think(void **st) {
    (void)st;
    static const struct { const char *in, *out; } cases[] = {
        {"  a <think>x</think> b  ", "a  b"},
        {"<think>x</think><think>y</think>z", "z"},
        {"a<think>x", "a"},
        {"a<think>x</think>b<think>y", "ab"},
        {"<thi<think>x</think>nk>tail", ""},   /* the join forms a new open tag, cut by the second pass */
        {"</think>a", "</think>a"},
        {"\xe3\x80\x80 z \xc2\xa0", "z"},       /* Unicode spaces are trimmed like str.strip() */
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        char *s = probe_strip_think(cases[k].in);
        assert_string_equal(s, cases[k].out);
        free(s);
    }
    char *s = probe_utf8_sanitize("a\xff" "b\xe2\x82" "c\xe2\x82\xac");
    assert_string_equal(s, "a\xef\xbf\xbd" "b\xef\xbf\xbd" "c\xe2\x82\xac");
    free(s);
    assert_int_equal(probe_digit_value(0x0669), 9);
    assert_int_equal(probe_digit_value(0x1D7D8), 0);   /* mathematical double-struck zero */
    assert_int_equal(probe_digit_value(0x00B2), -1);   /* superscript two is not Nd */
    assert_int_equal(probe_digit_value('a'), -1);
}

/* ---- EQ --------------------------------------------------------------------- */

/* eq_16 record "1": Intimidated, Hopeful, Disheartened, Smug. */
static const double ref1[4] = {2.307692307692308, 3.076923076923077, 4.615384615384616, 0.0};

static const struct {
    const char *text;
    double pred[4], conf, score;
    eq_source source;
} eq_cases[] = {
    {"First pass scores:\nIntimidated: 2\nHopeful: 3\nDisheartened: 5\nSmug: 0\n", {2, 3, 5, 0}, 0.8,
     0.8846153846153846, EQ_FROM_FIRST_PASS},
    /* names in another order: matched by position, not by name */
    {"First pass scores:\nSmug: 0\nHopeful: 3\nIntimidated: 2\nDisheartened: 5", {0, 3, 2, 5}, 0.8, 0.7000000000000001,
     EQ_FROM_FIRST_PASS},
    /* one score missing: three found, padded with 5 */
    {"First pass scores:\nIntimidated: 2\nHopeful: 3\nDisheartened: \nSmug: 1", {2, 3, 1, 5}, 0.8, 0.7200000000000001,
     EQ_FROM_FIRST_PASS},
    {"First pass scores:\nA: 2\nB: 3\nC: 5\nD: 0\n\nCritique: they feel 9 things\n\nRevised scores:\nA: 4\nB: 3\nC: "
     "6\nD: 1\n[End of answer]",
     {3, 3, 5.5, 0.5}, 1.0, 0.9461538461538461, EQ_FROM_BOTH},
    {"Revised scores:\nIntimidated: 4\nHopeful: 3\nDisheartened: 6\nSmug: 1", {4, 3, 6, 1}, 0.9, 0.8565384615384615,
     EQ_FROM_REVISED},
    /* prose: 7, 10, 3 are the numbers in range */
    {"I think they feel about 7 out of 10 angry, maybe 3 hopeful.", {7, 10, 3, 5}, 0.375, 0.5165865384615385,
     EQ_FROM_NUMBERS},
    {"", {5, 5, 5, 5}, 0.0, 0.5, EQ_FROM_NOTHING},
    /* 12 is among the first four items but out of range: dropped, not replaced */
    {"First pass scores:\nA: 12\nB: 3\nC: 5\nD: 4", {3, 5, 4, 5}, 0.8, 0.7353846153846154, EQ_FROM_FIRST_PASS},
    {"First pass scores:\n1. Intimidated: 3\n2. Hopeful: 4\n3. Disheartened: 6\n4. Smug: 0", {3, 4, 6, 0}, 0.8,
     0.8400000000000001, EQ_FROM_FIRST_PASS},
    {"First pass scores:\nA: 7.5\nB: 2.25\nC: 0.5\nD: 10", {7.5, 2.25, 0.5, 10}, 0.8, 0.49730769230769234,
     EQ_FROM_FIRST_PASS},
    /* two out of range: the section fails and the loose numbers 5, 4 remain */
    {"First pass scores:\nA: 11\nB: 12\nC: 5\nD: 4", {5, 4, 5, 5}, 0.25, 0.56875, EQ_FROM_NUMBERS},
    {"Scores 2, 4, 6, 8 and 9", {2, 4, 6, 8}, 0.5, 0.6173076923076923, EQ_FROM_NUMBERS},
    {"FIRST PASS SCORES:\nA: 1\nB: 2\nC: 3\nD: 4", {1, 2, 3, 4}, 0.8, 0.7400000000000001, EQ_FROM_FIRST_PASS},
    {"<think>First pass scores: A: 9 B: 9 C: 9 D: 9</think>First pass scores:\nA: 1\nB: 2\nC: 3\nD: 4",
     {1, 2, 3, 4}, 0.8, 0.7400000000000001, EQ_FROM_FIRST_PASS},
    /* numbers glued to letters are not standalone (Python's \b) */
    {"A1 B2 3x 4", {4, 5, 5, 5}, 0.125, 0.534375, EQ_FROM_NUMBERS},
    {"about 7.5x", {7, 5, 5, 5}, 0.125, 0.525, EQ_FROM_NUMBERS},
    /* sections are cut at Critique: / [End of answer] */
    {"First pass scores:\nA: 1\nB: 2\nCritique: C: 3 D: 4", {1, 2, 3, 4}, 0.5, 0.65, EQ_FROM_NUMBERS},
    {"Revised scores:\nA: 1\nB: 2\n[End of answer]\nC: 3\nD: 4", {1, 2, 3, 4}, 0.5, 0.65, EQ_FROM_NUMBERS},
    /* a fullwidth 7 */
    {"First pass scores:\nA: \xef\xbc\x97\nB: 2\nC: 3\nD: 4", {7, 2, 3, 4}, 0.8, 0.6723076923076923,
     EQ_FROM_FIRST_PASS},
    {"First pass scores:\nVery Intimidated: 7\nHopeful:3\nDisheartened:\t8\nSmug: 1\nExtra: 9", {7, 3, 8, 1}, 0.8,
     0.716923076923077, EQ_FROM_FIRST_PASS},
    {"First pass scores:\nA: 1\nB: 2\nC: 3\nD: 4\n<think>Revised scores: A: 9 B: 9 C: 9 D: 9", {1, 2, 3, 4}, 0.8,
     0.7400000000000001, EQ_FROM_FIRST_PASS},
    /* "é7" is one word to Python's \b; 10.5 is out of range */
    {"\xc3\xa9" "7 and 8 then 2.5 and 10.5", {8, 2.5, 5, 5}, 0.25, 0.5521634615384615, EQ_FROM_NUMBERS},
};

static void test_eq_parse_and_score(void **st) {
    (void)st;
    for (size_t k = 0; k < sizeof eq_cases / sizeof eq_cases[0]; k++) {
        eq_parsed p;
        double s = eq_score(ref1, eq_cases[k].text, &p);
        for (int e = 0; e < 4; e++)
            if (p.pred[e] != eq_cases[k].pred[e])
                fail_msg("case %zu emotion %d: %.17g, expected %.17g", k, e + 1, p.pred[e], eq_cases[k].pred[e]);
        if (p.confidence != eq_cases[k].conf) fail_msg("case %zu: confidence %.17g", k, p.confidence);
        if (p.source != eq_cases[k].source) fail_msg("case %zu: source %s", k, eq_source_name(p.source));
        if (s != eq_cases[k].score) fail_msg("case %zu: score %.17g, expected %.17g", k, s, eq_cases[k].score);
    }
    /* a far-off answer clips at 0 before the confidence mix */
    const double far[4] = {10, 10, 10, 10}, zero[4] = {0, 0, 0, 10};
    assert_double_exact(eq_item_score(far, zero, 1.0), 0.25);
    assert_double_exact(eq_item_score(zero, far, 0.8), 0.8 * (1 - 30.0 / 40) + (1 - 0.8) * 0.5);
    const double ten[4] = {10, 10, 10, 10}, nil[4] = {0, 0, 0, 0};
    assert_double_exact(eq_item_score(ten, nil, 0.5), 0.25);
    eq_parsed p;
    double s = eq_score(ref1, "First pass scores:\nA: 1\nB: 2\nC: 3\nD: 4", &p);
    char *js = eq_parsed_json(&p, s);
    assert_non_null(strstr(js, "\"source\":\"first_pass\""));
    assert_non_null(strstr(js, "\"confidence\":0.8"));
    free(js);
}

static void test_eq_logit(void **st) {
    (void)st;
    double probs[4][11] = {{0}}, ev[4];
    probs[0][2] = 1;                          /* one-hot at 2 */
    probs[1][2] = 0.5, probs[1][4] = 0.5;     /* expected 3 */
    for (int v = 0; v <= 10; v++) probs[2][v] = 2.0 / 11;   /* uniform, not normalised: expected 5 */
    probs[3][0] = 0.3, probs[3][10] = 0.1;    /* sums to 0.4: normalised, expected 2.5 */
    double s = eq_logit_score((const double(*)[11])probs, ref1, ev);
    assert_double_exact(ev[0], 2.0);
    assert_double_exact(ev[1], 3.0);
    assert_true(fabs(ev[2] - 5.0) < 1e-14);
    assert_true(fabs(ev[3] - 2.5) < 1e-15);
    double diff = fabs(2 - ref1[0]) + fabs(3 - ref1[1]) + fabs(5 - ref1[2]) + fabs(2.5 - ref1[3]);
    assert_true(fabs(s - (1 - diff / 40)) < 1e-15);
    probs[3][0] = probs[3][10] = 0;
    assert_true(eq_logit_score((const double(*)[11])probs, ref1, NULL) < 0);
    probs[3][0] = -0.5, probs[3][1] = 1;
    assert_true(eq_logit_score((const double(*)[11])probs, ref1, NULL) < 0);
}

/* ---- probe files ------------------------------------------------------------ */

static probe_set *parse(const char *text) { return probe_set_parse("t.json", text, strlen(text)); }

static void test_load_math(void **st) {
    (void)st;
    const char *text = "{\"10\": {\"question\": \"q10\", \"answer\": 6201399810632809383082905801},\n"
                       " \"2\": {\"question\": \"q2\", \"answer\": 15855, \"rounding\": \"floor\"},\n"
                       " \"1\": {\"question\": \"q\\u00e9\", \"answer\": -9223372036854775809}}";
    probe_set *s = parse(text);
    assert_non_null(s);
    assert_int_equal(s->kind, PROBE_MATH);
    assert_string_equal(probe_kind_name(s->kind), "math");
    assert_int_equal(s->n, 3);
    assert_string_equal(s->items[0].key, "10");   /* file order, not sorted */
    assert_string_equal(s->items[1].key, "2");
    assert_string_equal(s->items[0].answer, "6201399810632809383082905801");
    assert_string_equal(s->items[1].answer, "15855");
    assert_string_equal(s->items[2].answer, "-9223372036854775809");
    assert_string_equal(s->items[2].question, "q\xc3\xa9");
    assert_string_equal(s->name, "t");
    char *u = probe_user_text(s, 1, true);
    assert_string_equal(u, "/no_think q2");
    free(u);
    u = probe_user_text(s, 1, false);
    assert_string_equal(u, "q2");
    free(u);
    assert_string_equal(probe_system_text(s, NULL), PROBE_MATH_SYSTEM_PROMPT);
    assert_string_equal(probe_system_text(s, "custom"), "custom");
    assert_non_null(strstr(PROBE_MATH_SYSTEM_PROMPT, "intuition"));
    char *details;
    assert_double_exact(probe_score_text(s, 0, "6201399810632809383082905801", &details), 1.0);
    assert_non_null(strstr(details, "candidates"));
    free(details);
    probe_set_free(s);
}

static void test_load_eq(void **st) {
    (void)st;
    const char *text =
        "{\"1\": {\"prompt\": \"P1\", \"reference_answer\": {\"emotion1\": \"A\", \"emotion2\": \"B\", \"emotion3\": "
        "\"C\", \"emotion4\": \"D\", \"emotion1_score\": 2.5, \"emotion2_score\": 0, \"emotion3_score\": 7.5, "
        "\"emotion4_score\": 0}, \"reference_answer_fullscale\": {\"emotion1\": \"A\", \"emotion2\": \"B\", "
        "\"emotion3\": \"C\", \"emotion4\": \"D\", \"emotion1_score\": 3, \"emotion2_score\": 0, \"emotion3_score\": "
        "9, \"emotion4_score\": 0}},"
        " \"2\": {\"prompt\": \"P2\", \"reference_answer_fullscale\": {\"emotion1\": \"E\", \"emotion2\": \"F\", "
        "\"emotion3\": \"G\", \"emotion4\": \"H\", \"emotion1_score\": 1, \"emotion2_score\": 2, \"emotion3_score\": "
        "3, \"emotion4_score\": 4}}}";
    probe_set *s = parse(text);
    assert_non_null(s);
    assert_int_equal(s->kind, PROBE_EQ);
    assert_int_equal(s->n, 2);
    assert_double_exact(s->items[0].ref[0], 2.5);   /* reference_answer wins over the fullscale one */
    assert_double_exact(s->items[0].ref[2], 7.5);
    assert_string_equal(s->items[0].emotion[3], "D");
    assert_double_exact(s->items[1].ref[3], 4.0);   /* fullscale when reference_answer is absent */
    assert_string_equal(s->items[1].emotion[0], "E");
    assert_null(probe_system_text(s, "ignored"));
    char *u = probe_user_text(s, 0, true);
    assert_string_equal(u, "/no_think P1");
    free(u);
    char *details;
    double v = probe_score_text(s, 1, "First pass scores:\nE: 1\nF: 2\nG: 3\nH: 4", &details);
    assert_double_exact(v, 0.8 * 1.0 + 0.2 * 0.5);
    assert_non_null(strstr(details, "first_pass"));
    free(details);
    probe_set_free(s);
}

/* The probe sets shipped in the checkout's probes/: their sha256 as the
 * reference repository's manifest lists them. Missing files fail the test. */
static const char *shipped_probe_file(const char *rel) {
    const char *path = test_repo_file(rel);
    if (!path) fail_msg("%s not found in the checkout (looked from the working directory and above the test binary)", rel);
    return path;
}

static void test_load_reference_files(void **st) {
    (void)st;
    static const struct { const char *path, *sha; probe_kind kind; const char *key, *answer; } files[] = {
        {"probes/math_16.json", "d1907520d476b257fe8f052c4098d4c130f36e52ab53d042da04e23be8345727",
         PROBE_MATH, "8", "6201399810632809383082905801"},
        {"probes/eq_16.json", "9f98ad5f3cd3e7b5b83670d1615d03c3d1aa71a58581d033890abf3645aec345", PROBE_EQ,
         NULL, NULL},
    };
    for (size_t k = 0; k < 2; k++) {
        probe_set *s = probe_set_load(shipped_probe_file(files[k].path));
        if (!s) fail_msg("%s", rys_lasterr());
        assert_string_equal(s->sha256, files[k].sha);
        assert_int_equal(s->kind, files[k].kind);
        assert_int_equal(s->n, 16);
        if (files[k].key) {
            assert_string_equal(s->items[8].key, files[k].key);
            assert_string_equal(s->items[8].answer, files[k].answer);
        } else {
            assert_string_equal(s->items[0].emotion[0], "Intimidated");
            assert_double_exact(s->items[0].ref[0], 2.307692307692308);
        }
        probe_set_free(s);
    }
}

static void test_load_errors(void **st) {
    (void)st;
    static const struct { const char *text, *msg; } bad[] = {
        {"{\"0\": {\"question\": \"q\", \"answer\": 5}", "t.json: line"},   /* truncated */
        {"", "t.json: line"},
        {"[1, 2]", "not a JSON object of records"},
        {"{}", "t.json: no records"},
        {"{\"0\": {\"question\": \"q\"}}", "record \"0\": no \"answer\""},
        {"{\"0\": {\"question\": \"q\", \"answer\": 1}, \"7\": {\"question\": \"q\", \"answer\": 7.5}}",
         "t.json: record \"7\": answer is not an integer"},
        {"{\"0\": {\"question\": \"q\", \"answer\": \"123\"}}", "record \"0\": answer is not an integer"},
        {"{\"0\": {\"question\": \"q\", \"answer\": true}}", "answer is not an integer"},
        {"{\"0\": {\"question\": \"q\", \"answer\": 1e30}}", "answer is not an integer"},
        {"{\"0\": {\"question\": 5, \"answer\": 1}}", "question is not a string"},
        {"{\"0\": {\"question\": \"q\", \"answer\": 1}, \"1\": {\"prompt\": \"p\", \"reference_answer\": {}}}",
         "record \"1\": an EQ record in a math file (mixed kinds)"},
        {"{\"0\": {\"prompt\": \"p\", \"reference_answer\": {\"emotion1\": \"A\"}}}",
         "record \"0\": reference_answer.emotion1_score is missing or not a number"},
        {"{\"0\": {\"prompt\": \"p\"}}", "record \"0\": no \"reference_answer\""},
        {"{\"0\": {\"foo\": 1}}", "record \"0\": neither a math record"},
        {"{\"0\": 3}", "record \"0\": not an object"},
        {"{\"0\": {\"question\": \"q\\u0000\", \"answer\": 1}}", "NUL"},
        {"{\"0\": {\"question\": \"q\", \"answer\": 1}, \"0\": {\"question\": \"q\", \"answer\": 2}}", "duplicate"},
        {"{\"0\": {\"question\": \"q\", \"answer\": 0123456789012345678901}}", "t.json: line"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        probe_set *s = parse(bad[k].text);
        if (s) fail_msg("case %zu loaded", k);
        if (!strstr(rys_lasterr(), bad[k].msg)) fail_msg("case %zu: error '%s' lacks '%s'", k, rys_lasterr(), bad[k].msg);
        if (strchr(rys_lasterr(), '\n')) fail_msg("case %zu: multi-line error", k);
    }
    assert_null(probe_set_load("/nonexistent/x.json"));
}

/* ---- generator -------------------------------------------------------------- */

/* Checks one generated record against its question, with inequalities only. */
static void check_answer(const char *q, const char *answer, mathgen_rounding rounding) {
    char n1[128], n2[128];
    int m;
    mpz_t N, r, lhs, rhs, t;
    mpz_inits(N, r, lhs, rhs, t, NULL);
    assert_int_equal(mpz_set_str(r, answer, 10), 0);
    bool nearest = rounding == MATHGEN_NEAREST;
    if (sscanf(q, "What is the square root of %127[0-9], divided by %d?", n1, &m) == 2 ||
        (sscanf(q, "What is the square root of %127[0-9]?", n1) == 1 && (m = 1))) {
        mpz_set_str(N, n1, 10);
        /* floor:   (r m)^2 <= N < ((r+1) m)^2
         * nearest: ((2r-1) m)^2 <= 4N <= ((2r+1) m)^2 */
        mpz_mul_ui(lhs, r, nearest ? 2 : 1);
        if (nearest) mpz_sub_ui(lhs, lhs, 1);
        mpz_mul_si(lhs, lhs, m);
        mpz_mul(lhs, lhs, lhs);
        mpz_mul_ui(rhs, r, nearest ? 2 : 1);
        mpz_add_ui(rhs, rhs, 1);
        mpz_mul_si(rhs, rhs, m);
        mpz_mul(rhs, rhs, rhs);
        mpz_mul_ui(t, N, nearest ? 4 : 1);
        assert_true(mpz_cmp(lhs, t) <= 0);
        assert_true(nearest ? mpz_cmp(t, rhs) <= 0 : mpz_cmp(t, rhs) < 0);
    } else if (sscanf(q, "What is the cube root of %127[0-9], multiplied by %d?", n1, &m) == 2 ||
               (sscanf(q, "What is the cube root of %127[0-9]?", n1) == 1 && (m = 1))) {
        mpz_set_str(N, n1, 10);
        /* x = m^3 N; floor: r^3 <= x < (r+1)^3; nearest: (2r-1)^3 <= 8x <= (2r+1)^3 */
        mpz_mul_si(t, N, (long)m * m * m);
        if (nearest) mpz_mul_ui(t, t, 8);
        mpz_mul_ui(lhs, r, nearest ? 2 : 1);
        if (nearest) mpz_sub_ui(lhs, lhs, 1);
        mpz_pow_ui(lhs, lhs, 3);
        mpz_mul_ui(rhs, r, nearest ? 2 : 1);
        mpz_add_ui(rhs, rhs, 1);
        mpz_pow_ui(rhs, rhs, 3);
        assert_true(mpz_cmp(lhs, t) <= 0);
        assert_true(mpz_cmp(t, rhs) < 0);
    } else if (sscanf(q, "What is %127[0-9] multiplied by %127[0-9]?", n1, n2) == 2) {
        mpz_set_str(lhs, n1, 10);
        mpz_set_str(rhs, n2, 10);
        mpz_mul(t, lhs, rhs);
        assert_int_equal(mpz_cmp(t, r), 0);
    } else {
        fail_msg("unrecognised question: %s", q);
    }
    assert_non_null(strstr(q, "Do not use commas or scientific notation in your answer! Do not include "
                              "intermediate results!"));
    mpz_clears(N, r, lhs, rhs, t, NULL);
}

static void test_generator(void **st) {
    (void)st;
    int np;
    mathgen_part *parts =
        mathgen_parse_mix("sqrt:40,cbrt:40,mul14:10,mul7:10,sqrtdiv:60,cbrtmul:60,sqrt:30:1-3,cbrt:30:2", &np);
    assert_non_null(parts);
    assert_int_equal(np, 8);
    assert_int_equal(parts[6].dig_lo, 1);
    assert_int_equal(parts[6].dig_hi, 3);
    assert_int_equal(parts[7].dig_lo, 2);
    assert_int_equal(parts[7].dig_hi, 2);
    for (int rnd = 0; rnd < 2; rnd++) {
        mathgen_rounding rounding = rnd ? MATHGEN_FLOOR : MATHGEN_NEAREST;
        char *a = mathgen_json(parts, np, 42, rounding), *b = mathgen_json(parts, np, 42, rounding),
             *c = mathgen_json(parts, np, 43, rounding);
        assert_string_equal(a, b);   /* deterministic */
        assert_true(strcmp(a, c) != 0);
        assert_non_null(strstr(a, rnd ? "\"rounding\": \"floor\"" : "\"rounding\": \"nearest\""));
        probe_set *s = parse(a);
        assert_non_null(s);
        assert_int_equal(s->kind, PROBE_MATH);
        assert_int_equal(s->n, 280);
        for (int i = 0; i < s->n; i++) {
            char key[16];
            snprintf(key, sizeof key, "%d", i);
            assert_string_equal(s->items[i].key, key);
            check_answer(s->items[i].question, s->items[i].answer, rounding);
        }
        /* digit counts follow the kinds: the 14-digit products' factors */
        char f1[64], f2[64];
        assert_int_equal(sscanf(s->items[80].question, "What is %63[0-9] multiplied by %63[0-9]?", f1, f2), 2);
        assert_int_equal(strlen(f1), 14);
        assert_int_equal(strlen(f2), 14);
        probe_set_free(s);
        free(a);
        free(b);
        free(c);
    }
    free(parts);
    /* math_16 is floor: its answers pass the same checks */
    {
        probe_set *s = probe_set_load(shipped_probe_file("probes/math_16.json"));
        if (!s) fail_msg("%s", rys_lasterr());
        assert_int_equal(s->n, 16);
        for (int i = 0; i < s->n; i++) check_answer(s->items[i].question, s->items[i].answer, MATHGEN_FLOOR);
        probe_set_free(s);
    }
    parts = mathgen_default_mix(120, &np);
    assert_int_equal(np, 3);
    assert_int_equal(parts[0].count + parts[1].count + parts[2].count, 120);
    assert_int_equal(parts[0].count, 60);
    free(parts);
    const char *bad[] = {"", "foo:3", "sqrt", "sqrt:0", "sqrt:3:5-2", "sqrt:3:0-2", "sqrt:x", "sqrt:3,"};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        parts = mathgen_parse_mix(bad[k], &np);
        if (k == 7) { assert_non_null(parts); free(parts); continue; }   /* a trailing comma is harmless */
        if (parts) fail_msg("mix '%s' accepted", bad[k]);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_partial_credit),   cmocka_unit_test(test_math_score),
        cmocka_unit_test(test_strip_think),      cmocka_unit_test(test_eq_parse_and_score),
        cmocka_unit_test(test_eq_logit),         cmocka_unit_test(test_load_math),
        cmocka_unit_test(test_load_eq),          cmocka_unit_test(test_load_reference_files),
        cmocka_unit_test(test_load_errors),      cmocka_unit_test(test_generator),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
