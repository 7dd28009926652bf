/* store_search: the scan store's tables of the searches built on a scan
 * (store.h): pipeline stages, beams, the surrogate's fit, the pre-screen.
 * The scan's own tables are in store.c. */
#include "scan/store.h"
#include "scan/store_internal.h"
#include "base/util.h"

#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- pipeline stages ---------------------------------------------------------- */

int store_stage_get(store *st, const char *name, store_stage *out) {
    memset(out, 0, sizeof *out);
    sqlite3_stmt *q;
    if (db_prepare(&st->db, "SELECT seconds, done, note FROM stage WHERE name = ?", "reading pipeline stages", &q)) return -1;
    sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW) {
        out->seconds = sqlite3_column_double(q, 0);
        out->done = sqlite3_column_int(q, 1) != 0;
        snprintf(out->note, sizeof out->note, "%s", db_col_text(q, 2));
    }
    sqlite3_finalize(q);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return db_fail(&st->db, "reading pipeline stages");
    return 0;
}

int store_stage_add(store *st, const char *name, double seconds, bool done, const char *note) {
    sqlite3_stmt *q;
    if (db_prepare(&st->db,
                   "INSERT INTO stage(name, seconds, done, note) VALUES (?1, ?2, ?3, ?4) ON CONFLICT(name) DO UPDATE SET "
                   "seconds = seconds + ?2, done = max(done, ?3), note = CASE WHEN ?4 = '' THEN note ELSE ?4 END",
                   "recording a pipeline stage", &q))
        return -1;
    sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_double(q, 2, seconds);
    sqlite3_bind_int(q, 3, done);
    sqlite3_bind_text(q, 4, note ? note : "", -1, SQLITE_STATIC);
    int rc = sqlite3_step(q);
    sqlite3_finalize(q);
    return rc == SQLITE_DONE ? 0 : db_fail(&st->db, "recording a pipeline stage");
}

int store_unfinished_specs(store *st, const char *search, char ***specs, int *n) {
    *specs = NULL;
    *n = 0;
    sqlite3_stmt *q;
    if (db_prepare(&st->db, "SELECT spec FROM config WHERE search = ? AND status != 'done' ORDER BY sweep_order, id",
                   "reading unfinished configurations", &q))
        return -1;
    sqlite3_bind_text(q, 1, search, -1, SQLITE_STATIC);
    int rc, cap = 0;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? 2 * cap : 16;
            *specs = xrealloc(*specs, (size_t)cap * sizeof **specs);
        }
        (*specs)[(*n)++] = db_col_dup(q, 0);
    }
    sqlite3_finalize(q);
    if (rc != SQLITE_DONE) {
        store_specs_free(*specs, *n);
        *specs = NULL;
        *n = 0;
        return db_fail(&st->db, "reading unfinished configurations");
    }
    return 0;
}

void store_specs_free(char **specs, int n) {
    for (int k = 0; k < n; k++) free(specs[k]);
    free(specs);
}

/* ---- beam searches ----------------------------------------------------------- */

int store_beam_get(store *st, const char *name, double *mean, double *sd, int n_probes) {
    sqlite3_stmt *q;
    if (db_prepare(&st->db, "SELECT position, mean, sd FROM beam_zstat WHERE beam = ? ORDER BY position", "reading a beam", &q)) return -1;
    sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
    int n = 0, rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        if (n >= n_probes || sqlite3_column_int(q, 0) != n) {
            sqlite3_finalize(q);
            rys_seterr("%s: beam '%s' keeps statistics for other probe sets than the scan's", st->db.path, name);
            return -1;
        }
        mean[n] = sqlite3_column_double(q, 1);
        sd[n] = sqlite3_column_double(q, 2);
        n++;
    }
    sqlite3_finalize(q);
    if (rc != SQLITE_DONE) return db_fail(&st->db, "reading a beam");
    if (n && n != n_probes) {
        rys_seterr("%s: beam '%s' keeps statistics for %d probe sets, the scan has %d", st->db.path, name, n, n_probes);
        return -1;
    }
    return n > 0;
}

/* Inserts entries as depth `depth` of beam `name` (inside the caller's transaction). */
static int insert_entries(store *st, const char *name, int depth, const store_beam_entry *e, int n) {
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(st->db.h, "INSERT INTO beam_candidate(beam, depth, rank, spec, path, heuristic) VALUES (?,?,?,?,?,?)", -1,
                           &q, NULL) != SQLITE_OK)
        return -1;
    for (int k = 0; k < n; k++) {
        sqlite3_reset(q);
        sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
        sqlite3_bind_int(q, 2, depth);
        sqlite3_bind_int(q, 3, k);
        sqlite3_bind_text(q, 4, e[k].spec, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 5, e[k].path, -1, SQLITE_STATIC);
        sqlite3_bind_double(q, 6, e[k].heuristic);
        if (sqlite3_step(q) != SQLITE_DONE) { sqlite3_finalize(q); return -1; }
    }
    sqlite3_finalize(q);
    return 0;
}

int store_beam_create(store *st, const char *name, const double *mean, const double *sd, int n_probes,
                      const store_beam_entry *seeds, int n) {
    char ts[32];
    db_now_iso(ts, sizeof ts);
    sqlite3_stmt *q;
    if (db_begin(&st->db)) return -1;
    if (sqlite3_prepare_v2(st->db.h, "INSERT INTO beam(name, created_at) VALUES (?, ?)", -1, &q, NULL) != SQLITE_OK) goto err;
    sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, ts, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(q) != SQLITE_DONE) { sqlite3_finalize(q); goto err; }
    sqlite3_finalize(q);
    if (sqlite3_prepare_v2(st->db.h, "INSERT INTO beam_zstat(beam, position, mean, sd) VALUES (?,?,?,?)", -1, &q, NULL) != SQLITE_OK) goto err;
    for (int p = 0; p < n_probes; p++) {
        sqlite3_reset(q);
        sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
        sqlite3_bind_int(q, 2, p);
        sqlite3_bind_double(q, 3, mean[p]);
        sqlite3_bind_double(q, 4, sd[p]);
        if (sqlite3_step(q) != SQLITE_DONE) { sqlite3_finalize(q); goto err; }
    }
    sqlite3_finalize(q);
    if (insert_entries(st, name, 1, seeds, n)) goto err;
    return db_commit(&st->db);
err:
    db_fail(&st->db, "recording a beam");
    db_rollback(&st->db);
    return -1;
}

int store_beam_depth(store *st, const char *name, int depth, store_beam_entry **out, int *n) {
    *out = NULL;
    *n = 0;
    sqlite3_stmt *q;
    if (db_prepare(&st->db, "SELECT spec, path, heuristic FROM beam_candidate WHERE beam = ? AND depth = ? ORDER BY rank",
                   "reading a beam", &q))
        return -1;
    sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int(q, 2, depth);
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        *out = xrealloc(*out, (size_t)(*n + 1) * sizeof **out);
        (*out)[(*n)++] = (store_beam_entry){db_col_dup(q, 0), db_col_dup(q, 1), sqlite3_column_double(q, 2)};
    }
    sqlite3_finalize(q);
    if (rc == SQLITE_DONE) return *n > 0;
    store_beam_entries_free(*out, *n);
    *out = NULL;
    *n = 0;
    return db_fail(&st->db, "reading a beam");
}

int store_beam_plan(store *st, const char *name, int depth, const store_beam_entry *e, int n, const store_config *cfgs) {
    if (db_begin(&st->db)) return -1;
    if (insert_entries(st, name, depth, e, n) || store_insert_configs(st, cfgs, n)) {
        db_fail(&st->db, "recording a beam's candidates");
        db_rollback(&st->db);
        return -1;
    }
    return db_commit(&st->db);
}

void store_beam_entries_free(store_beam_entry *e, int n) {
    for (int k = 0; k < n; k++) {
        free(e[k].spec);
        free(e[k].path);
    }
    free(e);
}

/* Created by the first `rys surrogate train`, not by store_open: a scan never needs them. */
static const char surrogate_schema[] =
    "CREATE TABLE IF NOT EXISTS surrogate_fit (\n"
    "    target      TEXT PRIMARY KEY,        -- math_delta | eq_delta | balanced\n"
    "    position    INTEGER NOT NULL,\n"
    "    spearman    REAL,                    -- holdout Spearman (average ranks); NULL: undefined (a constant side)\n"
    "    mae         REAL NOT NULL,           -- holdout mean absolute error\n"
    "    n_train     INTEGER NOT NULL,\n"
    "    n_holdout   INTEGER NOT NULL,\n"
    "    gate_passed INTEGER NOT NULL,\n"
    "    trained_at  TEXT NOT NULL\n"
    ");\n"
    "CREATE TABLE IF NOT EXISTS surrogate_holdout (\n"
    "    target    TEXT NOT NULL,\n"
    "    path      TEXT NOT NULL,             -- canonical \"layers:...\"\n"
    "    measured  REAL NOT NULL,\n"
    "    predicted REAL NOT NULL,\n"
    "    PRIMARY KEY (target, path)\n"
    ");\n";

int store_save_surrogate(store *st, const store_surrogate_target *t, int n) {
    if (db_exec(&st->db, surrogate_schema) || db_begin(&st->db)) return -1;
    sqlite3_stmt *fq = NULL, *hq = NULL;
    char now[32];
    db_now_iso(now, sizeof now);
    if (db_exec(&st->db, "DELETE FROM surrogate_holdout; DELETE FROM surrogate_fit;") ||
        db_prepare(&st->db, "INSERT INTO surrogate_fit(target, position, spearman, mae, n_train, n_holdout, gate_passed, trained_at) "
                            "VALUES (?,?,?,?,?,?,?,?)", "saving the surrogate fit", &fq) ||
        db_prepare(&st->db, "INSERT INTO surrogate_holdout(target, path, measured, predicted) VALUES (?,?,?,?)",
                   "saving the surrogate holdout", &hq))
        goto fail;
    for (int k = 0; k < n; k++) {
        sqlite3_reset(fq);
        sqlite3_bind_text(fq, 1, t[k].target, -1, SQLITE_STATIC);
        sqlite3_bind_int(fq, 2, k);
        /* a constant holdout or prediction has no Spearman (NaN): NULL, never a made-up 0 */
        if (isfinite(t[k].spearman)) sqlite3_bind_double(fq, 3, t[k].spearman);
        else sqlite3_bind_null(fq, 3);
        sqlite3_bind_double(fq, 4, t[k].mae);
        sqlite3_bind_int(fq, 5, t[k].n_train);
        sqlite3_bind_int(fq, 6, t[k].n_holdout);
        sqlite3_bind_int(fq, 7, t[k].gate_passed);
        sqlite3_bind_text(fq, 8, now, -1, SQLITE_STATIC);
        if (sqlite3_step(fq) != SQLITE_DONE) { db_fail(&st->db, "saving the surrogate fit"); goto fail; }
        for (int r = 0; r < t[k].n_holdout; r++) {
            sqlite3_reset(hq);
            sqlite3_bind_text(hq, 1, t[k].target, -1, SQLITE_STATIC);
            sqlite3_bind_text(hq, 2, t[k].paths[r], -1, SQLITE_STATIC);
            sqlite3_bind_double(hq, 3, t[k].measured[r]);
            sqlite3_bind_double(hq, 4, t[k].predicted[r]);
            if (sqlite3_step(hq) != SQLITE_DONE) { db_fail(&st->db, "saving the surrogate holdout"); goto fail; }
        }
    }
    sqlite3_finalize(fq);
    sqlite3_finalize(hq);
    return db_commit(&st->db);
fail:
    sqlite3_finalize(fq);
    sqlite3_finalize(hq);
    db_rollback(&st->db);
    return -1;
}

int store_surrogate_fits(store *st, store_surrogate_fit **out, int *n) {
    *out = NULL;
    *n = 0;
    sqlite3_stmt *q = NULL, *hq = NULL;
    /* a store no surrogate was trained on lacks the tables: no fit, not an error */
    if (sqlite3_prepare_v2(st->db.h, "SELECT 1 FROM surrogate_holdout LIMIT 0", -1, &q, NULL) != SQLITE_OK) {
        sqlite3_finalize(q);
        return 0;
    }
    sqlite3_finalize(q);
    q = NULL;
    int rc = -1, step;
    if (db_prepare(&st->db, "SELECT target, spearman, mae, n_train, n_holdout, gate_passed FROM surrogate_fit ORDER BY position",
                   "reading the surrogate fit", &q) ||
        db_prepare(&st->db, "SELECT path, measured, predicted FROM surrogate_holdout WHERE target = ? ORDER BY measured, path",
                   "reading the surrogate holdout", &hq))
        goto out;
    while ((step = sqlite3_step(q)) == SQLITE_ROW) {
        *out = xrealloc(*out, (size_t)(*n + 1) * sizeof **out);
        store_surrogate_fit *f = &(*out)[(*n)++];
        *f = (store_surrogate_fit){db_col_dup(q, 0), sqlite3_column_type(q, 1) == SQLITE_NULL ? NAN : sqlite3_column_double(q, 1),
                                   sqlite3_column_double(q, 2),
                                   sqlite3_column_int(q, 3), 0, sqlite3_column_int(q, 5) != 0, NULL, NULL, NULL};
        int cap = sqlite3_column_int(q, 4);
        if (cap < 0) cap = 0;
        f->paths = xcalloc((size_t)cap + 1, sizeof *f->paths);
        f->measured = xcalloc((size_t)cap + 1, sizeof *f->measured);
        f->predicted = xcalloc((size_t)cap + 1, sizeof *f->predicted);
        sqlite3_reset(hq);
        sqlite3_bind_text(hq, 1, f->target, -1, SQLITE_STATIC);
        int hs;
        while ((hs = sqlite3_step(hq)) == SQLITE_ROW && f->n_holdout < cap) {
            f->paths[f->n_holdout] = db_col_dup(hq, 0);
            f->measured[f->n_holdout] = sqlite3_column_double(hq, 1);
            f->predicted[f->n_holdout++] = sqlite3_column_double(hq, 2);
        }
        if (hs != SQLITE_DONE && hs != SQLITE_ROW) { db_fail(&st->db, "reading the surrogate holdout"); goto out; }
    }
    if (step != SQLITE_DONE) { db_fail(&st->db, "reading the surrogate fit"); goto out; }
    rc = 0;
out:
    sqlite3_finalize(q);
    sqlite3_finalize(hq);
    if (rc) {
        store_surrogate_fits_free(*out, *n);
        *out = NULL;
        *n = 0;
    }
    return rc;
}

void store_surrogate_fits_free(store_surrogate_fit *f, int n) {
    for (int k = 0; k < n; k++) {
        for (int r = 0; r < f[k].n_holdout; r++) free(f[k].paths[r]);
        free(f[k].paths);
        free(f[k].measured);
        free(f[k].predicted);
        free(f[k].target);
    }
    free(f);
}

/* Created by the first pre-screen written to the store. */
static const char prescreen_schema[] =
    "CREATE TABLE IF NOT EXISTS prescreen (\n"
    "    i     INTEGER NOT NULL,\n"
    "    j     INTEGER NOT NULL,\n"
    "    score REAL NOT NULL,                 -- CircuitProbe's block score: higher = measured earlier\n"
    "    PRIMARY KEY (i, j)\n"
    ");\n"
    "CREATE TABLE IF NOT EXISTS prescreen_about (\n"
    "    id      INTEGER PRIMARY KEY CHECK (id = 1),\n"
    "    about   TEXT NOT NULL,               -- JSON: method, calibration prompts, per-layer statistics\n"
    "    made_at TEXT NOT NULL\n"
    ");\n";

int store_prescreen_save(store *st, const char *about, const store_prescreen_block *b, int n) {
    if (db_exec(&st->db, prescreen_schema) || db_begin(&st->db)) return -1;
    sqlite3_stmt *q = NULL, *aq = NULL;
    char now[32];
    db_now_iso(now, sizeof now);
    if (db_exec(&st->db, "DELETE FROM prescreen; DELETE FROM prescreen_about;") ||
        db_prepare(&st->db, "INSERT INTO prescreen(i, j, score) VALUES (?,?,?)", "saving the pre-screen", &q) ||
        db_prepare(&st->db, "INSERT INTO prescreen_about(id, about, made_at) VALUES (1,?,?)", "saving the pre-screen", &aq))
        goto fail;
    for (int k = 0; k < n; k++) {
        sqlite3_reset(q);
        sqlite3_bind_int(q, 1, b[k].i);
        sqlite3_bind_int(q, 2, b[k].j);
        sqlite3_bind_double(q, 3, b[k].score);
        if (sqlite3_step(q) != SQLITE_DONE) { db_fail(&st->db, "saving the pre-screen"); goto fail; }
    }
    sqlite3_bind_text(aq, 1, about, -1, SQLITE_STATIC);
    sqlite3_bind_text(aq, 2, now, -1, SQLITE_STATIC);
    if (sqlite3_step(aq) != SQLITE_DONE) { db_fail(&st->db, "saving the pre-screen"); goto fail; }
    sqlite3_finalize(q);
    sqlite3_finalize(aq);
    return db_commit(&st->db);
fail:
    sqlite3_finalize(q);
    sqlite3_finalize(aq);
    db_rollback(&st->db);
    return -1;
}

int store_prescreen_get(store *st, store_prescreen_block **out, int *n, char **about) {
    *out = NULL;
    *n = 0;
    if (about) *about = NULL;
    sqlite3_stmt *q = NULL;
    /* a store never pre-screened lacks the tables: none, not an error */
    if (sqlite3_prepare_v2(st->db.h, "SELECT 1 FROM prescreen_about LIMIT 0", -1, &q, NULL) != SQLITE_OK) {
        sqlite3_finalize(q);
        return 0;
    }
    sqlite3_finalize(q);
    if (db_prepare(&st->db, "SELECT i, j, score FROM prescreen ORDER BY score DESC, i, j", "reading the pre-screen", &q))
        return -1;
    int rc, cap = 0;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        if (*n == cap) *out = xrealloc(*out, (size_t)(cap = cap ? 2 * cap : 64) * sizeof **out);
        (*out)[(*n)++] = (store_prescreen_block){sqlite3_column_int(q, 0), sqlite3_column_int(q, 1), sqlite3_column_double(q, 2)};
    }
    sqlite3_finalize(q);
    if (rc != SQLITE_DONE) goto fail;
    if (about) {
        if (db_prepare(&st->db, "SELECT about FROM prescreen_about WHERE id = 1", "reading the pre-screen", &q)) goto fail_quiet;
        if ((rc = sqlite3_step(q)) == SQLITE_ROW) *about = db_col_dup(q, 0);
        sqlite3_finalize(q);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE) goto fail;
    }
    return 0;
fail:
    db_fail(&st->db, "reading the pre-screen");
fail_quiet:
    free(*out);
    *out = NULL;
    *n = 0;
    return -1;
}
