/* db: see db.h. */
#include "base/db.h"
#include "base/util.h"

#include <time.h>

sqlite3 *db_open(const char *path, const char *schema_sql) {
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK) {
        rys_seterr("%s: cannot open: %s", path, db ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close(db);
        return NULL;
    }
    sqlite3_busy_timeout(db, 10000);
    if (db_exec(db, path, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;") || db_exec(db, path, schema_sql)) {
        rys_seterr("%s: not a usable rys results database (%s)", path, rys_lasterr());
        sqlite3_close(db);
        return NULL;
    }
    return db;
}

int db_exec(sqlite3 *db, const char *path, const char *sql) {
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
        rys_seterr("%s: %s", path, err ? err : sqlite3_errmsg(db));
        sqlite3_free(err);
        return -1;
    }
    return 0;
}

int db_fail(sqlite3 *db, const char *path, const char *what) {
    rys_seterr("%s: %s: %s", path, what, sqlite3_errmsg(db));
    return -1;
}

const char *db_col_text(sqlite3_stmt *q, int c) {
    const unsigned char *t = sqlite3_column_text(q, c);
    return t ? (const char *)t : "";
}

void db_now_iso(char *buf, size_t n) {
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}
