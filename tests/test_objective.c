/* objective: benchmark objectives for the scanner. The spelling and its
 * errors, a document's accuracy and margin on hand-computed choices, and a
 * perplexity text through validate's engine against one plain forward per
 * chunk (rys perplexity's definition), from scratch and with the baseline's
 * states for a relayered path; a scan of every single block (three groups,
 * the baseline rerun for the later ones) stores what each path gives alone. */
#include "testutil.h"
#define N_LAYERS 6
#define TINY_FIXTURE_LAYERS N_LAYERS
#include "tiny_loaded.h"

#include "engine/forward.h"
#include "engine/loglik.h"
#include "scan/evalset.h"
#include "scan/objective.h"
#include "scan/scan.h"
#include "base/util.h"

#include <sqlite3.h>
#include <stdlib.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

static void test_spelling(void **state) {
    (void)state;
    assert_true(objective_is_spec("arc_challenge:val_rc_5shot:loglik"));
    assert_true(objective_is_spec("arc_challenge:val_rc_5shot:loglik@100"));
    assert_true(objective_is_spec("ppl:wiki.txt@4096"));
    assert_false(objective_is_spec("probes/math_16.json"));
    assert_false(objective_is_spec("eq_16.json:logit"));
    assert_false(objective_is_spec("arc_challenge:val_rc_5shot:loglikx"));
    fixture *fx = *state;
    objective_set o;
    assert_int_equal(objective_load("arc_challenge:val_rc_5shot:loglik@0", NULL, fx->m, fx->tok, &o), -1);
    assert_non_null(strstr(rys_lasterr(), "'@0' is not a count"));
    assert_int_equal(objective_load("arc_challenge:val_rc_5shot:loglik@5x", NULL, fx->m, fx->tok, &o), -1);
    assert_non_null(strstr(rys_lasterr(), "'@5x'"));
    assert_int_equal(objective_load("ppl:/nonexistent/text.txt", NULL, fx->m, fx->tok, &o), -1);
    assert_non_null(strstr(rys_lasterr(), "/nonexistent/text.txt"));
    assert_int_equal(objective_load("probes/math_16.json", NULL, fx->m, fx->tok, &o), -1);
    assert_non_null(strstr(rys_lasterr(), "not a benchmark objective"));
    /* a text shorter than one chunk */
    const char *path = test_tmp_path("objective-short.txt");
    FILE *f = fopen(path, "w");
    fputs("too short", f);
    fclose(f);
    char spec[4200];
    snprintf(spec, sizeof spec, "ppl:%s", path);
    assert_int_equal(objective_load(spec, NULL, fx->m, fx->tok, &o), -1);
    assert_non_null(strstr(rys_lasterr(), "a perplexity chunk needs 512"));
    unlink(path);
}

/* One document of three choices under acc_per_char, label 1. */
static void test_doc_score(void **state) {
    (void)state;
    task_doc D = {0};
    D.doc_id = "7";
    D.n_choices = 3;
    D.label = 1;
    char *conts[3] = {" a", " bb", " ccc"};
    D.continuations = conts;
    objective_set o = {0};
    o.metric = METRIC_ACC_PER_CHAR;
    o.ts.n_docs = 1;
    o.ts.docs = &D;
    o.ts.file = "x";
    choice_score c[3] = {{-6, 2, 3, false, NAN, 0, false}, {-10, 3, 4, false, NAN, 0, false}, {-9, 3, 6, false, NAN, 0, false}};
    validate_doc doc = {3, c};
    double sc[2];
    const char *gen;
    char *parsed;
    /* per char: -2, -2.5, -1.5 -> picks 2 (wrong); margin -2.5 - max(-2, -1.5) = -1 */
    assert_int_equal(objective_doc_score(&o, &doc, 0, sc, &gen, &parsed), 0);
    assert_true(sc[0] == 0.0);
    assert_true(sc[1] == -1.0);
    assert_string_equal(gen, " ccc");
    assert_non_null(strstr(parsed, "\"pred\": 2"));
    free(parsed);
    /* raw: -6, -10, -9 -> picks 0; with choice 1 at -5: picks the label, margin -5 - -6 = 1 */
    o.metric = METRIC_ACC_RAW;
    c[1].logprob = -5;
    assert_int_equal(objective_doc_score(&o, &doc, 0, sc, &gen, &parsed), 0);
    assert_true(sc[0] == 1.0 && sc[1] == 1.0);
    assert_string_equal(gen, " bb");
    free(parsed);
    /* acc_uncond without unconditional scores: an error naming the document */
    o.metric = METRIC_ACC_UNCOND;
    assert_int_equal(objective_doc_score(&o, &doc, 0, sc, &gen, &parsed), -1);
    assert_non_null(strstr(rys_lasterr(), "document 7"));
}

/* Chunk c's summed log-likelihood as rys perplexity computes it: one plain
 * forward of the chunk, positions CTX/2 .. CTX-2 scoring the next token. */
static double chunk_logprob(const model *m, pool *pool, const layer_path *path, const int32_t *ids, int ctx) {
    forward_ctx *f = forward_new(m, path, 1, ctx, pool);
    assert_non_null(f);
    int32_t *pos = xmalloc((size_t)ctx * sizeof *pos), *seq = xcalloc((size_t)ctx, sizeof *seq);
    bool *want = xmalloc((size_t)ctx);
    int first = ctx / 2, nv = m->hp.n_vocab;
    for (int i = 0; i < ctx; i++) { pos[i] = i; want[i] = i >= first && i < ctx - 1; }
    float *logits = xmalloc((size_t)ctx * nv * sizeof *logits);
    fwd_batch b = {ctx, ids, pos, seq, want};
    assert_true(forward_batch(f, &b, logits) >= 0);
    double lp = 0;
    for (int j = first; j < ctx - 1; j++) {
        bool g;
        lp += loglik_token(logits + (size_t)(j - first) * nv, nv, ids[j + 1], &g);
    }
    free(pos); free(seq); free(want); free(logits);
    forward_free(f);
    return lp;
}

static void test_ppl(void **state) {
    fixture *fx = *state;
    const char *path = test_tmp_path("objective-text.txt");
    FILE *f = fopen(path, "w");
    for (int i = 0; i < 3000; i++) fprintf(f, "%s%d ", i % 7 ? "word" : "Line\n", i * 37 % 101);
    fclose(f);
    char spec[4200];
    snprintf(spec, sizeof spec, "ppl:%s@1100", path);
    objective_set o;
    if (objective_load(spec, NULL, fx->m, fx->tok, &o)) fail_msg("%s", rys_lasterr());
    unlink(path);
    assert_int_equal(o.ts.n_docs, 2);   /* 1100 tokens: two whole chunks of 512 */
    assert_true(o.ppl);
    assert_int_equal(objective_n_scores(&o), 1);
    assert_string_equal(objective_score_kind(&o, 0), "ppl_loglik");
    layer_path paths[2];
    path_baseline(N_LAYERS, &paths[0]);
    assert_int_equal(path_from_blocks("2,4", N_LAYERS, &paths[1]), 0);
    const char *specs[2] = {"baseline", "blocks:2,4"};
    /* from scratch, each path alone; then the relayered path from the baseline's states */
    validate_results scratch[2], reuse;
    for (int p = 0; p < 2; p++)
        if (objective_run(fx->m, fx->tok, fx->pool, &o, 1, &paths[p], &specs[p], 1, false, NULL, false, &scratch[p]))
            fail_msg("%s", rys_lasterr());
    if (objective_run(fx->m, fx->tok, fx->pool, &o, 1, paths, specs, 2, true, NULL, false, &reuse)) fail_msg("%s", rys_lasterr());
    for (int p = 0; p < 2; p++)
        for (int c = 0; c < 2; c++) {
            double want = chunk_logprob(fx->m, fx->pool, &paths[p], o.ts.docs[c].ids, 512);
            assert_true(scratch[p].r[0].docs[c].choices[0].logprob == want);
            assert_true(reuse.r[p].docs[c].choices[0].logprob == want);
            double sc;
            const char *gen;
            char *parsed;
            assert_int_equal(objective_doc_score(&o, &reuse.r[p].docs[c], c, &sc, &gen, &parsed), 0);
            assert_true(sc == want / 255);   /* 512 - 256 - 1 tokens scored */
            free(parsed);
        }
    /* the relayered path started at its first differing position: fewer layer-token evaluations */
    assert_true(reuse.r[1].layer_tokens_done < scratch[1].r[0].layer_tokens_done);
    validate_results_free(&scratch[0]);
    validate_results_free(&scratch[1]);
    validate_results_free(&reuse);
    path_free(&paths[0]);
    path_free(&paths[1]);
    objective_set_free(&o);
}

/* A text of about 1,500 tiny-model tokens at path. */
static void write_text(const char *path) {
    FILE *f = fopen(path, "w");
    for (int i = 0; i < 3000; i++) fprintf(f, "%s%d ", i % 7 ? "word" : "Line\n", i * 37 % 101);
    fclose(f);
}

static void test_scan_groups(void **state) {
    fixture *fx = *state;
    const char *text = test_tmp_path("objective-scan.txt");
    char txt[512], spec[600], model_file[512], db[512];
    snprintf(txt, sizeof txt, "%s", text);
    write_text(txt);
    snprintf(spec, sizeof spec, "ppl:%s@600", txt);   /* one chunk */
    snprintf(model_file, sizeof model_file, "%s", txt);  /* the store's identity hashes some file: the text will do */
    snprintf(db, sizeof db, "%s", test_tmp_path("objective-scan.sqlite"));
    test_remove_db(db);
    const char *files[1] = {spec};
    evalset_options eo = {4, NULL, false};
    evalset *es = evalset_load(files, 1, fx->m, fx->tok, &eo);
    if (!es) fail_msg("%s", rys_lasterr());
    assert_int_equal(evalset_n_sets(es), 1);
    assert_string_equal(evalset_set_kind(es, 0), "ppl_loglik");
    scan_sweep sw = {0};
    scan_config *cfgs;
    int n;
    assert_int_equal(scan_build_configs(N_LAYERS, &sw, &cfgs, &n), 0);
    assert_int_equal(n, 1 + N_LAYERS * (N_LAYERS + 1) / 2);   /* more than two groups of 8 */
    store *st = scan_store_open(db, model_file, fx->m, es);
    if (!st) fail_msg("%s", rys_lasterr());
    assert_int_equal(scan_add_configs(st, cfgs, n, "scan"), 0);
    scan_run_opts ro = {false, false, 0, 0, NULL};
    scan_summary sum;
    if (scan_run(st, fx->m, fx->tok, es, fx->pool, cfgs, n, &ro, &sum)) fail_msg("%s", rys_lasterr());
    assert_int_equal(sum.done_now, n);
    assert_true(sum.layer_tokens_done < sum.layer_tokens_naive);
    store_close(st);
    sqlite3 *h;
    assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
    const objective_set *ob = evalset_objectives(es);
    for (int c = 0; c < n; c++) {
        validate_results alone;
        const char *name = cfgs[c].spec;
        if (objective_run(fx->m, fx->tok, fx->pool, ob, 1, &cfgs[c].path, &name, 1, false, NULL, false, &alone))
            fail_msg("%s", rys_lasterr());
        sqlite3_stmt *q;
        assert_int_equal(sqlite3_prepare_v2(h, "SELECT i.parsed, i.score FROM item i JOIN config c ON c.id = i.config_id "
                                               "WHERE c.path = ? AND i.item_key = '0'", -1, &q, NULL), SQLITE_OK);
        sqlite3_bind_text(q, 1, cfgs[c].key, -1, SQLITE_STATIC);
        assert_int_equal(sqlite3_step(q), SQLITE_ROW);
        const char *parsed = (const char *)sqlite3_column_text(q, 0), *lp = strstr(parsed, "\"logprob\": ");
        assert_non_null(lp);
        /* %.17g reads back the exact double */
        assert_true(strtod(lp + 11, NULL) == alone.r[0].docs[0].choices[0].logprob);
        assert_true(sqlite3_column_double(q, 1) == alone.r[0].docs[0].choices[0].logprob / 255);
        sqlite3_finalize(q);
        validate_results_free(&alone);
    }
    sqlite3_close(h);
    scan_free_configs(cfgs, n);
    evalset_free(es);
    test_remove_db(db);
    unlink(txt);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spelling),
        cmocka_unit_test(test_doc_score),
        cmocka_unit_test(test_ppl),
        cmocka_unit_test(test_scan_groups),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
