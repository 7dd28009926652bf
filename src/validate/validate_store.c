/* validate_store: see validate_store.h. Durability as the scan store: WAL
 * with synchronous=FULL and one transaction per chunk of documents. */
#include "validate/validate_store.h"
#include "base/db.h"
#include "base/util.h"

#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct validate_store {
    db_conn db;
};

static const char schema_sql[] =
    "-- rys validate: one model per database (val_run), tasks by data file sha256.\n"
    "CREATE TABLE IF NOT EXISTS val_run (\n"
    "    id            INTEGER PRIMARY KEY CHECK (id = 1),\n"
    "    created_at    TEXT NOT NULL,\n"
    "    rys_version   TEXT NOT NULL,\n"
    "    model_path    TEXT NOT NULL,\n"
    "    model_sha256  TEXT NOT NULL,\n"
    "    arch          TEXT NOT NULL,\n"
    "    n_layers      INTEGER NOT NULL\n"
    ");\n"
    "CREATE TABLE IF NOT EXISTS val_task (\n"
    "    id             INTEGER PRIMARY KEY,\n"
    "    name           TEXT NOT NULL,            -- arc_challenge, mmlu, ...\n"
    "    variant        TEXT NOT NULL,            -- test_rc_5shot, 5shot, ...\n"
    "    file           TEXT NOT NULL,\n"
    "    sha256         TEXT NOT NULL,            -- of the data file\n"
    "    primary_metric TEXT NOT NULL,\n"
    "    UNIQUE (name, variant)\n"
    ");\n"
    "CREATE TABLE IF NOT EXISTS val_config (\n"
    "    id    INTEGER PRIMARY KEY,\n"
    "    path  TEXT NOT NULL UNIQUE,              -- \"layers:0,1,2,...\"\n"
    "    spec  TEXT NOT NULL                      -- baseline, blocks:i,j, layers:...\n"
    ");\n"
    "-- One row per committed chunk: what it cost.\n"
    "CREATE TABLE IF NOT EXISTS val_chunk (\n"
    "    id                 INTEGER PRIMARY KEY,\n"
    "    config_id          INTEGER NOT NULL REFERENCES val_config(id),\n"
    "    task_id            INTEGER NOT NULL REFERENCES val_task(id),\n"
    "    first_doc          TEXT NOT NULL,\n"
    "    n_docs             INTEGER NOT NULL,\n"
    "    seconds            REAL NOT NULL,\n"
    "    layer_tokens_done  INTEGER NOT NULL,\n"
    "    layer_tokens_naive INTEGER NOT NULL,     -- one full forward per request\n"
    "    finished_at        TEXT NOT NULL\n"
    ");\n"
    "-- Per document: the choice each metric picks and whether it is the label (NULL: metric not available).\n"
    "CREATE TABLE IF NOT EXISTS val_doc (\n"
    "    config_id  INTEGER NOT NULL REFERENCES val_config(id),\n"
    "    task_id    INTEGER NOT NULL REFERENCES val_task(id),\n"
    "    doc_id     TEXT NOT NULL,\n"
    "    doc_index  INTEGER NOT NULL,\n"
    "    subject    TEXT,\n"
    "    label      INTEGER NOT NULL,\n"
    "    n_choices  INTEGER NOT NULL,\n"
    "    pred_acc_raw INTEGER, pred_acc_per_char INTEGER, pred_acc_per_token INTEGER, pred_acc_uncond INTEGER,\n"
    "    correct_acc_raw INTEGER, correct_acc_per_char INTEGER, correct_acc_per_token INTEGER, correct_acc_uncond INTEGER,\n"
    "    PRIMARY KEY (config_id, task_id, doc_id)\n"
    ");\n"
    "-- Per request: a choice after the context (uncond 0) or after the unconditional context (uncond 1).\n"
    "CREATE TABLE IF NOT EXISTS val_request (\n"
    "    config_id  INTEGER NOT NULL,\n"
    "    task_id    INTEGER NOT NULL,\n"
    "    doc_id     TEXT NOT NULL,\n"
    "    choice     INTEGER NOT NULL,\n"
    "    uncond     INTEGER NOT NULL,\n"
    "    logprob    REAL NOT NULL,\n"
    "    n_tokens   INTEGER NOT NULL,\n"
    "    n_chars    INTEGER NOT NULL,\n"
    "    greedy     INTEGER NOT NULL,\n"
    "    PRIMARY KEY (config_id, task_id, doc_id, choice, uncond)\n"
    ");\n";

validate_store *validate_store_open(const char *path) {
    validate_store *st = xcalloc(1, sizeof *st);
    if (db_open(&st->db, path, schema_sql)) {
        free(st);
        return NULL;
    }
    return st;
}

void validate_store_close(validate_store *st) {
    if (!st) return;
    db_close(&st->db);
    free(st);
}

int validate_store_identity(validate_store *st, const char *model_path, const char *model_sha256, const char *arch,
                            int n_layers) {
    sqlite3_stmt *q;
    if (db_prepare(&st->db, "SELECT model_sha256, model_path FROM val_run WHERE id = 1", "reading the model", &q)) return -1;
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW) {
        bool same = !strcmp(db_col_text(q, 0), model_sha256);
        if (!same)
            rys_seterr("%s: holds validation results of another model (%s, sha256 %.12s...); use another --db", st->db.path,
                       db_col_text(q, 1), db_col_text(q, 0));
        sqlite3_finalize(q);
        return same ? 0 : -1;
    }
    sqlite3_finalize(q);
    if (rc != SQLITE_DONE) return db_fail(&st->db, "reading the model");
    char ts[32];
    db_now_iso(ts, sizeof ts);
    if (db_prepare(&st->db, "INSERT INTO val_run(id, created_at, rys_version, model_path, model_sha256, arch, n_layers) "
                            "VALUES (1, ?, ?, ?, ?, ?, ?)", "recording the model", &q))
        return -1;
    sqlite3_bind_text(q, 1, ts, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(q, 2, RYS_VERSION, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 3, model_path, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 4, model_sha256, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 5, arch, -1, SQLITE_STATIC);
    sqlite3_bind_int(q, 6, n_layers);
    rc = sqlite3_step(q) == SQLITE_DONE ? 0 : db_fail(&st->db, "recording the model");
    sqlite3_finalize(q);
    return rc;
}

int validate_store_task(validate_store *st, const task_set *ts, long long *task_id) {
    sqlite3_stmt *q;
    if (db_prepare(&st->db, "SELECT id, sha256 FROM val_task WHERE name = ? AND variant = ?", "reading tasks", &q)) return -1;
    sqlite3_bind_text(q, 1, ts->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, ts->variant, -1, SQLITE_STATIC);
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW) {
        *task_id = sqlite3_column_int64(q, 0);
        bool same = !strcmp(db_col_text(q, 1), ts->sha256);
        if (!same)
            rys_seterr("%s: task %s:%s was scored from another data file (sha256 %.12s..., now %.12s... in %s); use another --db",
                       st->db.path, ts->name, ts->variant, db_col_text(q, 1), ts->sha256, ts->file);
        sqlite3_finalize(q);
        return same ? 0 : -1;
    }
    sqlite3_finalize(q);
    if (rc != SQLITE_DONE) return db_fail(&st->db, "reading tasks");
    if (db_prepare(&st->db, "INSERT INTO val_task(name, variant, file, sha256, primary_metric) VALUES (?,?,?,?,?)",
                   "recording a task", &q))
        return -1;
    sqlite3_bind_text(q, 1, ts->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, ts->variant, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 3, ts->file, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 4, ts->sha256, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 5, ts->primary_metric, -1, SQLITE_STATIC);
    rc = sqlite3_step(q) == SQLITE_DONE ? 0 : db_fail(&st->db, "recording a task");
    sqlite3_finalize(q);
    *task_id = sqlite3_last_insert_rowid(st->db.h);
    return rc;
}

int validate_store_config(validate_store *st, const validate_config *c, long long *config_id) {
    char *canon = path_canonical(&c->path);
    sqlite3_stmt *q;
    int rc = -1;
    if (db_prepare(&st->db, "INSERT OR IGNORE INTO val_config(path, spec) VALUES (?, ?)", "recording a configuration", &q)) goto out;
    sqlite3_bind_text(q, 1, canon, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, c->spec, -1, SQLITE_STATIC);
    int step = sqlite3_step(q);
    sqlite3_finalize(q);
    if (step != SQLITE_DONE) { db_fail(&st->db, "recording a configuration"); goto out; }
    if (db_prepare(&st->db, "SELECT id FROM val_config WHERE path = ?", "reading configurations", &q)) goto out;
    sqlite3_bind_text(q, 1, canon, -1, SQLITE_STATIC);
    if (sqlite3_step(q) == SQLITE_ROW) {
        *config_id = sqlite3_column_int64(q, 0);
        rc = 0;
    } else {
        db_fail(&st->db, "reading configurations");
    }
    sqlite3_finalize(q);
out:
    free(canon);
    return rc;
}

/* doc_id -> index in ts, by binary search over a sorted copy */
typedef struct { const char *id; int index; } doc_key;

static int cmp_key(const void *a, const void *b) { return strcmp(((const doc_key *)a)->id, ((const doc_key *)b)->id); }

static int find_doc(const doc_key *keys, int n, const char *id) {
    doc_key k = {id, 0};
    const doc_key *hit = bsearch(&k, keys, (size_t)n, sizeof *keys, cmp_key);
    return hit ? hit->index : -1;
}

int validate_store_load(validate_store *st, long long config_id, long long task_id, const task_set *ts, validate_doc *docs,
                        bool *done) {
    doc_key *keys = xmalloc((size_t)(ts->n_docs ? ts->n_docs : 1) * sizeof *keys);
    for (int d = 0; d < ts->n_docs; d++) keys[d] = (doc_key){ts->docs[d].doc_id, d};
    qsort(keys, (size_t)ts->n_docs, sizeof *keys, cmp_key);
    int n = -1;
    for (int d = 1; d < ts->n_docs; d++)
        if (!strcmp(keys[d - 1].id, keys[d].id)) {
            rys_seterr("%s:%ld: document id %s occurs twice", ts->file, ts->docs[keys[d].index].line, keys[d].id);
            free(keys);
            return -1;
        }
    sqlite3_stmt *q = NULL;
    if (db_prepare(&st->db, "SELECT doc_id, n_choices FROM val_doc WHERE config_id = ? AND task_id = ?", "reading documents", &q))
        goto out;
    sqlite3_bind_int64(q, 1, config_id);
    sqlite3_bind_int64(q, 2, task_id);
    int loaded = 0, rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        int d = find_doc(keys, ts->n_docs, db_col_text(q, 0));
        if (d < 0) continue;    /* scored in a run with another --limit */
        if (sqlite3_column_int(q, 1) != docs[d].n_choices) {
            rys_seterr("%s: document %s has %d choices recorded, %d in %s", st->db.path, ts->docs[d].doc_id, sqlite3_column_int(q, 1),
                       docs[d].n_choices, ts->file);
            goto out;
        }
        done[d] = true;
        loaded++;
    }
    if (rc != SQLITE_DONE) { db_fail(&st->db, "reading documents"); goto out; }
    sqlite3_finalize(q);
    if (db_prepare(&st->db, "SELECT doc_id, choice, uncond, logprob, n_tokens, n_chars, greedy FROM val_request "
                            "WHERE config_id = ? AND task_id = ?", "reading requests", &q))
        goto out;
    sqlite3_bind_int64(q, 1, config_id);
    sqlite3_bind_int64(q, 2, task_id);
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        int d = find_doc(keys, ts->n_docs, db_col_text(q, 0)), c = sqlite3_column_int(q, 1);
        if (d < 0 || !done[d]) continue;
        if (c < 0 || c >= docs[d].n_choices) {
            rys_seterr("%s: document %s: request for choice %d of %d", st->db.path, ts->docs[d].doc_id, c, docs[d].n_choices);
            goto out;
        }
        choice_score *s = &docs[d].choices[c];
        if (sqlite3_column_int(q, 2)) {
            s->uncond_logprob = sqlite3_column_double(q, 3);
            s->uncond_n_tokens = sqlite3_column_int(q, 4);
            s->uncond_greedy = sqlite3_column_int(q, 6) != 0;
        } else {
            s->logprob = sqlite3_column_double(q, 3);
            s->n_tokens = sqlite3_column_int(q, 4);
            s->n_chars = sqlite3_column_int(q, 5);
            s->greedy = sqlite3_column_int(q, 6) != 0;
        }
    }
    if (rc != SQLITE_DONE) { db_fail(&st->db, "reading requests"); goto out; }
    n = loaded;
out:
    sqlite3_finalize(q);
    free(keys);
    return n;
}

static int save_doc(validate_store *st, sqlite3_stmt *qd, sqlite3_stmt *qr, long long config_id, long long task_id,
                    const task_set *ts, int d, const validate_doc *doc) {
    const task_doc *D = &ts->docs[d];
    sqlite3_reset(qd);
    sqlite3_bind_int64(qd, 1, config_id);
    sqlite3_bind_int64(qd, 2, task_id);
    sqlite3_bind_text(qd, 3, D->doc_id, -1, SQLITE_STATIC);
    sqlite3_bind_int(qd, 4, d);
    if (D->subject) sqlite3_bind_text(qd, 5, D->subject, -1, SQLITE_STATIC);
    else sqlite3_bind_null(qd, 5);
    sqlite3_bind_int(qd, 6, D->label);
    sqlite3_bind_int(qd, 7, doc->n_choices);
    for (int k = 0; k < METRIC_COUNT; k++) {
        int p = metric_predict((metric_kind)k, doc->choices, doc->n_choices);
        if (p < 0) {
            sqlite3_bind_null(qd, 8 + k);
            sqlite3_bind_null(qd, 8 + METRIC_COUNT + k);
        } else {
            sqlite3_bind_int(qd, 8 + k, p);
            sqlite3_bind_int(qd, 8 + METRIC_COUNT + k, p == D->label);
        }
    }
    if (sqlite3_step(qd) != SQLITE_DONE) return db_fail(&st->db, "saving a document");
    for (int c = 0; c < doc->n_choices; c++) {
        const choice_score *s = &doc->choices[c];
        for (int u = 0; u < (isnan(s->uncond_logprob) ? 1 : 2); u++) {
            sqlite3_reset(qr);
            sqlite3_bind_int64(qr, 1, config_id);
            sqlite3_bind_int64(qr, 2, task_id);
            sqlite3_bind_text(qr, 3, D->doc_id, -1, SQLITE_STATIC);
            sqlite3_bind_int(qr, 4, c);
            sqlite3_bind_int(qr, 5, u);
            sqlite3_bind_double(qr, 6, u ? s->uncond_logprob : s->logprob);
            sqlite3_bind_int(qr, 7, u ? s->uncond_n_tokens : s->n_tokens);
            sqlite3_bind_int(qr, 8, s->n_chars);
            sqlite3_bind_int(qr, 9, u ? s->uncond_greedy : s->greedy);
            if (sqlite3_step(qr) != SQLITE_DONE) return db_fail(&st->db, "saving a request");
        }
    }
    return 0;
}

int validate_store_save(validate_store *st, long long config_id, long long task_id, const task_set *ts, int d0, int d1,
                        const validate_doc *docs, const validate_chunk_stats *stats) {
    if (d0 < 0 || d1 > ts->n_docs || d0 >= d1) { rys_seterr("%s: empty chunk %d..%d", st->db.path, d0, d1); return -1; }
    sqlite3_stmt *del_d = NULL, *del_r = NULL, *qd = NULL, *qr = NULL, *qc = NULL;
    if (db_begin(&st->db)) return -1;
    if (sqlite3_prepare_v2(st->db.h, "DELETE FROM val_doc WHERE config_id = ? AND task_id = ? AND doc_id = ?", -1, &del_d, NULL) ||
        sqlite3_prepare_v2(st->db.h, "DELETE FROM val_request WHERE config_id = ? AND task_id = ? AND doc_id = ?", -1, &del_r, NULL) ||
        sqlite3_prepare_v2(st->db.h, "INSERT INTO val_doc VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", -1, &qd, NULL) ||
        sqlite3_prepare_v2(st->db.h, "INSERT INTO val_request VALUES (?,?,?,?,?,?,?,?,?)", -1, &qr, NULL) ||
        sqlite3_prepare_v2(st->db.h, "INSERT INTO val_chunk(config_id, task_id, first_doc, n_docs, seconds, layer_tokens_done, "
                                   "layer_tokens_naive, finished_at) VALUES (?,?,?,?,?,?,?,?)", -1, &qc, NULL)) {
        db_fail(&st->db, "saving results");
        goto rollback;
    }
    for (int d = d0; d < d1; d++) {
        sqlite3_stmt *dels[2] = {del_d, del_r};
        for (int k = 0; k < 2; k++) {
            sqlite3_reset(dels[k]);
            sqlite3_bind_int64(dels[k], 1, config_id);
            sqlite3_bind_int64(dels[k], 2, task_id);
            sqlite3_bind_text(dels[k], 3, ts->docs[d].doc_id, -1, SQLITE_STATIC);
            if (sqlite3_step(dels[k]) != SQLITE_DONE) { db_fail(&st->db, "replacing results"); goto rollback; }
        }
        if (save_doc(st, qd, qr, config_id, task_id, ts, d, &docs[d])) goto rollback;
    }
    char ts_now[32];
    db_now_iso(ts_now, sizeof ts_now);
    sqlite3_bind_int64(qc, 1, config_id);
    sqlite3_bind_int64(qc, 2, task_id);
    sqlite3_bind_text(qc, 3, ts->docs[d0].doc_id, -1, SQLITE_STATIC);
    sqlite3_bind_int(qc, 4, d1 - d0);
    sqlite3_bind_double(qc, 5, stats->seconds);
    sqlite3_bind_int64(qc, 6, stats->layer_tokens_done);
    sqlite3_bind_int64(qc, 7, stats->layer_tokens_naive);
    sqlite3_bind_text(qc, 8, ts_now, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(qc) != SQLITE_DONE) { db_fail(&st->db, "saving chunk statistics"); goto rollback; }
    sqlite3_finalize(del_d); sqlite3_finalize(del_r); sqlite3_finalize(qd); sqlite3_finalize(qr); sqlite3_finalize(qc);
    return db_commit(&st->db);
rollback:
    sqlite3_finalize(del_d); sqlite3_finalize(del_r); sqlite3_finalize(qd); sqlite3_finalize(qr); sqlite3_finalize(qc);
    db_rollback(&st->db);
    return -1;
}

validate_store *validate_store_open_readonly(const char *path) {
    validate_store *st = xcalloc(1, sizeof *st);
    if (db_open_readonly(&st->db, path)) {
        free(st);
        return NULL;
    }
    return st;
}

/* Every read below reports its failure as this, whatever it was reading. */
static const char read_what[] = "reading validation results";

int validate_store_get_run(validate_store *st, char **model_path, int *n_layers) {
    return db_read_run(&st->db, "val_run", read_what, model_path, n_layers);
}

int validate_store_list_tasks(validate_store *st, validate_store_task_info **out, int *n) {
    *out = NULL;
    *n = 0;
    sqlite3_stmt *q;
    if (db_prepare(&st->db, "SELECT id, name, variant, primary_metric FROM val_task ORDER BY id", read_what, &q)) return -1;
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        *out = xrealloc(*out, (size_t)(*n + 1) * sizeof **out);
        (*out)[(*n)++] = (validate_store_task_info){sqlite3_column_int64(q, 0), db_col_dup(q, 1), db_col_dup(q, 2), db_col_dup(q, 3)};
    }
    sqlite3_finalize(q);
    if (rc == SQLITE_DONE) return 0;
    validate_store_tasks_free(*out, *n);
    *out = NULL;
    *n = 0;
    return db_fail(&st->db, read_what);
}

void validate_store_tasks_free(validate_store_task_info *tasks, int n) {
    for (int k = 0; k < n; k++) {
        free(tasks[k].name);
        free(tasks[k].variant);
        free(tasks[k].primary_metric);
    }
    free(tasks);
}

int validate_store_list_configs(validate_store *st, validate_store_config_info **out, int *n) {
    *out = NULL;
    *n = 0;
    sqlite3_stmt *q;
    if (db_prepare(&st->db, "SELECT id, spec FROM val_config ORDER BY id", read_what, &q)) return -1;
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        *out = xrealloc(*out, (size_t)(*n + 1) * sizeof **out);
        (*out)[(*n)++] = (validate_store_config_info){sqlite3_column_int64(q, 0), db_col_dup(q, 1)};
    }
    sqlite3_finalize(q);
    if (rc == SQLITE_DONE) return 0;
    validate_store_configs_free(*out, *n);
    *out = NULL;
    *n = 0;
    return db_fail(&st->db, read_what);
}

void validate_store_configs_free(validate_store_config_info *cfgs, int n) {
    for (int k = 0; k < n; k++) free(cfgs[k].spec);
    free(cfgs);
}

int validate_store_paired(validate_store *st, long long a_id, long long b_id, long long task_id, const char *metric,
                          uint8_t **a_correct, uint8_t **b_correct, int *n) {
    *a_correct = *b_correct = NULL;
    *n = 0;
    /* the column name goes into the SQL text, so it must be one of the known metrics, never whatever the file says */
    if (metric_from_name(metric) < 0) {
        rys_seterr("%s: unknown metric '%s'", st->db.path, metric);
        return -1;
    }
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT b.correct_%s, c.correct_%s FROM val_doc b JOIN val_doc c ON c.task_id = b.task_id AND c.doc_id = b.doc_id "
             "WHERE b.config_id = ? AND c.config_id = ? AND b.task_id = ? AND b.correct_%s IS NOT NULL AND c.correct_%s IS NOT NULL "
             "ORDER BY b.doc_index, b.doc_id", metric, metric, metric, metric);
    sqlite3_stmt *q;
    if (db_prepare(&st->db, sql, read_what, &q)) return -1;
    sqlite3_bind_int64(q, 1, a_id);
    sqlite3_bind_int64(q, 2, b_id);
    sqlite3_bind_int64(q, 3, task_id);
    int cap = 256, rc;
    *a_correct = xmalloc((size_t)cap);
    *b_correct = xmalloc((size_t)cap);
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        if (*n == cap) {
            cap *= 2;
            *a_correct = xrealloc(*a_correct, (size_t)cap);
            *b_correct = xrealloc(*b_correct, (size_t)cap);
        }
        (*a_correct)[*n] = sqlite3_column_int(q, 0) != 0;
        (*b_correct)[*n] = sqlite3_column_int(q, 1) != 0;
        (*n)++;
    }
    sqlite3_finalize(q);
    if (rc == SQLITE_DONE) return 0;
    free(*a_correct);
    free(*b_correct);
    *a_correct = *b_correct = NULL;
    *n = 0;
    return db_fail(&st->db, read_what);
}
