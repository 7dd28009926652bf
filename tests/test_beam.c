/* The beam search: the candidates of a depth against a hand-worked example
 * (multi-block insertion, the extra-layer cap, a path proposed twice, the cap
 * on new paths with a stored path competing beside them), then whole searches
 * on the tiny model: what the store holds after a beam against counts made
 * independently, a path measured before kept and not measured again, and the
 * same store whether the beam runs in one go or is continued. */
#define TINY_FIXTURE_LAYERS 3
#include "testdb.h"
#include "tiny_loaded.h"

#include "engine/path.h"
#include "report/report.h"
#include "scan/scan.h"
#include "scan/store.h"
#include "search/beam.h"
#include "base/util.h"

#include <math.h>

#define N_LAYERS TINY_FIXTURE_LAYERS
#define N_BLOCKS (N_LAYERS * (N_LAYERS + 1) / 2)

static const char probe_json[] =
    "{\"0\": {\"question\": \"What is 123 times 456? Answer with an integer only.\", \"answer\": 56088},\n"
    " \"1\": {\"question\": \"Cube root of 1000?\", \"answer\": 10}}\n";

/* ---- candidates, worked by hand ---------------------------------------------------
 * N = 6. Members A = "0,2" (score 2), B = "2,4" (score 1); blocks P0 = "0,2"
 * (2), P1 = "2,4" (1), P2 = "0,6" (0.25). The baseline is 0..5; (0,2) runs
 * 0,1,0,1,2,3,4,5 and (2,4) runs 0,1,2,3,2,3,4,5. A further block (i,j) goes
 * in after the last occurrence of layer j-1:
 *   o0 A+P0 0,2;0,2  0,1 after the last 1:  0,1,0,1,0,1,2,3,4,5  +4  h 4
 *   o1 A+P1 0,2;2,4  2,3 after the last 3:  0,1,0,1,2,3,2,3,4,5  +4  h 3
 *   o2 A+P2 0,2;0,6  0..5 after the last 5: 0,1,0,1,2,3,4,5,0,..,5  +8  h 2.25
 *   o3 B+P0 2,4;0,2  0,1 after the last 1:  0,1,0,1,2,3,2,3,4,5  +4  h 3 (= o1's path)
 *   o4 B+P1 2,4;2,4  2,3 after the last 3:  0,1,2,3,2,3,2,3,4,5  +4  h 2
 *   o5 B+P2 2,4;0,6                                               +8  h 1.25
 * By heuristic: o0 4, o1 3, o3 3 (after o1: proposal order), o2 2.25, o4 2,
 * o5 1.25; o3 is o1's path again and goes. */
static const char *const P_O0 = "layers:0,1,0,1,0,1,2,3,4,5", *const P_O1 = "layers:0,1,0,1,2,3,2,3,4,5",
                         *const P_O4 = "layers:0,1,2,3,2,3,2,3,4,5", *const P_O2 = "layers:0,1,0,1,2,3,4,5,0,1,2,3,4,5";

static bool stored_o0(const char *path, void *ctx) {
    (*(int *)ctx)++;
    return !strcmp(path, P_O0);
}

static void test_propose_hand_worked(void **state) {
    (void)state;
    const beam_member front[2] = {{"0,2", 2}, {"2,4", 1}}, pool_b[3] = {{"0,2", 2}, {"2,4", 1}, {"0,6", 0.25}};
    beam_candidate *c;
    int n, asked = 0;
    /* no caps: every distinct path, best heuristic first; o0 stored */
    assert_int_equal(beam_propose(6, front, 2, pool_b, 3, 0, 0, stored_o0, &asked, &c, &n), 0);
    assert_int_equal(n, 5);
    const char *want_spec[5] = {"blocks:0,2;0,2", "blocks:0,2;2,4", "blocks:0,2;0,6", "blocks:2,4;2,4", "blocks:2,4;0,6"};
    const double want_h[5] = {4, 3, 2.25, 2, 1.25};
    const int want_extra[5] = {4, 4, 8, 4, 8};
    for (int k = 0; k < n; k++) {
        assert_string_equal(c[k].spec, want_spec[k]);
        assert_true(c[k].heuristic == want_h[k]);
        assert_int_equal(c[k].extra, want_extra[k]);
        assert_int_equal(c[k].stored, k == 0);
    }
    assert_string_equal(c[0].path, P_O0);
    assert_string_equal(c[1].path, P_O1);
    assert_string_equal(c[2].path, P_O2);
    assert_string_equal(c[3].path, P_O4);
    assert_int_equal(asked, 5);     /* the duplicate is dropped before the store is asked */
    beam_candidates_free(c, n);

    /* cap of 6 extra layers: o2 and o5 go */
    assert_int_equal(beam_propose(6, front, 2, pool_b, 3, 6, 0, stored_o0, &asked, &c, &n), 0);
    assert_int_equal(n, 3);
    assert_string_equal(c[0].path, P_O0);
    assert_string_equal(c[1].path, P_O1);
    assert_string_equal(c[2].path, P_O4);
    beam_candidates_free(c, n);

    /* one new path at most: the stored o0 competes without counting, o1 is the one new, the walk ends there */
    assert_int_equal(beam_propose(6, front, 2, pool_b, 3, 6, 1, stored_o0, &asked, &c, &n), 0);
    assert_int_equal(n, 2);
    assert_true(c[0].stored && !c[1].stored);
    assert_string_equal(c[1].spec, "blocks:0,2;2,4");
    beam_candidates_free(c, n);

    /* nothing stored: two new paths are o0 and o1 */
    assert_int_equal(beam_propose(6, front, 2, pool_b, 3, 0, 2, NULL, NULL, &c, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(c[0].path, P_O0);
    assert_string_equal(c[1].path, P_O1);
    beam_candidates_free(c, n);

    /* a bad block is an error naming it, not a crash */
    const beam_member bad[1] = {{"3,2", 1}};
    assert_int_equal(beam_propose(6, bad, 1, pool_b, 3, 0, 0, NULL, NULL, &c, &n), -1);
    assert_non_null(strstr(rys_lasterr(), "3,2"));
}

/* ---- whole searches on the tiny model ------------------------------------------------ */

static evalset *load_probes(fixture *fx, const char **probe_path) {
    *probe_path = test_tmp_path("beam-math.json");
    FILE *f = fopen(*probe_path, "w");
    assert_non_null(f);
    fputs(probe_json, f);
    fclose(f);
    evalset_options eo = {3, NULL, false};
    evalset *es = evalset_load(probe_path, 1, fx->m, fx->tok, &eo);
    if (!es) fail_msg("%s", rys_lasterr());
    return es;
}

/* A store holding the baseline and every single block, and the path `extra`
 * (a block spec, marked "paths") measured too. */
static store *scanned_store(fixture *fx, const evalset *es, const char *db, const char *extra) {
    test_remove_db(db);
    store *st = store_open(db);
    assert_non_null(st);
    store_probe sp = {evalset_set_name(es, 0), evalset_set_path(es, 0), evalset_set_sha256(es, 0), evalset_set_kind(es, 0),
                      evalset_set_items(es, 0)};
    char *settings = evalset_settings_json(es);
    store_identity id = {"tiny", "00", "llama", N_LAYERS, &sp, 1, settings};
    assert_int_equal(store_set_identity(st, &id), 0);
    free(settings);
    scan_sweep sw = {0};
    scan_config *cfgs;
    int n;
    assert_int_equal(scan_build_configs(N_LAYERS, &sw, &cfgs, &n), 0);
    cfgs = xrealloc(cfgs, (size_t)(n + 1) * sizeof *cfgs);
    cfgs[n] = (scan_config){xstrdup(extra), -1, -1, {0}, NULL};
    assert_int_equal(path_from_blocks(extra + strlen("blocks:"), N_LAYERS, &cfgs[n].path), 0);
    cfgs[n].key = path_canonical(&cfgs[n].path);
    n++;
    store_config *sc = xcalloc((size_t)n, sizeof *sc);
    for (int k = 0; k < n; k++)
        sc[k] = (store_config){cfgs[k].spec, cfgs[k].key, cfgs[k].i, cfgs[k].j, path_extra_layers(&cfgs[k].path), k,
                               k == n - 1 ? "paths" : "scan"};
    assert_int_equal(store_add_configs(st, sc, n), 0);
    scan_run_opts ro = {false, false, 0, 0, NULL};
    scan_summary sum;
    if (scan_run(st, fx->m, fx->tok, es, fx->pool, cfgs, n, &ro, &sum)) fail_msg("%s", rys_lasterr());
    assert_int_equal(sum.done_now, n);
    free(sc);
    scan_free_configs(cfgs, n);
    return st;
}

/* Every row of what a beam leaves in a store, as text, sorted. */
static char *dump(const char *db) {
    return test_query_rows(db,
        "SELECT 'config ' || path || ' ' || spec || ' ' || search || ' ' || status || ' ' || measured || ' ' || "
        "(SELECT group_concat(printf('%.17g', score)) FROM score WHERE config_id = config.id) FROM config "
        "UNION ALL SELECT 'cand ' || beam || ' ' || depth || ' ' || rank || ' ' || spec || ' ' || path || ' ' || printf('%.17g', heuristic) "
        "FROM beam_candidate "
        "UNION ALL SELECT 'zstat ' || beam || ' ' || position || ' ' || printf('%.17g %.17g', mean, sd) FROM beam_zstat ORDER BY 1");
}

/* Distinct paths of every pair (a;b) of the single blocks. */
static int distinct_pairs(void) {
    char *paths[N_BLOCKS * N_BLOCKS];
    int n = 0;
    for (int a = 0; a < N_BLOCKS * N_BLOCKS; a++) {
        int i = 0, j = 1, k = 0, l = 1, x = a / N_BLOCKS, y = a % N_BLOCKS;
        for (int t = 0; t < x; t++) { if (++j > N_LAYERS) { i++; j = i + 1; } }
        for (int t = 0; t < y; t++) { if (++l > N_LAYERS) { k++; l = k + 1; } }
        char spec[64];
        snprintf(spec, sizeof spec, "%d,%d;%d,%d", i, j, k, l);
        layer_path p;
        assert_int_equal(path_from_blocks(spec, N_LAYERS, &p), 0);
        char *c = path_canonical(&p);
        path_free(&p);
        bool seen = false;
        for (int s = 0; s < n && !seen; s++) seen = !strcmp(paths[s], c);
        if (seen) free(c);
        else paths[n++] = c;
    }
    for (int s = 0; s < n; s++) free(paths[s]);
    return n;
}

static void test_beam_on_tiny(void **state) {
    fixture *fx = *state;
    const char *probe_path;
    evalset *es = load_probes(fx, &probe_path);
    const char *db = test_tmp_path("beam-a.sqlite"), *db2 = test_tmp_path("beam-b.sqlite");
    /* (0,1);(0,1) is among the depth-2 proposals when all the blocks seed and extend */
    const char *pre = "blocks:0,1;0,1";
    store *st = scanned_store(fx, es, db, pre);
    beam_opts o = beam_default_opts();
    o.width = 2;
    o.depth = 3;
    o.seeds = N_BLOCKS;
    o.expand = N_BLOCKS;
    o.max_new = 0;
    beam_summary s;
    if (beam_run(st, db, fx->m, fx->tok, es, fx->pool, &o, false, &s)) fail_msg("%s", rys_lasterr());
    assert_false(s.stopped);
    assert_string_equal(s.end, "depth");
    assert_int_equal(s.n_depths, 2);
    /* depth 2: every pair of the blocks, a path proposed twice once, the pre-measured one not measured again */
    int pairs = distinct_pairs();
    assert_int_equal(s.depth[0].candidates, pairs);
    assert_int_equal(s.depth[0].done_before, 1);
    assert_int_equal(s.depth[0].measured_now, pairs - 1);
    assert_int_equal(test_query_int(db, "SELECT count(*) FROM beam_candidate WHERE depth = 2"), pairs);
    assert_int_equal(test_query_int(db, "SELECT count(*) FROM beam_candidate WHERE depth = 1"), N_BLOCKS);
    assert_int_equal(test_query_int(db, "SELECT count(*) FROM beam_candidate WHERE depth = 2 AND spec = 'blocks:0,1;0,1'"), 1);
    assert_int_equal(test_query_int(db, "SELECT count(*) FROM config WHERE spec = 'blocks:0,1;0,1' AND search = 'paths' AND measured = 1"), 1);
    /* depth 3: the 2 best of depth 2, each extended by every block */
    assert_true(s.depth[1].candidates <= 2 * N_BLOCKS && s.depth[1].candidates >= N_BLOCKS);
    assert_int_equal(test_query_int(db, "SELECT count(DISTINCT substr(spec, 1, length(spec) - 4)) FROM beam_candidate WHERE depth = 3 "
                                   "AND spec GLOB 'blocks:?,?;?,?;?,?'"),
                     2);
    /* every measured path measured once: the engine ran as many configurations as the store has done rows */
    int done = test_query_int(db, "SELECT count(*) FROM config WHERE status = 'done'");
    assert_int_equal(test_query_int(db, "SELECT sum(measured) FROM config"), done);
    assert_int_equal(test_query_int(db, "SELECT count(*) FROM config WHERE search = 'beam'"), s.measured_now);
    assert_int_equal(s.measured_now + s.done_before, s.candidates);
    assert_int_equal(done, 1 + N_BLOCKS + 1 + s.measured_now);
    /* the z statistics frozen at the start are the single blocks' deltas' mean and population std */
    report_data *d = report_load(db);
    assert_non_null(d);
    double sum = 0, ss = 0;
    int nb = 0;
    for (int k = 0; k < d->n_cfg; k++)
        if (d->cfg[k].i >= 0) { sum += d->cfg[k].delta[0]; nb++; }
    assert_int_equal(nb, N_BLOCKS);
    for (int k = 0; k < d->n_cfg; k++)
        if (d->cfg[k].i >= 0) ss += (d->cfg[k].delta[0] - sum / nb) * (d->cfg[k].delta[0] - sum / nb);
    double sd = sqrt(ss / nb) < 1e-12 ? 1 : sqrt(ss / nb);
    double mean_stored, sd_stored, z;
    assert_int_equal(store_beam_get(st, "width=2 seeds=6 expand=6 max_new=0 max_extra=0", &mean_stored, &sd_stored, 1), 1);
    assert_true(fabs(mean_stored - sum / nb) < 1e-12 && fabs(sd_stored - sd) < 1e-12);
    /* the best path's balanced score is its delta under those statistics */
    int b = report_find_path(d, s.best_path);
    assert_true(b >= 0);
    z = (d->cfg[b].delta[0] - mean_stored) / sd_stored;
    assert_true(fabs(z - s.best_score) < 1e-12);
    assert_true(s.best_score >= s.seed_score);
    report_free(d);
    char *best = xstrdup(s.best_spec);
    beam_summary_free(&s);

    /* again: nothing left to measure, the same best */
    if (beam_run(st, db, fx->m, fx->tok, es, fx->pool, &o, false, &s)) fail_msg("%s", rys_lasterr());
    assert_int_equal(s.measured_now, 0);
    assert_string_equal(s.best_spec, best);
    beam_summary_free(&s);
    store_close(st);

    /* the same beam run to depth 2, then continued to 3, leaves the same store */
    st = scanned_store(fx, es, db2, pre);
    o.depth = 2;
    if (beam_run(st, db2, fx->m, fx->tok, es, fx->pool, &o, false, &s)) fail_msg("%s", rys_lasterr());
    beam_summary_free(&s);
    o.depth = 3;
    if (beam_run(st, db2, fx->m, fx->tok, es, fx->pool, &o, false, &s)) fail_msg("%s", rys_lasterr());
    assert_int_equal(s.depth[0].measured_now, 0);
    assert_string_equal(s.best_spec, best);
    beam_summary_free(&s);
    store_close(st);
    char *a = dump(db), *b2 = dump(db2);
    assert_string_equal(a, b2);
    free(a);
    free(b2);
    free(best);
    test_remove_db(db);
    test_remove_db(db2);
    unlink(probe_path);
    evalset_free(es);
}

/* ---- ranking, worked by hand ----------------------------------------------------
 * A store of the 3-layer model with every path the beam will propose already
 * measured, so nothing runs and every number is known. Deltas in U = 1/16
 * (math, EQ), baseline 0.5 and 0.5:
 *   singles (0,1) (+4,+2)  (0,2) (+2,+4)  (0,3) (0,0)  (1,2) (-2,-2)  (1,3) (-4,0)  (2,3) (0,-4)
 * Both probes' single-block deltas have mean 0 and population variance 40/6 U^2,
 * so balanced = (math + EQ) / S with S = sqrt(40/6) (in U): (0,1) and (0,2)
 * 6/S, (0,2) first (higher EQ delta). Seeds and pool (2 each): (0,2), (0,1).
 * Depth 2, all heuristics 12/S, in proposal order:
 *   0,2;0,2 = 0,1,0,1,0,1,2 (+8,+8)   0,2;0,1 = 0,1,0,0,1,2 (+6,+6)
 *   0,1;0,2 = 0,0,1,0,1,2   (+8,+8)   0,1;0,1 = 0,0,0,1,2   (0,0)
 * 0,2;0,2 and 0,1;0,2 tie at 16/S with equal deltas: fewer extra layers wins,
 * so width 1 keeps 0,1;0,2 (+3). Depth 3 extends it:
 *   0,1;0,2;0,2 = 0,0,1,0,1,0,1,2 (+4,+4)   0,1;0,2;0,1 = 0,0,1,0,0,1,2 (+10,+8)
 * Best: 0,1;0,2;0,1, 18/S, +4 layers. */
static void save(store *st, const char *spec, const char *path, int i, int j, int extra, double math_u, double eq_u) {
    store_config c = {spec, path, i, j, extra, 0, "scan"};
    assert_int_equal(store_add_configs(st, &c, 1), 0);
    const char *names[2] = {"math_x", "eq_x"};
    double scores[2] = {0.5 + math_u / 16, 0.5 + eq_u / 16};
    store_result r = {path, 0, 0, 0, 0, 0, names, scores, 2, NULL, 0};
    assert_int_equal(store_save_result(st, &r), 0);
}

static void test_beam_ranks_by_hand(void **state) {
    fixture *fx = *state;
    const char *probe_path;
    evalset *es = load_probes(fx, &probe_path);
    const char *db = test_tmp_path("beam-hand.sqlite");
    test_remove_db(db);
    store *st = store_open(db);
    assert_non_null(st);
    store_probe sp[2] = {{"math_x", "/x/math_x.json", "aa", "math", 1}, {"eq_x", "/x/eq_x.json", "bb", "eq", 1}};
    store_identity id = {"tiny", "00", "llama", N_LAYERS, sp, 2, "{}"};
    assert_int_equal(store_set_identity(st, &id), 0);
    save(st, "baseline", "layers:0,1,2", -1, -1, 0, 0, 0);
    save(st, "blocks:0,1", "layers:0,0,1,2", 0, 1, 1, 4, 2);
    save(st, "blocks:0,2", "layers:0,1,0,1,2", 0, 2, 2, 2, 4);
    save(st, "blocks:0,3", "layers:0,1,2,0,1,2", 0, 3, 3, 0, 0);
    save(st, "blocks:1,2", "layers:0,1,1,2", 1, 2, 1, -2, -2);
    save(st, "blocks:1,3", "layers:0,1,2,1,2", 1, 3, 2, -4, 0);
    save(st, "blocks:2,3", "layers:0,1,2,2", 2, 3, 1, 0, -4);
    save(st, "blocks:0,2;0,2", "layers:0,1,0,1,0,1,2", -1, -1, 4, 8, 8);
    save(st, "blocks:0,2;0,1", "layers:0,1,0,0,1,2", -1, -1, 3, 6, 6);
    save(st, "blocks:0,1;0,2", "layers:0,0,1,0,1,2", -1, -1, 3, 8, 8);
    save(st, "blocks:0,1;0,1", "layers:0,0,0,1,2", -1, -1, 2, 0, 0);
    save(st, "blocks:0,1;0,2;0,2", "layers:0,0,1,0,1,0,1,2", -1, -1, 5, 4, 4);
    save(st, "blocks:0,1;0,2;0,1", "layers:0,0,1,0,0,1,2", -1, -1, 4, 10, 8);
    beam_opts o = beam_default_opts();
    o.width = 1;
    o.seeds = 2;
    o.expand = 2;
    o.max_new = 0;
    beam_summary s;
    if (beam_run(st, db, fx->m, fx->tok, es, fx->pool, &o, false, &s)) fail_msg("%s", rys_lasterr());
    const double S = sqrt(40.0 / 6);
    assert_int_equal(s.measured_now, 0);
    assert_int_equal(s.n_depths, 2);
    assert_int_equal(s.depth[0].candidates, 4);
    assert_int_equal(s.depth[0].done_before, 4);
    assert_string_equal(s.depth[0].best_spec, "blocks:0,1;0,2");
    assert_true(fabs(s.depth[0].best_score - 16 / S) < 1e-12);
    assert_int_equal(s.depth[1].candidates, 2);
    assert_string_equal(s.depth[1].best_spec, "blocks:0,1;0,2;0,1");
    assert_string_equal(s.best_spec, "blocks:0,1;0,2;0,1");
    assert_int_equal(s.best_depth, 3);
    assert_int_equal(s.best_extra, 4);
    assert_true(fabs(s.best_score - 18 / S) < 1e-12);
    assert_true(fabs(s.seed_score - 6 / S) < 1e-12);
    assert_true(fabs(s.best_delta[0] - 10.0 / 16) < 1e-12 && fabs(s.best_delta[1] - 8.0 / 16) < 1e-12);
    beam_summary_free(&s);
    assert_int_equal(test_query_int(db, "SELECT count(*) FROM beam_candidate WHERE depth = 1 AND "
                                   "((rank = 0 AND spec = 'blocks:0,2') OR (rank = 1 AND spec = 'blocks:0,1'))"), 2);
    assert_int_equal(test_query_int(db, "SELECT count(*) FROM beam_candidate WHERE depth = 2 AND "
                                   "((rank = 0 AND spec = 'blocks:0,2;0,2') OR (rank = 1 AND spec = 'blocks:0,2;0,1') OR "
                                   "(rank = 2 AND spec = 'blocks:0,1;0,2') OR (rank = 3 AND spec = 'blocks:0,1;0,1'))"), 4);
    /* the report normalises over every measured path, compositions included, and ranks otherwise: the beam keeps its own */
    report_data *d = report_load(db);
    assert_non_null(d);
    int b = report_find_path(d, "layers:0,0,1,0,0,1,2");
    assert_true(b >= 0);
    assert_true(fabs(d->cfg[b].balanced - 18 / S) > 0.1);
    report_free(d);
    /* a single block's scores replaced later do not move the frozen statistics: the same beam ranks the same */
    save(st, "blocks:2,3", "layers:0,1,2,2", 2, 3, 1, -12, -12);
    if (beam_run(st, db, fx->m, fx->tok, es, fx->pool, &o, false, &s)) fail_msg("%s", rys_lasterr());
    assert_true(fabs(s.best_score - 18 / S) < 1e-12);
    beam_summary_free(&s);
    store_close(st);
    test_remove_db(db);
    unlink(probe_path);
    evalset_free(es);
}

/* A store without single blocks, or without a scored baseline, is refused with a one-line error. */
static void test_beam_refuses(void **state) {
    fixture *fx = *state;
    const char *probe_path;
    evalset *es = load_probes(fx, &probe_path);
    const char *db = test_tmp_path("beam-empty.sqlite");
    test_remove_db(db);
    store *st = store_open(db);
    store_probe sp = {evalset_set_name(es, 0), evalset_set_path(es, 0), evalset_set_sha256(es, 0), evalset_set_kind(es, 0),
                      evalset_set_items(es, 0)};
    char *settings = evalset_settings_json(es);
    store_identity id = {"tiny", "00", "llama", N_LAYERS, &sp, 1, settings};
    assert_int_equal(store_set_identity(st, &id), 0);
    free(settings);
    beam_opts o = beam_default_opts();
    beam_summary s;
    assert_int_equal(beam_run(st, db, fx->m, fx->tok, es, fx->pool, &o, false, &s), -1);
    assert_non_null(strstr(rys_lasterr(), "baseline"));
    /* the baseline alone */
    scan_sweep sw = {0};
    sw.max_extra = 1;
    scan_config *cfgs;
    int n;
    assert_int_equal(scan_build_configs(N_LAYERS, &sw, &cfgs, &n), 0);
    char *key = path_canonical(&cfgs[0].path);
    store_config sc = {cfgs[0].spec, key, -1, -1, 0, 0, "scan"};
    assert_int_equal(store_add_configs(st, &sc, 1), 0);
    scan_run_opts ro = {false, false, 0, 0, NULL};
    scan_summary sum;
    assert_int_equal(scan_run(st, fx->m, fx->tok, es, fx->pool, cfgs, 1, &ro, &sum), 0);
    assert_int_equal(beam_run(st, db, fx->m, fx->tok, es, fx->pool, &o, false, &s), -1);
    assert_non_null(strstr(rys_lasterr(), "no single blocks"));
    assert_null(strchr(rys_lasterr(), '\n'));
    assert_int_equal(test_query_int(db, "SELECT count(*) FROM beam"), 0);
    free(key);
    scan_free_configs(cfgs, n);
    store_close(st);
    test_remove_db(db);
    unlink(probe_path);
    evalset_free(es);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_propose_hand_worked),
        cmocka_unit_test(test_beam_ranks_by_hand),
        cmocka_unit_test(test_beam_on_tiny),
        cmocka_unit_test(test_beam_refuses),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
