/* rys scan: the brain scan. Scores the baseline and every configuration of a
 * sweep on the probe sets and records everything in a SQLite store; re-running
 * the same command resumes. `rys scan --status --db F` reports progress. */
#include "cli/cli.h"
#include "scan/evalset.h"
#include "scan/scan.h"
#include "base/sha256.h"
#include "scan/store.h"
#include "base/util.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(void) {
    puts("usage: rys scan MODEL --probes A.json[,B.json] --db scan.sqlite [options]\n"
         "       rys scan --status --db scan.sqlite [--json]\n"
         "  --probes EQ.json:logit  read an EQ set by logits (kind eq_logit, named\n"
         "                    \"<stem>:logit\"; run per path, without prefix reuse)\n"
         "  --max-extra K     only blocks of at most K repeated layers\n"
         "  --stride S        only i, j that are multiples of S (j = N always kept)\n"
         "  --only I0-I1,J0-J1  only blocks with i in [I0,I1] and j in [J0,J1]\n"
         "  --order rows|coarse  sweep order (coarse: a coarse grid first, then finer)\n"
         "  --mode blocks|repeat  single blocks (default) or single-layer repeats\n"
         "  --max-repeat R    repeat mode: traverse each layer 2..R times (default 4)\n"
         "  -n N              new tokens per item (default 64)\n"
         "  --limit K         stop after K configurations (resume later)\n"
         "  --naive           no prefix reuse (for benchmarks)\n"
         "  --top K           best configurations to print at the end (default 5)\n"
         "  -t N              threads\n"
         "  --json            machine-readable summary");
}

/* Best configurations by summed delta over the probe sets. */
static void print_best(store *st, int top, json_t *js) {
    store_best *best;
    int n;
    if (store_best_configs(st, top, &best, &n)) return;
    json_t *arr = json_array();
    if (!js) printf("best configurations (sum of deltas vs baseline):\n");
    for (int k = 0; k < n; k++) {
        const store_best *b = &best[k];
        if (js)
            json_array_append_new(arr, json_pack("{s:s, s:i, s:f, s:s}", "spec", b->spec, "extra_layers", b->extra_layers,
                                                 "combined_delta", b->combined, "deltas", b->deltas));
        else
            printf("  %-16s +%-3d layers  combined %+.4f  (%s)\n", b->spec, b->extra_layers, b->combined, b->deltas);
    }
    store_best_free(best, n);
    if (js) json_object_set_new(js, "best", arr);
    else json_decref(arr);
}

static int show_status(const char *db_path, bool json) {
    if (access(db_path, R_OK)) rys_die("%s: no such scan database", db_path);
    store *st = store_open(db_path);
    if (!st) rys_die("%s", rys_lasterr());
    store_progress pr;
    if (store_get_progress(st, &pr)) rys_die("%s", rys_lasterr());
    int total = pr.total, done = pr.done;
    double rate = pr.configs_per_minute;
    const char *running = pr.running[0] ? pr.running : NULL;
    double eta = rate > 0 ? (total - done) / rate * 60.0 : -1;
    if (json) {
        json_t *o = json_pack("{s:i, s:i, s:f, s:f}", "total", total, "done", done, "configs_per_minute", rate, "eta_seconds", eta);
        json_object_set_new(o, "running", running ? json_string(running) : json_null());
        print_best(st, 5, o);
        char *s = json_dumps(o, JSON_INDENT(1));
        puts(s);
        free(s);
        json_decref(o);
    } else {
        printf("%s: %d/%d configurations done (%.1f%%)", db_path, done, total, total ? 100.0 * done / total : 0.0);
        if (running) printf(", last started: %s", running);
        if (rate > 0) printf(", %.1f configs/min, ETA %.0f min", rate, eta / 60);
        printf("\n");
        print_best(st, 5, NULL);
    }
    store_close(st);
    return 0;
}

static char **split_commas(const char *s, int *n) {
    char *dup = xstrdup(s), *save = NULL;
    char **v = NULL;
    *n = 0;
    for (char *tok = strtok_r(dup, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        v = xrealloc(v, (size_t)(*n + 1) * sizeof *v);
        v[(*n)++] = xstrdup(tok);
    }
    free(dup);
    return v;
}

int cmd_scan(int argc, char **argv) {
    const char *model_spec = NULL, *probes = NULL, *db_path = NULL;
    bool status = false, json = false;
    int threads = 0, top = 5;
    scan_sweep sw = {0};
    sw.max_repeat = 4;
    scan_run_opts ro = {true, false, 0};
    evalset_options eo = {64, NULL, false};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(); return 0; }
        else if (!strcmp(a, "--probes")) probes = cli_value(argc, argv, &i);
        else if (!strcmp(a, "--db")) db_path = cli_value(argc, argv, &i);
        else if (!strcmp(a, "--status")) status = true;
        else if (!strcmp(a, "--json")) json = true;
        else if (!strcmp(a, "--max-extra")) sw.max_extra = (int)cli_parse_long(a, cli_value(argc, argv, &i), 1, 100000);
        else if (!strcmp(a, "--stride")) sw.stride = (int)cli_parse_long(a, cli_value(argc, argv, &i), 1, 100000);
        else if (!strcmp(a, "--only")) { if (scan_parse_only(cli_value(argc, argv, &i), &sw)) rys_die("%s", rys_lasterr()); }
        else if (!strcmp(a, "--order")) {
            const char *v = cli_value(argc, argv, &i);
            if (!strcmp(v, "rows")) sw.order = ORDER_ROWS;
            else if (!strcmp(v, "coarse")) sw.order = ORDER_COARSE;
            else rys_die("--order: expected rows or coarse, got '%s'", v);
        } else if (!strcmp(a, "--mode")) {
            const char *v = cli_value(argc, argv, &i);
            if (!strcmp(v, "blocks")) sw.repeat = false;
            else if (!strcmp(v, "repeat")) sw.repeat = true;
            else rys_die("--mode: expected blocks or repeat, got '%s'", v);
        }
        else if (!strcmp(a, "--max-repeat")) sw.max_repeat = (int)cli_parse_long(a, cli_value(argc, argv, &i), 2, 64);
        else if (!strcmp(a, "-n")) eo.n_predict = (int)cli_parse_long(a, cli_value(argc, argv, &i), 1, 4096);
        else if (!strcmp(a, "--limit")) ro.limit = (int)cli_parse_long(a, cli_value(argc, argv, &i), 1, 1 << 30);
        else if (!strcmp(a, "--naive")) ro.naive = true;
        else if (!strcmp(a, "--top")) top = (int)cli_parse_long(a, cli_value(argc, argv, &i), 0, 1 << 20);
        else if (!strcmp(a, "-t")) threads = (int)cli_parse_long(a, cli_value(argc, argv, &i), 1, 1024);
        else if (a[0] == '-') rys_die("scan: unknown option %s", a);
        else if (!model_spec) model_spec = a;
        else rys_die("scan: unexpected argument %s", a);
    }
    if (!db_path) { usage(); return 1; }
    if (status) return show_status(db_path, json);
    if (!model_spec || !probes) { usage(); return 1; }

    cli_model cm;
    cli_open_model(model_spec, threads, &cm);
    int n_files;
    char **files = split_commas(probes, &n_files);
    evalset *es = evalset_load((const char *const *)files, n_files, cm.m, cm.tok, &eo);
    if (!es) rys_die("%s", rys_lasterr());
    char model_sha[65];
    if (sha256_file(cm.path, model_sha)) rys_die("%s", rys_lasterr());

    store *st = store_open(db_path);
    if (!st) rys_die("%s", rys_lasterr());
    int n_sets = evalset_n_sets(es);
    store_probe *sp = xcalloc((size_t)n_sets, sizeof *sp);
    for (int s = 0; s < n_sets; s++)
        sp[s] = (store_probe){evalset_set_name(es, s), evalset_set_path(es, s), evalset_set_sha256(es, s),
                              evalset_set_kind(es, s), evalset_set_items(es, s)};
    char *settings = evalset_settings_json(es);
    store_identity id = {cm.path, model_sha, cm.m->hp.arch_name, cm.m->hp.n_layers, sp, n_sets, settings};
    if (store_set_identity(st, &id)) rys_die("%s", rys_lasterr());

    scan_config *cfgs;
    int n_cfgs;
    if (scan_build_configs(cm.m->hp.n_layers, &sw, &cfgs, &n_cfgs)) rys_die("%s", rys_lasterr());
    store_config *sc = xcalloc((size_t)n_cfgs, sizeof *sc);
    for (int k = 0; k < n_cfgs; k++)
        sc[k] = (store_config){cfgs[k].spec, cfgs[k].key, cfgs[k].i, cfgs[k].j, path_extra_layers(&cfgs[k].path), k};
    if (store_add_configs(st, sc, n_cfgs)) rys_die("%s", rys_lasterr());
    if (!json)
        fprintf(stderr, "rys: scanning %s (%d layers): %d configurations, %d prompts, %d new tokens each\n", cm.m->name,
                cm.m->hp.n_layers, n_cfgs, evalset_n_prompts(es), evalset_n_predict(es));
    scan_summary sum;
    if (scan_run(st, cm.m, cm.tok, es, cm.pool, cfgs, n_cfgs, &ro, &sum)) rys_die("%s", rys_lasterr());
    double ratio = sum.layer_tokens_naive ? (double)sum.layer_tokens_done / sum.layer_tokens_naive : 1.0;
    if (json) {
        json_t *o = json_pack("{s:s, s:i, s:i, s:i, s:f, s:I, s:I, s:f}", "db", db_path, "total", sum.total, "done_before",
                              sum.done_before, "done_now", sum.done_now, "seconds", sum.seconds, "layer_tokens_done",
                              (json_int_t)sum.layer_tokens_done, "layer_tokens_naive", (json_int_t)sum.layer_tokens_naive,
                              "reuse_ratio", ratio);
        print_best(st, top, o);
        char *s = json_dumps(o, JSON_INDENT(1));
        puts(s);
        free(s);
        json_decref(o);
    } else {
        printf("%d configurations scored now, %d before, %d in the sweep; %.1f s", sum.done_now, sum.done_before, sum.total, sum.seconds);
        if (sum.layer_tokens_naive) printf("; layer-token evaluations %lld vs %lld naive (%.3fx)", sum.layer_tokens_done, sum.layer_tokens_naive, ratio);
        printf("\n");
        if (top > 0) print_best(st, top, NULL);
    }
    free(sc); free(sp); free(settings);
    scan_free_configs(cfgs, n_cfgs);
    store_close(st);
    evalset_free(es);
    for (int k = 0; k < n_files; k++) free(files[k]);
    free(files);
    cli_close_model(&cm);
    return 0;
}
