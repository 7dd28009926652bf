/* rys beam: the RYS II beam search over block compositions (search/beam.h),
 * seeded from the single blocks a scan measured and writing into its store;
 * re-running the same command resumes it. */
#include "cli/cli.h"
#include "cli/cli_scan.h"
#include "scan/scan.h"
#include "search/beam.h"
#include "base/util.h"

#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "math_4 +0.1250 eq_4 -0.0312" (malloc'd). */
static char *deltas_text(const beam_summary *s) {
    size_t cap = 32;
    for (int p = 0; p < s->n_probes; p++) cap += strlen(s->probe[p]) + 16;
    char *t = xmalloc(cap);
    size_t len = 0;
    t[0] = 0;
    for (int p = 0; p < s->n_probes; p++)
        len += (size_t)snprintf(t + len, cap - len, "%s%s %+.4f", p ? " " : "", s->probe[p], s->best_delta[p]);
    return t;
}

static void print_json(const char *db_path, const char *name, const beam_summary *s) {
    json_t *depths = json_array();
    for (int k = 0; k < s->n_depths; k++) {
        const beam_depth_summary *d = &s->depth[k];
        json_t *o = json_pack("{s:i, s:i, s:i, s:i}", "depth", k + 2, "candidates", d->candidates, "measured_now", d->measured_now,
                              "done_before", d->done_before);
        json_object_set_new(o, "best_spec", d->best_spec ? json_string(d->best_spec) : json_null());
        json_object_set_new(o, "best_balanced", d->best_spec ? json_real(d->best_score) : json_null());
        json_array_append_new(depths, o);
    }
    json_t *deltas = json_object();
    for (int p = 0; p < s->n_probes; p++) json_object_set_new(deltas, s->probe[p], json_real(s->best_delta[p]));
    json_t *best = json_pack("{s:s, s:s, s:i, s:i, s:f, s:o}", "spec", s->best_spec, "path", s->best_path, "depth", s->best_depth,
                             "extra_layers", s->best_extra, "balanced", s->best_score, "deltas", deltas);
    json_t *o = json_pack("{s:s, s:s, s:o, s:i, s:i, s:i, s:f, s:b, s:s, s:o, s:f}", "db", db_path, "beam", name, "depths", depths,
                          "candidates", s->candidates, "measured_now", s->measured_now, "done_before", s->done_before, "seconds",
                          s->seconds, "stopped", s->stopped, "end", s->end, "best", best, "best_seed_balanced", s->seed_score);
    cli_json_print(o, JSON_INDENT(1));
}

int cmd_beam(int argc, char **argv) {
    const char *model_spec = NULL, *probes = NULL, *db_path = NULL;
    bool json = false;
    int threads = 0;
    beam_opts bo = beam_default_opts();
    const cli_opt opts[] = {
        CLI_STR_OPT("--db", NULL, &db_path, "FILE", "the scan store: its single blocks seed the beam, its measured paths are not\n"
                                                    "measured again, the beam's are added; re-running the same command resumes"),
        CLI_INT_OPT("--width", NULL, &bo.width, 1, 4096, "W", "paths kept per depth (default 8)"),
        CLI_INT_OPT("--depth", NULL, &bo.depth, 2, BEAM_MAX_DEPTH, "D", "deepest depth, in blocks per path (default 3; 1 is the seeds)"),
        CLI_INT_OPT("--seeds", NULL, &bo.seeds, 1, 1 << 20, "S", "best single blocks (balanced score) that start the beam (default 16)"),
        CLI_INT_OPT("--expand", NULL, &bo.expand, 1, 1 << 20, "K", "best single blocks tried as each path's next block (default 16)"),
        CLI_INT_OPT("--max-extra", NULL, &bo.max_extra, 1, 100000, "K", "drop candidates of more than K extra layers"),
        CLI_INT_OPT("--max-new-per-depth", NULL, &bo.max_new, 0, 1 << 20, "N",
                    "measure at most N new paths per depth, the best proposals first (default 64;\n"
                    "0: no cap); paths the store holds compete without counting"),
        CLI_INT_OPT("--patience", NULL, &bo.patience, 1, BEAM_MAX_DEPTH, "P", "stop after P depths in a row without a better best path"),
        CLI_STR_OPT("--probes", NULL, &probes, "A.json[,B.json]",
                    "probe files (default: the ones the scan recorded; the scan's identity must match)"),
        CLI_THREADS(&threads),
        CLI_JSON(&json, "machine-readable summary"),
        CLI_END,
    };
    const cli_arg args[] = {CLI_MODEL_ARG(&model_spec), CLI_ARG_END};
    const cli_spec spec = {"beam", "MODEL --db scan.sqlite [--width 8] [--depth 3] [--seeds 16] [--max-extra K] [--max-new-per-depth N]",
                           opts, args, NULL, NULL, false,
                           "Each depth extends the kept paths by one more block (blocks:i,j;k,l, inserted after the\n"
                           "last occurrence of layer l-1), ranked by the balanced score with the z statistics of the\n"
                           "single blocks when the beam started. The beam is named by --width, --seeds, --expand,\n"
                           "--max-new-per-depth and --max-extra; other values start another beam in the same store."};
    cli_parse_or_exit(&spec, argc, argv);
    if (!db_path) cli_fail(&spec, "missing --db FILE");

    char *recorded = NULL;
    evalset_options eo = {64, NULL, false};
    cli_scan_recorded(db_path, &recorded, &eo);
    cli_model cm;
    cli_open_model(model_spec, threads, &cm);
    int n_files;
    char **files = cli_split(probes ? probes : recorded, ',', &n_files);
    evalset *es = evalset_load((const char *const *)files, n_files, cm.m, cm.tok, &eo);
    cli_free_split(files);
    if (!es) rys_die("%s", rys_lasterr());
    store *st = scan_store_open(db_path, cm.path, cm.m, es);
    if (!st) rys_die("%s", rys_lasterr());
    char *name = beam_name(&bo);
    if (!json)
        fprintf(stderr, "rys: beam over %s (%d layers) in %s: %s, depths 2..%d, %d prompts\n", cm.m->name, cm.m->hp.n_layers, db_path,
                name, bo.depth, evalset_n_prompts(es) + evalset_n_logit(es));
    rys_stop_install();
    beam_summary s;
    if (beam_run(st, db_path, cm.m, cm.tok, es, cm.pool, &bo, true, &s)) rys_die("%s", rys_lasterr());
    if (s.stopped)
        fprintf(stderr, "rys: beam stopped on %s: %d paths measured now are kept in %s; the same command continues it\n",
                rys_stop_signal() == SIGTERM ? "SIGTERM" : "SIGINT", s.measured_now, db_path);
    if (json) {
        print_json(db_path, name, &s);
    } else {
        for (int k = 0; k < s.n_depths; k++) {
            const beam_depth_summary *d = &s.depth[k];
            printf("depth %d: %d candidates, %d measured now, %d before", k + 2, d->candidates, d->measured_now, d->done_before);
            if (d->best_spec) printf("; best %s, balanced %+.3f", d->best_spec, d->best_score);
            printf("\n");
        }
        char *dt = deltas_text(&s);
        printf("best path: %s (depth %d, %+d layers): %s, balanced %+.3f (best seed %+.3f)\n", s.best_spec, s.best_depth, s.best_extra,
               dt, s.best_score, s.seed_score);
        printf("%d paths measured now, %d before, of %d candidates; ended: %s; %.1f s\n", s.measured_now, s.done_before, s.candidates,
               s.end, s.seconds);
        free(dt);
    }
    int rc = s.stopped ? rys_stop_exit_code() : 0;
    beam_summary_free(&s);
    free(name);
    free(recorded);
    free((char *)eo.math_system);
    store_close(st);
    evalset_free(es);
    cli_close_model(&cm);
    return rc;
}
