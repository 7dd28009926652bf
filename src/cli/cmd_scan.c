/* rys scan: the brain scan. Scores the baseline and every configuration of a
 * sweep (or of a --paths file) on the probe sets and records everything in a SQLite store; re-running
 * the same command resumes. `rys scan --status --db F` reports progress. */
#include "cli/cli.h"
#include "scan/evalset.h"
#include "scan/prescreen.h"
#include "scan/scan.h"
#include "scan/store.h"
#include "base/util.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
            printf("  %-16s %+-4d layers  combined %+.4f  (%s)\n", b->spec, b->extra_layers, b->combined, b->deltas);
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

/* --order prescreen: cfgs in the order of the pre-screen kept in st,
 * computed on the default calibration probes and kept there first when st
 * has none (so a resumed scan keeps its order). Dies on error. */
static void order_by_prescreen(store *st, const cli_model *cm, const evalset_options *eo, scan_config *cfgs, int n_cfgs, bool quiet) {
    store_prescreen_block *b;
    int nb;
    if (store_prescreen_get(st, &b, &nb, NULL)) rys_die("%s", rys_lasterr());
    if (nb == 0) {
        char probes[2 * PATH_MAX + 2];
        cli_default_search_probes(probes, sizeof probes);
        int n_files;
        char **files = cli_split(probes, ',', &n_files);
        evalset *cal = evalset_load((const char *const *)files, n_files, cm->m, cm->tok, eo);
        cli_free_split(files);
        if (!cal) rys_die("%s", rys_lasterr());
        prescreen_result r;
        if (prescreen_run_save(st, cm->m, cal, 16, PRESCREEN_COMPOSITE, cm->pool, &r)) rys_die("%s", rys_lasterr());
        if (!quiet)
            fprintf(stderr, "rys: pre-screen (CircuitProbe composite, %d prompts of math_16 and eq_16) in %.1f s: top block (%d,%d)\n",
                    r.n_prompts, r.seconds, r.blocks[0].i, r.blocks[0].j);
        prescreen_result_free(&r);
        evalset_free(cal);
        if (store_prescreen_get(st, &b, &nb, NULL)) rys_die("%s", rys_lasterr());
    }
    scan_order_by_prescreen(cfgs, n_cfgs, b, nb);
    free(b);
}

int cmd_scan(int argc, char **argv) {
    const char *model_spec = NULL, *probes = NULL, *db_path = NULL, *only = NULL, *paths_file = NULL, *scales = NULL;
    bool status = false, json = false;
    /* -1 and 0: "not given", so that --paths can refuse the sweep's options even when spelled with their defaults */
    int threads = 0, top = 5, order = -1, mode = -1, search = -1;
    scan_sweep sw = {0};
    scan_run_opts ro = {true, false, 0, 0, NULL};
    evalset_options eo = {64, NULL, false};
    static const char *const orders[] = {"rows", "coarse", "prescreen", NULL}, *const modes[] = {"blocks", "repeat", NULL};
    static const char *const searches[] = {"paths", "surrogate", "beam", NULL};
    const cli_opt opts[] = {
        CLI_STR_OPT("--probes", NULL, &probes, "A.json[,B.json]",
                    "probe sets; EQ.json:logit reads an EQ set by logits (kind eq_logit, named\n"
                    "\"<stem>:logit\"; run per path, without prefix reuse); TASK:VARIANT:loglik[@N] scores\n"
                    "N benchmark documents (\"<task>:<variant>:acc\", \":margin\"), ppl:TEXT[@TOKENS] -log(perplexity)"),
        CLI_STR_OPT("--db", NULL, &db_path, "FILE", "the SQLite store; re-running the same command resumes"),
        CLI_FLAG_OPT("--status", NULL, &status, "report the progress of the scan in --db"),
        CLI_INT_OPT("--max-extra", NULL, &sw.max_extra, 1, 100000, "K", "only blocks of at most K repeated layers"),
        CLI_INT_OPT("--stride", NULL, &sw.stride, 1, 100000, "S", "only i, j that are multiples of S (j = N always kept)"),
        CLI_STR_OPT("--only", NULL, &only, "I0-I1,J0-J1", "only blocks with i in [I0,I1] and j in [J0,J1]"),
        CLI_STR_OPT("--scales", NULL, &scales, "A,B,...", "each configuration at each residual scale of its repeats (1 = as is; README: Damped repeats)"),
        CLI_CHOICE_OPT("--order", NULL, &order, orders, "rows|coarse|prescreen",
                       "sweep order (coarse: a coarse grid first, then finer; prescreen: the store's\n"
                       "pre-screen ranking (rys prescreen), computed and kept there first if missing)"),
        CLI_CHOICE_OPT("--mode", NULL, &mode, modes, "blocks|repeat", "single blocks (default) or single-layer repeats"),
        CLI_INT_OPT("--max-repeat", NULL, &sw.max_repeat, 2, 64, "R", "repeat mode: traverse each layer 2..R times (default 4)"),
        CLI_STR_OPT("--paths", NULL, &paths_file, "FILE",
                    "measure the layer paths listed in FILE instead of a sweep, one a line:\n"
                    "blocks:i,j[;k,l...], layers:0-9,5-23, repeat:L,r or baseline ('#' comments)"),
        CLI_CHOICE_OPT("--search", NULL, &search, searches, "paths|surrogate|beam",
                       "with --paths: what proposed the listed paths, the mark new rows get (default paths)"),
        CLI_INT_OPT("-n", NULL, &eo.n_predict, 1, 4096, "N", "new tokens per item (default 64)"),
        CLI_INT_OPT("--limit", NULL, &ro.limit, 1, 1 << 30, "K", "stop after K configurations (resume later)"),
        CLI_FLAG_OPT("--naive", NULL, &ro.naive, "no prefix reuse (for benchmarks)"),
        CLI_INT_OPT("--top", NULL, &top, 0, 1 << 20, "K", "best configurations to print at the end (default 5)"),
        CLI_THREADS(&threads),
        CLI_JSON(&json, "machine-readable summary"),
        CLI_END,
    };
    const cli_arg args[] = {{"MODEL", &model_spec, false, CLI_MODEL_HELP}, CLI_ARG_END};
    const cli_spec spec = {"scan", "MODEL --probes A.json[,B.json] --db scan.sqlite [options]\n"
                                   "       rys scan --status --db scan.sqlite [--json]",
                           opts, args, NULL, NULL, false, NULL};
    cli_parse_or_exit(&spec, argc, argv);
    if (paths_file) {
        const char *sweep_opt = sw.stride ? "--stride" : only ? "--only" : order >= 0 ? "--order" : mode >= 0 ? "--mode"
                              : sw.max_extra ? "--max-extra" : sw.max_repeat ? "--max-repeat"
                              : scales ? "--scales" : NULL;
        if (sweep_opt) cli_fail(&spec, "--paths measures the listed paths; %s shapes a sweep and cannot be combined with it", sweep_opt);
    }
    if (search >= 0 && !paths_file) cli_fail(&spec, "--search marks the rows of a paths file; it needs --paths");
    if (!sw.max_repeat) sw.max_repeat = 4;
    sw.order = order == 1 ? ORDER_COARSE : order == 2 ? ORDER_PRESCREEN : ORDER_ROWS;
    sw.repeat = mode == 1;
    if (sw.order == ORDER_PRESCREEN && sw.repeat) cli_fail(&spec, "--order prescreen ranks single blocks; --mode repeat has none");
    if (only && scan_parse_only(only, &sw)) cli_fail(&spec, "%s", rys_lasterr());
    int n_scales = 0;
    float *scale_list = NULL;
    if (scales) {
        char **v = cli_split(scales, ',', &n_scales);
        scale_list = xcalloc((size_t)(n_scales ? n_scales : 1), sizeof *scale_list);
        for (int k = 0; k < n_scales; k++) {
            char *end;
            errno = 0;
            scale_list[k] = strtof(v[k], &end);
            if (end == v[k] || *end || errno || !(scale_list[k] >= 0.0f && scale_list[k] <= 16.0f))
                cli_fail(&spec, "--scales '%s': '%s' is not a scale 0..16", scales, v[k]);
            free(v[k]);
        }
        free(v);
        if (!n_scales) cli_fail(&spec, "--scales '': no scales");
    }
    if (!db_path) cli_fail(&spec, "missing --db FILE");
    if (status) return show_status(db_path, json);
    if (!model_spec || !probes) cli_fail(&spec, "missing %s", model_spec ? "--probes" : "MODEL");

    cli_model cm;
    cli_open_model(model_spec, threads, &cm);
    scan_config *cfgs;
    int n_cfgs;
    /* the paths file is read before the probes and the store: a bad line costs no work and leaves the store as it was */
    if (paths_file ? scan_load_paths(paths_file, cm.m->hp.n_layers, &cfgs, &n_cfgs)
                   : scan_build_configs(cm.m->hp.n_layers, &sw, &cfgs, &n_cfgs))
        rys_die("%s", rys_lasterr());
    if (scale_list && scan_apply_scales(&cfgs, &n_cfgs, scale_list, n_scales)) rys_die("%s", rys_lasterr());
    free(scale_list);
    int n_files;
    char **files = cli_split(probes, ',', &n_files);
    evalset *es = evalset_load((const char *const *)files, n_files, cm.m, cm.tok, &eo);
    if (!es) rys_die("%s", rys_lasterr());
    store *st = scan_store_open(db_path, cm.path, cm.m, es);
    if (!st) rys_die("%s", rys_lasterr());
    if (sw.order == ORDER_PRESCREEN) order_by_prescreen(st, &cm, &eo, cfgs, n_cfgs, json);
    if (scan_add_configs(st, cfgs, n_cfgs, paths_file ? searches[search < 0 ? 0 : search] : "scan")) rys_die("%s", rys_lasterr());
    if (!json)
        fprintf(stderr, "rys: scanning %s (%d layers): %d configurations, %d prompts, %d new tokens each\n", cm.m->name,
                cm.m->hp.n_layers, n_cfgs, evalset_n_prompts(es), evalset_n_predict(es));
    scan_summary sum;
    rys_stop_install();
    if (scan_run(st, cm.m, cm.tok, es, cm.pool, cfgs, n_cfgs, &ro, &sum)) rys_die("%s", rys_lasterr());
    if (sum.objectives_from_scratch && !json)
        fprintf(stderr, "rys: note: %s has recurrent (Gated DeltaNet) layers, whose states an objective's shared contexts "
                        "cannot copy: its benchmark objectives ran from scratch for each configuration\n", cm.m->hp.arch_name);
    double ratio = sum.layer_tokens_naive ? (double)sum.layer_tokens_done / sum.layer_tokens_naive : 1.0;
    if (sum.stopped)
        fprintf(stderr, "rys: scan stopped on %s: %d configurations kept in %s (%d of %d done); the same command continues it\n",
                rys_stop_signal() == SIGTERM ? "SIGTERM" : "SIGINT", sum.done_now, db_path, sum.done_before + sum.done_now,
                sum.total);
    if (json) {
        json_t *o = json_pack("{s:s, s:i, s:i, s:i, s:f, s:I, s:I, s:f, s:b}", "db", db_path, "total", sum.total, "done_before",
                              sum.done_before, "done_now", sum.done_now, "seconds", sum.seconds, "layer_tokens_done",
                              (json_int_t)sum.layer_tokens_done, "layer_tokens_naive", (json_int_t)sum.layer_tokens_naive,
                              "reuse_ratio", ratio, "stopped", sum.stopped);
        print_best(st, top, o);
        cli_json_print(o, JSON_INDENT(1));
    } else {
        printf("%d configurations scored now, %d before, %d in the %s; %.1f s", sum.done_now, sum.done_before, sum.total,
               paths_file ? "paths file" : "sweep", sum.seconds);
        if (sum.layer_tokens_naive) printf("; layer-token evaluations %lld vs %lld naive (%.3fx)", sum.layer_tokens_done, sum.layer_tokens_naive, ratio);
        printf("\n");
        if (top > 0) print_best(st, top, NULL);
    }
    scan_free_configs(cfgs, n_cfgs);
    store_close(st);
    evalset_free(es);
    for (int k = 0; k < n_files; k++) free(files[k]);
    free(files);
    cli_close_model(&cm);
    return sum.stopped ? rys_stop_exit_code() : 0;
}
