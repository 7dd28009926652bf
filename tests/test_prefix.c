/* The engine's prefix mechanism on the tiny model: a KV snapshot brings
 * overwritten positions back bit for bit and touches nothing else; states
 * kept at layer boundaries are the bits a plain run has there, and a path
 * that starts from them gives a from-scratch run's logits. */
#include "testutil.h"
#define N_LAYERS 5
#define TINY_FIXTURE_LAYERS N_LAYERS
#define TINY_FIXTURE_SEED 5
#include "tiny_loaded.h"

#include "engine/forward.h"
#include "engine/model.h"
#include "engine/path.h"
#include "engine/prefix.h"
#include "base/util.h"

#include <string.h>

#define N_TOK 12

/* N_TOK tokens, alternating between sequences 0 and 1, from `salt`. */
static void make_batch(const model *m, unsigned salt, int32_t *tok, int32_t *pos, int32_t *seq) {
    for (int t = 0; t < N_TOK; t++) {
        seq[t] = t % 2;
        pos[t] = t / 2;
        tok[t] = (int32_t)((t * 7919u + salt) % (unsigned)m->hp.n_vocab);
    }
}

/* Every slot of f, K then V, sequence by sequence. */
static uint16_t *read_cache(const forward_ctx *f, size_t *n_values) {
    kv_shape kv = forward_kv_shape(f);
    size_t per = (size_t)kv.n_ctx * kv.kv_dim, n = (size_t)kv.n_slots * kv.n_seq * per;
    uint16_t *all = xmalloc(2 * n * sizeof *all);
    for (int p = 0; p < kv.n_slots; p++)
        for (int s = 0; s < kv.n_seq; s++) {
            size_t at = ((size_t)p * kv.n_seq + s) * per;
            assert_int_equal(forward_kv_read(f, p, s, 0, kv.n_ctx, all + at, all + n + at), 0);
        }
    *n_values = 2 * n;
    return all;
}

static void test_kv_snapshot_round_trip(void **state) {
    fixture *fx = *state;
    layer_path p;
    path_baseline(N_LAYERS, &p);
    forward_ctx *f = forward_new(fx->m, &p, 2, 16, fx->pool);
    assert_non_null(f);
    int32_t tok[N_TOK], pos[N_TOK], seq[N_TOK];
    make_batch(fx->m, 13, tok, pos, seq);
    fwd_batch b = {N_TOK, tok, pos, seq, NULL};
    float *logits = xmalloc((size_t)N_TOK * fx->m->hp.n_vocab * sizeof(float));
    assert_int_equal(forward_batch(f, &b, logits), N_TOK);
    size_t n;
    uint16_t *before = read_cache(f, &n);

    /* positions 3..5 of both sequences in slots 1..3, then other tokens there everywhere */
    int from[2] = {3, 3};
    kv_snapshot *snap = kv_snapshot_save(f, 1, 4, 2, from, 3);
    assert_non_null(snap);
    make_batch(fx->m, 101, tok, pos, seq);
    assert_int_equal(forward_batch(f, &b, logits), N_TOK);
    uint16_t *overwritten = read_cache(f, &n);
    assert_true(memcmp(before, overwritten, n * sizeof *before) != 0);
    assert_int_equal(kv_snapshot_restore(snap, f), 0);
    uint16_t *after = read_cache(f, &n);
    kv_shape kv = forward_kv_shape(f);
    size_t per = (size_t)kv.n_ctx * kv.kv_dim;
    for (size_t i = 0; i < n; i++) {
        size_t in_kv = i % (n / 2), slot = in_kv / (kv.n_seq * per), at = in_kv % per / kv.kv_dim;
        bool saved = slot >= 1 && slot < 4 && at >= 3 && at < 6;
        assert_int_equal(after[i], saved ? before[i] : overwritten[i]);
    }
    kv_snapshot_free(snap);

    /* ranges outside the cache are refused */
    uint16_t k[64], v[64];
    assert_int_equal(forward_kv_read(f, 0, 0, 15, 2, k, v), -1);
    assert_int_equal(forward_kv_read(f, 0, 2, 0, 1, k, v), -1);
    assert_int_equal(forward_kv_read(f, N_LAYERS, 0, 0, 1, k, v), -1);
    int late[2] = {14, 0};
    assert_null(kv_snapshot_save(f, 0, 1, 2, late, 3));
    assert_null(kv_snapshot_save(f, 0, N_LAYERS + 1, 2, from, 1));

    free(before); free(overwritten); free(after); free(logits);
    forward_free(f);
    path_free(&p);
}

static void test_states_start_a_path(void **state) {
    fixture *fx = *state;
    const model *m = fx->m;
    size_t dim = (size_t)m->hp.dim, V = (size_t)m->hp.n_vocab;
    int32_t tok[N_TOK], pos[N_TOK], seq[N_TOK];
    make_batch(m, 7, tok, pos, seq);
    fwd_batch b = {N_TOK, tok, pos, seq, NULL};
    layer_path base, cfg;
    path_baseline(N_LAYERS, &base);
    assert_int_equal(path_from_blocks("1,3", N_LAYERS, &cfg), 0);
    int k = path_shared_prefix(&cfg);
    assert_int_equal(k, 3);

    /* the baseline keeping states at 2 and 3 (rows stored backwards) against a plain run */
    int bounds[] = {2, 3};
    state_store *st = state_store_new((int)dim, bounds, 2, N_TOK);
    assert_non_null(st);
    int unordered[] = {3, 2};
    assert_null(state_store_new((int)dim, unordered, 2, N_TOK));
    assert_true(state_store_keeps(st, 3));
    assert_false(state_store_keeps(st, 1));
    long long rows[N_TOK];
    for (int t = 0; t < N_TOK; t++) rows[t] = N_TOK - 1 - t;
    forward_ctx *kept = forward_new(m, &base, 2, 8, fx->pool), *plain = forward_new(m, &base, 2, 8, fx->pool);
    float *x_kept = xmalloc(N_TOK * dim * sizeof(float)), *x_plain = xmalloc(N_TOK * dim * sizeof(float));
    float *x_at = xmalloc(N_TOK * dim * sizeof(float));
    assert_int_equal(prefix_start(m, &b, 0, NULL, NULL, x_kept), 0);
    memcpy(x_plain, x_kept, N_TOK * dim * sizeof(float));
    assert_int_equal(prefix_run_keep(kept, &b, x_kept, 0, N_LAYERS, st, rows), 0);
    assert_int_equal(forward_layers(plain, &b, x_plain, 0, k), 0);
    assert_int_equal(prefix_start(m, &b, k, st, rows, x_at), 0);
    assert_memory_equal(x_at, x_plain, N_TOK * dim * sizeof(float));
    assert_int_equal(forward_layers(plain, &b, x_plain, k, N_LAYERS), 0);
    assert_memory_equal(x_kept, x_plain, N_TOK * dim * sizeof(float));
    assert_int_equal(prefix_start(m, &b, 1, st, rows, x_at), -1);   /* boundary 1 was not kept */

    /* the configuration from the states at k against a from-scratch run */
    forward_ctx *from_k = forward_new(m, &cfg, 2, 8, fx->pool), *scratch = forward_new(m, &cfg, 2, 8, fx->pool);
    float *lg_k = xmalloc(N_TOK * V * sizeof(float)), *lg_scratch = xmalloc(N_TOK * V * sizeof(float));
    assert_int_equal(prefix_start(m, &b, k, st, rows, x_at), 0);
    assert_int_equal(forward_layers(from_k, &b, x_at, k, cfg.n), 0);
    assert_int_equal(forward_output(from_k, &b, x_at, lg_k), N_TOK);
    assert_int_equal(forward_batch(scratch, &b, lg_scratch), N_TOK);
    assert_memory_equal(lg_k, lg_scratch, N_TOK * V * sizeof(float));

    /* growing keeps the rows held */
    state_store_reserve(st, 1000);
    assert_int_equal(prefix_start(m, &b, k, st, rows, x_at), 0);
    forward_ctx *again = forward_new(m, &base, 2, 8, fx->pool);
    assert_int_equal(prefix_start(m, &b, 0, NULL, NULL, x_plain), 0);
    assert_int_equal(forward_layers(again, &b, x_plain, 0, k), 0);
    assert_memory_equal(x_at, x_plain, N_TOK * dim * sizeof(float));
    forward_free(again);

    state_store_free(st);
    forward_free(kept); forward_free(plain); forward_free(from_k); forward_free(scratch);
    free(x_kept); free(x_plain); free(x_at); free(lg_k); free(lg_scratch);
    path_free(&base);
    path_free(&cfg);
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_kv_snapshot_round_trip),
                                       cmocka_unit_test(test_states_start_a_path)};
    return cmocka_run_group_tests(tests, setup, teardown);
}
