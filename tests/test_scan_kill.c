/* Kill safety of `rys scan`: SIGKILL the real binary at random moments, resume
 * each time, and require the final database to hold exactly one completed row
 * per configuration with the same scores and texts as an uninterrupted run.
 * Runs the rys binary built beside this test (../rys relative to it) on a
 * tiny self-written model and a 3-item math probe file. The kill delays are
 * drawn from a seed the test prints; RYS_TEST_SEED sets it. */
#include "testdb.h"
#include "tiny_model.h"

#include <signal.h>
#include <sqlite3.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <fcntl.h>

static char rys_bin[4096];
static const char *model_path, *probe_path, *paths_path;

/* A paths file for the 4-layer model: multi-block, skipped layers, a path
 * sharing nothing with the baseline, a repeat, a second spelling. */
static const char paths_text[] = "blocks:0,2;1,3\nlayers:1-3\nlayers:0,2-3\nrepeat:1,3\nlayers:0-1,0-3\nblocks:0,2\n";

static const char probe_json[] =
    "{\"0\": {\"question\": \"What is the square root of 152415787532388367504942236884722755800955129? "
    "Answer with an integer only.\", \"answer\": 12345678901234567890123},\n"
    " \"1\": {\"question\": \"What is 123 times 456? Answer with an integer only.\", \"answer\": 56088},\n"
    " \"2\": {\"question\": \"Cube root of 1000?\", \"answer\": 10}}\n";

/* Runs rys scan (a sweep, or --paths paths_path when listed); kills it after
 * delay_us (0 = let it finish). Returns the exit status, or -SIGKILL when killed. */
static int run_scan(const char *db, long delay_us, bool listed) {
    const char *args[] = {"scan", model_path, "--probes", probe_path, "--db", db, "-n", "6", "-t", "1", "--top", "0",
                          listed ? "--paths" : NULL, paths_path, NULL};
    return test_run_binary(rys_bin, args, delay_us, NULL);
}

/* "spec|status|score per probe|item texts" for every configuration, sorted. */
static char *dump(const char *db) {
    return test_query_rows(db,
        "SELECT c.spec, c.status, (SELECT group_concat(printf('%s=%.17g', probe, score), ',') FROM score s WHERE s.config_id = c.id), "
        "(SELECT group_concat(item_key || ':' || generated || ':' || printf('%.17g', score), '|') FROM item i WHERE i.config_id = c.id), "
        "(SELECT count(*) FROM item i WHERE i.config_id = c.id) FROM config c ORDER BY c.spec");
}

/* Kills the scan (a sweep, or the listed paths) at random moments, resumes
 * it each time, and fails unless the end equals an uninterrupted run's. */
static void kill_and_resume(bool listed) {
    /* the kill delays come from this seed: printed, and RYS_TEST_SEED=N
     * replays the same delays (where the process is when a delay ends still
     * depends on the machine's speed) */
    unsigned seed = test_seed("test_scan_kill");
    srand(seed);
    const char *ref_db = test_tmp_path("ref.sqlite"), *db = test_tmp_path("killed.sqlite");
    unlink(ref_db);
    unlink(db);
    assert_int_equal(run_scan(ref_db, 0, listed), 0);
    char *want = dump(ref_db);
    assert_non_null(strstr(want, "baseline\tdone"));
    assert_null(strstr(want, "\tpending\t"));

    int kills = 0, attempts = 0;
    while (kills < 12 && attempts < 200) {
        attempts++;
        long delay = 20000 + rand() % 400000;
        int rc = run_scan(db, delay, listed);
        if (rc == -SIGKILL) kills++;
        else if (rc != 0) fail_msg("attempt %d (kill after %ld us, seed %u): rys scan exited %d", attempts, delay, seed, rc);
        /* else it finished before the kill */
        if (rc == 0 && kills >= 12) break;
        if (rc == 0) test_remove_db(db);
    }
    assert_true(kills >= 10);
    assert_int_equal(run_scan(db, 0, listed), 0);   /* resume to the end */
    char *got = dump(db);
    /* identical rows: every configuration done once, same scores and texts */
    assert_string_equal(got, want);
    free(got);
    free(want);
    test_remove_db(db);
    test_remove_db(ref_db);
}

static void test_kill_and_resume(void **state) {
    (void)state;
    kill_and_resume(false);
}

static void test_kill_and_resume_paths(void **state) {
    (void)state;
    kill_and_resume(true);
}

int main(int argc, char **argv) {
    (void)argc;
    /* build/tests/test_scan_kill -> build/rys */
    if (test_rys_binary(argv[0], rys_bin, sizeof rys_bin)) return 1;
    model_path = test_tmp_path("kill-tiny.gguf");
    probe_path = test_tmp_path("kill-math.json");
    if (tiny_model_write(model_path, 4, 11)) return 1;
    paths_path = test_tmp_path("kill-paths.txt");
    FILE *f = fopen(probe_path, "w");
    fputs(probe_json, f);
    fclose(f);
    f = fopen(paths_path, "w");
    fputs(paths_text, f);
    fclose(f);
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_kill_and_resume), cmocka_unit_test(test_kill_and_resume_paths)};
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    unlink(model_path);
    unlink(probe_path);
    unlink(paths_path);
    return rc;
}
