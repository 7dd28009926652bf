/* db: see db.h. */
#include "base/db.h"
#include "base/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* Opens path with flags and the busy timeout every rys connection uses; on
 * failure the error says the file cannot be opened. */
static int open_flags(db_conn *db, const char *path, int flags) {
    db->h = NULL;
    db->path = xstrdup(path);
    if (sqlite3_open_v2(path, &db->h, flags, NULL) != SQLITE_OK) {
        rys_seterr("%s: cannot open: %s", path, db->h ? sqlite3_errmsg(db->h) : "out of memory");
        db_close(db);
        return -1;
    }
    /* a scan writing and a report or status reading wait for each other briefly instead of failing */
    sqlite3_busy_timeout(db->h, 10000);
    return 0;
}

int db_open(db_conn *db, const char *path, const char *schema_sql) {
    if (open_flags(db, path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE)) return -1;
    if (db_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;") || db_exec(db, schema_sql)) {
        rys_seterr("%s: not a usable rys results database (%s)", path, rys_lasterr());
        db_close(db);
        return -1;
    }
    return 0;
}

int db_open_readonly(db_conn *db, const char *path) {
    return open_flags(db, path, SQLITE_OPEN_READONLY);
}

void db_close(db_conn *db) {
    sqlite3_close(db->h);
    free(db->path);
    db->h = NULL;
    db->path = NULL;
}

int db_exec(db_conn *db, const char *sql) {
    char *err = NULL;
    if (sqlite3_exec(db->h, sql, NULL, NULL, &err) != SQLITE_OK) {
        rys_seterr("%s: %s", db->path, err ? err : sqlite3_errmsg(db->h));
        sqlite3_free(err);
        return -1;
    }
    return 0;
}

int db_prepare(db_conn *db, const char *sql, const char *what, sqlite3_stmt **q) {
    if (sqlite3_prepare_v2(db->h, sql, -1, q, NULL) == SQLITE_OK) return 0;
    *q = NULL;
    return db_fail(db, what);
}

int db_fail(db_conn *db, const char *what) {
    if (what) rys_seterr("%s: %s: %s", db->path, what, sqlite3_errmsg(db->h));
    else rys_seterr("%s: %s", db->path, sqlite3_errmsg(db->h));
    return -1;
}

int db_begin(db_conn *db) { return db_exec(db, "BEGIN IMMEDIATE"); }

int db_commit(db_conn *db) { return db_exec(db, "COMMIT"); }

void db_rollback(db_conn *db) {
    /* not db_exec: its failure (no transaction left to undo) must not replace the error that led here */
    sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
}

const char *db_col_text(sqlite3_stmt *q, int c) {
    const unsigned char *t = sqlite3_column_text(q, c);
    return t ? (const char *)t : "";
}

char *db_col_dup(sqlite3_stmt *q, int c) { return xstrdup(db_col_text(q, c)); }

void db_now_iso(char *buf, size_t n) {
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int db_read_run(db_conn *db, const char *table, const char *what, char **model_path, int *n_layers) {
    sqlite3_stmt *q;
    /* a store of the other kind in the same file has no such table at all */
    if (db_prepare(db, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1", what, &q)) return -1;
    sqlite3_bind_text(q, 1, table, -1, SQLITE_STATIC);
    if (sqlite3_step(q) != SQLITE_ROW) {
        sqlite3_finalize(q);
        return db_fail(db, what);
    }
    int present = sqlite3_column_int(q, 0);
    sqlite3_finalize(q);
    if (!present) return 0;
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT model_path, n_layers FROM %s WHERE id = 1", table);
    if (db_prepare(db, sql, what, &q)) return -1;
    int found = sqlite3_step(q) == SQLITE_ROW;
    if (found) {
        *model_path = db_col_dup(q, 0);
        *n_layers = sqlite3_column_int(q, 1);
    }
    sqlite3_finalize(q);
    return found;
}
