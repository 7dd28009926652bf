/* Kill safety of `rys beam`: SIGKILL the real binary at random moments (while
 * it plans a depth, measures, or ranks), resume each time, and require the
 * final store to equal an uninterrupted run's (the same configuration rows,
 * scores, item texts, candidates per depth and frozen statistics), with no
 * path measured twice: every done row's results were committed once, and
 * the paths the beam added are as many as the engine ran in the
 * uninterrupted run (its --json measured_now).
 * Runs the rys binary built beside this test (../rys relative to it) on a
 * tiny self-written model scanned first with `rys scan`. The kill delays are
 * drawn from a seed the test prints; RYS_TEST_SEED sets it. */
#include "testdb.h"
#include "tiny_model.h"

#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <sqlite3.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

static char rys_bin[4096];
static const char *model_path, *probe_path;

static const char probe_json[] =
    "{\"0\": {\"question\": \"What is 123 times 456? Answer with an integer only.\", \"answer\": 56088},\n"
    " \"1\": {\"question\": \"What is 7 times 8?\", \"answer\": 56},\n"
    " \"2\": {\"question\": \"Cube root of 1000?\", \"answer\": 10}}\n";

/* A fresh store holding the tiny model's scan: the baseline and its 6 single blocks. */
static void scan(const char *db) {
    test_remove_db(db);
    const char *args[] = {"scan", model_path, "--probes", probe_path, "--db", db, "-n", "6", "-t", "1", "--top", "0", NULL};
    assert_int_equal(test_run_binary(rys_bin, args, 0, NULL), 0);
}

static int beam(const char *db, long delay_us, const char *out) {
    /* every block seeds and extends, 2 kept; at most 20 new paths a depth (of about 33 at depth 2), so a
     * resumed run that re-planned a depth with its own measured paths counted as stored would measure more */
    const char *args[] = {"beam", model_path, "--db", db, "--width", "2", "--depth", "3", "--seeds", "6", "--expand", "6",
                          "--max-new-per-depth", "20", "-t", "1", "--json", NULL};
    return test_run_binary(rys_bin, args, delay_us, out);
}

/* Every row a scan and a beam leave, as text, sorted. */
static char *dump(const char *db) {
    return test_query_rows(db,
        "SELECT 'config ' || c.path || ' ' || c.spec || ' ' || c.search || ' ' || c.status || ' ' || c.measured || ' ' || "
        "coalesce((SELECT group_concat(printf('%s=%.17g', probe, score)) FROM score s WHERE s.config_id = c.id), '') || ' ' || "
        "coalesce((SELECT group_concat(item_key || ':' || generated || ':' || printf('%.17g', score), '|') FROM item i "
        "WHERE i.config_id = c.id), '') FROM config c "
        "UNION ALL SELECT 'cand ' || beam || ' ' || depth || ' ' || rank || ' ' || spec || ' ' || path || ' ' || printf('%.17g', heuristic) "
        "FROM beam_candidate "
        "UNION ALL SELECT 'zstat ' || beam || ' ' || position || ' ' || printf('%.17g %.17g', mean, sd) FROM beam_zstat ORDER BY 1");
}

/* The integer member key of the JSON object in the file at path. */
static int json_int(const char *path, const char *key) {
    json_error_t err;
    json_t *o = json_load_file(path, 0, &err);
    if (!o) fail_msg("%s: %s", path, err.text);
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v)) fail_msg("%s: no integer %s", path, key);
    int n = (int)json_integer_value(v);
    json_decref(o);
    return n;
}

static void test_kill_and_resume(void **state) {
    (void)state;
    unsigned seed = test_seed("test_beam_kill");
    srand(seed);
    const char *ref_db = test_tmp_path("beam-ref.sqlite"), *db = test_tmp_path("beam-killed.sqlite");
    const char *out = test_tmp_path("beam-out.json");
    scan(ref_db);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(beam(ref_db, 0, out), 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    /* kills land anywhere in a whole run: from its start (loading) to past its end */
    long run_us = (t1.tv_sec - t0.tv_sec) * 1000000L + (t1.tv_nsec - t0.tv_nsec) / 1000;
    int measured = json_int(out, "measured_now"), candidates = json_int(out, "candidates");
    assert_true(measured > 30);
    assert_int_equal(test_query_int(ref_db, "SELECT count(*) FROM config WHERE search = 'beam' AND status = 'done'"), measured);
    assert_int_equal(test_query_int(ref_db, "SELECT count(*) FROM beam_candidate WHERE depth > 1"), candidates);
    char *want = dump(ref_db);
    assert_null(strstr(want, " pending "));

    scan(db);
    int kills = 0, attempts = 0;
    while (kills < 12 && attempts < 200) {
        attempts++;
        long delay = 20000 + rand() % (run_us / 2 + 1);
        int rc = beam(db, delay, NULL);
        if (rc == -SIGKILL) kills++;
        else if (rc != 0) fail_msg("attempt %d (kill after %ld us, seed %u): rys beam exited %d", attempts, delay, seed, rc);
        /* finished before the kill: start over from the scan while kills are wanted */
        if (rc == 0 && kills < 12) scan(db);
    }
    assert_true(kills >= 10);
    assert_int_equal(beam(db, 0, out), 0);   /* resume to the end */
    char *got = dump(db);
    assert_string_equal(got, want);
    /* none measured twice: every done row's results were committed once */
    assert_int_equal(test_query_int(db, "SELECT max(measured) FROM config"), 1);
    assert_int_equal(test_query_int(db, "SELECT sum(measured) FROM config"), test_query_int(db, "SELECT count(*) FROM config WHERE status = 'done'"));
    assert_int_equal(test_query_int(db, "SELECT count(*) FROM config WHERE search = 'beam'"), measured);
    free(got);
    free(want);
    test_remove_db(db);
    test_remove_db(ref_db);
    unlink(out);
}

int main(int argc, char **argv) {
    (void)argc;
    /* build/tests/test_beam_kill -> build/rys */
    if (test_rys_binary(argv[0], rys_bin, sizeof rys_bin)) return 1;
    model_path = test_tmp_path("beam-kill-tiny.gguf");
    probe_path = test_tmp_path("beam-kill-math.json");
    if (tiny_model_write(model_path, 3, 11)) return 1;
    FILE *f = fopen(probe_path, "w");
    fputs(probe_json, f);
    fclose(f);
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_kill_and_resume)};
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    unlink(model_path);
    unlink(probe_path);
    return rc;
}
