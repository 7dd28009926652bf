/* surrogate: Spearman and the holdout by hand; training on a store whose
 * scores are a known function of the traversal counts; the file's round trip;
 * the candidates' constraints and reproducibility; the ranking against a
 * brute-force ranking of the same predictions; the fit the store keeps. */
#include "search/surrogate.h"
#include "base/stats.h"
#include "scan/store.h"
#include "engine/path.h"
#include "base/util.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#define NL 8
static char dir[64], db[128];

static void test_spearman(void **state) {
    (void)state;
    /* no ties: rho = 1 - 6 sum d^2 / (n (n^2 - 1)); ranks a 1..5, b 2,1,4,3,5: sum d^2 = 4 -> 1 - 24/120 = 0.8 */
    double a[5] = {10, 20, 30, 40, 50}, b[5] = {2, 1, 4, 3, 5};
    assert_true(fabs(stat_spearman(a, b, 5) - 0.8) < 1e-12);
    double rb[5];
    for (int k = 0; k < 5; k++) rb[k] = -b[k];
    assert_true(fabs(stat_spearman(a, rb, 5) + 0.8) < 1e-12);
    /* ties: c = 1,2,2,3 has ranks 1, 2.5, 2.5, 4; d = 1,2,3,4 ranks 1..4.
     * Pearson of (1,2.5,2.5,4) and (1,2,3,4): means 2.5; sum xy dev = (-1.5)(-1.5) + 0 + 0 + (1.5)(1.5) = 4.5;
     * sum x dev^2 = 4.5, sum y dev^2 = 5 -> 4.5 / sqrt(22.5) = 0.9486832980505138 */
    double c[4] = {1, 2, 2, 3}, d[4] = {1, 2, 3, 4}, r[4];
    stat_ranks(c, 4, r);
    assert_true(r[0] == 1 && r[1] == 2.5 && r[2] == 2.5 && r[3] == 4);
    assert_true(fabs(stat_spearman(c, d, 4) - 0.9486832980505138) < 1e-12);
    /* three-way tie: 5,5,5,1 -> ranks 3,3,3,1 */
    double e[4] = {5, 5, 5, 1};
    stat_ranks(e, 4, r);
    assert_true(r[0] == 3 && r[1] == 3 && r[2] == 3 && r[3] == 1);
    /* constant side or too few rows: undefined */
    double k3[3] = {1, 1, 1};
    assert_true(isnan(stat_spearman(k3, a, 3)));
    assert_true(isnan(stat_spearman(a, b, 1)));
    assert_true(fabs(stat_mae(a, b, 2) - (8 + 19) / 2.0) < 1e-12);
}

static void test_holdout(void **state) {
    (void)state;
    enum { N = 200 };
    double y[N];
    bool h[N], h2[N];
    for (int k = 0; k < N; k++) y[k] = (k * 37) % N;   /* a permutation of 0..199 */
    int n = sur_holdout(y, N, 0.05, 7, h);
    assert_int_equal(n, 10);
    int cnt = 0;
    for (int k = 0; k < N; k++) cnt += h[k];
    assert_int_equal(cnt, 10);
    /* 10 bins of 20 rows by value: 0.05 * 20 = 1 from each */
    int per_bin[10] = {0};
    for (int k = 0; k < N; k++) if (h[k]) per_bin[(int)y[k] / 20]++;
    for (int b = 0; b < 10; b++) assert_int_equal(per_bin[b], 1);
    /* the same seed, the same rows; another seed, others */
    assert_int_equal(sur_holdout(y, N, 0.05, 7, h2), 10);
    assert_memory_equal(h, h2, sizeof h);
    sur_holdout(y, N, 0.05, 8, h2);
    assert_true(memcmp(h, h2, sizeof h) != 0);
    /* 30 rows: round(1.5) = 2 held out, from 2 bins of 15 (floor 0.75 = 0 each, the rest by remainder) */
    assert_int_equal(sur_holdout(y, 30, 0.05, 1, h), 2);
    assert_int_equal(sur_holdout(y, 2, 0.05, 1, h), 0);
}

/* The synthetic truth: math rises with layer 3's traversals, EQ with layer 5's and falls with layer 1's. */
static double math_of(const int *c) { return 0.40 + 0.06 * (c[3] - 1) - 0.01 * (c[6] - 1); }
static double eq_of(const int *c) { return 0.50 + 0.05 * (c[5] - 1) - 0.03 * (c[1] - 1); }

/* A store of `rows` random count-vector paths (and the baseline) scored by
 * the truth above: math and EQ sets, or with_eq false a math set alone. */
static void make_store_sets(const char *path, const char *sha, int rows, bool with_eq) {
    unlink(path);
    store *st = store_open(path);
    assert_non_null(st);
    store_probe pr[2] = {{"m", "/m.json", "aa", "math", 4}, {"e", "/e.json", "bb", "eq", 4}};
    int n_sets = with_eq ? 2 : 1;
    store_identity id = {"/tiny.gguf", sha, "llama", NL, pr, n_sets, "{}"};
    assert_int_equal(store_set_identity(st, &id), 0);
    sur_rng g = {123};
    for (int k = 0; k <= rows; k++) {
        int c[NL];
        for (int l = 0; l < NL; l++) c[l] = 1 + (k ? sur_rng_below(&g, 4) : 0);
        layer_path p;
        assert_int_equal(path_from_counts(c, NL, &p), 0);
        char *canon = path_canonical(&p);
        char spec[64];
        snprintf(spec, sizeof spec, k ? "counts:%d" : "baseline", k);
        store_config sc = {spec, canon, -1, -1, path_extra_layers(&p), k, k ? "paths" : "scan"};
        if (store_add_configs(st, &sc, 1)) fail_msg("%s", rys_lasterr());
        const char *names[2] = {"m", "e"};
        double scores[2] = {math_of(c), eq_of(c)};
        store_result r = {canon, 1, 1, 1, 1, 1, names, scores, n_sets, NULL, 0};
        assert_int_equal(store_save_result(st, &r), 0);
        free(canon);
        path_free(&p);
    }
    store_close(st);
}

static void make_store(const char *path, const char *sha, int rows) { make_store_sets(path, sha, rows, true); }

static int setup(void **state) {
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/rys-test-surrogate-XXXXXX");
    if (!mkdtemp(dir)) return -1;
    snprintf(db, sizeof db, "%s/scan.sqlite", dir);
    make_store(db, "cafe", 300);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd);
}

static const sur_train_opts topts = {0.05, 42, 0.60, 3, 1, 8, NULL};

static void test_rows(void **state) {
    (void)state;
    sur_rows r;
    assert_int_equal(sur_rows_load(db, &r), 0);
    assert_int_equal(r.n, 301);
    assert_int_equal(r.n_layers, NL);
    assert_string_equal(r.model_sha256, "cafe");
    /* the baseline is row 0 (sweep order): counts all 1, deltas 0 */
    for (int l = 0; l < NL; l++) assert_true(r.x[l] == 1);
    assert_true(r.y[SUR_MATH][0] == 0 && r.y[SUR_EQ][0] == 0);
    /* row k's deltas are the truth minus the baseline's; balanced = z(math) + z(EQ) over the non-baseline rows */
    double mm = 0, me = 0, sm = 0, se = 0;
    for (int k = 1; k < r.n; k++) mm += r.y[SUR_MATH][k], me += r.y[SUR_EQ][k];
    mm /= r.n - 1;
    me /= r.n - 1;
    for (int k = 1; k < r.n; k++) sm += pow(r.y[SUR_MATH][k] - mm, 2), se += pow(r.y[SUR_EQ][k] - me, 2);
    sm = sqrt(sm / (r.n - 1));
    se = sqrt(se / (r.n - 1));
    int base[NL];
    for (int l = 0; l < NL; l++) base[l] = 1;
    for (int k = 0; k < r.n; k++) {
        int c[NL];
        for (int l = 0; l < NL; l++) c[l] = (int)r.x[(size_t)k * NL + l];
        assert_true(fabs(r.y[SUR_MATH][k] - (math_of(c) - math_of(base))) < 1e-12);
        assert_true(fabs(r.y[SUR_EQ][k] - (eq_of(c) - eq_of(base))) < 1e-12);
        double z = (r.y[SUR_MATH][k] - mm) / sm + (r.y[SUR_EQ][k] - me) / se;
        assert_true(fabs(r.y[SUR_BALANCED][k] - z) < 1e-9);
    }
    sur_rows_free(&r);
}

static void test_train_save_load(void **state) {
    (void)state;
    sur_rows r;
    assert_int_equal(sur_rows_load(db, &r), 0);
    surrogate s, s2;
    if (sur_train(&r, db, &topts, &s)) fail_msg("%s", rys_lasterr());
    /* a smooth truth of two layers each: the trees rank the holdout nearly perfectly */
    assert_true(s.gate_passed);
    assert_int_equal(s.trial, 1);
    assert_int_equal(s.n_holdout, 15);
    assert_int_equal(s.n_train + s.n_holdout, 301);
    for (int t = 0; t < SUR_N_TARGETS; t++) assert_true(s.spearman[t] > 0.9);
    /* metrics recomputed from the kept holdout predictions */
    assert_true(fabs(s.spearman[SUR_BALANCED] - stat_spearman(s.hold_y[SUR_BALANCED], s.hold_pred[SUR_BALANCED], s.n_holdout)) < 1e-12);
    assert_true(fabs(s.mae[SUR_MATH] - stat_mae(s.hold_y[SUR_MATH], s.hold_pred[SUR_MATH], s.n_holdout)) < 1e-12);
    /* the best anchor is a best measured row: no row has a higher balanced score */
    double best = -INFINITY;
    for (int k = 0; k < r.n; k++) best = fmax(best, r.y[SUR_BALANCED][k]);
    for (int k = 0; k < r.n; k++) {
        if (r.y[SUR_BALANCED][k] != best) continue;
        for (int l = 0; l < NL; l++) assert_int_equal(s.anchors[l], (int)r.x[(size_t)k * NL + l]);
        break;
    }
    char path[192];
    snprintf(path, sizeof path, "%s/s.json", dir);
    assert_int_equal(sur_save(&s, path), 0);
    if (sur_load(path, &s2)) fail_msg("%s", rys_lasterr());
    assert_int_equal(s2.n_layers, NL);
    assert_string_equal(s2.model_sha256, "cafe");
    assert_true(s2.gate_passed);
    assert_int_equal(s2.n_anchors, 8);
    assert_memory_equal(s2.anchors, s.anchors, 8 * NL * sizeof *s.anchors);
    /* the loaded boosters predict exactly what the trained ones do, whatever the thread count */
    float *p1 = malloc((size_t)r.n * sizeof *p1), *p2 = malloc((size_t)r.n * sizeof *p2);
    for (int t = 0; t < SUR_N_TARGETS; t++) {
        assert_int_equal(sur_predict(&s, t, r.x, r.n, 1, p1), 0);
        assert_int_equal(sur_predict(&s2, t, r.x, r.n, 2, p2), 0);
        assert_memory_equal(p1, p2, (size_t)r.n * sizeof *p1);
    }
    /* training again gives the same boosters' predictions */
    surrogate s3;
    assert_int_equal(sur_train(&r, db, &topts, &s3), 0);
    assert_int_equal(sur_predict(&s3, SUR_BALANCED, r.x, r.n, 1, p2), 0);
    assert_int_equal(sur_predict(&s, SUR_BALANCED, r.x, r.n, 1, p1), 0);
    assert_memory_equal(p1, p2, (size_t)r.n * sizeof *p1);
    free(p1);
    free(p2);
    sur_free(&s3);
    sur_free(&s2);
    /* a gate no fit can pass: every preset tried, the best kept, marked as failed */
    sur_train_opts hard = topts;
    hard.gate = 1.01;
    assert_int_equal(sur_train(&r, db, &hard, &s3), 0);
    assert_false(s3.gate_passed);
    assert_int_equal(s3.n_trials, SUR_N_PRESETS);
    for (int k = 0; k < SUR_N_PRESETS; k++) assert_true(s3.spearman[SUR_BALANCED] >= s3.trial_spearman[k]);
    sur_free(&s3);
    /* the fit the store keeps for the report */
    store *st = store_open(db);
    store_surrogate_target tg[SUR_N_TARGETS];
    for (int t = 0; t < SUR_N_TARGETS; t++)
        tg[t] = (store_surrogate_target){sur_target_name[t], s.spearman[t], s.mae[t], s.n_train, s.n_holdout, s.gate_passed,
                                         (const char *const *)s.hold_paths, s.hold_y[t], s.hold_pred[t]};
    assert_int_equal(store_save_surrogate(st, tg, SUR_N_TARGETS), 0);
    assert_int_equal(store_save_surrogate(st, tg, SUR_N_TARGETS), 0);   /* replaced, not doubled */
    store_close(st);
    st = store_open_readonly(db);
    store_surrogate_fit *f;
    int nf;
    assert_int_equal(store_surrogate_fits(st, &f, &nf), 0);
    assert_int_equal(nf, 3);
    assert_string_equal(f[2].target, "balanced");
    assert_int_equal(f[2].n_holdout, s.n_holdout);
    assert_true(fabs(f[2].spearman - s.spearman[SUR_BALANCED]) < 1e-12);
    /* rows come sorted by measured value: their Spearman is the stored one */
    assert_true(fabs(stat_spearman(f[2].measured, f[2].predicted, f[2].n_holdout) - f[2].spearman) < 1e-12);
    for (int k = 1; k < f[2].n_holdout; k++) assert_true(f[2].measured[k - 1] <= f[2].measured[k]);
    store_surrogate_fits_free(f, nf);
    store_close(st);
    /* an undefined Spearman (a constant side) is kept as undefined, not as 0 */
    st = store_open(db);
    tg[0].spearman = NAN;
    assert_int_equal(store_save_surrogate(st, tg, SUR_N_TARGETS), 0);
    assert_int_equal(store_surrogate_fits(st, &f, &nf), 0);
    assert_true(isnan(f[0].spearman));
    assert_false(isnan(f[1].spearman));
    store_surrogate_fits_free(f, nf);
    store_close(st);
    sur_free(&s);
    sur_rows_free(&r);
}

/* A scan with a math set alone (as `rys scan --probes probes/math_16.json`):
 * no EQ target, balanced is the math delta's z-score (the report's balanced
 * score of such a scan); training, the file, the store's fit and ranking
 * work on the two targets. */
static void test_math_only(void **state) {
    (void)state;
    char mdb[160], path[192];
    snprintf(mdb, sizeof mdb, "%s/math.sqlite", dir);
    snprintf(path, sizeof path, "%s/m.json", dir);
    make_store_sets(mdb, "cafe", 300, false);
    sur_rows r;
    if (sur_rows_load(mdb, &r)) fail_msg("%s", rys_lasterr());
    assert_null(r.eq_probe);
    assert_int_equal(r.n, 301);
    /* z-scores over the configurations (not the baseline), population deviation, by hand */
    double m = 0, ss = 0;
    for (int k = 1; k < r.n; k++) m += r.y[SUR_MATH][k];
    m /= r.n - 1;
    for (int k = 1; k < r.n; k++) ss += pow(r.y[SUR_MATH][k] - m, 2);
    double sd = sqrt(ss / (r.n - 1));
    for (int k = 0; k < r.n; k++) {
        assert_true(r.y[SUR_EQ][k] == 0);
        assert_true(fabs(r.y[SUR_BALANCED][k] - (r.y[SUR_MATH][k] - m) / sd) < 1e-9);
    }
    surrogate s, s2;
    if (sur_train_store(mdb, &topts, &s)) fail_msg("%s", rys_lasterr());
    assert_null(s.eq_probe);
    assert_false(sur_has_target(&s, SUR_EQ));
    assert_true(sur_has_target(&s, SUR_MATH) && sur_has_target(&s, SUR_BALANCED));
    assert_null(s.booster[SUR_EQ]);
    assert_true(isnan(s.spearman[SUR_EQ]));
    assert_true(s.gate_passed);
    assert_true(s.spearman[SUR_MATH] > 0.9 && s.spearman[SUR_BALANCED] > 0.9);
    assert_int_equal(sur_save(&s, path), 0);
    if (sur_load(path, &s2)) fail_msg("%s", rys_lasterr());
    assert_null(s2.eq_probe);
    assert_false(sur_has_target(&s2, SUR_EQ));
    assert_null(s2.booster[SUR_EQ]);
    assert_true(fabs(s2.spearman[SUR_MATH] - s.spearman[SUR_MATH]) < 1e-12);
    float *p1 = malloc((size_t)r.n * sizeof *p1), *p2 = malloc((size_t)r.n * sizeof *p2);
    assert_int_equal(sur_predict(&s, SUR_BALANCED, r.x, r.n, 1, p1), 0);
    assert_int_equal(sur_predict(&s2, SUR_BALANCED, r.x, r.n, 1, p2), 0);
    assert_memory_equal(p1, p2, (size_t)r.n * sizeof *p1);
    free(p1);
    free(p2);
    /* the store keeps the two fits, balanced last (the report reads it as the gate's) */
    store *st = store_open_readonly(mdb);
    store_surrogate_fit *f;
    int nf;
    assert_int_equal(store_surrogate_fits(st, &f, &nf), 0);
    assert_int_equal(nf, 2);
    assert_string_equal(f[0].target, "math_delta");
    assert_string_equal(f[1].target, "balanced");
    store_surrogate_fits_free(f, nf);
    store_close(st);
    /* ranking: an EQ floor no prediction could meet is ignored without an EQ target */
    enum { N = 2000, TOP = 10 };
    sur_cand_opts co = {NL, N, 12, 6, 0.45, 8, 5};
    uint8_t *c = malloc((size_t)N * NL);
    sur_candidates(&co, s2.anchors, s2.n_anchors, c);
    sur_rank_opts ro = {0.5, -1e9, 1e9, TOP, 1};
    int64_t best[TOP];
    double sc[TOP];
    assert_int_equal(sur_rank(&s2, &co, c, NULL, 0, &ro, best, sc, NULL), TOP);
    for (int k = 1; k < TOP; k++) assert_true(sc[k - 1] >= sc[k]);
    free(c);
    sur_free(&s2);
    sur_free(&s);
    sur_rows_free(&r);
}

/* What a stopped pipeline's surrogate stage has left to measure: the rows
 * the surrogate proposed that are not done, in the order proposed. */
static void test_unfinished_picks(void **state) {
    (void)state;
    char pdb[160];
    snprintf(pdb, sizeof pdb, "%s/picks.sqlite", dir);
    make_store(pdb, "cafe", 5);
    store *st = store_open(pdb);
    assert_non_null(st);
    layer_path p;
    const int picks[3][NL] = {{1, 1, 1, 9, 1, 1, 1, 1}, {1, 9, 1, 1, 1, 1, 1, 1}, {1, 1, 1, 1, 1, 1, 9, 1}};
    char *canon[3], spec[3][64];
    for (int k = 0; k < 3; k++) {
        assert_int_equal(path_from_counts(picks[k], NL, &p), 0);
        canon[k] = path_canonical(&p);
        snprintf(spec[k], sizeof spec[k], "counts:pick%d", k);
        store_config sc = {spec[k], canon[k], -1, -1, path_extra_layers(&p), 1000 + k, "surrogate"};
        assert_int_equal(store_add_configs(st, &sc, 1), 0);
        path_free(&p);
    }
    /* the second is measured, the third left running by a kill */
    const char *names[2] = {"m", "e"};
    double scores[2] = {0.4, 0.5};
    store_result r = {canon[1], 1, 1, 1, 1, 1, names, scores, 2, NULL, 0};
    assert_int_equal(store_save_result(st, &r), 0);
    assert_int_equal(store_mark_running(st, canon[2]), 0);
    char **left;
    int n;
    assert_int_equal(store_unfinished_specs(st, "surrogate", &left, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(left[0], "counts:pick0");
    assert_string_equal(left[1], "counts:pick2");
    store_specs_free(left, n);
    assert_int_equal(store_unfinished_specs(st, "beam", &left, &n), 0);
    assert_int_equal(n, 0);
    store_specs_free(left, n);
    for (int k = 0; k < 3; k++) free(canon[k]);
    store_close(st);
}

static void test_candidates(void **state) {
    (void)state;
    enum { N = 20000 };
    int anchors[2 * NL] = {1, 1, 1, 4, 1, 4, 1, 1, 8, 8, 8, 8, 8, 8, 8, 8};
    sur_cand_opts o = {NL, N, 6, 4, 0.45, 8, 99};
    uint8_t *a = malloc((size_t)N * NL), *b = malloc((size_t)N * NL);
    sur_candidates(&o, anchors, 2, a);
    sur_candidates(&o, anchors, 2, b);
    assert_memory_equal(a, b, (size_t)N * NL);
    int hist_extra[7] = {0}, at_anchor = 0;
    for (int k = 0; k < N; k++) {
        int extra = -NL;
        for (int l = 0; l < NL; l++) {
            assert_true(a[(size_t)k * NL + l] >= 1 && a[(size_t)k * NL + l] <= 4);
            extra += a[(size_t)k * NL + l];
        }
        assert_true(extra >= 0 && extra <= 6);
        hist_extra[extra]++;
        /* one step from anchor 1 (1,1,1,4,1,4,1,1): layers 3 and 5 at 3 or 4 */
        if (a[(size_t)k * NL + 3] >= 3 && a[(size_t)k * NL + 5] >= 3) at_anchor++;
    }
    /* random vectors spread their extra count uniformly over 0..6; mutations add more mass */
    for (int e = 0; e < 7; e++) assert_true(hist_extra[e] > N / 20);
    assert_true(at_anchor > N / 20);
    o.seed = 100;
    sur_candidates(&o, anchors, 2, b);
    assert_true(memcmp(a, b, (size_t)N * NL) != 0);
    free(a);
    free(b);
}

static void test_rank(void **state) {
    (void)state;
    sur_rows r;
    assert_int_equal(sur_rows_load(db, &r), 0);
    surrogate s;
    assert_int_equal(sur_train(&r, db, &topts, &s), 0);
    enum { N = 5000, TOP = 40 };
    sur_cand_opts co = {NL, N, 12, 6, 0.45, 8, 5};
    uint8_t *c = malloc((size_t)N * NL);
    sur_candidates(&co, s.anchors, s.n_anchors, c);
    /* exclude the first measured row that is not the baseline */
    int ex[NL];
    for (int l = 0; l < NL; l++) ex[l] = (int)r.x[NL + l];
    sur_rank_opts ro = {0.5, -0.05, -0.05, TOP, 2};
    int64_t best[TOP], best2[TOP];
    double sc[TOP], sc2[TOP];
    int n = sur_rank(&s, &co, c, ex, 1, &ro, best, sc, NULL);
    assert_int_equal(n, TOP);
    ro.n_threads = 1;
    assert_int_equal(sur_rank(&s, &co, c, ex, 1, &ro, best2, sc2, NULL), TOP);
    assert_memory_equal(best, best2, sizeof best);
    /* brute force: every candidate's three predictions, filtered, scored, best first, duplicates dropped */
    float *x = malloc((size_t)N * NL * sizeof *x), *pb = malloc(N * sizeof *pb), *pm = malloc(N * sizeof *pm), *pe = malloc(N * sizeof *pe);
    for (size_t q = 0; q < (size_t)N * NL; q++) x[q] = c[q];
    assert_int_equal(sur_predict(&s, SUR_BALANCED, x, N, 1, pb), 0);
    assert_int_equal(sur_predict(&s, SUR_MATH, x, N, 1, pm), 0);
    assert_int_equal(sur_predict(&s, SUR_EQ, x, N, 1, pe), 0);
    int got = 0;
    bool *used = calloc(N, sizeof *used);
    while (got < TOP) {
        int bi = -1;
        double bs = -INFINITY;
        for (int k = 0; k < N; k++) {
            if (used[k]) continue;
            int extra = -NL;
            for (int l = 0; l < NL; l++) extra += c[(size_t)k * NL + l];
            double v = pb[k] - 0.5 * extra / NL;
            if (v > bs) { bs = v; bi = k; }
        }
        assert_true(bi >= 0);
        used[bi] = true;
        /* duplicates score alike, so the first one picked (the earliest) decides for all, kept or filtered */
        bool dup = false, base = true, excluded = true;
        for (int k = 0; k < N && !dup; k++) dup = used[k] && k != bi && !memcmp(c + (size_t)k * NL, c + (size_t)bi * NL, NL);
        for (int l = 0; l < NL; l++) base &= c[(size_t)bi * NL + l] == 1, excluded &= c[(size_t)bi * NL + l] == ex[l];
        if (dup || base || excluded || pm[bi] < -0.05 || pe[bi] < -0.05) continue;
        assert_int_equal(best[got], bi);
        assert_true(fabs(sc[got] - bs) < 1e-12);
        got++;
    }
    free(used);
    free(x);
    free(pb);
    free(pm);
    free(pe);
    free(c);
    sur_free(&s);
    sur_rows_free(&r);
}

static void test_refusals(void **state) {
    (void)state;
    char p[192];
    surrogate s;
    snprintf(p, sizeof p, "%s/bad.json", dir);
    FILE *f = fopen(p, "w");
    fputs("{\"format\": \"something-else\"}", f);
    fclose(f);
    assert_int_equal(sur_load(p, &s), -1);
    assert_non_null(strstr(rys_lasterr(), "not a rys surrogate file"));
    f = fopen(p, "w");
    fputs("not json", f);
    fclose(f);
    assert_int_equal(sur_load(p, &s), -1);
    assert_non_null(strstr(rys_lasterr(), "not a surrogate file"));
    /* too few rows to train on */
    snprintf(p, sizeof p, "%s/small.sqlite", dir);
    make_store(p, "beef", 10);
    sur_rows r;
    assert_int_equal(sur_rows_load(p, &r), 0);
    assert_int_equal(sur_train(&r, p, &topts, &s), -1);
    assert_non_null(strstr(rys_lasterr(), "at least 20"));
    sur_rows_free(&r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spearman),
        cmocka_unit_test(test_holdout),
        cmocka_unit_test(test_rows),
        cmocka_unit_test(test_train_save_load),
        cmocka_unit_test(test_math_only),
        cmocka_unit_test(test_unfinished_picks),
        cmocka_unit_test(test_candidates),
        cmocka_unit_test(test_rank),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
