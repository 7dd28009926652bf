/* objective: see objective.h. */
#include "scan/objective.h"
#include "base/sha256.h"
#include "base/util.h"
#include "scan/store.h"
#include "validate/validate_store.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

bool objective_is_spec(const char *spec) {
    if (!strncmp(spec, OBJECTIVE_PPL_PREFIX, strlen(OBJECTIVE_PPL_PREFIX))) return true;
    const char *p = strstr(spec, OBJECTIVE_SUFFIX);
    /* the last occurrence decides: a task or variant never holds ":loglik" itself */
    while (p && strstr(p + 1, OBJECTIVE_SUFFIX)) p = strstr(p + 1, OBJECTIVE_SUFFIX);
    if (!p) return false;
    p += strlen(OBJECTIVE_SUFFIX);
    return !*p || *p == '@';
}

/* The error so far, prefixed with what (rys_lasterr's buffer is the one written). */
static void prefix_err(const char *what) {
    char *why = xstrdup(rys_lasterr());
    rys_seterr("%s: %s", what, why);
    free(why);
}

/* "@N" at the end of s (N >= 1, digits only) cut off into *n (0 when s has none). 0, or -1 + error naming spec. */
static int cut_count(char *s, const char *spec, long *n) {
    *n = 0;
    char *at = strrchr(s, '@');
    if (!at) return 0;
    char *end;
    errno = 0;
    long v = strtol(at + 1, &end, 10);
    if (at[1] < '0' || at[1] > '9' || *end || errno || v < 1 || v > 1 << 30) {
        rys_seterr("%s: '@%s' is not a count (expected @N, N >= 1)", spec, at + 1);
        return -1;
    }
    *at = 0;
    *n = v;
    return 0;
}

/* Keeps n of ts's documents drawn without replacement by a generator
 * seeded with seed (a partial Fisher-Yates shuffle, splitmix64), in the
 * file's order; the others are freed. */
static void sample_docs(task_set *ts, int n, uint64_t seed) {
    if (n >= ts->n_docs) return;
    int *idx = xmalloc((size_t)ts->n_docs * sizeof *idx);
    for (int i = 0; i < ts->n_docs; i++) idx[i] = i;
    uint64_t st = seed;
    for (int i = 0; i < n; i++) {
        uint64_t z = (st += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        z ^= z >> 31;
        int j = i + (int)(((unsigned __int128)z * (unsigned)(ts->n_docs - i)) >> 64);
        int t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
    bool *keep = xcalloc((size_t)ts->n_docs, sizeof *keep);
    for (int i = 0; i < n; i++) keep[idx[i]] = true;
    task_set rest = {0};    /* the documents dropped, freed as a set of their own */
    rest.docs = xcalloc((size_t)(ts->n_docs - n), sizeof *rest.docs);
    task_doc *kept = xcalloc((size_t)n, sizeof *kept);
    int k = 0;
    for (int d = 0; d < ts->n_docs; d++) {
        if (keep[d]) kept[k++] = ts->docs[d];
        else rest.docs[rest.n_docs++] = ts->docs[d];
    }
    task_set_free(&rest);
    free(ts->docs);
    ts->docs = kept;
    ts->n_docs = n;
    free(keep);
    free(idx);
}

/* The chunks of a ppl text as requests of one choice (objective.h). */
static int load_ppl(const char *spec, const model *m, const tokenizer *tok, objective_set *out) {
    char *file = xstrdup(spec + strlen(OBJECTIVE_PPL_PREFIX));
    long budget;
    size_t len;
    char *text = NULL, hex[65];
    int32_t *toks = NULL;
    size_t n_tok = 0;
    if (cut_count(file, spec, &budget)) goto fail;
    if (!*file) { rys_seterr("%s: no file (expected ppl:FILE[@TOKENS])", spec); goto fail; }
    if (!(text = read_file(file, &len)) || sha256_file(file, hex)) goto fail;   /* the error names the file */
    if (strlen(text) != len) { rys_seterr("%s: not a text file (it holds a NUL byte)", file); goto fail; }
    /* as rys perplexity reads it: BOS as the model says, special-token text parsed */
    if (tokenizer_encode(tok, text, len, true, true, &toks, &n_tok)) { prefix_err(file); goto fail; }
    int ctx = OBJECTIVE_PPL_CTX, first = ctx / 2;
    if (m->hp.n_ctx_train > 0 && m->hp.n_ctx_train < ctx) ctx = m->hp.n_ctx_train, first = ctx / 2;
    long use = budget > 0 && budget < (long)n_tok ? budget : (long)n_tok;
    int n_chunks = (int)(use / ctx);
    if (n_chunks < 1) {
        rys_seterr("%s: %ld tokens; a perplexity chunk needs %d", spec, use, ctx);
        goto fail;
    }
    int32_t bos = tokenizer_bos(tok);
    bool add_bos = bos >= 0 && toks[0] == bos;
    task_set *ts = &out->ts;
    const char *base = strrchr(file, '/') ? strrchr(file, '/') + 1 : file;
    char *stem = xstrdup(base), *dot = strrchr(stem, '.');
    if (dot && dot != stem) *dot = 0;
    ts->name = xstrdup("ppl");
    ts->variant = stem;
    ts->file = xstrdup(file);
    ts->sha256 = xstrdup(hex);
    ts->primary_metric = xstrdup("acc_raw");
    ts->split = xstrdup("text");
    ts->docs = xcalloc((size_t)n_chunks, sizeof *ts->docs);
    for (int c = 0; c < n_chunks; c++) {
        task_doc *D = &ts->docs[ts->n_docs++];
        char id[32];
        snprintf(id, sizeof id, "%d", c);
        D->doc_id = xstrdup(id);
        D->n_choices = 1;
        D->continuations = xcalloc(1, sizeof *D->continuations);
        D->continuations[0] = xstrdup("");
        D->cont_chars = xcalloc(1, sizeof *D->cont_chars);
        D->cont_chars[0] = 1;
        D->ids = xmalloc((size_t)ctx * sizeof *D->ids);
        memcpy(D->ids, toks + (size_t)c * ctx, (size_t)ctx * sizeof *D->ids);
        if (add_bos) D->ids[0] = bos;
        /* rys perplexity scores tokens first+1 .. ctx-1, each after every token before it */
        D->n_ids = ctx;
        D->n_cont_ids = ctx - first - 1;
        D->line = c;
    }
    size_t nl = strlen(OBJECTIVE_PPL_PREFIX) + strlen(stem) + 1;
    out->name = xmalloc(nl);
    snprintf(out->name, nl, "%s%s", OBJECTIVE_PPL_PREFIX, stem);
    out->metric = METRIC_ACC_RAW;
    out->ppl = true;
    out->seed = -1;
    free(toks); free(text); free(file);
    return 0;
fail:
    free(toks); free(text); free(file);
    task_set_free(&out->ts);
    return -1;
}

int objective_load(const char *spec, const char *data_dir, const model *m, const tokenizer *tok, objective_set *out) {
    memset(out, 0, sizeof *out);
    if (!objective_is_spec(spec)) {
        rys_seterr("%s: not a benchmark objective (expected TASK:VARIANT:loglik[@N] or ppl:FILE[@TOKENS])", spec);
        return -1;
    }
    if (!strncmp(spec, OBJECTIVE_PPL_PREFIX, strlen(OBJECTIVE_PPL_PREFIX))) return load_ppl(spec, m, tok, out);
    char *task = xstrdup(spec);
    long limit, seed = -1;
    char *at = strrchr(task, '@'), *slash = at ? strchr(at, '/') : NULL;
    if (slash) {   /* "@N/SEED": N documents drawn with SEED */
        char *end;
        errno = 0;
        seed = strtol(slash + 1, &end, 10);
        if (slash[1] < '0' || slash[1] > '9' || *end || errno) {
            rys_seterr("%s: '/%s' is not a seed (expected @N/SEED, SEED >= 0)", spec, slash + 1);
            free(task);
            return -1;
        }
        *slash = 0;
    }
    if (cut_count(task, spec, &limit)) { free(task); return -1; }
    if (seed >= 0 && !limit) {
        rys_seterr("%s: a seed needs a document count (@N/SEED)", spec);
        free(task);
        return -1;
    }
    task[strlen(task) - strlen(OBJECTIVE_SUFFIX)] = 0;   /* objective_is_spec: it ends so now */
    if (task_load(data_dir, task, seed >= 0 ? 0 : (int)limit, &out->ts)) {
        prefix_err(spec);
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
    if (seed >= 0) sample_docs(&out->ts, (int)limit, (uint64_t)seed);
    out->metric = (metric_kind)k;
    out->name = task;
    out->seed = seed;
    return 0;
}

void objective_set_free(objective_set *o) {
    if (!o) return;
    free(o->name);
    task_set_free(&o->ts);
    memset(o, 0, sizeof *o);
}

int objective_n_scores(const objective_set *o) { return o->ppl ? 1 : 2; }
const char *objective_score_suffix(const objective_set *o, int i) { return o->ppl ? NULL : i ? "margin" : "acc"; }
const char *objective_score_kind(const objective_set *o, int i) {
    return o->ppl ? "ppl_loglik" : i ? "loglik_margin" : "loglik_acc";
}

int objective_doc_score(const objective_set *o, const validate_doc *doc, int d, double *scores, const char **generated,
                        char **parsed_json) {
    const task_doc *D = &o->ts.docs[d];
    if (o->ppl) {
        scores[0] = doc->choices[0].logprob / D->n_cont_ids;
        *generated = "";
        size_t cap = 160;
        *parsed_json = xmalloc(cap);
        snprintf(*parsed_json, cap, "{\"chunk\": %d, \"logprob\": %.17g, \"n_tokens\": %d}", d, doc->choices[0].logprob,
                 D->n_cont_ids);
        return 0;
    }
    int pred = metric_predict(o->metric, doc->choices, doc->n_choices);
    if (pred < 0) {
        rys_seterr("%s: %s cannot be computed for document %s", o->ts.file, metric_name(o->metric), D->doc_id);
        return -1;
    }
    *generated = D->continuations[pred];
    scores[0] = pred == D->label;
    double gold = metric_choice_value(o->metric, &doc->choices[D->label]), best = 0, margin;
    bool any = false;
    for (int c = 0; c < doc->n_choices; c++) {
        if (c == D->label) continue;
        double v = metric_choice_value(o->metric, &doc->choices[c]);
        if (!any || v > best) best = v;
        any = true;
    }
    margin = scores[1] = any ? gold - best : 0;
    /* %.17g text so an audit reads back the exact doubles */
    size_t cap = 256 + strlen(D->doc_id) + (size_t)doc->n_choices * 80, n = 0;
    char *s = xmalloc(cap);
    n += (size_t)snprintf(s + n, cap - n, "{\"doc_id\": \"%s\", \"metric\": \"%s\", \"pred\": %d, \"label\": %d, \"margin\": %.17g, \"logprobs\": [",
                          D->doc_id, metric_name(o->metric), pred, D->label, margin);
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
                  const layer_path *paths, const char *const *specs, int n_paths, bool reuse, FILE *dump, bool progress,
                  validate_results *out) {
    task_set *tasks = xcalloc((size_t)n_sets, sizeof *tasks);
    for (int k = 0; k < n_sets; k++) tasks[k] = sets[k].ts;   /* shallow: validate only reads them */
    validate_config *cfgs = xcalloc((size_t)n_paths, sizeof *cfgs);
    for (int c = 0; c < n_paths; c++) cfgs[c] = (validate_config){(char *)specs[c], paths[c]};
    validate_opts o = {NULL, dump, reuse, progress};
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
            if (objs[o].ppl) continue;   /* a text file has no split to leak */
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
