/* Layer path grammar against the hand-expanded examples of the RYS reference. */
#include "testutil.h"
#include "engine/path.h"
#include "base/util.h"

#include <string.h>

static void expect_path(const char *blocks, const char *layers, int n_model, const int *want, int n_want) {
    layer_path p;
    assert_int_equal(path_from_specs(blocks, layers, n_model, &p), 0);
    assert_int_equal(p.n, n_want);
    for (int i = 0; i < n_want; i++) assert_int_equal(p.layers[i], want[i]);
    path_free(&p);
}

static void expect_error(const char *blocks, const char *layers, int n_model, const char *needle) {
    layer_path p;
    assert_int_equal(path_from_specs(blocks, layers, n_model, &p), -1);
    if (!strstr(rys_lasterr(), needle)) fail_msg("error '%s' lacks '%s'", rys_lasterr(), needle);
}

static void test_single_block(void **s) {
    (void)s;
    const int w[] = {0, 1, 2, 3, 4, 5, 6, 2, 3, 4, 5, 6, 7, 8};  /* reference: N=9, (2,7) */
    expect_path("2,7", NULL, 9, w, 14);
}

static void test_multi_block(void **s) {
    (void)s;
    const int w[] = {0, 1, 2, 1, 2, 3, 2, 3, 4, 5};               /* reference: N=6, "1,3;2,4" */
    expect_path("1,3;2,4", NULL, 6, w, 10);
}

static void test_whole_stack_and_baseline(void **s) {
    (void)s;
    const int w[] = {0, 1, 2, 0, 1, 2};
    expect_path("0,3", NULL, 3, w, 6);
    const int b[] = {0, 1, 2};
    expect_path("0,0", NULL, 3, b, 3);
    expect_path(NULL, NULL, 3, b, 3);
}

static void test_skipped_block(void **s) {
    (void)s;
    /* second block's j-1 = 4 occurs; (0,1) first gives 0,0,1,2,3,4,5 */
    const int w[] = {0, 0, 1, 2, 3, 4, 3, 4, 5};
    expect_path("0,1;3,5", NULL, 6, w, 9);
}

static void test_layers_spec(void **s) {
    (void)s;
    const int w[] = {0, 1, 2, 3, 2, 3, 4, 5, 5};
    expect_path(NULL, "0-3,2-5,5", 6, w, 9);
}

static void test_repeat(void **s) {
    (void)s;
    layer_path p;
    assert_int_equal(path_from_repeat(2, 3, 5, &p), 0);
    const int w[] = {0, 1, 2, 2, 2, 3, 4};
    assert_int_equal(p.n, 7);
    for (int i = 0; i < 7; i++) assert_int_equal(p.layers[i], w[i]);
    assert_int_equal(path_extra_layers(&p), 2);
    char *c = path_canonical(&p), *r = path_ranges(&p);
    assert_string_equal(c, "layers:0,1,2,2,2,3,4");
    assert_string_equal(r, "0-2,2,2-4");
    free(c); free(r);
    path_free(&p);
}

/* path_from_block (the scanner's) and the --blocks grammar mean the same path
 * for every single block of a 7-layer model, and refuse the same blocks. */
/* A count vector runs each layer in place, in layer order; path_counts reads
 * it back from any path, blocks included. */
static void test_counts(void **s) {
    (void)s;
    layer_path p;
    int counts[5] = {1, 3, 1, 2, 1}, back[5];
    assert_int_equal(path_from_counts(counts, 5, &p), 0);
    const int want[] = {0, 1, 1, 1, 2, 3, 3, 4};
    assert_int_equal(p.n, 8);
    assert_memory_equal(p.layers, want, sizeof want);
    path_free(&p);
    assert_int_equal(path_from_counts_spec("1,3,1,2,1", 5, &p), 0);
    assert_memory_equal(p.layers, want, sizeof want);
    path_free(&p);
    /* (1,3) on 5 layers: 0 1 2 1 2 3 4, the counts of a loop, not the loop */
    assert_int_equal(path_from_block(1, 3, 5, &p), 0);
    path_counts(&p, back);
    const int want_counts[5] = {1, 2, 2, 1, 1};
    assert_memory_equal(back, want_counts, sizeof want_counts);
    path_free(&p);
    const char *bad[] = {"1,1,1,1", "1,1,1,1,1,1", "1,0,1,1,1", "1,1,65,1,1", "1,,1,1,1", "1,1,1,1,1,", "a", "", "1;1;1;1;1"};
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        assert_int_equal(path_from_counts_spec(bad[k], 5, &p), -1);
        assert_non_null(strstr(rys_lasterr(), "count"));
    }
}

static void test_block_equals_spec(void **s) {
    (void)s;
    const int n = 7;
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j <= n; j++) {
            char spec[32];
            snprintf(spec, sizeof spec, "%d,%d", i, j);
            layer_path a, b;
            assert_int_equal(path_from_block(i, j, n, &a), 0);
            assert_int_equal(path_from_blocks(spec, n, &b), 0);
            assert_int_equal(a.n, b.n);
            assert_int_equal(a.n_model, n);
            assert_memory_equal(a.layers, b.layers, (size_t)a.n * sizeof *a.layers);
            path_free(&a);
            path_free(&b);
        }
    layer_path bad;
    assert_int_equal(path_from_block(3, 3, n, &bad), -1);
    assert_int_equal(path_from_block(2, 8, n, &bad), -1);
    assert_int_equal(path_from_block(-1, 2, n, &bad), -1);
    assert_non_null(strstr(rys_lasterr(), "block (-1,2)"));
}

static void test_bad_specs(void **s) {
    (void)s;
    expect_error("5,3", NULL, 9, "i < j");
    expect_error("3,3", NULL, 9, "i < j");
    expect_error("2,10", NULL, 9, "past the model");
    expect_error("", NULL, 9, "empty");
    expect_error("a,b", NULL, 9, "expected");
    expect_error("1,2;", NULL, 9, "expected");
    expect_error("1,2,3", NULL, 9, "expected");
    expect_error("-1,2", NULL, 9, "expected");
    expect_error("0,0;1,2", NULL, 9, "baseline");
    expect_error(NULL, "0-9", 9, "out of range");
    expect_error(NULL, "5-3", 9, "backwards");
    expect_error(NULL, "1,,2", 9, "expected");
    expect_error(NULL, "", 9, "empty");
    expect_error("1,2", "0-3", 9, "cannot be combined");
    /* both grammars stop at the same length, so a canonical key always reads back */
    char spec[4096] = "0,9";
    for (int k = 0; k < 200; k++) strcat(spec, ";0,9");
    expect_error(spec, NULL, 9, "path too long (at most 1600 positions");
    expect_error(NULL, "0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,"
                       "0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,"
                       "0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,"
                       "0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,"
                       "0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,"
                       "0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,"
                       "0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,"
                       "0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8,0-8",
                 9, "path too long (at most 1600 positions");
    /* 177 blocks of 9 (+ the 9 of the model) stay under it and read back */
    char ok[4096] = "0,9";
    for (int k = 1; k < 176; k++) strcat(ok, ";0,9");
    layer_path p, q;
    assert_int_equal(path_from_blocks(ok, 9, &p), 0);
    assert_int_equal(p.n, 9 + 176 * 9);
    char *key = path_canonical(&p);
    assert_int_equal(path_from_layers(key + 7, 9, &q), 0);
    assert_true(path_equal(&p, &q));
    free(key);
    path_free(&p);
    path_free(&q);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_single_block), cmocka_unit_test(test_multi_block),
        cmocka_unit_test(test_whole_stack_and_baseline), cmocka_unit_test(test_skipped_block),
        cmocka_unit_test(test_layers_spec), cmocka_unit_test(test_repeat), cmocka_unit_test(test_bad_specs),
        cmocka_unit_test(test_block_equals_spec), cmocka_unit_test(test_counts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
