/* Scanner pieces on a tiny self-written model: prefix reuse must give exactly
 * what a from-scratch run gives (item by item, token by token), the sweep
 * lists the right configurations, and the store keeps one identity and
 * resumes. */
#include "testutil.h"
#include "tiny_loaded.h"

#include "engine/forward.h"
#include "engine/generate.h"
#include "engine/model.h"
#include "engine/path.h"
#include "base/pool.h"
#include "scan/reuse.h"
#include "scan/scan.h"
#include "scan/store.h"
#include "engine/tokenizer.h"
#include "base/util.h"

#include <string.h>
#include <sqlite3.h>

#define N_LAYERS 6
#define N_PROMPTS 9
#define N_PREDICT 12

typedef struct {
    model *m;
    tokenizer *tok;
    pool *pool;
    int32_t *prompts[N_PROMPTS];
    int lens[N_PROMPTS];
} fixture;

static int setup(void **state) {
    fixture *fx = xcalloc(1, sizeof *fx);
    tiny_load("tiny.gguf", N_LAYERS, 7, &fx->m, &fx->tok, &fx->pool);
    /* the last four begin like earlier ones (one is a copy, one a prefix of
     * another): the reuse path computes those beginnings once */
    const char *texts[N_PROMPTS] = {"hello world", "a", "The quick brown fox jumps over the lazy dog.",
                                    "12345678901234567890", "<|im_start|>user\nhi<|im_end|>\n",
                                    "The quick brown fox sleeps.", "hello world", "hello",
                                    "<|im_start|>user\nhello there<|im_end|>\n"};
    for (int s = 0; s < N_PROMPTS; s++) {
        size_t n;
        assert_int_equal(tokenizer_encode(fx->tok, texts[s], strlen(texts[s]), true, true, &fx->prompts[s], &n), 0);
        fx->lens[s] = (int)n;
    }
    *state = fx;
    return 0;
}

static int teardown(void **state) {
    fixture *fx = *state;
    for (int s = 0; s < N_PROMPTS; s++) free(fx->prompts[s]);
    tiny_unload(fx->m, fx->tok, fx->pool);
    free(fx);
    return 0;
}

/* From scratch: a fresh cache and the plain generation loop. */
static void naive(fixture *fx, const layer_path *p, pool *pool, gen_output *out) {
    forward_ctx *f = forward_new(fx->m, p, N_PROMPTS, 64, pool);
    assert_non_null(f);
    sample_params sp = {0.0f, 1.0f, 0, N_PREDICT};
    assert_int_equal(generate(f, fx->tok, (const int32_t *const *)fx->prompts, fx->lens, N_PROMPTS, &sp, out, NULL, NULL), 0);
    forward_free(f);
}

static void assert_same(const gen_output *a, const gen_output *b) {
    for (int s = 0; s < N_PROMPTS; s++) {
        assert_int_equal(a[s].n, b[s].n);
        assert_int_equal(a[s].hit_eog, b[s].hit_eog);
        assert_memory_equal(a[s].tokens, b[s].tokens, (size_t)a[s].n * sizeof(int32_t));
    }
}

/* Runs path p through the baseline's reuse and from scratch, asserts the
 * same tokens and no more work than scratch, and returns the reuse's cost. */
static reuse_stats reuse_equals_naive(fixture *fx, baseline_run *b, const layer_path *p) {
    gen_output got[N_PROMPTS], want[N_PROMPTS];
    reuse_stats rs;
    assert_int_equal(baseline_run_config(b, p, got, &rs), 0);
    naive(fx, p, fx->pool, want);
    assert_same(got, want);
    assert_true(rs.layer_tokens_done <= rs.layer_tokens_naive);
    gen_output_free(got, N_PROMPTS);
    gen_output_free(want, N_PROMPTS);
    return rs;
}

static void test_reuse_equals_scratch(void **state) {
    fixture *fx = *state;
    baseline_run *b = baseline_run_new(fx->m, fx->tok, (const int32_t *const *)fx->prompts, fx->lens, N_PROMPTS, N_PREDICT, fx->pool);
    assert_non_null(b);
    layer_path base;
    path_baseline(N_LAYERS, &base);
    gen_output ref[N_PROMPTS];
    naive(fx, &base, fx->pool, ref);
    assert_same(baseline_outputs(b), ref);
    gen_output_free(ref, N_PROMPTS);
    path_free(&base);

    /* damped repeats too: a scaled repeat borrows up to j like its plain
     * block; a damped-Euler block only up to i, its first traversal being
     * damped, and its state before a traversal kept by sequence and position
     * while the scanner runs roots and members apart */
    const char *blocks[] = {"0,6", "2,5", "3,4", "5,6", "0,1", "1,3;2,4", "0,0",
                            "2,5@0.5", "3,4@0", "1,3@0.5;2,4@0.25", "2,5@euler", "1,6@euler:0.5"};
    reuse_stats total = {0, 0};
    for (size_t k = 0; k < sizeof blocks / sizeof *blocks; k++) {
        layer_path p;
        assert_int_equal(path_from_blocks(blocks[k], N_LAYERS, &p), 0);
        reuse_stats rs = reuse_equals_naive(fx, b, &p);
        total.layer_tokens_done += rs.layer_tokens_done;
        total.layer_tokens_naive += rs.layer_tokens_naive;
        path_free(&p);
    }
    assert_true(total.layer_tokens_done < total.layer_tokens_naive);
    /* scan --paths takes any path: sharing nothing (k = 0), skipping layers
     * (shorter than N, k < n), ending inside the baseline (k = n), or running
     * past the last layer again (k = N) */
    const char *layers[] = {"1-5", "1,0-5", "0-2,4-5", "0-3", "0-5,5,5", "0,0-5", "0-2,1-2@0.5,3-5@0.75"};
    for (size_t k = 0; k < sizeof layers / sizeof *layers; k++) {
        layer_path p;
        assert_int_equal(path_from_layers(layers[k], N_LAYERS, &p), 0);
        reuse_equals_naive(fx, b, &p);
        path_free(&p);
    }
    /* a repeat path shares the prefix up to the repeated layer */
    layer_path r;
    assert_int_equal(path_from_repeat(3, 3, N_LAYERS, &r), 0);
    assert_int_equal(path_shared_prefix(&r), 4);
    gen_output got[N_PROMPTS], want[N_PROMPTS];
    assert_int_equal(baseline_run_config(b, &r, got, NULL), 0);
    naive(fx, &r, fx->pool, want);
    assert_same(got, want);
    gen_output_free(got, N_PROMPTS);
    gen_output_free(want, N_PROMPTS);
    path_free(&r);
    baseline_run_free(b);
}

static void test_thread_count_invariance(void **state) {
    fixture *fx = *state;
    layer_path p;
    assert_int_equal(path_from_blocks("1,4", N_LAYERS, &p), 0);
    pool *one = pool_new(1), *three = pool_new(3);
    gen_output a[N_PROMPTS], c[N_PROMPTS];
    naive(fx, &p, one, a);
    naive(fx, &p, three, c);
    assert_same(a, c);
    gen_output_free(a, N_PROMPTS);
    gen_output_free(c, N_PROMPTS);
    pool_free(one);
    pool_free(three);
    path_free(&p);
}

static void test_sweep_lists(void **state) {
    (void)state;
    scan_sweep sw = {0};
    scan_config *c;
    int n;
    assert_int_equal(scan_build_configs(6, &sw, &c, &n), 0);
    assert_int_equal(n, 6 * 7 / 2 + 1);                 /* all (i,j) plus the baseline */
    assert_string_equal(c[0].spec, "baseline");
    assert_int_equal(c[0].path.n, 6);
    assert_string_equal(c[1].spec, "blocks:0,1");
    /* --scales: each configuration once per scale, 1 as it was */
    const float scales[] = {0.5f, 1.0f};
    assert_int_equal(scan_apply_scales(&c, &n, scales, 2), 0);
    assert_int_equal(n, 1 + 2 * 21);
    assert_string_equal(c[0].spec, "baseline");
    assert_string_equal(c[1].spec, "blocks:0,1@0.5");
    assert_string_equal(c[1].key, "layers:0,0@0.5,1,2,3,4,5");
    assert_int_equal(c[1].i, -1);
    assert_string_equal(c[2].spec, "blocks:0,1");
    assert_string_equal(c[2].key, "layers:0,0,1,2,3,4,5");
    assert_int_equal(c[2].i, 0);
    assert_int_equal(c[2].j, 1);
    const float twice[] = {0.5f, 0.5f};
    assert_int_equal(scan_apply_scales(&c, &n, twice, 2), -1);
    scan_free_configs(c, n);

    sw.max_extra = 2;
    assert_int_equal(scan_build_configs(6, &sw, &c, &n), 0);
    assert_int_equal(n, 6 + 5 + 1);                     /* blocks of length 1 and 2 */
    for (int k = 1; k < n; k++) assert_true(c[k].j - c[k].i <= 2);
    scan_free_configs(c, n);

    memset(&sw, 0, sizeof sw);
    sw.order = ORDER_COARSE;
    assert_int_equal(scan_build_configs(8, &sw, &c, &n), 0);
    assert_string_equal(c[1].spec, "blocks:0,8");       /* coarsest grid point first */
    scan_free_configs(c, n);

    memset(&sw, 0, sizeof sw);
    sw.repeat = true;
    sw.max_repeat = 3;
    assert_int_equal(scan_build_configs(6, &sw, &c, &n), 0);
    assert_int_equal(n, 6 * 2 + 1);
    assert_int_equal(c[1].path.n, 7);
    scan_free_configs(c, n);

    assert_int_equal(scan_parse_only("2-5,3-9", &sw), 0);
    assert_int_equal(sw.i_lo, 2);
    assert_int_equal(sw.j_hi, 9);
    assert_int_equal(scan_parse_only("5-2,3-9", &sw), -1);
}

/* A sweep's configuration carries the path its spec means, and that path's
 * canonical string as its key: block paths equal path_from_blocks's
 * reading of "i,j", repeat paths path_from_repeat's. */
static void test_sweep_keys(void **state) {
    (void)state;
    for (int mode = 0; mode < 2; mode++) {
        scan_sweep sw = {0};
        sw.repeat = mode == 1;
        sw.max_repeat = 3;
        scan_config *c;
        int n;
        assert_int_equal(scan_build_configs(7, &sw, &c, &n), 0);
        for (int k = 0; k < n; k++) {
            layer_path want;
            int l, r;
            if (k == 0) assert_int_equal(path_baseline(7, &want), 0);
            else if (sscanf(c[k].spec, "repeat:%d,%d", &l, &r) == 2) assert_int_equal(path_from_repeat(l, r, 7, &want), 0);
            else assert_int_equal(path_from_blocks(c[k].spec + strlen("blocks:"), 7, &want), 0);
            assert_int_equal(c[k].path.n, want.n);
            assert_memory_equal(c[k].path.layers, want.layers, (size_t)want.n * sizeof *want.layers);
            char *canon = path_canonical(&want);
            assert_string_equal(c[k].key, canon);
            free(canon);
            path_free(&want);
        }
        scan_free_configs(c, n);
    }
}

static void test_store_identity_and_resume(void **state) {
    (void)state;
    const char *db = test_tmp_path("store.sqlite");
    unlink(db);
    store *st = store_open(db);
    assert_non_null(st);
    store_probe pr[1] = {{"math_16", "/x/math_16.json", "aaaa", "math", 2}};
    store_identity id = {"/m.gguf", "beef", "llama", 4, pr, 1, "{\"n_predict\":64}"};
    assert_int_equal(store_set_identity(st, &id), 0);
    store_config cfgs[2] = {{"baseline", "layers:0,1,2,3", -1, -1, 0, 0, NULL}, {"blocks:1,2", "layers:0,1,1,2,3", 1, 2, 1, 1, "scan"}};
    assert_int_equal(store_add_configs(st, cfgs, 2), 0);
    assert_int_equal(store_add_configs(st, cfgs, 2), 0);   /* idempotent */
    /* the same path proposed again by another search keeps its first mark; a new one gets its own */
    store_config again[2] = {{"layers:0-1,1-3", "layers:0,1,1,2,3", -1, -1, 1, 2, "beam"},
                             {"counts:1,2,2,1", "layers:0,1,1,2,2,3", -1, -1, 2, 3, "surrogate"}};
    assert_int_equal(store_add_configs(st, again, 2), 0);
    int total, done;
    assert_int_equal(store_counts(st, &total, &done), 0);
    assert_int_equal(total, 3);
    assert_int_equal(done, 0);
    const char *names[1] = {"math_16"};
    double scores[1] = {0.5};
    store_item items[2] = {{"math_16", "0", "123", "{}", 0.25}, {"math_16", "1", "x", "{}", 0.75}};
    store_result r = {"layers:0,1,1,2,3", 1.0, 10, 5, 40, 50, names, scores, 1, items, 2};
    assert_int_equal(store_save_result(st, &r), 0);
    assert_int_equal(store_save_result(st, &r), 0);        /* redo replaces, never duplicates */
    assert_int_equal(store_is_done(st, "layers:0,1,1,2,3"), 1);
    assert_int_equal(store_is_done(st, "layers:0,1,2,3"), 0);
    store_done *rows;
    int n_rows;
    assert_int_equal(store_done_configs(st, names, 1, &rows, &n_rows), 0);
    assert_int_equal(n_rows, 1);
    assert_string_equal(rows[0].spec, "blocks:1,2");
    assert_string_equal(rows[0].path, "layers:0,1,1,2,3");
    assert_string_equal(rows[0].search, "scan");
    store_done_free(rows, n_rows);
    char **keys;
    double *item_scores;
    int n_items;
    assert_int_equal(store_item_scores(st, "layers:0,1,1,2,3", "math_16", &keys, &item_scores, &n_items), 0);
    assert_int_equal(n_items, 2);
    assert_string_equal(keys[0], "0");
    assert_string_equal(keys[1], "1");
    assert_true(item_scores[0] == 0.25 && item_scores[1] == 0.75);
    for (int k = 0; k < n_items; k++) free(keys[k]);
    free(keys);
    free(item_scores);
    assert_int_equal(store_item_scores(st, "layers:0,1,2,3", "math_16", &keys, &item_scores, &n_items), 0);
    assert_int_equal(n_items, 0);   /* not done: no items */
    store_close(st);

    st = store_open(db);
    assert_int_equal(store_set_identity(st, &id), 0);       /* same scan: accepted */
    store_identity other = id;
    other.model_sha256 = "cafe";
    assert_int_equal(store_set_identity(st, &other), -1);
    assert_non_null(strstr(rys_lasterr(), "another model"));
    store_probe pr2[1] = {{"math_16", "/x/math_16.json", "bbbb", "math", 2}};
    other = id;
    other.probes = pr2;
    assert_int_equal(store_set_identity(st, &other), -1);
    assert_non_null(strstr(rys_lasterr(), "differs"));
    assert_int_equal(store_counts(st, &total, &done), 0);
    assert_int_equal(done, 1);
    store_close(st);
    unlink(db);
}

/* The configurations a paths file lists: the baseline first, every path
 * once whatever its spelling, i and j only for a single block. */
static void test_paths_file(void **state) {
    (void)state;
    const char *text = "# a comment\n"
                       "blocks:2,4;3,5\n"
                       "\n"
                       "  layers: 0-3, 2-5   # the block (2,4) spelled out\r\n"
                       "blocks:2,4\n"
                       "repeat:1,3\n"
                       "baseline\n"
                       "layers:0-2,4-5\n"
                       "blocks:0,0";
    scan_config *c;
    int n;
    assert_int_equal(scan_parse_paths(text, "p.txt", N_LAYERS, &c, &n), 0);
    assert_int_equal(n, 5);
    const char *specs[] = {"baseline", "blocks:2,4;3,5", "layers:0-3,2-5", "repeat:1,3", "layers:0-2,4-5"};
    const char *keys[] = {"layers:0,1,2,3,4,5", "layers:0,1,2,3,2,3,4,3,4,5", "layers:0,1,2,3,2,3,4,5",
                          "layers:0,1,1,1,2,3,4,5", "layers:0,1,2,4,5"};
    for (int k = 0; k < n; k++) {
        assert_string_equal(c[k].spec, specs[k]);
        assert_string_equal(c[k].key, keys[k]);
        assert_int_equal(c[k].i, -1);                   /* none of them is spelled as one block */
        assert_int_equal(c[k].j, -1);
    }
    scan_free_configs(c, n);

    assert_int_equal(scan_parse_paths("blocks:3,5\nblocks:1,2\n", "q", N_LAYERS, &c, &n), 0);
    assert_int_equal(n, 3);
    assert_string_equal(c[0].spec, "baseline");
    assert_int_equal(c[1].i, 3);
    assert_int_equal(c[1].j, 5);
    assert_int_equal(c[1].path.n, N_LAYERS + 2);
    scan_free_configs(c, n);

    /* a count vector, and the same path spelled as layers, is one configuration */
    assert_int_equal(scan_parse_paths("counts:1,2,1,1,1,3\nlayers:0,1,1,2,3,4,5,5,5\n", "c", N_LAYERS, &c, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(c[1].spec, "counts:1,2,1,1,1,3");
    assert_string_equal(c[1].key, "layers:0,1,1,2,3,4,5,5,5");
    scan_free_configs(c, n);

    /* a scaled block is its own path (not a heatmap cell); @1 is the plain block again */
    assert_int_equal(scan_parse_paths("blocks:3,5@0.5\nblocks:3,5\nblocks:3,5@1\nblocks:3,5@euler\n", "s", N_LAYERS, &c, &n), 0);
    assert_int_equal(n, 4);
    assert_string_equal(c[1].spec, "blocks:3,5@0.5");
    assert_string_equal(c[1].key, "layers:0,1,2,3,4,3@0.5,4@0.5,5");
    assert_int_equal(c[1].i, -1);
    assert_string_equal(c[2].key, "layers:0,1,2,3,4,3,4,5");
    assert_int_equal(c[2].i, 3);
    assert_string_equal(c[3].key, "layers:0,1,2,3,4,3,4,5+euler:3-4@0.5,5-6@0.5");
    scan_free_configs(c, n);

    /* each error names the file and the line, and the first bad line wins */
    const struct { const char *text, *want; } bad[] = {
        {"blocks:1,2\n\nblocks:3,x\nfoo\n", "p.txt:3: blocks '3,x': expected"},
        {"# ok\nlayers:0-9\n", "p.txt:2: layers '0-9': layer 9 out of range"},
        {"blocks:4,2\n", "p.txt:1: blocks '4,2': block (4,2) needs i < j"},
        {"blocks:1,2;0,0\n", "p.txt:1: blocks '1,2;0,0': (0,0) means the baseline"},
        {"repeat:1,-2\n", "p.txt:1: repeat '1,-2': expected"},
        {"repeat:9,2\n", "p.txt:1: repeat: layer 9 out of range"},
        {"repeat:1,2,3\n", "p.txt:1: repeat '1,2,3': expected"},
        {"repeat:1,99999999999999999999\n", "p.txt:1: repeat '1,99999999999999999999': expected"},
        {"repeat:1,\n", "p.txt:1: repeat '1,': expected"},
        {"repeat:1,65\n", "p.txt:1: repeat: count 65 out of range"},
        {"baseline\nlayer:0-5\n", "p.txt:2: unknown path 'layer:0-5'"},
        {"blocks:\n", "p.txt:1: blocks '': empty spec"},
        {"# nothing\n\n", "p.txt: no paths"},
        {"", "p.txt: no paths"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        c = NULL;
        assert_int_equal(scan_parse_paths(bad[k].text, "p.txt", N_LAYERS, &c, &n), -1);
        assert_null(c);
        if (strncmp(rys_lasterr(), bad[k].want, strlen(bad[k].want)))
            fail_msg("%s: got \"%s\", want \"%s...\"", bad[k].text, rys_lasterr(), bad[k].want);
    }
    assert_int_equal(scan_load_paths("/nonexistent/paths.txt", N_LAYERS, &c, &n), -1);
    assert_non_null(strstr(rys_lasterr(), "/nonexistent/paths.txt"));
}

static void test_store_rejects_garbage(void **state) {
    (void)state;
    const char *db = test_garbage_db("garbage.sqlite");
    assert_null(store_open(db));
    assert_non_null(strstr(rys_lasterr(), db));
    unlink(db);
}

/* A store written before searches were marked (no search column) opens
 * read-only with every row a sweep's, and opening it for writing adds the
 * column without touching its rows. */
static void test_store_without_search_column(void **state) {
    (void)state;
    const char *db = test_tmp_path("old.sqlite");
    unlink(db);
    /* a store as the schema was, the column dropped again */
    store *st = store_open(db);
    assert_non_null(st);
    store_probe pr[1] = {{"math_16", "/x/math_16.json", "aaaa", "math", 2}};
    store_identity id = {"/m.gguf", "beef", "llama", 3, pr, 1, "{}"};
    assert_int_equal(store_set_identity(st, &id), 0);
    store_config old = {"blocks:1,2", "layers:0,1,1,2", 1, 2, 1, 0, NULL};
    assert_int_equal(store_add_configs(st, &old, 1), 0);
    const char *names[1] = {"math_16"};
    double scores[1] = {0.5};
    store_result r = {"layers:0,1,1,2", 1.0, 1, 1, 1, 1, names, scores, 1, NULL, 0};
    assert_int_equal(store_save_result(st, &r), 0);
    store_close(st);
    sqlite3 *h;
    assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
    assert_int_equal(sqlite3_exec(h, "ALTER TABLE config DROP COLUMN search", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(h);
    st = store_open_readonly(db);
    assert_non_null(st);
    store_done *rows;
    int n;
    assert_int_equal(store_done_configs(st, NULL, 0, &rows, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(rows[0].search, "scan");
    store_done_free(rows, n);
    store_close(st);
    st = store_open(db);
    assert_non_null(st);
    store_config c = {"blocks:0,1", "layers:0,0,1,2", 0, 1, 1, 1, "beam"};
    assert_int_equal(store_add_configs(st, &c, 1), 0);
    store_close(st);
    assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
    sqlite3_stmt *q;
    assert_int_equal(sqlite3_prepare_v2(h, "SELECT group_concat(spec || '=' || search, ' ') FROM config ORDER BY id", -1, &q, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(q, 0), "blocks:1,2=scan blocks:0,1=beam");
    sqlite3_finalize(q);
    sqlite3_close(h);
    unlink(db);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_store_without_search_column),
        cmocka_unit_test(test_reuse_equals_scratch), cmocka_unit_test(test_thread_count_invariance),
        cmocka_unit_test(test_sweep_lists), cmocka_unit_test(test_sweep_keys), cmocka_unit_test(test_paths_file),
        cmocka_unit_test(test_store_identity_and_resume),
        cmocka_unit_test(test_store_rejects_garbage),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
