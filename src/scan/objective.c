/* objective: see objective.h. */
#include "scan/objective.h"
#include "base/util.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

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
