/* The logit-read EQ probe on a tiny self-written model: every probability it
 * reports must equal what this test computes on its own from plain forward
 * passes (one fresh sequence per score, softmax over the logits at the
 * positions where the score's digits and the token after them are read), with
 * the test's own argmax fed into the next line; then the plumbing: a
 * "FILE:logit" set in evalset and in a scan store, kept apart from the
 * published EQ set. The tiny vocabulary is one token per byte, so "10" is two
 * tokens, "1" then "0", and token ids are written here by hand. */
#include "testutil.h"
#define N_LAYERS 4
#define TINY_FIXTURE_LAYERS N_LAYERS
#include "tiny_loaded.h"

#include "scan/eqlogit.h"
#include "scan/evalset.h"
#include "engine/forward.h"
#include "engine/model.h"
#include "engine/path.h"
#include "base/pool.h"
#include "probes/eq.h"
#include "scan/scan.h"
#include "scan/store.h"
#include "engine/tokenizer.h"
#include "base/util.h"

#include <math.h>
#include <string.h>

#define IM_START 256
#define IM_END 257

/* Ids of a text in the tiny vocabulary, written from the bytes: "\x01" and
 * "\x02" stand for <|im_start|> and <|im_end|>. */
static int ids_of(const char *s, int32_t *out) {
    int n = 0;
    for (; *s; s++) out[n++] = *s == 1 ? IM_START : *s == 2 ? IM_END : (unsigned char)*s;
    return n;
}

/* P(tokens of v, then a token that is not a digit) after ctx, from one
 * forward pass over ctx + digits of v with logits at every position. */
static double value_prob(const fixture *fx, const layer_path *path, const int32_t *ctx, int n_ctx, int v) {
    int32_t seq[2048];
    memcpy(seq, ctx, (size_t)n_ctx * sizeof *seq);
    char digits[4];
    int nd = snprintf(digits, sizeof digits, "%d", v), n = n_ctx;
    for (int k = 0; k < nd; k++) seq[n++] = (unsigned char)digits[k];
    int32_t pos[2048], sq[2048];
    for (int k = 0; k < n; k++) { pos[k] = k; sq[k] = 0; }
    int nv = fx->m->hp.n_vocab;
    float *logits = xmalloc((size_t)n * nv * sizeof(float));
    forward_ctx *f = forward_new(fx->m, path, 1, n, fx->pool);
    assert_non_null(f);
    fwd_batch b = {n, seq, pos, sq, NULL};
    assert_int_equal(forward_batch(f, &b, logits), n);
    forward_free(f);
    double p = 1;
    for (int r = n_ctx - 1; r < n; r++) {
        const float *lg = logits + (size_t)r * nv;
        double mx = lg[0], z = 0, digit_mass = 0;
        for (int t = 1; t < nv; t++) if (lg[t] > mx) mx = lg[t];
        for (int t = 0; t < nv; t++) z += exp(lg[t] - mx);
        for (int t = '0'; t <= '9'; t++) digit_mass += exp(lg[t] - mx) / z;
        if (r < n - 1) p *= exp(lg[seq[r + 1]] - mx) / z;   /* the next digit of v */
        else p *= 1 - digit_mass;                            /* then the number ends */
    }
    free(logits);
    return p;
}

static const char *PROMPTS[3] = {
    "\x01user\nHow does Ann feel?\x02\n\x01" "assistant\n",
    "\x01user\nRate them.\x02\n\x01" "assistant\n",
    "\x01user\nA longer question about how Bob would feel after that.\x02\n\x01" "assistant\n",
};
static const char *NAMES[3][4] = {{"Angry", "Calm", "Sad", "Glad"}, {"Hurt", "Smug", "Bored", "Proud"},
                                  {"Awed", "Tense", "Calm", "Shy"}};

/* The test's own reading of one item: probabilities, argmax fed back. */
static void reference_item(const fixture *fx, const layer_path *path, int i, double probs[4][11], int choice[4]) {
    char text[2048];
    int len = snprintf(text, sizeof text, "%sFirst pass scores:\n", PROMPTS[i]);
    for (int e = 0; e < 4; e++) {
        len += snprintf(text + len, sizeof text - (size_t)len, "%s: ", NAMES[i][e]);
        int32_t ctx[2048];
        int n_ctx = ids_of(text, ctx);
        double sum = 0;
        for (int v = 0; v <= 10; v++) sum += probs[e][v] = value_prob(fx, path, ctx, n_ctx, v);
        choice[e] = 0;
        for (int v = 0; v <= 10; v++) {
            probs[e][v] /= sum;
            if (probs[e][v] > probs[e][choice[e]]) choice[e] = v;
        }
        len += snprintf(text + len, sizeof text - (size_t)len, "%d\n", choice[e]);
    }
}

static void run_items(const fixture *fx, const layer_path *path, eqlogit_result *res, int n) {
    eqlogit_item items[3] = {0};
    char *prompts[3];
    for (int i = 0; i < n; i++) {
        /* the engine reads the control tokens' text, as the chat renderer writes it */
        char buf[512];
        int k = 0;
        for (const char *s = PROMPTS[i]; *s; s++)
            k += snprintf(buf + k, sizeof buf - (size_t)k, "%s", *s == 1 ? "<|im_start|>" : *s == 2 ? "<|im_end|>" : (char[2]){*s, 0});
        prompts[i] = xstrdup(buf);
        items[i].prompt = prompts[i];
        for (int e = 0; e < 4; e++) items[i].emotion[e] = NAMES[i][e];
    }
    if (eqlogit_run(fx->m, fx->tok, path, fx->pool, items, n, res)) fail_msg("%s", rys_lasterr());
    for (int i = 0; i < n; i++) free(prompts[i]);
}

static void check_against_reference(const fixture *fx, const layer_path *path) {
    eqlogit_result res[3];
    run_items(fx, path, res, 3);
    for (int i = 0; i < 3; i++) {
        double probs[4][11];
        int choice[4];
        reference_item(fx, path, i, probs, choice);
        char answer[512];
        int len = snprintf(answer, sizeof answer, "First pass scores:\n");
        for (int e = 0; e < 4; e++) {
            for (int v = 0; v <= 10; v++)
                if (fabs(res[i].probs[e][v] - probs[e][v]) > 1e-9)
                    fail_msg("item %d emotion %d value %d: %.12f, forward pass gives %.12f", i, e, v, res[i].probs[e][v],
                             probs[e][v]);
            assert_int_equal(res[i].choice[e], choice[e]);
            assert_true(res[i].mass[e] > 0 && res[i].mass[e] <= 1 + 1e-12);
            /* "10" is read as "1" then "0"; every other score is one token */
            const eqlogit_line *L = &res[i].line[e];
            for (int v = 0; v <= 9; v++) {
                assert_int_equal(L->n_value[v], 1);
                assert_int_equal(L->value[v][0], '0' + v);
            }
            assert_int_equal(L->n_value[10], 2);
            assert_int_equal(L->value[10][0], '1');
            assert_int_equal(L->value[10][1], '0');
            assert_int_equal(L->ctx[L->n_ctx - 1], ' ');
            len += snprintf(answer + len, sizeof answer - (size_t)len, "%s: %d\n", NAMES[i][e], choice[e]);
        }
        assert_string_equal(res[i].answer, answer);
    }
    eqlogit_result_free(res, 3);
}

static void test_probs_equal_forward(void **state) {
    fixture *fx = *state;
    layer_path base, blocks;
    assert_int_equal(path_baseline(N_LAYERS, &base), 0);
    assert_int_equal(path_from_blocks("1,3", N_LAYERS, &blocks), 0);
    check_against_reference(fx, &base);
    check_against_reference(fx, &blocks);
    path_free(&base);
    path_free(&blocks);
}

/* An item's reading does not depend on the items batched with it. */
static void test_batch_independent(void **state) {
    fixture *fx = *state;
    layer_path base;
    assert_int_equal(path_baseline(N_LAYERS, &base), 0);
    eqlogit_result all[3], one[1];
    run_items(fx, &base, all, 3);
    run_items(fx, &base, one, 1);
    assert_memory_equal(all[0].probs, one[0].probs, sizeof one[0].probs);
    assert_string_equal(all[0].answer, one[0].answer);
    eqlogit_result_free(all, 3);
    eqlogit_result_free(one, 1);
    path_free(&base);
}

static const char EQ_FILE[] =
    "{\"a\": {\"prompt\": \"How does Ann feel?\", \"reference_answer\": {\"emotion1\": \"Angry\", \"emotion2\": \"Calm\", "
    "\"emotion3\": \"Sad\", \"emotion4\": \"Glad\", \"emotion1_score\": 7, \"emotion2_score\": 1, \"emotion3_score\": 2, "
    "\"emotion4_score\": 0}},"
    " \"b\": {\"prompt\": \"Rate them.\", \"reference_answer\": {\"emotion1\": \"Hurt\", \"emotion2\": \"Smug\", "
    "\"emotion3\": \"Bored\", \"emotion4\": \"Proud\", \"emotion1_score\": 3, \"emotion2_score\": 5, \"emotion3_score\": 0, "
    "\"emotion4_score\": 9}}}";

static const char *write_text(const char *tag, const char *text) {
    const char *p = test_tmp_path(tag);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return p;
}

static void test_evalset_logit_sets(void **state) {
    fixture *fx = *state;
    const char *eq = write_text("eqt.json", EQ_FILE);
    const char *math = write_text("matht.json", "{\"0\": {\"question\": \"1+1?\", \"answer\": 2}}");
    char spec[300], bad[300];
    snprintf(spec, sizeof spec, "%s:logit", eq);
    snprintf(bad, sizeof bad, "%s:logit", math);
    evalset_options eo = {4, NULL, false};
    const char *files[2] = {eq, spec};
    evalset *es = evalset_load(files, 2, fx->m, fx->tok, &eo);
    if (!es) fail_msg("%s", rys_lasterr());
    assert_int_equal(evalset_n_sets(es), 2);
    char want[300];
    snprintf(want, sizeof want, "%s", strrchr(eq, '/') + 1);
    *strstr(want, ".json") = 0;
    assert_string_equal(evalset_set_name(es, 0), want);
    strcat(want, ":logit");
    assert_string_equal(evalset_set_name(es, 1), want);
    assert_string_equal(evalset_set_kind(es, 0), "eq");
    assert_string_equal(evalset_set_kind(es, 1), "eq_logit");
    assert_int_equal(evalset_n_prompts(es), 2);      /* only the published set generates */
    assert_int_equal(evalset_n_logit(es), 2);
    assert_string_equal(evalset_logit_key(es, 1), "b");
    assert_int_equal(evalset_logit_set(es, 1), 1);
    const eqlogit_item *it = evalset_logit_items(es);
    assert_string_equal(it[0].prompt, "<|im_start|>user\nHow does Ann feel?<|im_end|>\n<|im_start|>assistant\n");
    assert_string_equal(it[1].emotion[3], "Proud");
    char *settings = evalset_settings_json(es);
    assert_non_null(strstr(settings, "\"eq_logit\""));
    free(settings);
    /* a score: eq_logit_score of the probabilities, and its details */
    eqlogit_result r = {0};
    for (int e = 0; e < 4; e++) r.probs[e][e + 1] = 1;
    char *parsed = NULL;
    double sc = evalset_logit_score(es, 0, &r, &parsed);
    assert_true(fabs(sc - (1 - (6 + 1 + 1 + 4) / 40.0)) < 1e-15);   /* |1-7| + |2-1| + |3-2| + |4-0| */
    assert_non_null(strstr(parsed, "\"expected\":[1.0,2.0,3.0,4.0]"));
    free(parsed);
    evalset_free(es);
    const char *only_math[1] = {bad};
    assert_null(evalset_load(only_math, 1, fx->m, fx->tok, &eo));
    assert_non_null(strstr(rys_lasterr(), "only EQ probe sets can be read by logits"));
    unlink(eq);
    unlink(math);
}

/* The score on probe set probe that the store holds for the done configuration spec. */
static double stored_score(store *st, const char *spec, const char *probe) {
    store_done *rows;
    int n;
    const char *probes[1] = {probe};
    assert_int_equal(store_done_configs(st, probes, 1, &rows, &n), 0);
    double v = NAN;
    for (int k = 0; k < n; k++)
        if (!strcmp(rows[k].spec, spec)) {
            assert_true(rows[k].complete);
            v = rows[k].scores[0];
        }
    store_done_free(rows, n);
    if (isnan(v)) fail_msg("%s: not done in the store", spec);
    return v;
}

/* A scan scores the logit set of every configuration exactly as a direct
 * reading of that configuration's path does. */
static void test_scan_stores_logit_scores(void **state) {
    fixture *fx = *state;
    const char *eq = write_text("eqs.json", EQ_FILE);
    char spec[300];
    snprintf(spec, sizeof spec, "%s:logit", eq);
    evalset_options eo = {4, NULL, false};
    const char *files[1] = {spec};
    evalset *es = evalset_load(files, 1, fx->m, fx->tok, &eo);
    if (!es) fail_msg("%s", rys_lasterr());
    const char *db = test_tmp_path("eqlogit.sqlite");
    unlink(db);
    store *st = store_open(db);
    assert_non_null(st);
    store_probe sp = {evalset_set_name(es, 0), evalset_set_path(es, 0), evalset_set_sha256(es, 0), evalset_set_kind(es, 0),
                      evalset_set_items(es, 0)};
    char *settings = evalset_settings_json(es);
    store_identity id = {"tiny", "00", "llama", N_LAYERS, &sp, 1, settings};
    assert_int_equal(store_set_identity(st, &id), 0);
    scan_sweep sw = {0};
    sw.stride = 2;
    scan_config *cfgs;
    int n_cfgs;
    assert_int_equal(scan_build_configs(N_LAYERS, &sw, &cfgs, &n_cfgs), 0);
    store_config *sc = xcalloc((size_t)n_cfgs, sizeof *sc);
    char **canon = xcalloc((size_t)n_cfgs, sizeof *canon);
    for (int k = 0; k < n_cfgs; k++) {
        canon[k] = path_canonical(&cfgs[k].path);
        sc[k] = (store_config){cfgs[k].spec, canon[k], cfgs[k].i, cfgs[k].j, path_extra_layers(&cfgs[k].path), k, "scan"};
    }
    assert_int_equal(store_add_configs(st, sc, n_cfgs), 0);
    /* a deadline already passed starts nothing and says so; the store is left as it was */
    scan_run_opts ro = {false, false, 0, rys_now() - 1, NULL};
    scan_summary sum;
    if (scan_run(st, fx->m, fx->tok, es, fx->pool, cfgs, n_cfgs, &ro, &sum)) fail_msg("%s", rys_lasterr());
    assert_int_equal(sum.done_now, 0);
    assert_true(sum.out_of_time);
    int total, done;
    assert_int_equal(store_counts(st, &total, &done), 0);
    assert_int_equal(done, 0);
    ro.deadline = 0;
    if (scan_run(st, fx->m, fx->tok, es, fx->pool, cfgs, n_cfgs, &ro, &sum)) fail_msg("%s", rys_lasterr());
    assert_int_equal(sum.done_now, n_cfgs);
    assert_false(sum.out_of_time);
    for (int k = 0; k < n_cfgs; k++) {
        eqlogit_result r[2];
        reuse_stats rs;
        assert_int_equal(scan_logit_naive(fx->m, fx->tok, es, fx->pool, &cfgs[k].path, r, &rs), 0);
        double want = (evalset_logit_score(es, 0, &r[0], NULL) + evalset_logit_score(es, 1, &r[1], NULL)) / 2;
        double got = stored_score(st, cfgs[k].spec, evalset_set_name(es, 0));
        if (got != want) fail_msg("%s: stored %.17g, read directly %.17g", cfgs[k].spec, got, want);
        eqlogit_result_free(r, 2);
    }
    for (int k = 0; k < n_cfgs; k++) free(canon[k]);
    free(canon);
    free(sc);
    free(settings);
    scan_free_configs(cfgs, n_cfgs);
    store_close(st);
    evalset_free(es);
    unlink(db);
    unlink(eq);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_probs_equal_forward),
        cmocka_unit_test(test_batch_independent),
        cmocka_unit_test(test_evalset_logit_sets),
        cmocka_unit_test(test_scan_stores_logit_scores),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
