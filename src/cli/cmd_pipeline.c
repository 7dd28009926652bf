/* rys pipeline: coarse scan, focused scan, beam, surrogate, validation and
 * the report in one resumable command (src/search/pipeline.h); its last
 * lines say which configuration, if any, beats the unmodified model on
 * validation, and how to export it. */
#include "cli/cli.h"
#include "base/util.h"
#include "search/pipeline.h"

#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Seconds of a budget written "90", "90s", "80m", "2h" or "1h30m"; -1 when
 * it is none of those or not positive. */
static double parse_budget(const char *s) {
    double total = 0;
    const char *p = s;
    if (!*p) return -1;
    while (*p) {
        char *end;
        double v = strtod(p, &end);
        if (end == p || v < 0) return -1;
        double unit = 1;
        if (*end == 'h') unit = 3600, end++;
        else if (*end == 'm') unit = 60, end++;
        else if (*end == 's') end++;
        else if (*end) return -1;
        total += v * unit;
        p = end;
    }
    return total > 0 ? total : -1;
}

int cmd_pipeline(int argc, char **argv) {
    const char *model_spec = NULL, *dir = NULL, *budget = "80m", *probes = NULL, *data_dir = NULL;
    const char *tasks = "arc_challenge:test_rc_5shot@500,hellaswag:val_rc_5shot@300,mmlu:5shot@3";
    int threads = 0, per_family = 2, width = 8, depth = 3, top = 50;
    bool json = false;
    const cli_opt opts[] = {
        CLI_STR_OPT("--dir", NULL, &dir, "DIR", "where the store and the report go (default pipeline-NAME); rerun to continue"),
        CLI_STR_OPT("--budget", NULL, &budget, "T", "wall-clock budget, e.g. 80m (default), 2h, 1h30m, 5400s"),
        CLI_STR_OPT("--probes", NULL, &probes, "A.json[,B.json]", "the search's probe sets (default probes/math_16.json,probes/eq_16.json)"),
        CLI_STR_OPT("--tasks", NULL, &tasks, "LIST",
                    "validation tasks TASK:VARIANT[@N] (N: first N documents; MMLU: per subject)\n"
                    "(default arc_challenge:test_rc_5shot@500,hellaswag:val_rc_5shot@300,mmlu:5shot@3)"),
        CLI_STR_OPT("--data-dir", NULL, &data_dir, "DIR", "data root (default $RYS_CACHE_DIR/data or ~/.cache/rys/data)"),
        CLI_INT_OPT("--per-family", NULL, &per_family, 1, 100, "K", "configurations validated per search family (default 2)"),
        CLI_INT_OPT("--width", NULL, &width, 1, 1000, "W", "beam width (default 8)"),
        CLI_INT_OPT("--depth", NULL, &depth, 2, 16, "D", "beam depth in blocks (default 3)"),
        CLI_INT_OPT("--surrogate-top", NULL, &top, 1, 100000, "K", "surrogate candidates measured (default 50)"),
        CLI_THREADS(&threads),
        CLI_JSON(&json, "machine-readable outcome"),
        CLI_END,
    };
    const cli_arg args[] = {CLI_MODEL_ARG(&model_spec), CLI_ARG_END};
    const cli_spec spec = {"pipeline", "MODEL [--budget 80m] [--dir DIR] [options]", opts, args, NULL, NULL, false,
                           "Coarse scan, focused scan, beam, surrogate, validation and report, each stage resumable;\n"
                           "the budget is split across the stages and a rerun continues where the last one stopped."};
    cli_parse_or_exit(&spec, argc, argv);
    double budget_s = parse_budget(budget);
    if (budget_s <= 0) cli_fail(&spec, "--budget '%s': expected a duration such as 90m, 2h, 1h30m or 5400s", budget);

    cli_model cm;
    cli_open_model(model_spec, threads, &cm);
    char dir_buf[4096], probe_buf[2 * PATH_MAX + 2];
    if (!dir) {
        snprintf(dir_buf, sizeof dir_buf, "pipeline-%s", cm.m->name);
        dir = dir_buf;
    }
    if (!probes) {
        cli_default_search_probes(probe_buf, sizeof probe_buf);
        probes = probe_buf;
    }
    pipeline_opts o = {model_spec, cm.path, cm.m, cm.tok, cm.pool, dir, budget_s, probes, tasks, data_dir, 0, per_family,
                       width, depth, top, 1000000, !json};
    pipeline_result res;
    rys_stop_install();
    if (pipeline_run(&o, &res)) rys_die("%s", rys_lasterr());
    if (res.stopped) {
        fprintf(stderr, "rys: pipeline stopped; everything done so far is kept in %s: the same command continues it\n", res.db_path);
        pipeline_result_free(&res);
        cli_close_model(&cm);
        return rys_stop_exit_code();
    }
    const pipeline_pick *win = res.winner >= 0 ? &res.picks[res.winner] : NULL;
    if (json) {
        json_t *jo = json_pack("{s:s, s:s}", "db", res.db_path, "report", res.report_dir);
        json_t *arr = json_array();
        for (int k = 0; k < res.n_picks; k++) {
            const pipeline_pick *pk = &res.picks[k];
            json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:i, s:f, s:[f,f], s:i, s:f, s:[f,f]}", "spec", pk->spec, "layers",
                                                 pk->layers, "search", pk->search, "extra_layers", pk->extra_layers, "delta", pk->delta,
                                                 "ci95", pk->ci_lo, pk->ci_hi, "documents", pk->n_docs, "math_delta", pk->math_delta,
                                                 "math_ci95", pk->math_lo, pk->math_hi));
        }
        json_object_set_new(jo, "validated", arr);
        json_object_set_new(jo, "winner", win ? json_string(win->spec) : json_null());
        cli_json_print(jo, JSON_INDENT(1));
    } else {
        printf("\nvalidated against the baseline, points, paired bootstrap 95%% intervals: tasks = average accuracy over the\n"
               "tasks (what decides), math = mean item score on the generated math set\n");
        printf("  %-28s %-10s %6s %8s %18s %6s %8s %18s\n", "configuration", "search", "extra", "tasks", "95% CI", "docs", "math",
               "95% CI");
        for (int k = 0; k < res.n_picks; k++) {
            const pipeline_pick *pk = &res.picks[k];
            printf("  %-28s %-10s %+6d %+8.2f   [%+6.2f, %+6.2f] %6d %+8.2f   [%+6.2f, %+6.2f]\n", pk->spec, pk->search,
                   pk->extra_layers, 100 * pk->delta, 100 * pk->ci_lo, 100 * pk->ci_hi, pk->n_docs, 100 * pk->math_delta,
                   100 * pk->math_lo, 100 * pk->math_hi);
        }
        printf("store %s, report %s/index.html\n", res.db_path, res.report_dir);
        if (win) {
            printf("%s (%s, +%d layers) beats the unmodified model: %+.2f points [%+.2f, %+.2f]\n", win->spec, win->layers,
                   win->extra_layers, 100 * win->delta, 100 * win->ci_lo, 100 * win->ci_hi);
            printf("export it: rys export %s --layers %s -o %s-rys.gguf\n", model_spec, win->layers, cm.m->name);
        } else if (res.n_picks) {
            printf("none of the %d validated configurations beats the unmodified model: every interval reaches 0 or below\n",
                   res.n_picks);
        } else {
            printf("no configuration was validated: the budget left no time to measure one beside the baseline\n");
        }
    }
    pipeline_result_free(&res);
    cli_close_model(&cm);
    return 0;
}
