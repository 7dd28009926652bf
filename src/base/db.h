/* db: what rys's SQLite stores (scan results, validation results) share.
 * A database is opened with WAL and synchronous=FULL, so a killed run loses
 * at most the transaction in flight and never leaves a half-written one;
 * every error names the file. */
#ifndef RYS_DB_H
#define RYS_DB_H

#include <sqlite3.h>
#include <stddef.h>

/* Opens (creating if needed) path and runs schema_sql (CREATE ... IF NOT
 * EXISTS). NULL with the error set if it is not a usable database. */
sqlite3 *db_open(const char *path, const char *schema_sql);
/* Runs sql; -1 with "path: message" set on failure. */
int db_exec(sqlite3 *db, const char *path, const char *sql);
/* Sets "path: what: sqlite's message" and returns -1. */
int db_fail(sqlite3 *db, const char *path, const char *what);
/* Column c as text, "" for NULL. */
const char *db_col_text(sqlite3_stmt *q, int c);
/* The current UTC time as 2026-01-31T12:00:00Z. */
void db_now_iso(char *buf, size_t n);

#endif
