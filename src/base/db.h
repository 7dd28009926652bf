/* db: what rys's SQLite stores (scan results, validation results) share, so
 * each of them holds its SQL and nothing else. Only the stores include this
 * header: everything above reads and writes through store functions.
 * A database is opened with WAL and synchronous=FULL, so a killed run loses
 * at most the transaction in flight and never leaves a half-written one;
 * every error names the file. */
#ifndef RYS_DB_H
#define RYS_DB_H

#include <sqlite3.h>
#include <stddef.h>

/* An open connection and the file's name, which every error message starts with. */
typedef struct {
    sqlite3 *h;
    char *path;
} db_conn;

/* Opens (creating if needed) path and runs schema_sql (CREATE ... IF NOT
 * EXISTS); 0, or -1 with the error set if it is not a usable database. */
int db_open(db_conn *db, const char *path, const char *schema_sql);
/* Opens path read-only, creating and changing nothing (a report can be made
 * while a scan writes, since WAL readers do not block it); 0, or -1 with the
 * error set. */
int db_open_readonly(db_conn *db, const char *path);
/* Closes the connection (a db_conn that failed to open included). */
void db_close(db_conn *db);
/* Runs sql; -1 with "path: message" set on failure. */
int db_exec(db_conn *db, const char *sql);
/* Compiles sql into *q; -1 with "path: what: message" set (and *q NULL) on failure. */
int db_prepare(db_conn *db, const char *sql, const char *what, sqlite3_stmt **q);
/* Sets "path: what: sqlite's message" ("path: message" when what is NULL) and returns -1. */
int db_fail(db_conn *db, const char *what);
/* Starts a write transaction that holds the write lock from its first statement. */
int db_begin(db_conn *db);
/* Commits the transaction begun by db_begin; -1 with the error set. */
int db_commit(db_conn *db);
/* Undoes the transaction in flight, keeping the error already set. */
void db_rollback(db_conn *db);
/* Column c as text, "" for NULL. */
const char *db_col_text(sqlite3_stmt *q, int c);
/* Column c as a malloc'd string, "" for NULL. */
char *db_col_dup(sqlite3_stmt *q, int c);
/* The current UTC time as 2026-01-31T12:00:00Z. */
/* The run identity a store keeps in row id = 1 of `table` (a trusted
 * constant): 1 with model_path (malloc'd) and n_layers, 0 when the file has no
 * such table or row, -1 with the error set (naming `what`) when it cannot be
 * read. */
int db_read_run(db_conn *db, const char *table, const char *what, char **model_path, int *n_layers);
void db_now_iso(char *buf, size_t n);

#endif
