/* The pre-screen's statistics and block scores on hand-worked examples, the
 * scan order it gives, and its round trip through the store. The statistics
 * from real hidden states are checked against numpy in check_prescreen.py. */
#include "testutil.h"
#include "scan/prescreen.h"
#include "scan/scan.h"
#include "scan/store.h"
#include "base/util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void test_eff_rank(void **s) {
    (void)s;
    /* orthogonal rows of equal length: n equal singular values, rank n */
    double eye[4 * 6] = {0};
    for (int k = 0; k < 4; k++) eye[k * 6 + k] = 2.5;
    assert_true(fabs(prescreen_eff_rank(eye, 4, 6) - 4) < 1e-9);
    /* every row a multiple of one vector: one singular value, rank 1 */
    double one[3 * 2] = {1, 2, 2, 4, -3, -6};
    assert_true(fabs(prescreen_eff_rank(one, 3, 2) - 1) < 1e-6);
    /* orthogonal rows of lengths 3 and 4: weights 3/7 and 4/7 */
    double two[2 * 3] = {3, 0, 0, 0, 0, 4};
    double h = -(3.0 / 7 * log(3.0 / 7) + 4.0 / 7 * log(4.0 / 7));
    assert_true(fabs(prescreen_eff_rank(two, 2, 3) - exp(h)) < 1e-9);
    /* rows (1,1) and (1,-1) + (1,1): Gram [[2,2],[2,4]], eigenvalues 3 +- sqrt 5 */
    double skew[2 * 2] = {1, 1, 2, 0};
    double s1 = sqrt(3 + sqrt(5.0)), s2 = sqrt(3 - sqrt(5.0)), p1 = s1 / (s1 + s2), p2 = s2 / (s1 + s2);
    assert_true(fabs(prescreen_eff_rank(skew, 2, 2) - exp(-(p1 * log(p1) + p2 * log(p2)))) < 1e-9);
}

/* Four layers, worked by hand: change 1, 2, 4, 8; self_sim .9 .8 .7 .6;
 * variance 1, 2, 2, 8; eff_rank 1 1 1 1 (constant: z 0). */
static void test_block_scores(void **s) {
    (void)s;
    prescreen_layer L[4] = {{1, .9, 1, 1}, {2, .8, 2, 1}, {4, .7, 2, 1}, {8, .6, 8, 1}};
    /* population sd of change: mean 3.75, deviations -2.75 -1.75 .25 4.25 */
    double sd_c = sqrt((2.75 * 2.75 + 1.75 * 1.75 + .25 * .25 + 4.25 * 4.25) / 4);
    double sd_s = sqrt((.15 * .15 + .05 * .05 + .05 * .05 + .15 * .15) / 4);      /* mean .75 */
    double sd_v = sqrt((2.25 * 2.25 + 1.25 * 1.25 + 1.25 * 1.25 + 4.75 * 4.75) / 4); /* mean 3.25 */
    /* block (1,3) = layers 1 and 2: change 3, self_sim .75, variance 2 */
    double anomaly = (3 - 3.75) / (sd_c + 1e-10) - (.75 - .75) / (sd_s + 1e-10) + (2 - 3.25) / (sd_v + 1e-10) + 0;
    assert_true(fabs(prescreen_block_score(L, 4, 1, 3, PRESCREEN_ANOMALY) - anomaly) < 1e-9);
    /* stability of (1,3): deltas |2-1| |4-2| |8-4| = 1 2 4 (mean 7/3); the block's are layers 1, 2: 2 and 4 -> 3 */
    double md = 7.0 / 3, sd_d = sqrt(((1 - md) * (1 - md) + (2 - md) * (2 - md) + (4 - md) * (4 - md)) / 3);
    double stab = -1.5 * (3 - md) / (sd_d + 1e-10);
    /* growth of layers 1..3: 2/1, 2/2, 8/2 = 2 1 4, median 2; block's (layers 1, 2) mean 1.5, |1.5-2| = .5;
     * deviations 0 1 2 (mean 1, sd sqrt(2/3)) */
    stab += -(.5 - 1) / (sqrt(2.0 / 3) + 1e-10);
    /* no transition term (i <= 2); rank z 0 */
    assert_true(fabs(prescreen_block_score(L, 4, 1, 3, PRESCREEN_STABILITY) - stab) < 1e-9);
    assert_true(fabs(prescreen_block_score(L, 4, 1, 3, PRESCREEN_COMPOSITE) - (stab + anomaly) / 2) < 1e-9);
    /* a block ending at the last layer has no stability terms but the rank's */
    assert_true(fabs(prescreen_block_score(L, 4, 2, 4, PRESCREEN_STABILITY)) < 1e-9);
}

/* The transition term: i > 2 compares the block's change with the three layers before it. */
static void test_transition(void **s) {
    (void)s;
    prescreen_layer L[6] = {{9, .5, 1, 2}, {9, .5, 1, 2}, {9, .5, 1, 2}, {3, .5, 1, 2}, {3, .5, 1, 2}, {3, .5, 1, 2}};
    /* changes 9 9 9 3 3 3: deltas 0 0 6 0 0 (mean 1.2, sd 2.4); block (3,5): deltas of layers 3, 4 = 0 0;
     * variance constant: growth all 1, deviations 0 (z 0); transition 1 - 3/9 */
    double stab = -1.5 * (0 - 1.2) / (2.4 + 1e-10) + 0 + (1 - 3.0 / 9);
    assert_true(fabs(prescreen_block_score(L, 6, 3, 5, PRESCREEN_STABILITY) - stab) < 1e-9);
}

static void test_scan_order(void **s) {
    (void)s;
    scan_sweep sw = {0};
    scan_config *c;
    int n;
    assert_int_equal(scan_build_configs(4, &sw, &c, &n), 0);
    assert_int_equal(n, 11);
    store_prescreen_block b[3] = {{2, 4, 5.0}, {0, 1, 3.0}, {1, 3, 1.0}};
    scan_order_by_prescreen(c, n, b, 3);
    assert_string_equal(c[0].spec, "baseline");
    assert_string_equal(c[1].spec, "blocks:2,4");
    assert_string_equal(c[2].spec, "blocks:0,1");
    assert_string_equal(c[3].spec, "blocks:1,3");
    /* the rest keep the sweep's row order */
    const char *rest[] = {"blocks:0,2", "blocks:0,3", "blocks:0,4", "blocks:1,2", "blocks:1,4", "blocks:2,3", "blocks:3,4"};
    for (int k = 0; k < 7; k++) assert_string_equal(c[4 + k].spec, rest[k]);
    scan_free_configs(c, n);
}

static void test_store_round_trip(void **s) {
    (void)s;
    const char *path = test_tmp_path("prescreen.sqlite");
    unlink(path);
    store *st = store_open(path);
    assert_non_null(st);
    store_prescreen_block *got;
    int n;
    char *about;
    assert_int_equal(store_prescreen_get(st, &got, &n, &about), 0);   /* none yet: no tables */
    assert_int_equal(n, 0);
    store_prescreen_block b[4] = {{1, 3, 0.5}, {0, 2, 2.0}, {2, 3, 0.5}, {0, 1, -1.0}};
    assert_int_equal(store_prescreen_save(st, "{\"method\":\"composite\"}", b, 4), 0);
    assert_int_equal(store_prescreen_get(st, &got, &n, &about), 0);
    assert_int_equal(n, 4);
    /* best first, ties by i then j */
    int want[4][2] = {{0, 2}, {1, 3}, {2, 3}, {0, 1}};
    for (int k = 0; k < 4; k++) {
        assert_int_equal(got[k].i, want[k][0]);
        assert_int_equal(got[k].j, want[k][1]);
    }
    assert_string_equal(about, "{\"method\":\"composite\"}");
    free(got);
    free(about);
    /* a second save replaces the first */
    assert_int_equal(store_prescreen_save(st, "{}", b, 1), 0);
    assert_int_equal(store_prescreen_get(st, &got, &n, NULL), 0);
    assert_int_equal(n, 1);
    free(got);
    store_close(st);
    unlink(path);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_eff_rank), cmocka_unit_test(test_block_scores), cmocka_unit_test(test_transition),
        cmocka_unit_test(test_scan_order), cmocka_unit_test(test_store_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
