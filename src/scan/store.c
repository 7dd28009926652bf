/* store: see store.h; the scan's own tables (the searches' are in
 * store_search.c). Durability: WAL journal with synchronous=FULL, and one
 * transaction per configuration result, so SIGKILL at any instruction leaves
 * the file consistent and loses at most the configuration in flight. */
#include "scan/store.h"
#include "scan/store_internal.h"
#include "base/util.h"

#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>


/* Schema version 1 (documented in the README). */
static const char schema_sql[] =
    "-- rys results store, schema version 1. One database = one scan identity.\n"
    "PRAGMA foreign_keys = ON;\n"
    "CREATE TABLE IF NOT EXISTS meta (\n"
    "    key   TEXT PRIMARY KEY,\n"
    "    value TEXT NOT NULL\n"
    ");\n"
    "-- The scan identity: what every score in this file depends on.\n"
    "CREATE TABLE IF NOT EXISTS scan_run (\n"
    "    id            INTEGER PRIMARY KEY CHECK (id = 1),\n"
    "    created_at    TEXT NOT NULL,\n"
    "    rys_version   TEXT NOT NULL,\n"
    "    model_path    TEXT NOT NULL,\n"
    "    model_sha256  TEXT NOT NULL,\n"
    "    arch          TEXT NOT NULL,\n"
    "    n_layers      INTEGER NOT NULL,\n"
    "    settings      TEXT NOT NULL          -- JSON: generation settings\n"
    ");\n"
    "CREATE TABLE IF NOT EXISTS probe_set (\n"
    "    name     TEXT PRIMARY KEY,           -- e.g. math_16\n"
    "    path     TEXT NOT NULL,\n"
    "    sha256   TEXT NOT NULL,\n"
    "    kind     TEXT NOT NULL,              -- math | eq | eq_logit\n"
    "    n_items  INTEGER NOT NULL,\n"
    "    position INTEGER NOT NULL\n"
    ");\n"
    "-- One row per layer configuration, keyed by its canonical path.\n"
    "CREATE TABLE IF NOT EXISTS config (\n"
    "    id                 INTEGER PRIMARY KEY,\n"
    "    path               TEXT NOT NULL UNIQUE,   -- \"layers:0,1,2,...\"\n"
    "    spec               TEXT NOT NULL,          -- \"baseline\", \"blocks:i,j\", \"repeat:L,r\"\n"
    "    search             TEXT NOT NULL DEFAULT 'scan',  -- what proposed it: scan | paths | beam | surrogate\n"
    "    i                  INTEGER,                -- block start, NULL if not a single block\n"
    "    j                  INTEGER,                -- block end\n"
    "    extra_layers       INTEGER NOT NULL,\n"
    "    sweep_order        INTEGER NOT NULL,\n"
    "    status             TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'running', 'done')),\n"
    "    started_at         TEXT,\n"
    "    finished_at        TEXT,\n"
    "    seconds            REAL,\n"
    "    prompt_tokens      INTEGER,\n"
    "    generated_tokens   INTEGER,\n"
    "    layer_tokens_done  INTEGER,                -- layer x token evaluations run\n"
    "    layer_tokens_naive INTEGER,                -- the same for a from-scratch run\n"
    "    measured           INTEGER NOT NULL DEFAULT 0  -- results committed for it: 1 once done; more = measured twice\n"
    ");\n"
    "CREATE TABLE IF NOT EXISTS score (\n"
    "    config_id INTEGER NOT NULL REFERENCES config(id) ON DELETE CASCADE,\n"
    "    probe     TEXT NOT NULL REFERENCES probe_set(name),\n"
    "    score     REAL NOT NULL,\n"
    "    PRIMARY KEY (config_id, probe)\n"
    ");\n"
    "-- Every item of every probe, so each number can be audited.\n"
    "CREATE TABLE IF NOT EXISTS item (\n"
    "    config_id INTEGER NOT NULL REFERENCES config(id) ON DELETE CASCADE,\n"
    "    probe     TEXT NOT NULL REFERENCES probe_set(name),\n"
    "    item_key  TEXT NOT NULL,\n"
    "    generated TEXT NOT NULL,\n"
    "    parsed    TEXT NOT NULL,                 -- JSON: candidates / parsed emotion scores\n"
    "    score     REAL NOT NULL,\n"
    "    PRIMARY KEY (config_id, probe, item_key)\n"
    ");\n"
    "CREATE INDEX IF NOT EXISTS config_status ON config(status);\n"
    "-- Stages of a `rys pipeline` run: time spent and whether each finished, so a rerun continues.\n"
    "CREATE TABLE IF NOT EXISTS stage (\n"
    "    name    TEXT PRIMARY KEY,\n"
    "    seconds REAL NOT NULL DEFAULT 0,\n"
    "    done    INTEGER NOT NULL DEFAULT 0,\n"
    "    note    TEXT NOT NULL DEFAULT ''\n"
    ");\n"
    "-- Beam searches (rys beam), one per set of options: what the ranking is relative to,\n"
    "-- frozen when it starts, so a resumed search ranks exactly as an uninterrupted one.\n"
    "CREATE TABLE IF NOT EXISTS beam (\n"
    "    name       TEXT PRIMARY KEY,             -- its options, e.g. \"width=8 seeds=16 expand=16 max_new=64 max_extra=0\"\n"
    "    created_at TEXT NOT NULL\n"
    ");\n"
    "CREATE TABLE IF NOT EXISTS beam_zstat (\n"
    "    beam     TEXT NOT NULL REFERENCES beam(name),\n"
    "    position INTEGER NOT NULL,               -- probe_set.position\n"
    "    mean     REAL NOT NULL,                  -- of the single blocks' deltas when the beam started\n"
    "    sd       REAL NOT NULL,\n"
    "    PRIMARY KEY (beam, position)\n"
    ");\n"
    "-- The paths each depth proposed, best heuristic first: depth 1 holds the seeds and the blocks that\n"
    "-- extend them; depth d > 1 the candidates of d blocks, written before any is measured.\n"
    "CREATE TABLE IF NOT EXISTS beam_candidate (\n"
    "    beam      TEXT NOT NULL REFERENCES beam(name),\n"
    "    depth     INTEGER NOT NULL,\n"
    "    rank      INTEGER NOT NULL,\n"
    "    spec      TEXT NOT NULL,                 -- \"blocks:i,j;k,l\"\n"
    "    path      TEXT NOT NULL,                 -- config.path\n"
    "    heuristic REAL NOT NULL,                 -- depth 1: balanced score; else parent's + block's\n"
    "    PRIMARY KEY (beam, depth, rank)\n"
    ");\n";

/* Whether the table has the column (a store from before it has not). */
static bool table_has_column(store *st, const char *table, const char *column) {
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT %s FROM %s LIMIT 0", column, table);
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(st->db.h, sql, -1, &q, NULL) != SQLITE_OK) return false;
    sqlite3_finalize(q);
    return true;
}

static bool has_column(store *st, const char *column) {
    return table_has_column(st, "config", column);
}

static bool has_search_column(store *st) {
    return has_column(st, "search");
}

store *store_open(const char *path) {
    store *st = xcalloc(1, sizeof *st);
    if (db_open(&st->db, path, schema_sql)) {
        free(st);
        return NULL;
    }
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(st->db.h, "INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', '1')", -1, &q, NULL) != SQLITE_OK ||
        sqlite3_step(q) != SQLITE_DONE) {
        sqlite3_finalize(q);
        db_fail(&st->db, "cannot write metadata");
        store_close(st);
        return NULL;
    }
    sqlite3_finalize(q);
    /* stores written before searches were marked lack the column; their rows all came from sweeps */
    if (!has_search_column(st) &&
        db_exec(&st->db, "ALTER TABLE config ADD COLUMN search TEXT NOT NULL DEFAULT 'scan'")) {
        store_close(st);
        return NULL;
    }
    /* nor the count of results committed: their rows count from here on */
    if (!has_column(st, "measured") && db_exec(&st->db, "ALTER TABLE config ADD COLUMN measured INTEGER NOT NULL DEFAULT 0")) {
        store_close(st);
        return NULL;
    }
    return st;
}

void store_close(store *st) {
    if (!st) return;
    db_close(&st->db);
    free(st);
}

int store_set_identity(store *st, const store_identity *id) {
    sqlite3_stmt *q;
    if (db_prepare(&st->db, "SELECT model_sha256, settings, model_path FROM scan_run WHERE id = 1", "reading the scan identity", &q))
        return -1;
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW) {
        int bad = 0;
        if (strcmp(db_col_text(q, 0), id->model_sha256)) {
            rys_seterr("%s: holds a scan of another model (%s, sha256 %.12s...); use another --db", st->db.path,
                       db_col_text(q, 2), db_col_text(q, 0));
            bad = 1;
        } else if (strcmp(db_col_text(q, 1), id->settings_json)) {
            rys_seterr("%s: holds a scan with other settings (%s); use another --db", st->db.path, db_col_text(q, 1));
            bad = 1;
        }
        sqlite3_finalize(q);
        if (bad) return -1;
        for (int p = 0; p < id->n_probes; p++) {
            if (db_prepare(&st->db, "SELECT sha256 FROM probe_set WHERE name = ?", "reading probe sets", &q)) return -1;
            sqlite3_bind_text(q, 1, id->probes[p].name, -1, SQLITE_STATIC);
            rc = sqlite3_step(q);
            if (rc != SQLITE_ROW || strcmp(db_col_text(q, 0), id->probes[p].sha256)) {
                rys_seterr(rc == SQLITE_ROW ? "%s: probe set %s differs from the one this scan used (sha256 %.12s...); use another --db"
                                            : "%s: this scan did not use probe set %s%s; use another --db",
                           st->db.path, id->probes[p].name, rc == SQLITE_ROW ? db_col_text(q, 0) : "");
                sqlite3_finalize(q);
                return -1;
            }
            sqlite3_finalize(q);
        }
        if (db_prepare(&st->db, "SELECT count(*) FROM probe_set", "reading probe sets", &q)) return -1;
        sqlite3_step(q);
        int n = sqlite3_column_int(q, 0);
        sqlite3_finalize(q);
        if (n != id->n_probes) {
            rys_seterr("%s: this scan used %d probe sets, not %d; use another --db", st->db.path, n, id->n_probes);
            return -1;
        }
        return 0;
    }
    sqlite3_finalize(q);
    if (rc != SQLITE_DONE) return db_fail(&st->db, "reading the scan identity");
    char ts[32];
    db_now_iso(ts, sizeof ts);
    if (db_begin(&st->db)) return -1;
    if (sqlite3_prepare_v2(st->db.h, "INSERT INTO scan_run(id, created_at, rys_version, model_path, model_sha256, arch, n_layers, settings) "
                                   "VALUES (1, ?, ?, ?, ?, ?, ?, ?)", -1, &q, NULL) != SQLITE_OK) goto err;
    sqlite3_bind_text(q, 1, ts, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(q, 2, RYS_VERSION, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 3, id->model_path, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 4, id->model_sha256, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 5, id->arch, -1, SQLITE_STATIC);
    sqlite3_bind_int(q, 6, id->n_layers);
    sqlite3_bind_text(q, 7, id->settings_json, -1, SQLITE_STATIC);
    if (sqlite3_step(q) != SQLITE_DONE) { sqlite3_finalize(q); goto err; }
    sqlite3_finalize(q);
    for (int p = 0; p < id->n_probes; p++) {
        const store_probe *pr = &id->probes[p];
        if (sqlite3_prepare_v2(st->db.h, "INSERT INTO probe_set(name, path, sha256, kind, n_items, position) VALUES (?,?,?,?,?,?)",
                               -1, &q, NULL) != SQLITE_OK) goto err;
        sqlite3_bind_text(q, 1, pr->name, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 2, pr->path, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 3, pr->sha256, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 4, pr->kind, -1, SQLITE_STATIC);
        sqlite3_bind_int(q, 5, pr->n_items);
        sqlite3_bind_int(q, 6, p);
        if (sqlite3_step(q) != SQLITE_DONE) { sqlite3_finalize(q); goto err; }
        sqlite3_finalize(q);
    }
    return db_commit(&st->db);
err:
    db_fail(&st->db, "recording the scan identity");
    db_rollback(&st->db);
    return -1;
}

/* Inserts cfgs as pending rows, keeping any already present (inside the caller's transaction). */
int store_insert_configs(store *st, const store_config *cfgs, int n) {
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(st->db.h, "INSERT OR IGNORE INTO config(path, spec, i, j, extra_layers, sweep_order, search) VALUES (?,?,?,?,?,?,?)",
                           -1, &q, NULL) != SQLITE_OK) return -1;
    for (int k = 0; k < n; k++) {
        const store_config *c = &cfgs[k];
        sqlite3_reset(q);
        sqlite3_bind_text(q, 1, c->path, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 2, c->spec, -1, SQLITE_STATIC);
        if (c->i >= 0) sqlite3_bind_int(q, 3, c->i); else sqlite3_bind_null(q, 3);
        if (c->j >= 0) sqlite3_bind_int(q, 4, c->j); else sqlite3_bind_null(q, 4);
        sqlite3_bind_int(q, 5, c->extra_layers);
        sqlite3_bind_int(q, 6, c->order);
        sqlite3_bind_text(q, 7, c->search ? c->search : "scan", -1, SQLITE_STATIC);
        if (sqlite3_step(q) != SQLITE_DONE) { sqlite3_finalize(q); return -1; }
    }
    sqlite3_finalize(q);
    return 0;
}

int store_add_configs(store *st, const store_config *cfgs, int n) {
    if (db_begin(&st->db)) return -1;
    if (store_insert_configs(st, cfgs, n)) {
        db_fail(&st->db, "adding configurations");
        db_rollback(&st->db);
        return -1;
    }
    return db_commit(&st->db);
}

int store_is_done(store *st, const char *path) {
    sqlite3_stmt *q;
    if (db_prepare(&st->db, "SELECT status FROM config WHERE path = ?", "reading configurations", &q)) return -1;
    sqlite3_bind_text(q, 1, path, -1, SQLITE_STATIC);
    int done = sqlite3_step(q) == SQLITE_ROW && !strcmp(db_col_text(q, 0), "done");
    sqlite3_finalize(q);
    return done;
}

int store_mark_running(store *st, const char *path) {
    char ts[32];
    db_now_iso(ts, sizeof ts);
    sqlite3_stmt *q;
    if (db_prepare(&st->db, "UPDATE config SET status = 'running', started_at = ? WHERE path = ? AND status != 'done'",
                   "updating a configuration", &q))
        return -1;
    sqlite3_bind_text(q, 1, ts, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(q, 2, path, -1, SQLITE_STATIC);
    int rc = sqlite3_step(q) == SQLITE_DONE ? 0 : db_fail(&st->db, "updating a configuration");
    sqlite3_finalize(q);
    return rc;
}

int store_save_result(store *st, const store_result *r) {
    char ts[32];
    db_now_iso(ts, sizeof ts);
    sqlite3_stmt *q = NULL;
    if (db_begin(&st->db)) return -1;
    if (sqlite3_prepare_v2(st->db.h, "SELECT id FROM config WHERE path = ?", -1, &q, NULL) != SQLITE_OK) goto err;
    sqlite3_bind_text(q, 1, r->path, -1, SQLITE_STATIC);
    if (sqlite3_step(q) != SQLITE_ROW) { sqlite3_finalize(q); rys_seterr("%s: unknown configuration %s", st->db.path, r->path); goto rollback; }
    sqlite3_int64 id = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    /* a configuration redone after a kill replaces whatever the old attempt left */
    char del[128];
    snprintf(del, sizeof del, "DELETE FROM score WHERE config_id = %lld; DELETE FROM item WHERE config_id = %lld;", (long long)id, (long long)id);
    if (db_exec(&st->db, del)) goto rollback;
    if (sqlite3_prepare_v2(st->db.h, "INSERT INTO score(config_id, probe, score) VALUES (?,?,?)", -1, &q, NULL) != SQLITE_OK) goto err;
    for (int p = 0; p < r->n_probes; p++) {
        sqlite3_reset(q);
        sqlite3_bind_int64(q, 1, id);
        sqlite3_bind_text(q, 2, r->probe_names[p], -1, SQLITE_STATIC);
        sqlite3_bind_double(q, 3, r->probe_scores[p]);
        if (sqlite3_step(q) != SQLITE_DONE) { sqlite3_finalize(q); goto err; }
    }
    sqlite3_finalize(q);
    if (sqlite3_prepare_v2(st->db.h, "INSERT INTO item(config_id, probe, item_key, generated, parsed, score) VALUES (?,?,?,?,?,?)",
                           -1, &q, NULL) != SQLITE_OK) goto err;
    for (int k = 0; k < r->n_items; k++) {
        const store_item *it = &r->items[k];
        sqlite3_reset(q);
        sqlite3_bind_int64(q, 1, id);
        sqlite3_bind_text(q, 2, it->probe, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 3, it->key, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 4, it->generated, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 5, it->parsed_json, -1, SQLITE_STATIC);
        sqlite3_bind_double(q, 6, it->score);
        if (sqlite3_step(q) != SQLITE_DONE) { sqlite3_finalize(q); goto err; }
    }
    sqlite3_finalize(q);
    if (sqlite3_prepare_v2(st->db.h, "UPDATE config SET status = 'done', finished_at = ?, seconds = ?, prompt_tokens = ?, "
                                   "generated_tokens = ?, layer_tokens_done = ?, layer_tokens_naive = ?, measured = measured + 1 "
                                   "WHERE id = ?",
                           -1, &q, NULL) != SQLITE_OK) goto err;
    sqlite3_bind_text(q, 1, ts, -1, SQLITE_TRANSIENT);
    sqlite3_bind_double(q, 2, r->seconds);
    sqlite3_bind_int64(q, 3, r->prompt_tokens);
    sqlite3_bind_int64(q, 4, r->generated_tokens);
    sqlite3_bind_int64(q, 5, r->layer_tokens_done);
    sqlite3_bind_int64(q, 6, r->layer_tokens_naive);
    sqlite3_bind_int64(q, 7, id);
    if (sqlite3_step(q) != SQLITE_DONE) { sqlite3_finalize(q); goto err; }
    sqlite3_finalize(q);
    return db_commit(&st->db);
err:
    db_fail(&st->db, "saving a result");
rollback:
    db_rollback(&st->db);
    return -1;
}

int store_counts(store *st, int *total, int *done) {
    sqlite3_stmt *q;
    if (db_prepare(&st->db, "SELECT count(*), coalesce(sum(status = 'done'), 0) FROM config", "counting configurations", &q))
        return -1;
    sqlite3_step(q);
    *total = sqlite3_column_int(q, 0);
    *done = sqlite3_column_int(q, 1);
    sqlite3_finalize(q);
    return 0;
}

store *store_open_readonly(const char *path) {
    store *st = xcalloc(1, sizeof *st);
    if (db_open_readonly(&st->db, path)) {
        free(st);
        return NULL;
    }
    return st;
}

int store_get_run(store *st, char **model_path, int *n_layers) {
    /* unreadable as a scan counts as none: the file may hold `rys validate` results alone */
    return db_read_run(&st->db, "scan_run", "reading the scan identity", model_path, n_layers) == 1;
}

int store_probe_sets(store *st, store_probe_set **out, int *n) {
    *out = NULL;
    *n = 0;
    sqlite3_stmt *q;
    /* a database written by hand for a report may keep no paths */
    if (db_prepare(&st->db, table_has_column(st, "probe_set", "path") ? "SELECT name, kind, path FROM probe_set ORDER BY position"
                                                                       : "SELECT name, kind, '' FROM probe_set ORDER BY position",
                   "reading probe sets", &q))
        return -1;
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        *out = xrealloc(*out, (size_t)(*n + 1) * sizeof **out);
        (*out)[(*n)++] = (store_probe_set){db_col_dup(q, 0), db_col_dup(q, 1), db_col_dup(q, 2)};
    }
    sqlite3_finalize(q);
    if (rc == SQLITE_DONE) return 0;
    store_probe_sets_free(*out, *n);
    *out = NULL;
    *n = 0;
    return db_fail(&st->db, "reading probe sets");
}

void store_probe_sets_free(store_probe_set *sets, int n) {
    for (int k = 0; k < n; k++) {
        free(sets[k].name);
        free(sets[k].kind);
        free(sets[k].path);
    }
    free(sets);
}

int store_done_configs(store *st, const char *const *probes, int n_probes, store_done **out, int *n) {
    *out = NULL;
    *n = 0;
    sqlite3_stmt *q = NULL, *sq = NULL;
    int cap = 0, rc = -1;
    /* a read-only store from before searches were marked has no search column: all its rows are sweeps */
    if (db_prepare(&st->db, has_search_column(st) ? "SELECT id, spec, coalesce(i, -1), coalesce(j, -1), extra_layers, path, search FROM config "
                                                   "WHERE status = 'done' ORDER BY sweep_order, id"
                                                 : "SELECT id, spec, coalesce(i, -1), coalesce(j, -1), extra_layers, path, 'scan' FROM config "
                                                   "WHERE status = 'done' ORDER BY sweep_order, id",
                   "reading configurations", &q) ||
        db_prepare(&st->db, "SELECT score FROM score WHERE config_id = ? AND probe = ?", "reading scores", &sq))
        goto out;
    int step;
    while ((step = sqlite3_step(q)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? 2 * cap : 64;
            *out = xrealloc(*out, (size_t)cap * sizeof **out);
        }
        store_done *c = &(*out)[(*n)++];
        *c = (store_done){db_col_dup(q, 1), db_col_dup(q, 5), db_col_dup(q, 6), sqlite3_column_int(q, 2), sqlite3_column_int(q, 3),
                          sqlite3_column_int(q, 4), xcalloc((size_t)(n_probes ? n_probes : 1), sizeof *c->scores), true};
        for (int p = 0; p < n_probes; p++) {
            sqlite3_reset(sq);
            sqlite3_bind_int64(sq, 1, sqlite3_column_int64(q, 0));
            sqlite3_bind_text(sq, 2, probes[p], -1, SQLITE_STATIC);
            if (sqlite3_step(sq) == SQLITE_ROW) c->scores[p] = sqlite3_column_double(sq, 0);
            else c->complete = false;
        }
    }
    if (step != SQLITE_DONE) { db_fail(&st->db, "reading configurations"); goto out; }
    rc = 0;
out:
    sqlite3_finalize(sq);
    sqlite3_finalize(q);
    if (rc) {
        store_done_free(*out, *n);
        *out = NULL;
        *n = 0;
    }
    return rc;
}

void store_done_free(store_done *rows, int n) {
    for (int k = 0; k < n; k++) {
        free(rows[k].spec);
        free(rows[k].path);
        free(rows[k].search);
        free(rows[k].scores);
    }
    free(rows);
}

int store_best_configs(store *st, int top, store_best **out, int *n) {
    *out = NULL;
    *n = 0;
    /* per configuration, the sum of its deltas and each delta as text; printf
     * in SQL so that the text is the same wherever it is shown */
    static const char sql[] =
        "WITH base AS (SELECT s.probe, s.score FROM score s JOIN config c ON c.id = s.config_id WHERE c.spec = 'baseline'), "
        "d AS (SELECT c.spec, c.extra_layers, s.probe, s.score - b.score AS delta FROM score s JOIN config c ON c.id = s.config_id "
        "      JOIN base b ON b.probe = s.probe WHERE c.spec != 'baseline' AND c.status = 'done') "
        "SELECT spec, extra_layers, sum(delta), group_concat(probe || '=' || printf('%+.4f', delta), ' ') FROM d "
        "GROUP BY spec ORDER BY sum(delta) DESC LIMIT ?";
    sqlite3_stmt *q;
    if (db_prepare(&st->db, sql, "ranking configurations", &q)) return -1;
    sqlite3_bind_int(q, 1, top);
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        *out = xrealloc(*out, (size_t)(*n + 1) * sizeof **out);
        (*out)[(*n)++] = (store_best){db_col_dup(q, 0), sqlite3_column_int(q, 1), sqlite3_column_double(q, 2), db_col_dup(q, 3)};
    }
    sqlite3_finalize(q);
    if (rc == SQLITE_DONE) return 0;
    store_best_free(*out, *n);
    *out = NULL;
    *n = 0;
    return db_fail(&st->db, "ranking configurations");
}

void store_best_free(store_best *rows, int n) {
    for (int k = 0; k < n; k++) {
        free(rows[k].spec);
        free(rows[k].deltas);
    }
    free(rows);
}

int store_get_progress(store *st, store_progress *p) {
    memset(p, 0, sizeof *p);
    if (store_counts(st, &p->total, &p->done)) return -1;
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(st->db.h, "SELECT count(*), (julianday(max(finished_at)) - julianday(min(started_at))) * 86400 FROM config "
                                     "WHERE status = 'done' AND spec != 'baseline'", -1, &q, NULL) == SQLITE_OK) {
        if (sqlite3_step(q) == SQLITE_ROW && sqlite3_column_double(q, 1) > 0)
            p->configs_per_minute = sqlite3_column_int(q, 0) / sqlite3_column_double(q, 1) * 60.0;
        sqlite3_finalize(q);
    }
    if (sqlite3_prepare_v2(st->db.h, "SELECT spec FROM config WHERE status = 'running' ORDER BY started_at DESC LIMIT 1", -1, &q,
                           NULL) == SQLITE_OK) {
        if (sqlite3_step(q) == SQLITE_ROW) snprintf(p->running, sizeof p->running, "%s", db_col_text(q, 0));
        sqlite3_finalize(q);
    }
    return 0;
}

int store_item_scores(store *st, const char *path, const char *probe, char ***keys, double **scores, int *n) {
    *keys = NULL;
    *scores = NULL;
    *n = 0;
    sqlite3_stmt *q;
    if (db_prepare(&st->db,
                   "SELECT it.item_key, it.score FROM item it JOIN config c ON c.id = it.config_id "
                   "WHERE c.path = ? AND c.status = 'done' AND it.probe = ? ORDER BY it.item_key",
                   "reading item scores", &q))
        return -1;
    sqlite3_bind_text(q, 1, path, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, probe, -1, SQLITE_STATIC);
    int rc, cap = 0;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? 2 * cap : 64;
            *keys = xrealloc(*keys, (size_t)cap * sizeof **keys);
            *scores = xrealloc(*scores, (size_t)cap * sizeof **scores);
        }
        (*keys)[*n] = db_col_dup(q, 0);
        (*scores)[(*n)++] = sqlite3_column_double(q, 1);
    }
    sqlite3_finalize(q);
    if (rc != SQLITE_DONE) {
        for (int k = 0; k < *n; k++) free((*keys)[k]);
        free(*keys);
        free(*scores);
        *keys = NULL;
        *scores = NULL;
        *n = 0;
        return db_fail(&st->db, "reading item scores");
    }
    return 0;
}

int store_get_settings(store *st, char **settings) {
    *settings = NULL;
    sqlite3_stmt *q;
    if (db_prepare(&st->db, "SELECT settings FROM scan_run WHERE id = 1", "reading the scan identity", &q)) return -1;
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW) *settings = db_col_dup(q, 0);
    sqlite3_finalize(q);
    if (rc == SQLITE_ROW) return 1;
    return rc == SQLITE_DONE ? 0 : db_fail(&st->db, "reading the scan identity");
}

int store_model_sha256(store *st, char **sha256) {
    *sha256 = NULL;
    sqlite3_stmt *q;
    if (db_prepare(&st->db, "SELECT model_sha256 FROM scan_run WHERE id = 1", "reading the scan identity", &q)) return -1;
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW) *sha256 = db_col_dup(q, 0);
    sqlite3_finalize(q);
    if (rc == SQLITE_ROW) return 1;
    return rc == SQLITE_DONE ? 0 : db_fail(&st->db, "reading the scan identity");
}
