/* report validation: see report.h. Reads the val_* tables read-only and
 * recomputes every statistic from per-document correctness, so the report
 * needs nothing but the database (and agrees with what `rys validate`
 * printed for the same documents). */
#include "report/report.h"
#include "base/db.h"
#include "tasks/metrics.h"
#include "base/util.h"

#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void report_validation_free(report_validation *v) {
    if (!v) return;
    free(v->cfg);
    free(v);
}

typedef struct {
    long long id;
    char name[64], variant[64], metric[24];
} val_task;

/* Per-document correctness of the baseline and of config cfg_id on one task,
 * over the documents both answered, in document order. */
static int paired(sqlite3 *db, long long base_id, long long cfg_id, const val_task *t, uint8_t **b, uint8_t **c, int *n) {
    char sql[512];
    /* the column name comes from the list of known metrics, never from the file */
    snprintf(sql, sizeof sql,
             "SELECT b.correct_%s, c.correct_%s FROM val_doc b JOIN val_doc c ON c.task_id = b.task_id AND c.doc_id = b.doc_id "
             "WHERE b.config_id = ? AND c.config_id = ? AND b.task_id = ? AND b.correct_%s IS NOT NULL AND c.correct_%s IS NOT NULL "
             "ORDER BY b.doc_index, b.doc_id", t->metric, t->metric, t->metric, t->metric);
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(db, sql, -1, &q, NULL) != SQLITE_OK) return -1;
    sqlite3_bind_int64(q, 1, base_id);
    sqlite3_bind_int64(q, 2, cfg_id);
    sqlite3_bind_int64(q, 3, t->id);
    int cap = 256, rc;
    *n = 0;
    *b = xmalloc((size_t)cap);
    *c = xmalloc((size_t)cap);
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        if (*n == cap) {
            cap *= 2;
            *b = xrealloc(*b, (size_t)cap);
            *c = xrealloc(*c, (size_t)cap);
        }
        (*b)[*n] = sqlite3_column_int(q, 0) != 0;
        (*c)[*n] = sqlite3_column_int(q, 1) != 0;
        (*n)++;
    }
    sqlite3_finalize(q);
    if (rc == SQLITE_DONE) return 0;
    free(*b);
    free(*c);
    return -1;
}

/* The rows of one path: tasks it answered, then the average. */
static int config_rows(sqlite3 *db, long long base_id, long long cfg_id, const val_task *tasks, int n_tasks, report_val_config *out) {
    uint8_t *b[REPORT_VAL_MAX_TASKS], *c[REPORT_VAL_MAX_TASKS];
    paired_task pt[REPORT_VAL_MAX_TASKS];
    int k = 0, rc = -1;
    for (int t = 0; t < n_tasks; t++) {
        int n;
        if (paired(db, base_id, cfg_id, &tasks[t], &b[k], &c[k], &n)) goto out;
        if (n == 0) { free(b[k]); free(c[k]); continue; }
        report_val_row *r = &out->row[k];
        memset(r, 0, sizeof *r);
        snprintf(r->task, sizeof r->task, "%s:%s", tasks[t].name, tasks[t].variant);
        snprintf(r->metric, sizeof r->metric, "%s", tasks[t].metric);
        r->n = n;
        double se;
        accuracy_stderr(b[k], n, &r->base, &se);
        accuracy_stderr(c[k], n, &r->value, &r->stderr_);
        r->delta = r->value - r->base;
        int only_b = 0, only_c = 0;
        for (int d = 0; d < n; d++) {
            only_b += b[k][d] && !c[k][d];
            only_c += c[k][d] && !b[k][d];
        }
        r->p = mcnemar_exact_p(only_b, only_c);
        pt[k] = (paired_task){tasks[t].name, b[k], c[k], n};
        k++;
    }
    out->n_rows = 0;
    if (k == 0) { rc = 0; goto out; }
    double lo[REPORT_VAL_MAX_TASKS + 1], hi[REPORT_VAL_MAX_TASKS + 1], var = 0;
    if (paired_bootstrap_ci(pt, k, BOOTSTRAP_REPS, BOOTSTRAP_SEED, lo, hi)) goto out;
    report_val_row *avg = &out->row[k];
    memset(avg, 0, sizeof *avg);
    snprintf(avg->task, sizeof avg->task, "average");
    for (int t = 0; t < k; t++) {
        report_val_row *r = &out->row[t];
        r->ci_lo = lo[t];
        r->ci_hi = hi[t];
        avg->n += r->n;
        avg->base += r->base / k;
        avg->value += r->value / k;
        avg->delta += r->delta / k;
        var += r->stderr_ * r->stderr_;
    }
    avg->stderr_ = sqrt(var) / k;
    avg->ci_lo = lo[k];
    avg->ci_hi = hi[k];
    avg->p = NAN;
    out->n_rows = k + 1;
    rc = 0;
out:
    for (int t = 0; t < k; t++) { free(b[t]); free(c[t]); }
    return rc;
}

int report_validation_load(const char *db_path, report_validation **out) {
    *out = NULL;
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        rys_seterr("%s: cannot open: %s", db_path, db ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close(db);
        return -1;
    }
    sqlite3_busy_timeout(db, 10000);
    sqlite3_stmt *q = NULL;
    report_validation *v = NULL;
    val_task tasks[REPORT_VAL_MAX_TASKS];
    int n_tasks = 0, rc = -1;
    long long base_id = -1;
    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'val_run'", -1, &q, NULL) != SQLITE_OK ||
        sqlite3_step(q) != SQLITE_ROW)
        goto sqlfail;
    int present = sqlite3_column_int(q, 0);
    sqlite3_finalize(q);
    q = NULL;
    if (!present) { rc = 0; goto done; }
    v = xcalloc(1, sizeof *v);
    if (sqlite3_prepare_v2(db, "SELECT model_path, n_layers FROM val_run WHERE id = 1", -1, &q, NULL) != SQLITE_OK) goto sqlfail;
    if (sqlite3_step(q) != SQLITE_ROW) { rc = 0; goto done; }
    snprintf(v->model, sizeof v->model, "%s", db_col_text(q, 0));
    v->n_layers = sqlite3_column_int(q, 1);
    sqlite3_finalize(q);
    q = NULL;
    if (sqlite3_prepare_v2(db, "SELECT id, name, variant, primary_metric FROM val_task ORDER BY id", -1, &q, NULL) != SQLITE_OK)
        goto sqlfail;
    while (sqlite3_step(q) == SQLITE_ROW) {
        if (n_tasks == REPORT_VAL_MAX_TASKS) { rys_seterr("%s: more than %d validation tasks", db_path, REPORT_VAL_MAX_TASKS); goto done; }
        val_task *t = &tasks[n_tasks++];
        t->id = sqlite3_column_int64(q, 0);
        snprintf(t->name, sizeof t->name, "%s", db_col_text(q, 1));
        snprintf(t->variant, sizeof t->variant, "%s", db_col_text(q, 2));
        if (metric_from_name(db_col_text(q, 3)) < 0) { rys_seterr("%s: task %s has an unknown metric '%s'", db_path, t->name, db_col_text(q, 3)); goto done; }
        snprintf(t->metric, sizeof t->metric, "%s", db_col_text(q, 3));
    }
    sqlite3_finalize(q);
    q = NULL;
    if (sqlite3_prepare_v2(db, "SELECT id FROM val_config WHERE spec = 'baseline'", -1, &q, NULL) != SQLITE_OK) goto sqlfail;
    if (sqlite3_step(q) == SQLITE_ROW) base_id = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    q = NULL;
    if (base_id < 0) { rc = 0; goto done; }
    snprintf(v->baseline.spec, sizeof v->baseline.spec, "baseline");
    if (config_rows(db, base_id, base_id, tasks, n_tasks, &v->baseline)) goto sqlfail;
    if (v->baseline.n_rows == 0) { rc = 0; goto done; }
    if (sqlite3_prepare_v2(db, "SELECT id, spec FROM val_config WHERE id != ? ORDER BY id", -1, &q, NULL) != SQLITE_OK) goto sqlfail;
    sqlite3_bind_int64(q, 1, base_id);
    while (sqlite3_step(q) == SQLITE_ROW) {
        v->cfg = xrealloc(v->cfg, (size_t)(v->n_cfg + 1) * sizeof *v->cfg);
        report_val_config *c = &v->cfg[v->n_cfg];
        snprintf(c->spec, sizeof c->spec, "%s", db_col_text(q, 1));
        if (config_rows(db, base_id, sqlite3_column_int64(q, 0), tasks, n_tasks, c)) goto sqlfail;
        if (c->n_rows) v->n_cfg++;
    }
    *out = v;
    v = NULL;
    rc = 1;
    goto done;
sqlfail:
    rys_seterr("%s: reading validation results: %s", db_path, sqlite3_errmsg(db));
done:
    sqlite3_finalize(q);
    sqlite3_close(db);
    report_validation_free(v);
    return rc;
}
