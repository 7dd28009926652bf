/* rys validate: standard benchmarks along the baseline and relayered paths,
 * one leaderboard-style table per configuration with paired comparisons
 * against the baseline; results kept (and resumed) in a SQLite store. */
#include "cli/cli.h"
#include "base/sha256.h"
#include "base/util.h"
#include "scan/objective.h"
#include "validate/validate.h"
#include "validate/validate_store.h"

#include <jansson.h>
#include <signal.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void add_config(validate_config **cfgs, int *n, const char *kind, const char *spec, const layer_path *p) {
    *cfgs = xrealloc(*cfgs, (size_t)(*n + 1) * sizeof **cfgs);
    validate_config *c = &(*cfgs)[(*n)++];
    size_t len = strlen(kind) + strlen(spec) + 2;
    c->spec = xmalloc(len);
    snprintf(c->spec, len, "%s%s%s", kind, *kind ? ":" : "", spec);
    path_copy(p, &c->path);
}

static double pct(double v) { return 100.0 * v; }

static void print_table(const task_set *tasks, int n_tasks, const validate_config *cfg, bool baseline, const validate_row *rows) {
    char *ranges = path_ranges(&cfg->path);
    printf("\n%s (%s, %d layers)\n", cfg->spec, ranges, cfg->path.n);
    free(ranges);
    if (baseline) printf("  %-34s %-14s %6s %16s\n", "task", "metric", "n", "accuracy");
    else printf("  %-34s %-14s %6s %16s %8s %18s %10s\n", "task", "metric", "n", "accuracy", "delta", "95% CI (paired)", "McNemar p");
    for (int k = 0; k <= n_tasks; k++) {
        const validate_row *r = &rows[k];
        char name[96];
        if (k < n_tasks) snprintf(name, sizeof name, "%s:%s", tasks[k].name, tasks[k].variant);
        else snprintf(name, sizeof name, "average");
        printf("  %-34s %-14s %6d %8.2f \xc2\xb1 %5.2f", name, k < n_tasks ? metric_name(r->metric) : "", r->n, pct(r->value),
               pct(r->stderr_));
        if (!baseline) {
            printf(" %+8.2f   [%+6.2f, %+6.2f]", pct(r->delta), pct(r->ci_lo), pct(r->ci_hi));
            if (isnan(r->p)) printf(" %10s", "");
            else printf(" %10.4g", r->p);
        }
        printf("\n");
    }
    for (int k = 0; k < n_tasks; k++)
        if (!isnan(rows[k].macro))
            printf("  %s:%s: macro average over subjects %.2f (the table shows the micro average)\n", tasks[k].name,
                   tasks[k].variant, pct(rows[k].macro));
}

static json_t *row_json(const task_set *ts, const validate_row *r, bool baseline) {
    json_t *o = json_pack("{s:s, s:i, s:f, s:f}", "task", ts ? ts->name : "average", "n", r->n, "accuracy", r->value, "stderr",
                          r->stderr_);
    if (ts) {
        json_object_set_new(o, "variant", json_string(ts->variant));
        json_object_set_new(o, "metric", json_string(metric_name(r->metric)));
        if (!isnan(r->macro)) json_object_set_new(o, "macro", json_real(r->macro));
    }
    if (!baseline) {
        json_object_set_new(o, "delta", json_real(r->delta));
        json_object_set_new(o, "ci95", json_pack("[f, f]", r->ci_lo, r->ci_hi));
        json_object_set_new(o, "only_baseline", json_integer(r->only_base));
        json_object_set_new(o, "only_config", json_integer(r->only_cfg));
        json_object_set_new(o, "mcnemar_p", isnan(r->p) ? json_null() : json_real(r->p));
    }
    return o;
}

/* Per-task subject accuracies (MMLU) for --json. */
static json_t *subjects_json(const task_set *ts, const validate_task_result *r, metric_kind k) {
    const char **names;
    double *acc;
    int *nd;
    int ns = validate_subjects(ts, r, k, &names, &acc, &nd);
    json_t *o = json_object();
    for (int i = 0; i < ns; i++) json_object_set_new(o, names[i], json_pack("{s:f, s:i}", "accuracy", acc[i], "n", nd[i]));
    free(names); free(acc); free(nd);
    return o;
}

int cmd_validate(int argc, char **argv) {
    const char *model_spec = NULL, *task_list = NULL, *blocks = NULL, *layers = NULL, *configs = NULL, *db_path = NULL,
               *data_dir = NULL, *dump_path = NULL;
    int limit = 0, threads = 0;
    bool json = false, reuse = true;
    const cli_opt opts[] = {
        CLI_STR_REQUIRED("--tasks", NULL, &task_list, "LIST",
                         "e.g. arc_challenge:test_rc_5shot,hellaswag:val_rc_5shot,winogrande:rc_5shot,mmlu:5shot"),
        CLI_INT_OPT("--limit", NULL, &limit, 1, 1 << 30, "N", "the first N documents of each task (MMLU: of each subject)"),
        CLI_BLOCKS(&blocks),
        CLI_LAYERS(&layers),
        CLI_STR_OPT("--configs", NULL, &configs, "\"i,j;i,j\"", "several single-block configurations"),
        CLI_STR_OPT("--db", NULL, &db_path, "FILE", "keep per-document results; re-running resumes"),
        CLI_STR_OPT("--data-dir", NULL, &data_dir, "DIR", "data root (default $RYS_CACHE_DIR/data or ~/.cache/rys/data)"),
        CLI_STR_OPT("--dump-requests", NULL, &dump_path, "F", "every request's token ids and log-likelihood, as JSON lines"),
        CLI_NOFLAG_OPT("--no-reuse", NULL, &reuse, "every path from its first layer (for benchmarks)"),
        CLI_THREADS(&threads),
        CLI_JSON(&json, "machine-readable results"),
        CLI_END,
    };
    const cli_arg args[] = {CLI_MODEL_ARG(&model_spec), CLI_ARG_END};
    const cli_spec spec = {"validate", "MODEL --tasks TASK:VARIANT[,...] [options]", opts, args, NULL, NULL, false,
                           "--blocks or --layers adds one configuration (see rys info) to the baseline; --configs more."};
    cli_parse_or_exit(&spec, argc, argv);

    int n_tasks;
    char **specs = cli_split(task_list, ',', &n_tasks);
    if (n_tasks == 0) cli_fail(&spec, "--tasks: no task given");
    task_set *tasks = xcalloc((size_t)n_tasks, sizeof *tasks);
    for (int k = 0; k < n_tasks; k++)
        if (task_load(data_dir, specs[k], limit, &tasks[k])) rys_die("%s", rys_lasterr());

    cli_model cm;
    cli_open_model(model_spec, threads, &cm);
    int N = cm.m->hp.n_layers, n_cfgs = 0;
    validate_config *cfgs = NULL;
    layer_path p;
    path_baseline(N, &p);
    add_config(&cfgs, &n_cfgs, "", "baseline", &p);
    path_free(&p);
    if (blocks || layers) {
        if (path_from_specs(blocks, layers, N, &p)) rys_die("%s", rys_lasterr());
        add_config(&cfgs, &n_cfgs, blocks ? "blocks" : "layers", blocks ? blocks : layers, &p);
        path_free(&p);
    }
    if (configs) {
        int n;
        char **v = cli_split(configs, ';', &n);
        for (int i = 0; i < n; i++) {
            if (path_from_blocks(v[i], N, &p)) rys_die("--configs: %s", rys_lasterr());
            add_config(&cfgs, &n_cfgs, "blocks", v[i], &p);
            path_free(&p);
        }
        cli_free_split(v);
    }

    validate_opts o = {NULL, NULL, reuse, true};
    if (db_path) {
        char sha[65];
        if (sha256_file(cm.path, sha)) rys_die("%s", rys_lasterr());
        /* a split a scan in this file searched on is not validated here */
        if (objective_check_searched(db_path, tasks, n_tasks)) rys_die("%s", rys_lasterr());
        if (!(o.store = validate_store_open(db_path))) rys_die("%s", rys_lasterr());
        if (validate_store_identity(o.store, cm.path, sha, cm.m->hp.arch_name, N)) rys_die("%s", rys_lasterr());
    }
    if (dump_path && !(o.dump = fopen(dump_path, "w"))) rys_die("%s: cannot write", dump_path);
    if (!json) {
        int docs = 0;
        for (int k = 0; k < n_tasks; k++) docs += tasks[k].n_docs;
        fprintf(stderr, "rys: validating %s on %d tasks (%d documents) along %d path%s\n", cm.m->name, n_tasks, docs, n_cfgs,
                n_cfgs > 1 ? "s" : "");
    }
    double t0 = rys_now();
    validate_results res;
    rys_stop_install();
    if (validate_run(cm.m, cm.tok, cm.pool, tasks, n_tasks, cfgs, n_cfgs, &o, &res)) rys_die("%s", rys_lasterr());
    double seconds = rys_now() - t0;
    if (res.stopped) {
        /* an incomplete table would read as a result: say what was kept instead */
        fprintf(stderr, "rys: validate stopped on %s: %lld of %lld document results %s; %s\n",
                rys_stop_signal() == SIGTERM ? "SIGTERM" : "SIGINT", res.docs_done, res.docs_total,
                db_path ? "kept in the store" : "computed (no --db: nothing kept)",
                db_path ? "the same command continues it" : "give --db FILE to keep a run's results");
        if (json) {
            json_t *jo = json_pack("{s:b, s:I, s:I}", "stopped", 1, "docs_done", (json_int_t)res.docs_done, "docs_total",
                                  (json_int_t)res.docs_total);
            cli_json_print(jo, JSON_INDENT(1));
        }
        if (o.dump) fclose(o.dump);
        if (o.store) validate_store_close(o.store);
        validate_results_free(&res);
        return rys_stop_exit_code();
    }
    if (o.dump && fclose(o.dump)) rys_die("%s: write error", dump_path);

    validate_row *rows = xcalloc((size_t)n_tasks + 1, sizeof *rows);
    json_t *js = json ? json_pack("{s:s, s:s, s:i, s:f}", "model", cm.path, "name", cm.m->name, "limit", limit, "seconds", seconds)
                      : NULL;
    json_t *jcfgs = json ? json_array() : NULL;
    if (!json) printf("%s: %d layers; metric ± standard error in points, deltas against the baseline on the same documents\n",
                      cm.m->name, N);
    for (int c = 0; c < n_cfgs; c++) {
        if (validate_summarize(tasks, n_tasks, &res, c, rows)) rys_die("%s", rys_lasterr());
        long long docs_run = 0, done = 0, naive = 0;
        double secs = 0;
        for (int k = 0; k < n_tasks; k++) {
            const validate_task_result *r = &res.r[c * n_tasks + k];
            docs_run += r->docs_run;
            done += r->layer_tokens_done;
            naive += r->layer_tokens_naive;
            secs += r->seconds;
        }
        if (json) {
            char *canon = path_canonical(&cfgs[c].path);
            json_t *jc = json_pack("{s:s, s:s, s:i, s:I, s:f, s:I, s:I}", "spec", cfgs[c].spec, "path", canon, "path_length",
                                   cfgs[c].path.n, "docs_run", (json_int_t)docs_run, "seconds", secs, "layer_tokens_done",
                                   (json_int_t)done, "layer_tokens_naive", (json_int_t)naive);
            free(canon);
            json_t *jr = json_array();
            for (int k = 0; k < n_tasks; k++) {
                json_t *row = row_json(&tasks[k], &rows[k], c == 0);
                if (!isnan(rows[k].macro)) json_object_set_new(row, "subjects", subjects_json(&tasks[k], &res.r[c * n_tasks + k], rows[k].metric));
                json_array_append_new(jr, row);
            }
            json_object_set_new(jc, "tasks", jr);
            json_object_set_new(jc, "average", row_json(NULL, &rows[n_tasks], c == 0));
            json_array_append_new(jcfgs, jc);
        } else {
            print_table(tasks, n_tasks, &cfgs[c], c == 0, rows);
            if (docs_run > 0)
                printf("  computed %lld documents in %.1f s (%.2f docs/s); layer-token evaluations %.3fx of one forward per request\n",
                       docs_run, secs, secs > 0 ? docs_run / secs : 0.0, naive ? (double)done / naive : 1.0);
        }
    }
    if (json) {
        json_t *jt = json_array();
        for (int k = 0; k < n_tasks; k++)
            json_array_append_new(jt, json_pack("{s:s, s:s, s:s, s:s, s:s, s:i}", "task", tasks[k].name, "variant", tasks[k].variant,
                                                "file", tasks[k].file, "sha256", tasks[k].sha256, "primary_metric",
                                                tasks[k].primary_metric, "n", tasks[k].n_docs));
        json_object_set_new(js, "tasks", jt);
        json_object_set_new(js, "configs", jcfgs);
        cli_json_print(js, JSON_INDENT(1) | JSON_REAL_PRECISION(10));
    } else {
        printf("\n%.1f s in all%s\n", seconds, db_path ? "" : " (no --db: nothing kept)");
    }
    free(rows);
    validate_results_free(&res);
    validate_store_close(o.store);
    for (int c = 0; c < n_cfgs; c++) { free(cfgs[c].spec); path_free(&cfgs[c].path); }
    free(cfgs);
    for (int k = 0; k < n_tasks; k++) task_set_free(&tasks[k]);
    free(tasks);
    cli_free_split(specs);
    cli_close_model(&cm);
    return 0;
}
