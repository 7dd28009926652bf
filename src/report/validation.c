/* report validation: see report.h. Reads the val_* tables read-only through
 * validate_store and recomputes every statistic from per-document
 * correctness, so the report needs nothing but the database (and agrees with
 * what `rys validate` printed for the same documents). */
#include "report/report.h"
#include "tasks/metrics.h"
#include "validate/validate_store.h"
#include "base/util.h"

#include <math.h>
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

/* The rows of one path: tasks it answered, then the average. */
static int config_rows(validate_store *st, long long base_id, long long cfg_id, const val_task *tasks, int n_tasks,
                       report_val_config *out) {
    uint8_t *b[REPORT_VAL_MAX_TASKS], *c[REPORT_VAL_MAX_TASKS];
    paired_task pt[REPORT_VAL_MAX_TASKS];
    int k = 0, rc = -1;
    for (int t = 0; t < n_tasks; t++) {
        int n;
        if (validate_store_paired(st, base_id, cfg_id, tasks[t].id, tasks[t].metric, &b[k], &c[k], &n)) goto out;
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
    validate_store *st = validate_store_open_readonly(db_path);
    if (!st) return -1;
    report_validation *v = xcalloc(1, sizeof *v);
    validate_store_task_info *rows = NULL;
    validate_store_config_info *cfgs = NULL;
    val_task tasks[REPORT_VAL_MAX_TASKS];
    int n_rows = 0, n_cfgs = 0, n_tasks = 0, rc = -1;
    long long base_id = -1;
    char *model = NULL;
    int has = validate_store_get_run(st, &model, &v->n_layers);
    if (has <= 0) { rc = has; goto done; }
    snprintf(v->model, sizeof v->model, "%s", model);
    if (validate_store_list_tasks(st, &rows, &n_rows)) goto done;
    for (int k = 0; k < n_rows; k++) {
        if (n_tasks == REPORT_VAL_MAX_TASKS) { rys_seterr("%s: more than %d validation tasks", db_path, REPORT_VAL_MAX_TASKS); goto done; }
        val_task *t = &tasks[n_tasks++];
        const char *metric = rows[k].primary_metric;
        t->id = rows[k].id;
        snprintf(t->name, sizeof t->name, "%s", rows[k].name);
        snprintf(t->variant, sizeof t->variant, "%s", rows[k].variant);
        if (metric_from_name(metric) < 0) { rys_seterr("%s: task %s has an unknown metric '%s'", db_path, t->name, metric); goto done; }
        snprintf(t->metric, sizeof t->metric, "%s", metric);
    }
    if (validate_store_list_configs(st, &cfgs, &n_cfgs)) goto done;
    /* the first path recorded as the baseline is the one every delta is taken against */
    for (int k = 0; k < n_cfgs && base_id < 0; k++)
        if (!strcmp(cfgs[k].spec, "baseline")) base_id = cfgs[k].id;
    if (base_id < 0) { rc = 0; goto done; }
    snprintf(v->baseline.spec, sizeof v->baseline.spec, "baseline");
    if (config_rows(st, base_id, base_id, tasks, n_tasks, &v->baseline)) goto done;
    if (v->baseline.n_rows == 0) { rc = 0; goto done; }
    for (int k = 0; k < n_cfgs; k++) {
        if (cfgs[k].id == base_id) continue;
        v->cfg = xrealloc(v->cfg, (size_t)(v->n_cfg + 1) * sizeof *v->cfg);
        report_val_config *c = &v->cfg[v->n_cfg];
        snprintf(c->spec, sizeof c->spec, "%s", cfgs[k].spec);
        if (config_rows(st, base_id, cfgs[k].id, tasks, n_tasks, c)) goto done;
        if (c->n_rows) v->n_cfg++;
    }
    *out = v;
    v = NULL;
    rc = 1;
done:
    validate_store_configs_free(cfgs, n_cfgs);
    validate_store_tasks_free(rows, n_rows);
    free(model);
    validate_store_close(st);
    report_validation_free(v);
    return rc;
}
