/* Helpers for the tests that read a store with their own SQL (the kill and
 * beam tests compare stores as text) and replay random delays. */
#ifndef RYS_TESTDB_H
#define RYS_TESTDB_H
#include "testutil.h"

#include <sqlite3.h>
#include <time.h>

/* Every row sql gives on the database at db (read-only), its columns
 * tab-separated, one row a line (NULL as empty): malloc'd text. */
static inline char *test_query_rows(const char *db, const char *sql) {
    sqlite3 *h;
    assert_int_equal(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(h, sql, -1, &q, NULL) != SQLITE_OK) fail_msg("%s: %s", sql, sqlite3_errmsg(h));
    size_t cap = 1 << 16, len = 0;
    char *out = malloc(cap);
    out[0] = 0;
    int cols = sqlite3_column_count(q);
    while (sqlite3_step(q) == SQLITE_ROW)
        for (int c = 0; c < cols; c++) {
            const char *t = (const char *)sqlite3_column_text(q, c);
            size_t n = strlen(t ? t : "") + 2;
            if (len + n + 1 > cap) out = realloc(out, cap = 2 * (cap + n));
            len += (size_t)snprintf(out + len, cap - len, "%s%c", t ? t : "", c == cols - 1 ? '\n' : '\t');
        }
    sqlite3_finalize(q);
    sqlite3_close(h);
    return out;
}

/* The integer in the first column of sql's first row. */
static inline int test_query_int(const char *db, const char *sql) {
    sqlite3 *h;
    assert_int_equal(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(h, sql, -1, &q, NULL) != SQLITE_OK) fail_msg("%s: %s", sql, sqlite3_errmsg(h));
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    int v = sqlite3_column_int(q, 0);
    sqlite3_finalize(q);
    sqlite3_close(h);
    return v;
}

/* The seed of a test's random kill delays: RYS_TEST_SEED when set (to
 * replay a run), else the time; printed with the test's name either way. */
static inline unsigned test_seed(const char *name) {
    unsigned seed = (unsigned)time(NULL);
    const char *env = getenv("RYS_TEST_SEED");
    if (env && *env) {
        char *end;
        unsigned long long v = strtoull(env, &end, 10);
        if (*end || env[0] == '-' || v > 0xffffffffull) fail_msg("RYS_TEST_SEED='%s': want an integer 0..4294967295", env);
        seed = (unsigned)v;
    }
    fprintf(stderr, "%s: seed %u (replay: RYS_TEST_SEED=%u)\n", name, seed, seed);
    return seed;
}
#endif
