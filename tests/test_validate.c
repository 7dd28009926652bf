/* rys validate: the metrics and the paired test on hand-computed cases, the
 * batched evaluator (shared few-shot root, shared contexts, per-choice
 * contexts, baseline-state reuse for configurations) against one plain
 * forward per request, the store's resume after a kill between chunks, and
 * bad input. */
#include "testutil.h"
#define N_LAYERS 6
#define TINY_FIXTURE_LAYERS N_LAYERS
#include "tiny_loaded.h"

#include "engine/forward.h"
#include "engine/model.h"
#include "engine/path.h"
#include "base/pool.h"
#include "report/report.h"
#include "tasks/metrics.h"
#include "tasks/tasks.h"
#include "engine/tokenizer.h"
#include "base/util.h"
#include "validate/validate.h"
#include "validate/validate_store.h"

#include <math.h>
#include <sqlite3.h>
#include <string.h>
#include <sys/stat.h>


/* fontconfig (under cairo's text in the report figure) keeps its parsed
 * configuration for the life of the process; LeakSanitizer reads this hook */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void) { return "leak:libfontconfig.so\n"; }

/* ---- metrics ---------------------------------------------------------------- */

static choice_score cs(double lp, int n_tokens, int n_chars, double uncond) {
    choice_score c = {lp, n_tokens, n_chars, false, uncond, n_tokens, false};
    return c;
}

static void test_metric_predict(void **state) {
    (void)state;
    /* raw: -10 -8 -12 -8 -> first maximum is B (1), not D.
     * per char: -10/20=-0.5, -8/8=-1, -12/40=-0.3, -8/10=-0.8 -> C (2).
     * per token: -10/5=-2, -8/2=-4, -12/4=-3, -8/4=-2 -> A (0), tie with D.
     * uncond: -10+4=-6, -8+3=-5, -12+11=-1, -8+6=-2 -> C (2). */
    choice_score c[4] = {cs(-10, 5, 20, -4), cs(-8, 2, 8, -3), cs(-12, 4, 40, -11), cs(-8, 4, 10, -6)};
    assert_int_equal(metric_predict(METRIC_ACC_RAW, c, 4), 1);
    assert_int_equal(metric_predict(METRIC_ACC_PER_CHAR, c, 4), 2);
    assert_int_equal(metric_predict(METRIC_ACC_PER_TOKEN, c, 4), 0);
    assert_int_equal(metric_predict(METRIC_ACC_UNCOND, c, 4), 2);
    /* without unconditional scores acc_uncond is not defined */
    c[3].uncond_logprob = NAN;
    assert_int_equal(metric_predict(METRIC_ACC_UNCOND, c, 4), -1);
    assert_int_equal(metric_predict(METRIC_ACC_RAW, c, 0), -1);
    assert_int_equal(metric_from_name("acc_per_char"), METRIC_ACC_PER_CHAR);
    assert_int_equal(metric_from_name("acc_norm"), -1);
    assert_string_equal(metric_name(METRIC_ACC_UNCOND), "acc_uncond");
}

static void test_accuracy_stderr(void **state) {
    (void)state;
    /* 1,1,0,1,0: mean 0.6; sample variance (3*0.4^2 + 2*0.6^2)/4 = 0.3;
     * stderr sqrt(0.3)/sqrt(5) = sqrt(0.06) = 0.2449489742783178 */
    uint8_t c[5] = {1, 1, 0, 1, 0};
    double acc, se;
    accuracy_stderr(c, 5, &acc, &se);
    assert_true(fabs(acc - 0.6) < 1e-15);
    assert_true(fabs(se - 0.2449489742783178) < 1e-15);
    /* all equal: no spread; one document: 0 by convention */
    uint8_t ones[3] = {1, 1, 1};
    accuracy_stderr(ones, 3, &acc, &se);
    assert_true(acc == 1.0 && se == 0.0);
    accuracy_stderr(ones, 1, &acc, &se);
    assert_true(acc == 1.0 && se == 0.0);
}

static void test_mcnemar(void **state) {
    (void)state;
    /* p = min(1, 2 * sum_{i<=min(b,c)} C(b+c, i) / 2^(b+c)), computed with
     * Python's exact integers (math.comb, fractions.Fraction):
     * (8,2): 2*(1+10+45)/1024 = 0.109375; (0,6): 2/64 = 0.03125;
     * (1,12): 2*14/8192 = 0.00341796875; (1,3): 2*5/16 = 0.625;
     * (5,5): 2*638/1024 > 1 -> 1; (100,140): 0.011664092317677663. */
    assert_true(fabs(mcnemar_exact_p(8, 2) - 0.109375) < 1e-12);
    assert_true(fabs(mcnemar_exact_p(2, 8) - 0.109375) < 1e-12);
    assert_true(fabs(mcnemar_exact_p(0, 6) - 0.03125) < 1e-12);
    assert_true(fabs(mcnemar_exact_p(1, 12) - 0.00341796875) < 1e-12);
    assert_true(fabs(mcnemar_exact_p(1, 3) - 0.625) < 1e-12);
    assert_true(mcnemar_exact_p(5, 5) == 1.0);
    assert_true(mcnemar_exact_p(0, 0) == 1.0);
    assert_true(fabs(mcnemar_exact_p(100, 140) - 0.011664092317677663) < 1e-10);
}

static void test_bootstrap(void **state) {
    (void)state;
    enum { N = 400 };
    /* 40 documents right only along the configuration, 20 only along the
     * baseline, 340 agreeing: delta 0.05; per-document differences have
     * variance 60/400 - 0.05^2 = 0.1475, so the normal 95% interval is
     * 0.05 +- 1.96 sqrt(0.1475/400) = [0.01236, 0.08764]. 2000 resamples
     * land within a few thousandths of it. */
    static uint8_t base[N], cfg[N];
    for (int i = 0; i < N; i++) {
        base[i] = i >= 40 && i < 200;
        cfg[i] = i < 40 || (i >= 60 && i < 200);
    }
    paired_task t = {"big", base, cfg, N};
    double lo[2], hi[2], lo2[2], hi2[2];
    assert_int_equal(paired_bootstrap_ci(&t, 1, 2000, 1234, lo, hi), 0);
    assert_true(fabs(lo[0] - 0.01236) < 0.006);
    assert_true(fabs(hi[0] - 0.08764) < 0.006);
    /* fixed seed: the same interval again */
    assert_int_equal(paired_bootstrap_ci(&t, 1, 2000, 1234, lo2, hi2), 0);
    assert_true(lo[0] == lo2[0] && hi[0] == hi2[0]);
    /* one task entirely +1, one entirely 0: every replicate says so, and the
     * average is 0.5 in each */
    uint8_t zero[3] = {0, 0, 0}, one[3] = {1, 1, 1};
    paired_task two[2] = {{"a", zero, one, 3}, {"b", one, one, 3}};
    double l3[3], h3[3];
    assert_int_equal(paired_bootstrap_ci(two, 2, 500, 1, l3, h3), 0);
    assert_true(l3[0] == 1.0 && h3[0] == 1.0 && l3[1] == 0.0 && h3[1] == 0.0 && l3[2] == 0.5 && h3[2] == 0.5);
    /* two documents, differences 1 and 0: resampled means are 0, 0.5, 1
     * with probabilities 1/4, 1/2, 1/4, so the percentiles are the extremes */
    uint8_t b2[2] = {0, 0}, c2[2] = {1, 0};
    paired_task small = {"s", b2, c2, 2};
    assert_int_equal(paired_bootstrap_ci(&small, 1, 2000, 7, lo, hi), 0);
    assert_true(lo[0] == 0.0 && hi[0] == 1.0);
    paired_task empty = {"e", b2, c2, 0};
    assert_int_equal(paired_bootstrap_ci(&empty, 1, 10, 1, lo, hi), -1);

    /* scores in [0, 1]: 0/1 scores give exactly the correctness bootstrap's interval
     * (same generator, same resamples) */
    static double bs[N], cs[N];
    for (int i = 0; i < N; i++) bs[i] = base[i], cs[i] = cfg[i];
    double slo, shi;
    assert_int_equal(paired_bootstrap_ci(&t, 1, 2000, 1234, lo, hi), 0);
    assert_int_equal(paired_bootstrap_scores("big", bs, cs, N, 2000, 1234, &slo, &shi), 0);
    assert_true(slo == lo[0] && shi == hi[0]);
    /* every item gains exactly 0.25: every resample's mean difference is 0.25 */
    double half[3] = {0.5, 0.25, 0}, more[3] = {0.75, 0.5, 0.25};
    assert_int_equal(paired_bootstrap_scores("q", half, more, 3, 300, 9, &slo, &shi), 0);
    assert_true(slo == 0.25 && shi == 0.25);
    assert_int_equal(paired_bootstrap_scores("q", half, more, 0, 300, 9, &slo, &shi), -1);
}

/* ---- tasks built by hand ------------------------------------------------------ */

static void make_doc(task_doc *d, int i, const char *ctx, const char *const *ctxs, const char *const *conts, int n, int label,
                     const char *uncond) {
    char id[32];
    snprintf(id, sizeof id, "doc-%d", i);
    d->doc_id = xstrdup(id);
    d->n_choices = n;
    d->contexts = xcalloc((size_t)(n ? n : 1), sizeof *d->contexts);
    d->continuations = xcalloc((size_t)(n ? n : 1), sizeof *d->continuations);
    d->cont_chars = xcalloc((size_t)(n ? n : 1), sizeof *d->cont_chars);
    d->context = ctx ? xstrdup(ctx) : NULL;
    for (int k = 0; k < n; k++) {
        d->contexts[k] = ctx ? d->context : xstrdup(ctxs[k]);
        d->continuations[k] = xstrdup(conts[k]);
        d->cont_chars[k] = (int)strlen(conts[k]);   /* ASCII: characters = bytes */
    }
    d->uncond_context = uncond ? xstrdup(uncond) : NULL;
    d->label = label;
    d->line = 1 + i;
}

static void make_set(task_set *ts, const char *name, const char *metric, int n_docs) {
    memset(ts, 0, sizeof *ts);
    ts->name = xstrdup(name);
    ts->variant = xstrdup("tiny");
    char file[64];
    snprintf(file, sizeof file, "%s.jsonl", name);
    ts->file = xstrdup(file);
    ts->sha256 = xstrdup("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
    ts->primary_metric = xstrdup(metric);
    ts->n_docs = n_docs;
    ts->docs = xcalloc((size_t)n_docs, sizeof *ts->docs);
}

/* ARC-like: a few-shot prefix shared by all documents, a question, four
 * choices after one context, unconditional requests after "Answer:". */
static void arc_like(task_set *ts, int n_docs) {
    make_set(ts, "arc_tiny", "acc_per_char", n_docs);
    const char *shots = "Question: What is 2+2?\nAnswer: four\n\nQuestion: Color of the sky?\nAnswer: blue\n\n";
    for (int i = 0; i < n_docs; i++) {
        char ctx[256], c[4][32];
        snprintf(ctx, sizeof ctx, "%sQuestion: What comes after %d?\nAnswer:", shots, i * 7);
        snprintf(c[0], sizeof c[0], " %d", i * 7 + 1);
        snprintf(c[1], sizeof c[1], " %d", i * 7 + 2);
        snprintf(c[2], sizeof c[2], " a number");
        snprintf(c[3], sizeof c[3], " %d and more", i);
        const char *conts[4] = {c[0], c[1], c[2], c[3]};
        make_doc(&ts->docs[i], i, ctx, NULL, conts, 4 - i % 2, i % 3, "Answer:");
    }
}

/* Winogrande-like: the option sits in each choice's context, the
 * continuation is shared. */
static void wino_like(task_set *ts, int n_docs) {
    make_set(ts, "wino_tiny", "acc_raw", n_docs);
    for (int i = 0; i < n_docs; i++) {
        char a[128], b[128];
        snprintf(a, sizeof a, "The cup fell on the plate %d times because the cup", i);
        snprintf(b, sizeof b, "The cup fell on the plate %d times because the plate", i);
        const char *ctxs[2] = {a, b}, *conts[2] = {" was heavy.", " was heavy."};
        make_doc(&ts->docs[i], i, NULL, ctxs, conts, 2, i % 2, NULL);
    }
}

/* The reference: one fresh cache and one plain forward per request, the
 * log-softmax of every continuation token summed in double. */
static double ref_logprob(fixture *fx, const layer_path *p, const char *ctx, const char *cont, bool *greedy) {
    int32_t *a, *b;
    int na, nb;
    assert_int_equal(task_encode_pair(fx->tok, ctx, cont, true, &a, &na, &b, &nb), 0);
    int n = na + nb, V = fx->m->hp.n_vocab;
    int32_t *tok = xmalloc((size_t)n * sizeof *tok), *pos = xmalloc((size_t)n * sizeof *pos), *seq = xcalloc((size_t)n, sizeof *seq);
    memcpy(tok, a, (size_t)na * sizeof *a);
    memcpy(tok + na, b, (size_t)nb * sizeof *b);
    for (int i = 0; i < n; i++) pos[i] = i;
    float *lg = xmalloc((size_t)n * V * sizeof *lg);
    forward_ctx *f = forward_new(fx->m, p, 1, n, fx->pool);
    assert_non_null(f);
    fwd_batch fb = {n, tok, pos, seq, NULL};
    assert_int_equal(forward_batch(f, &fb, lg), n);
    double lp = 0;
    *greedy = true;
    for (int i = na - 1; i < n - 1; i++) {
        const float *row = lg + (size_t)i * V;
        int arg = 0;
        for (int v = 1; v < V; v++)
            if (row[v] > row[arg]) arg = v;
        double s = 0;
        for (int v = 0; v < V; v++) s += exp((double)row[v] - row[arg]);
        lp += (double)row[tok[i + 1]] - row[arg] - log(s);
        *greedy = *greedy && arg == tok[i + 1];
    }
    forward_free(f);
    free(a); free(b); free(tok); free(pos); free(seq); free(lg);
    return lp;
}

static void configs(fixture *fx, validate_config *c) {
    int N = fx->m->hp.n_layers;
    c[0].spec = "baseline";
    path_baseline(N, &c[0].path);
    c[1].spec = "blocks:2,4";               /* shares positions 0..3 with the baseline */
    assert_int_equal(path_from_blocks("2,4", N, &c[1].path), 0);
    c[2].spec = "layers:1-5";               /* shares nothing: runs from its first position */
    assert_int_equal(path_from_layers("1-5", N, &c[2].path), 0);
    c[3].spec = "blocks:1,6";               /* shares all N positions, then 1..5 again */
    assert_int_equal(path_from_blocks("1,6", N, &c[3].path), 0);
}

static void free_configs(validate_config *c, int n) {
    for (int i = 0; i < n; i++) path_free(&c[i].path);
}

static void test_run_equals_plain_forward(void **state) {
    fixture *fx = *state;
    task_set ts[2];
    arc_like(&ts[0], 9);
    wino_like(&ts[1], 5);
    validate_config cfg[4];
    configs(fx, cfg);
    validate_opts o = {NULL, NULL, true, false};
    validate_results r;
    assert_int_equal(validate_run(fx->m, fx->tok, fx->pool, ts, 2, cfg, 4, &o, &r), 0);
    int checked = 0;
    for (int c = 0; c < 4; c++)
        for (int k = 0; k < 2; k++) {
            const validate_task_result *tr = &r.r[c * 2 + k];
            assert_int_equal(tr->n_docs, ts[k].n_docs);
            for (int d = 0; d < ts[k].n_docs; d++) {
                const task_doc *D = &ts[k].docs[d];
                for (int ch = 0; ch < D->n_choices; ch++) {
                    const choice_score *s = &tr->docs[d].choices[ch];
                    bool g;
                    double lp = ref_logprob(fx, &cfg[c].path, D->contexts[ch], D->continuations[ch], &g);
                    if (fabs(lp - s->logprob) > 1e-4) fail_msg("%s %s doc %d choice %d: %.6f vs plain %.6f", cfg[c].spec, ts[k].name, d, ch, s->logprob, lp);
                    assert_int_equal(g, s->greedy);
                    assert_int_equal(s->n_chars, D->cont_chars[ch]);
                    if (D->uncond_context) {
                        lp = ref_logprob(fx, &cfg[c].path, D->uncond_context, D->continuations[ch], &g);
                        assert_true(fabs(lp - s->uncond_logprob) <= 1e-4);
                        assert_int_equal(g, s->uncond_greedy);
                    } else {
                        assert_true(isnan(s->uncond_logprob));
                    }
                    checked++;
                }
            }
        }
    assert_true(checked > 100);
    /* reuse: the blocks:2,4 path ran positions 4.. only (8 of 8 layers
     * naive would run), layers:1-5 every position */
    const validate_task_result *b24 = &r.r[1 * 2 + 0], *l15 = &r.r[2 * 2 + 0];
    assert_true(b24->layer_tokens_done < b24->layer_tokens_naive);
    assert_true(l15->layer_tokens_done > 0);
    /* without reuse the numbers are the same */
    validate_opts o2 = {NULL, NULL, false, false};
    validate_results r2;
    assert_int_equal(validate_run(fx->m, fx->tok, fx->pool, ts, 2, cfg, 4, &o2, &r2), 0);
    for (int c = 0; c < 4; c++)
        for (int k = 0; k < 2; k++)
            for (int d = 0; d < ts[k].n_docs; d++)
                for (int ch = 0; ch < ts[k].docs[d].n_choices; ch++)
                    assert_true(r.r[c * 2 + k].docs[d].choices[ch].logprob == r2.r[c * 2 + k].docs[d].choices[ch].logprob);
    validate_results_free(&r);
    validate_results_free(&r2);
    free_configs(cfg, 4);
    task_set_free(&ts[0]);
    task_set_free(&ts[1]);
}

static void test_summary(void **state) {
    (void)state;
    /* Ten documents, two choices; a document is right when its gold choice
     * (0) scores higher. Baseline right on 0-4, configuration on 0-3 and 5-7:
     * only baseline 1 (doc 4), only configuration 3 (5, 6, 7), so p =
     * 2*(1+4)/16 = 0.625; accuracies 0.5 and 0.7, delta +0.2; the
     * configuration's stderr sqrt(0.7*0.3*10/9)/sqrt(10) = 0.15275252316519466. */
    task_set ts;
    make_set(&ts, "sum_tiny", "acc_raw", 10);
    const char *conts[2] = {" yes", " no"};
    for (int i = 0; i < 10; i++) make_doc(&ts.docs[i], i, "Q", NULL, conts, 2, 0, NULL);
    validate_results r = {.n_cfgs = 2, .n_tasks = 1, .r = xcalloc(2, sizeof *r.r)};
    for (int c = 0; c < 2; c++) {
        r.r[c].n_docs = 10;
        r.r[c].docs = xcalloc(10, sizeof *r.r[c].docs);
        for (int d = 0; d < 10; d++) {
            bool right = c == 0 ? d < 5 : (d < 4 || (d >= 5 && d < 8));
            r.r[c].docs[d].n_choices = 2;
            r.r[c].docs[d].choices = xcalloc(2, sizeof(choice_score));
            r.r[c].docs[d].choices[0] = cs(right ? -1 : -2, 1, 4, NAN);
            r.r[c].docs[d].choices[1] = cs(right ? -2 : -1, 1, 3, NAN);
        }
    }
    validate_row rows[2];
    assert_int_equal(validate_summarize(&ts, 1, &r, 1, rows), 0);
    assert_true(fabs(rows[0].value - 0.7) < 1e-12 && fabs(rows[0].delta - 0.2) < 1e-12);
    assert_int_equal(rows[0].only_base, 1);
    assert_int_equal(rows[0].only_cfg, 3);
    assert_true(fabs(rows[0].p - 0.625) < 1e-12);
    assert_true(fabs(rows[0].stderr_ - 0.15275252316519466) < 1e-12);
    assert_true(rows[0].ci_lo <= 0.2 && rows[0].ci_hi >= 0.2);
    assert_true(isnan(rows[0].macro));
    /* the average of one task is that task; it has no McNemar p */
    assert_true(fabs(rows[1].value - 0.7) < 1e-12 && isnan(rows[1].p));
    /* acc_uncond cannot be computed without unconditional requests */
    free(ts.primary_metric);
    ts.primary_metric = xstrdup("acc_uncond");
    assert_int_equal(validate_summarize(&ts, 1, &r, 1, rows), -1);
    assert_non_null(strstr(rys_lasterr(), "sum_tiny.jsonl"));
    validate_results_free(&r);
    task_set_free(&ts);
}

/* ---- the store ------------------------------------------------------------------ */

/* Runs sql on the database file at path over a connection of its own (the
 * store hands none out): what a kill or a broken file would leave. */
static int raw_exec(const char *path, const char *sql) {
    sqlite3 *h;
    assert_int_equal(sqlite3_open(path, &h), SQLITE_OK);
    int rc = sqlite3_exec(h, sql, NULL, NULL, NULL);
    sqlite3_close(h);
    return rc;
}

static void test_store_resume(void **state) {
    fixture *fx = *state;
    const char *db_a = test_tmp_path("val-a.sqlite"), *db_b = test_tmp_path("val-b.sqlite");
    unlink(db_a);
    unlink(db_b);
    task_set ts;
    arc_like(&ts, VALIDATE_CHUNK + 8);     /* two chunks */
    validate_config cfg[4];
    configs(fx, cfg);               /* the baseline and blocks:2,4 are used */
    path_free(&cfg[2].path);
    path_free(&cfg[3].path);
    /* uninterrupted */
    validate_store *a = validate_store_open(db_a);
    assert_non_null(a);
    assert_int_equal(validate_store_identity(a, "/m/tiny.gguf", "aaaa", "llama", N_LAYERS), 0);
    validate_opts o = {a, NULL, true, false};
    validate_results ra;
    assert_int_equal(validate_run(fx->m, fx->tok, fx->pool, &ts, 1, cfg, 2, &o, &ra), 0);
    assert_int_equal(ra.r[1].docs_run, ts.n_docs);
    validate_store_close(a);

    /* killed after the first chunk of the configuration was committed:
     * the second chunk's rows are simply not there */
    validate_store *b = validate_store_open(db_b);
    assert_int_equal(validate_store_identity(b, "/m/tiny.gguf", "aaaa", "llama", N_LAYERS), 0);
    validate_opts ob = {b, NULL, true, false};
    validate_results rb;
    assert_int_equal(validate_run(fx->m, fx->tok, fx->pool, &ts, 1, cfg, 2, &ob, &rb), 0);
    validate_results_free(&rb);
    char sql[256];
    snprintf(sql, sizeof sql,
             "DELETE FROM val_doc WHERE config_id = 2 AND doc_index >= %d; DELETE FROM val_request WHERE config_id = 2 AND "
             "doc_id NOT IN (SELECT doc_id FROM val_doc WHERE config_id = 2)", VALIDATE_CHUNK);
    assert_int_equal(raw_exec(db_b, sql), SQLITE_OK);
    validate_store_close(b);

    /* resume: only the missing chunk is computed (the baseline reruns it for
     * its states without rewriting it) and every number is the same */
    b = validate_store_open(db_b);
    assert_int_equal(validate_store_identity(b, "/m/tiny.gguf", "aaaa", "llama", N_LAYERS), 0);
    ob.store = b;
    assert_int_equal(validate_run(fx->m, fx->tok, fx->pool, &ts, 1, cfg, 2, &ob, &rb), 0);
    assert_int_equal(rb.r[1].docs_run, 8);
    assert_int_equal(rb.r[0].docs_run, 8);
    for (int c = 0; c < 2; c++)
        for (int d = 0; d < ts.n_docs; d++)
            assert_memory_equal(ra.r[c].docs[d].choices, rb.r[c].docs[d].choices,
                                (size_t)ts.docs[d].n_choices * sizeof(choice_score));
    validate_results_free(&rb);
    /* a run with nothing missing computes nothing */
    assert_int_equal(validate_run(fx->m, fx->tok, fx->pool, &ts, 1, cfg, 2, &ob, &rb), 0);
    assert_int_equal(rb.r[0].docs_run + rb.r[1].docs_run, 0);
    validate_results_free(&rb);

    /* another model, another task file: refused, one line naming the file */
    assert_int_equal(validate_store_identity(b, "/m/other.gguf", "bbbb", "llama", N_LAYERS), -1);
    assert_non_null(strstr(rys_lasterr(), "another model"));
    free(ts.sha256);
    ts.sha256 = xstrdup("ffff");
    long long id;
    assert_int_equal(validate_store_task(b, &ts, &id), -1);
    assert_non_null(strstr(rys_lasterr(), "another data file"));
    assert_null(strchr(rys_lasterr(), '\n'));

    /* a failing save leaves nothing half-written */
    assert_int_equal(raw_exec(db_b, "DROP TABLE val_chunk"), SQLITE_OK);
    validate_chunk_stats st = {1, 2, 3};
    assert_int_equal(validate_store_save(b, 2, 1, &ts, 0, 4, ra.r[1].docs, &st), -1);
    validate_store_close(b);
    b = validate_store_open(db_b);    /* recreates val_chunk */
    validate_store_close(b);
    sqlite3 *h;
    sqlite3_stmt *q;
    assert_int_equal(sqlite3_open(db_b, &h), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(h, "SELECT count(*) FROM val_chunk", -1, &q, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(q, 0), 0);
    sqlite3_finalize(q);
    sqlite3_close(h);
    validate_results_free(&ra);
    free_configs(cfg, 2);
    task_set_free(&ts);
    unlink(db_a);
    unlink(db_b);
}

/* rys report recomputes the table from the store alone: the same numbers as
 * validate's own summary, a figure per configuration and a page section. */
static void test_report_section(void **state) {
    fixture *fx = *state;
    const char *db = test_tmp_path("val-report.sqlite"), *dir = test_tmp_path("val-report");
    unlink(db);
    task_set ts[2];
    arc_like(&ts[0], 12);
    wino_like(&ts[1], 6);
    validate_config cfg[4];
    configs(fx, cfg);
    validate_store *st = validate_store_open(db);
    assert_int_equal(validate_store_identity(st, "/m/tiny.gguf", "aaaa", "llama", N_LAYERS), 0);
    validate_opts o = {st, NULL, true, false};
    validate_results r;
    assert_int_equal(validate_run(fx->m, fx->tok, fx->pool, ts, 2, cfg, 2, &o, &r), 0);
    validate_store_close(st);
    validate_row rows[3];
    assert_int_equal(validate_summarize(ts, 2, &r, 1, rows), 0);
    report_validation *v;
    assert_int_equal(report_validation_load(db, &v), 1);
    assert_int_equal(v->n_cfg, 1);
    assert_string_equal(v->cfg[0].spec, "blocks:2,4");
    assert_int_equal(v->cfg[0].n_rows, 3);
    for (int k = 0; k < 3; k++) {
        const report_val_row *a = &v->cfg[0].row[k];
        assert_int_equal(a->n, rows[k].n);
        assert_true(a->value == rows[k].value && a->delta == rows[k].delta && a->stderr_ == rows[k].stderr_);
        assert_true(a->ci_lo == rows[k].ci_lo && a->ci_hi == rows[k].ci_hi);
        assert_true(k == 2 ? isnan(a->p) : a->p == rows[k].p);
    }
    assert_string_equal(v->cfg[0].row[0].task, "arc_tiny:tiny");
    report_validation_free(v);
    /* a database of validation results alone makes a report of that section */
    report_data *d = report_load(db);
    if (!d) fail_msg("%s", rys_lasterr());
    assert_int_equal(report_write(d, dir, 0, 5), 0);
    report_free(d);
    char path[512];
    struct stat sb;
    snprintf(path, sizeof path, "%s/validation_blocks_2_4.png", dir);
    assert_int_equal(stat(path, &sb), 0);
    snprintf(path, sizeof path, "%s/index.html", dir);
    char *html = read_file(path, NULL);
    assert_non_null(html);
    assert_non_null(strstr(html, "Standard benchmarks"));
    assert_non_null(strstr(html, "arc_tiny:tiny"));
    free(html);
    test_remove_dir(dir);
    /* no validation tables: nothing to show, no error */
    const char *empty = test_tmp_path("val-none.sqlite");
    sqlite3 *e;
    assert_int_equal(sqlite3_open(empty, &e), SQLITE_OK);
    assert_int_equal(sqlite3_exec(e, "CREATE TABLE t (x)", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(e);
    assert_int_equal(report_validation_load(empty, &v), 0);
    assert_null(v);
    unlink(empty);
    validate_results_free(&r);
    free_configs(cfg, 4);
    task_set_free(&ts[0]);
    task_set_free(&ts[1]);
    test_remove_db(db);
}

static void test_bad_input(void **state) {
    fixture *fx = *state;
    validate_config cfg[1];
    cfg[0].spec = "baseline";
    path_baseline(fx->m->hp.n_layers, &cfg[0].path);
    validate_opts o = {NULL, NULL, true, false};
    validate_results r;
    /* a document without choices: the error names the file and line */
    task_set ts;
    arc_like(&ts, 3);
    int n_choices = ts.docs[2].n_choices;
    ts.docs[2].n_choices = 0;
    assert_int_equal(validate_run(fx->m, fx->tok, fx->pool, &ts, 1, cfg, 1, &o, &r), -1);
    assert_non_null(strstr(rys_lasterr(), "arc_tiny.jsonl:3"));
    ts.docs[2].n_choices = n_choices;
    /* a label outside the choices */
    ts.docs[1].label = 7;
    assert_int_equal(validate_run(fx->m, fx->tok, fx->pool, &ts, 1, cfg, 1, &o, &r), -1);
    assert_non_null(strstr(rys_lasterr(), "arc_tiny.jsonl:2"));
    ts.docs[1].label = 0;
    /* a continuation that gives no token */
    free(ts.docs[0].continuations[1]);
    ts.docs[0].continuations[1] = xstrdup("");
    assert_int_equal(validate_run(fx->m, fx->tok, fx->pool, &ts, 1, cfg, 1, &o, &r), -1);
    assert_non_null(strstr(rys_lasterr(), "arc_tiny.jsonl:1"));
    task_set_free(&ts);
    /* a first path that is not the baseline */
    path_free(&cfg[0].path);
    assert_int_equal(path_from_blocks("2,4", fx->m->hp.n_layers, &cfg[0].path), 0);
    arc_like(&ts, 1);
    assert_int_equal(validate_run(fx->m, fx->tok, fx->pool, &ts, 1, cfg, 1, &o, &r), -1);
    task_set_free(&ts);
    path_free(&cfg[0].path);
    /* a file that is not a database */
    const char *db = test_garbage_db("val-garbage.sqlite");
    assert_null(validate_store_open(db));
    assert_non_null(strstr(rys_lasterr(), db));
    unlink(db);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_metric_predict), cmocka_unit_test(test_accuracy_stderr),
        cmocka_unit_test(test_mcnemar), cmocka_unit_test(test_bootstrap),
        cmocka_unit_test(test_run_equals_plain_forward), cmocka_unit_test(test_summary),
        cmocka_unit_test(test_store_resume), cmocka_unit_test(test_report_section),
        cmocka_unit_test(test_bad_input),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
