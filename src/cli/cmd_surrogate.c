/* rys surrogate: train the RYS II surrogate on a scan store, and rank a
 * million candidate count vectors with it into a paths file for
 * `rys scan --paths` (src/search/surrogate.h says what and why). */
#include "cli/cli.h"
#include "search/surrogate.h"
#include "scan/store.h"
#include "engine/path.h"
#include "base/util.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- train ----------------------------------------------------------------- */

static int surrogate_train(int argc, char **argv) {
    const char *db_path = NULL, *out = NULL;
    sur_train_opts o = {0.05, 42, 0.60, 3, 2, 32, stderr};
    bool json = false;
    const cli_opt opts[] = {
        CLI_STR_REQUIRED("--db", NULL, &db_path, "FILE", "the scan store: every measured configuration is a training row"),
        CLI_STR_REQUIRED("-o", "--output", &out, "FILE", "the surrogate file to write (JSON, boosters embedded)"),
        CLI_DOUBLE_OPT("--holdout", NULL, &o.holdout_frac, 0.01, 0.5, "F", "holdout share, stratified by the balanced score (default 0.05)"),
        CLI_U64_OPT("--seed", NULL, &o.seed, "S", "holdout and subsampling seed (default 42)"),
        CLI_DOUBLE_OPT("--gate", NULL, &o.gate, -1, 1, "R", "minimum holdout Spearman of the balanced score (default 0.60)"),
        CLI_INT_OPT("--retries", NULL, &o.retries, 0, SUR_N_PRESETS - 1, "K", "further hyper-parameter presets tried while the gate fails (default 3)"),
        CLI_INT_OPT("--anchors", NULL, &o.n_anchors, 0, 100000, "K", "best measured paths kept for the candidates' mutations (default 32)"),
        CLI_INT_OPT("-t", "--threads", &o.n_threads, 1, 1024, "N", "XGBoost threads while training (default 2, fixed so reruns agree)"),
        CLI_JSON(&json, "the metrics as JSON on stdout"),
        CLI_END,
    };
    const cli_spec spec = {"surrogate train", "--db scan.sqlite -o surrogate.json [options]", opts, NULL, NULL, NULL, false,
                           "Targets: math delta, EQ delta, balanced (z(math delta) + z(EQ delta), as rys report ranks);\n"
                           "a scan without an EQ set: math delta and balanced (its z-score).\n"
                           "Writes the holdout's predicted and measured values into the store for rys report.\n"
                           "Exit status 1 when the gate fails after the retries (the file is still written,\n"
                           "marked ungated: rank refuses it without --force)."};
    cli_parse_or_exit(&spec, argc, argv);
    if (json) o.log = NULL;
    double t0 = rys_now();
    surrogate s;
    if (sur_train_store(db_path, &o, &s)) rys_die("%s", rys_lasterr());
    double secs = rys_now() - t0;
    if (sur_save(&s, out)) rys_die("%s", rys_lasterr());
    if (json) {
        json_t *j = json_pack("{s:s, s:i, s:i, s:i, s:b, s:f, s:f}", "file", out, "train", s.n_train, "holdout", s.n_holdout,
                              "trial", s.trial, "gate_passed", s.gate_passed, "gate", s.gate, "seconds", secs);
        for (int t = 0; t < SUR_N_TARGETS; t++)
            if (sur_has_target(&s, t))
                json_object_set_new(j, sur_target_name[t], json_pack("{s:o, s:f}", "spearman", isfinite(s.spearman[t]) ? json_real(s.spearman[t]) : json_null(),
                                                                 "mae", s.mae[t]));
        cli_json_print(j, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
    } else {
        printf("holdout (%d of %d rows), trial %d:\n", s.n_holdout, s.n_holdout + s.n_train, s.trial);
        for (int t = 0; t < SUR_N_TARGETS; t++)
            if (sur_has_target(&s, t)) printf("  %-10s Spearman %6.3f  MAE %.4f\n", sur_target_name[t], s.spearman[t], s.mae[t]);
        if (!sur_has_target(&s, SUR_EQ)) printf("  (no EQ set in the scan: no EQ target; balanced is the math delta's z-score)\n");
        printf("gate (balanced Spearman >= %.2f): %s; %s written in %.1f s\n", s.gate, s.gate_passed ? "passed" : "FAILED", out, secs);
    }
    int rc = 0;
    if (!s.gate_passed) {
        fprintf(stderr, "rys: surrogate train: the gate failed after %d trial%s (best balanced Spearman %.3f < %.2f): "
                "%s is marked ungated and rank refuses it without --force; measure more configurations first\n",
                s.n_trials, s.n_trials == 1 ? "" : "s", s.spearman[SUR_BALANCED], s.gate, out);
        rc = 1;
    }
    sur_free(&s);
    return rc;
}

/* ---- rank ------------------------------------------------------------------ */

static int surrogate_rank(int argc, char **argv) {
    const char *file = NULL, *out = NULL, *db_path = NULL;
    int threads = 0, n_cand = 1000000;
    bool force = false, json = false;
    sur_cand_opts co = {0, 0, 24, 8, 0.45, 8, 42};
    sur_rank_opts ro = {0.5, -0.02, -0.02, 100, 0};
    const cli_opt opts[] = {
        CLI_STR_REQUIRED("-o", "--output", &out, "FILE", "the paths file to write: one counts: line per path, best first"),
        CLI_STR_OPT("--db", NULL, &db_path, "FILE", "the scan store: refuses a surrogate of another model and skips measured paths"),
        CLI_INT_OPT("--candidates", NULL, &n_cand, 1, 100000000, "N", "candidates generated (default 1000000)"),
        CLI_INT_OPT("--max-extra", NULL, &co.max_extra, 1, 4096, "K", "at most K traversals over the baseline's (default 24)"),
        CLI_INT_OPT("--max-count", NULL, &co.max_count, 1, 64, "C", "at most C traversals of one layer (default 8)"),
        CLI_INT_OPT("--top", NULL, &ro.top, 1, 1000000, "K", "paths written (default 100)"),
        CLI_U64_OPT("--seed", NULL, &co.seed, "S", "candidate seed (default 42): the same seed, the same file"),
        CLI_DOUBLE_OPT("--anchor-frac", NULL, &co.anchor_frac, 0, 1, "F", "share of mutations of the best measured paths (default 0.45)"),
        CLI_DOUBLE_OPT("--lambda", NULL, &ro.lambda, 0, 1000, "L", "score = predicted balanced - L * extra / layers (default 0.5)"),
        CLI_DOUBLE_OPT("--min-math", NULL, &ro.min_math, -1e9, 1e9, "D", "skip candidates whose predicted math delta is below D (default -0.02)"),
        CLI_DOUBLE_OPT("--min-eq", NULL, &ro.min_eq, -1e9, 1e9, "D", "skip candidates whose predicted EQ delta is below D (default -0.02)"),
        CLI_FLAG_OPT("--force", NULL, &force, "use a surrogate that failed its Spearman gate"),
        CLI_THREADS(&threads),
        CLI_JSON(&json, "timings and the written paths as JSON on stdout"),
        CLI_END,
    };
    const cli_arg args[] = {{"SURROGATE", &file, true, "a file rys surrogate train wrote"}, CLI_ARG_END};
    const cli_spec spec = {"surrogate rank", "surrogate.json -o top.txt [options]", opts, args, NULL, NULL, false,
                           "Predictions only rank: the file holds paths, never predicted values; measure them with\n"
                           "rys scan MODEL --probes ... --db scan.sqlite --paths top.txt."};
    cli_parse_or_exit(&spec, argc, argv);
    if (threads <= 0) threads = cli_default_threads();
    ro.n_threads = threads;
    surrogate s;
    if (sur_load(file, &s)) rys_die("%s", rys_lasterr());
    if (!s.gate_passed && !force)
        rys_die("%s failed its Spearman gate (balanced %.3f < %.2f); measure more and retrain, or pass --force", file,
                s.spearman[SUR_BALANCED], s.gate);
    int n_ex = 0, *ex = NULL;
    if (db_path && sur_measured_counts(db_path, &s, &ex, &n_ex)) rys_die("%s", rys_lasterr());
    co.n_layers = s.n_layers;
    co.n = n_cand;
    if (co.max_count < 2) cli_fail(&spec, "--max-count %d leaves no layer to traverse again", co.max_count);
    double t0 = rys_now();
    uint8_t *cand = xmalloc((size_t)n_cand * (size_t)s.n_layers);
    sur_candidates(&co, s.anchors, s.n_anchors, cand);
    double t_gen = rys_now() - t0, t_pred = 0;
    int64_t *best = xmalloc((size_t)ro.top * sizeof *best);
    double *score = xmalloc((size_t)ro.top * sizeof *score);
    int n = sur_rank(&s, &co, cand, ex, n_ex, &ro, best, score, &t_pred);
    if (n < 0) rys_die("%s", rys_lasterr());
    double total = rys_now() - t0;
    FILE *f = fopen(out, "w");
    if (!f) rys_die("%s: cannot write", out);
    char filters[96];
    if (sur_has_target(&s, SUR_EQ)) snprintf(filters, sizeof filters, "predicted math and EQ deltas >= %g and %g", ro.min_math, ro.min_eq);
    else snprintf(filters, sizeof filters, "predicted math delta >= %g (no EQ target)", ro.min_math);
    fprintf(f, "# rys surrogate rank %s: the %d best of %d candidates (seed %llu, at most %d extra layers, at most %d traversals\n"
               "# of a layer, %.2f of them mutations of %d measured paths), by predicted balanced score - %g x extra / %d,\n"
               "# %s%s. Predictions only rank: measure these with rys scan --paths.\n",
            file, n, n_cand, (unsigned long long)co.seed, co.max_extra, co.max_count, co.anchor_frac, s.n_anchors, ro.lambda,
            s.n_layers, filters, db_path ? "; paths measured in the store skipped" : "");
    json_t *jp = json ? json_array() : NULL;
    for (int k = 0; k < n; k++) {
        char *line = sur_counts_spec(cand + (size_t)best[k] * s.n_layers, s.n_layers);
        fprintf(f, "%s\n", line);
        if (jp) json_array_append_new(jp, json_string(line));
        free(line);
    }
    if (fclose(f)) rys_die("%s: cannot write", out);
    if (json) {
        json_t *j = json_pack("{s:s, s:i, s:i, s:f, s:f, s:f, s:i, s:o}", "file", out, "candidates", n_cand, "written", n, "seconds", total,
                              "seconds_generate", t_gen, "seconds_predict", t_pred, "threads", threads, "paths", jp);
        cli_json_print(j, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
    } else {
        printf("%d paths written to %s; %d candidates ranked in %.1f s (generating %.1f s, predicting and sorting %.1f s) on %d thread%s\n",
               n, out, n_cand, total, t_gen, t_pred, threads, threads == 1 ? "" : "s");
    }
    if (n < ro.top) cli_warn("only %d candidates passed the filters and were not measured already (asked for %d)", n, ro.top);
    free(cand);
    free(best);
    free(score);
    free(ex);
    sur_free(&s);
    return 0;
}

int cmd_surrogate(int argc, char **argv) {
    /* the subcommand first, so that `rys surrogate train --help` is train's help */
    if (argc >= 2 && !strcmp(argv[1], "train")) return surrogate_train(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "rank")) return surrogate_rank(argc - 1, argv + 1);
    const cli_opt opts[] = {CLI_END};
    const cli_spec spec = {"surrogate",
                           "train --db scan.sqlite -o surrogate.json [options]\n"
                           "       rys surrogate rank surrogate.json -o top.txt [--db scan.sqlite] [--candidates N] [--max-extra K] [--top K]",
                           opts, NULL, NULL, NULL, false,
                           "rys surrogate train --help and rys surrogate rank --help list the options."};
    cli_parse_or_exit(&spec, argc, argv);
    if (argc < 2) cli_fail(&spec, "missing subcommand (train, rank)");
    rys_die("surrogate: unknown subcommand '%s' (train, rank)", argv[1]);
}
