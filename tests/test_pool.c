/* pool: every op runs once on every worker and has finished everywhere
 * when pool_run returns, whether the workers were still spinning from the
 * previous op or had gone to sleep (ops further apart than the spin budget);
 * pool_split hands out [0, n) exactly once. */
#include "testutil.h"

#include "base/pool.h"

#include <time.h>

#define THREADS 3

typedef struct {
    int runs[THREADS]; /* each slot written by its own worker only */
    int nth, bad_nth;
} tally;

static void count(void *ctx, int ith, int nth) {
    tally *t = ctx;
    if (nth != t->nth) t->bad_nth = 1;
    t->runs[ith]++;
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void check_runs(const tally *t, int expected) {
    assert_int_equal(t->bad_nth, 0);
    for (int i = 0; i < t->nth; i++) assert_int_equal(t->runs[i], expected);
}

/* Two threads (on a machine of two or more CPUs: the long spin) and three
 * (on two CPUs: the short spin of an oversubscribed pool). */
static void test_back_to_back_ops(void **state) {
    (void)state;
    for (int n = 2; n <= THREADS; n++) {
        pool *p = pool_new(n);
        tally t = {{0}, n, 0};
        for (int k = 0; k < 2000; k++) {
            pool_run(p, count, &t);
            /* the op is complete on every worker before pool_run returns */
            for (int i = 0; i < n; i++) assert_int_equal(t.runs[i], k + 1);
        }
        check_runs(&t, 2000);
        pool_free(p);
    }
}

static void test_ops_after_workers_slept(void **state) {
    (void)state;
    pool *p = pool_new(THREADS);
    tally t = {{0}, THREADS, 0};
    for (int k = 0; k < 12; k++) {
        sleep_ms(k % 3 == 0 ? 5 : 1); /* longer than the spin budget: workers are asleep */
        pool_run(p, count, &t);
        pool_run(p, count, &t); /* and one while they still spin */
    }
    check_runs(&t, 24);
    pool_free(p);
}

static void test_single_thread_runs_on_caller(void **state) {
    (void)state;
    /* NULL and a one-thread pool both call fn(ctx, 0, 1) on the caller */
    assert_int_equal(pool_size(NULL), 1);
    tally t = {{0}, 1, 0};
    pool_run(NULL, count, &t);
    pool *one = pool_new(1);
    assert_int_equal(pool_size(one), 1);
    pool_run(one, count, &t);
    pool_free(one);
    assert_int_equal(t.runs[0], 2);
    assert_int_equal(t.runs[1], 0);
    assert_int_equal(t.bad_nth, 0);
}

static void test_split_covers_range_once(void **state) {
    (void)state;
    for (long n = 0; n < 70; n++)
        for (int nth = 1; nth <= 9; nth++) {
            long next = 0;
            for (int ith = 0; ith < nth; ith++) {
                long lo, hi;
                pool_split(n, ith, nth, &lo, &hi);
                assert_int_equal(lo, next);
                assert_true(hi >= lo);
                assert_true(hi - lo <= n / nth + 1);
                next = hi;
            }
            assert_int_equal(next, n);
        }
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_back_to_back_ops),
                                       cmocka_unit_test(test_ops_after_workers_slept),
                                       cmocka_unit_test(test_single_thread_runs_on_caller),
                                       cmocka_unit_test(test_split_covers_range_once)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
