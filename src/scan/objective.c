/* objective: see objective.h. */
#include "scan/objective.h"
#include "base/util.h"
#include "scan/store.h"
#include "validate/validate_store.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

bool objective_is_spec(const char *spec) {
    const char *p = strstr(spec, OBJECTIVE_SUFFIX);
    /* the last occurrence decides: a task or variant never holds ":loglik" itself */
    while (p && strstr(p + 1, OBJECTIVE_SUFFIX)) p = strstr(p + 1, OBJECTIVE_SUFFIX);
    if (!p) return false;
    p += strlen(OBJECTIVE_SUFFIX);
    return !*p || *p == '@';
}

int objective_load(const char *spec, const char *data_dir, objective_set *out) {
    memset(out, 0, sizeof *out);
    if (!objective_is_spec(spec)) {
        rys_seterr("%s: not a benchmark objective (expected TASK:VARIANT:loglik[@N])", spec);
        return -1;
    }
    const char *p = spec, *q;
    while ((q = strstr(p + 1, OBJECTIVE_SUFFIX))) p = q;
    if (p == spec) p = strstr(spec, OBJECTIVE_SUFFIX);
    char *task = xstrdup(spec);
    task[p - spec] = 0;
    const char *at = p + strlen(OBJECTIVE_SUFFIX);
    long limit = 0;
    if (*at == '@') {
        char *end;
        errno = 0;
        limit = strtol(at + 1, &end, 10);
        if (at[1] < '0' || at[1] > '9' || *end || errno || limit < 1 || limit > 1 << 30) {
            rys_seterr("%s: '@%s' is not a document count (expected @N, N >= 1)", spec, at + 1);
            free(task);
            return -1;
        }
    }
    int rc = task_load(data_dir, task, (int)limit, &out->ts);
    if (rc) {
        rys_seterr("%s: %s", spec, rys_lasterr());
        free(task);
        return -1;
    }
    int k = metric_from_name(out->ts.primary_metric);
    if (k < 0 || out->ts.n_docs < 1) {
        rys_seterr(k < 0 ? "%s: unknown primary metric '%s'" : "%s: no documents", spec, out->ts.primary_metric);
        task_set_free(&out->ts);
        free(task);
        return -1;
    }
    out->metric = (metric_kind)k;
    out->name = task;
    return 0;
}

void objective_set_free(objective_set *o) {
    if (!o) return;
    free(o->name);
    task_set_free(&o->ts);
    memset(o, 0, sizeof *o);
}

int objective_doc_score(const objective_set *o, const validate_doc *doc, int d, int *pred_out, double *correct, double *margin,
                        char **parsed_json) {
    const task_doc *D = &o->ts.docs[d];
    int pred = metric_predict(o->metric, doc->choices, doc->n_choices);
    *pred_out = pred;
    if (pred < 0) {
        rys_seterr("%s: %s cannot be computed for document %s", o->ts.file, metric_name(o->metric), D->doc_id);
        return -1;
    }
    *correct = pred == D->label;
    double gold = metric_choice_value(o->metric, &doc->choices[D->label]), best = 0;
    bool any = false;
    for (int c = 0; c < doc->n_choices; c++) {
        if (c == D->label) continue;
        double v = metric_choice_value(o->metric, &doc->choices[c]);
        if (!any || v > best) best = v;
        any = true;
    }
    *margin = any ? gold - best : 0;
    /* %.17g text so an audit reads back the exact doubles */
    size_t cap = 256 + strlen(D->doc_id) + (size_t)doc->n_choices * 80, n = 0;
    char *s = xmalloc(cap);
    n += (size_t)snprintf(s + n, cap - n, "{\"doc_id\": \"%s\", \"metric\": \"%s\", \"pred\": %d, \"label\": %d, \"margin\": %.17g, \"logprobs\": [",
                          D->doc_id, metric_name(o->metric), pred, D->label, *margin);
    for (int c = 0; c < doc->n_choices; c++) n += (size_t)snprintf(s + n, cap - n, "%s%.17g", c ? ", " : "", doc->choices[c].logprob);
    n += (size_t)snprintf(s + n, cap - n, "]");
    if (D->uncond_context) {
        n += (size_t)snprintf(s + n, cap - n, ", \"uncond_logprobs\": [");
        for (int c = 0; c < doc->n_choices; c++)
            n += (size_t)snprintf(s + n, cap - n, "%s%.17g", c ? ", " : "", doc->choices[c].uncond_logprob);
        n += (size_t)snprintf(s + n, cap - n, "]");
    }
    snprintf(s + n, cap - n, "}");
    *parsed_json = s;
    return 0;
}

int objective_run(const model *m, const tokenizer *tok, pool *pool, const objective_set *sets, int n_sets,
                  const layer_path *paths, const char *const *specs, int n_paths, bool reuse, FILE *dump,
                  validate_results *out) {
    task_set *tasks = xcalloc((size_t)n_sets, sizeof *tasks);
    for (int k = 0; k < n_sets; k++) tasks[k] = sets[k].ts;   /* shallow: validate only reads them */
    validate_config *cfgs = xcalloc((size_t)n_paths, sizeof *cfgs);
    for (int c = 0; c < n_paths; c++) cfgs[c] = (validate_config){(char *)specs[c], paths[c]};
    validate_opts o = {NULL, dump, reuse, false};
    int rc = validate_run(m, tok, pool, tasks, n_sets, cfgs, n_paths, &o, out);
    free(cfgs);
    free(tasks);
    return rc;
}

/* The dataset a task name draws from: MMLU subjects ("mmlu_anatomy") are mmlu. */
static const char *dataset_of(const char *name) { return strncmp(name, "mmlu", 4) ? name : "mmlu"; }

/* The split of "TASK:VARIANT" as its data records it (malloc'd), or NULL + error. */
static char *split_of(const char *spec) {
    task_set ts;
    if (task_load(NULL, spec, 1, &ts)) return NULL;
    char *s = xstrdup(ts.split);
    task_set_free(&ts);
    return s;
}

/* -1 with the leakage error when (name, split) of a searched objective meets a validated task. */
static int same_split(const char *db_path, const char *searched, const char *searched_split, const char *validated,
                      const char *validated_split) {
    char a[256], b[256];
    snprintf(a, sizeof a, "%s", searched);
    snprintf(b, sizeof b, "%s", validated);
    char *ca = strchr(a, ':'), *cb = strchr(b, ':');   /* both are "TASK:VARIANT" */
    if (ca) *ca = 0;
    if (cb) *cb = 0;
    if (strcmp(dataset_of(a), dataset_of(b)) || strcmp(searched_split, validated_split)) return 0;
    rys_seterr("%s: leakage: the scan searches on %s's %s split (%s) and this store validates on it (%s); "
               "use another --db or another split", db_path, dataset_of(a), searched_split, searched, validated);
    return -1;
}

int objective_check_validated(const char *db_path, const objective_set *objs, int n_objs) {
    if (!n_objs || access(db_path, F_OK)) return 0;
    validate_store *vs = validate_store_open_readonly(db_path);
    if (!vs) return -1;
    char *model = NULL;
    int n_layers, rc = validate_store_get_run(vs, &model, &n_layers), n = 0;
    free(model);
    validate_store_task_info *tasks = NULL;
    if (rc == 1) rc = validate_store_list_tasks(vs, &tasks, &n);
    for (int k = 0; k < n && !rc; k++) {
        char spec[512];
        snprintf(spec, sizeof spec, "%s:%s", tasks[k].name, tasks[k].variant);
        char *split = split_of(spec);
        if (!split) { rc = -1; break; }
        for (int o = 0; o < n_objs && !rc; o++) {
            char searched[512];
            snprintf(searched, sizeof searched, "%s:%s", objs[o].ts.name, objs[o].ts.variant);
            rc = same_split(db_path, searched, objs[o].ts.split, spec, split);
        }
        free(split);
    }
    validate_store_tasks_free(tasks, n);
    validate_store_close(vs);
    return rc < 0 ? -1 : 0;
}

int objective_check_searched(const char *db_path, const task_set *tasks, int n_tasks) {
    if (!n_tasks || access(db_path, F_OK)) return 0;
    store *st = store_open_readonly(db_path);
    if (!st) return -1;
    char *model = NULL;
    int n_layers, n = 0, rc = 0;
    store_probe_set *sets = NULL;
    if (store_get_run(st, &model, &n_layers) == 1) rc = store_probe_sets(st, &sets, &n);
    free(model);
    for (int s = 0; s < n && !rc; s++) {
        if (strcmp(sets[s].kind, "loglik_acc")) continue;   /* one of each objective's two rows */
        char spec[512];
        snprintf(spec, sizeof spec, "%s", sets[s].name);
        char *colon = strrchr(spec, ':');
        if (colon) *colon = 0;   /* "<task>:<variant>:acc" */
        char *split = split_of(spec);
        if (!split) { rc = -1; break; }
        for (int k = 0; k < n_tasks && !rc; k++) {
            char validated[512];
            snprintf(validated, sizeof validated, "%s:%s", tasks[k].name, tasks[k].variant);
            rc = same_split(db_path, spec, split, validated, tasks[k].split);
        }
        free(split);
    }
    store_probe_sets_free(sets, n);
    store_close(st);
    return rc < 0 ? -1 : 0;
}
