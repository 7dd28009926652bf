/* rys report: figures, rankings and an offline index.html from a scan
 * database, finished or still running; --json gives scripts the rankings. */
#include "cli/cli.h"
#include "report/report.h"
#include "base/util.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static json_t *config_json(const report_data *d, const report_config *c) {
    json_t *o = json_pack("{s:s, s:i, s:f, s:f, s:f}", "spec", c->spec, "extra_layers", c->extra, "size_increase_pct",
                          100.0 * c->extra / d->n_layers, "combined_delta", c->combined, "balanced_z", c->balanced);
    json_t *dl = json_object();
    for (int p = 0; p < d->n_probes; p++) json_object_set_new(dl, d->probe[p], json_real(c->delta[p]));
    json_object_set_new(o, "deltas", dl);
    return o;
}

static json_t *ranked(const report_data *d, const int *idx, int n) {
    json_t *a = json_array();
    for (int r = 0; r < n; r++) json_array_append_new(a, config_json(d, &d->cfg[idx[r]]));
    return a;
}

/* `rys validate` results: per configuration, per task, as the report shows them. */
static json_t *validation_json(const report_validation *v) {
    json_t *a = json_array();
    for (int c = -1; c < v->n_cfg; c++) {
        const report_val_config *cfg = c < 0 ? &v->baseline : &v->cfg[c];
        json_t *rows = json_array();
        for (int k = 0; k < cfg->n_rows; k++) {
            const report_val_row *r = &cfg->row[k];
            json_t *o = json_pack("{s:s, s:s, s:i, s:f, s:f, s:f, s:f, s:[f, f]}", "task", r->task, "metric", r->metric, "n", r->n,
                                  "baseline", r->base, "accuracy", r->value, "stderr", r->stderr_, "delta", r->delta, "ci95",
                                  r->ci_lo, r->ci_hi);
            json_object_set_new(o, "mcnemar_p", r->p == r->p && c >= 0 ? json_real(r->p) : json_null());
            json_array_append_new(rows, o);
        }
        json_array_append_new(a, json_pack("{s:s, s:o}", "spec", cfg->spec, "tasks", rows));
    }
    return a;
}

static void print_json(const report_data *d, int top) {
    int *idx = xmalloc(((size_t)d->n_cfg + 1) * sizeof *idx);
    int k = top < d->n_cfg ? top : d->n_cfg;
    json_t *o = json_object(), *base = json_object(), *per = json_object();
    for (int p = 0; p < d->n_probes; p++) json_object_set_new(base, d->probe[p], json_real(d->baseline[p]));
    json_object_set_new(o, "model", json_string(d->model));
    json_object_set_new(o, "n_layers", json_integer(d->n_layers));
    json_object_set_new(o, "counts", json_pack("{s:i, s:i, s:i, s:i, s:i, s:i}", "measured", d->n_cfg, "blocks_measured",
                                               d->n_blocks, "blocks_possible", d->n_layers * (d->n_layers + 1) / 2,
                                               "blocks_missing", report_blocks_missing(d), "repeats_measured",
                                               d->n_repeats, "pending", d->n_unfinished));
    json_object_set_new(o, "baseline", base);
    json_object_set_new(o, "combined_is",
                        json_string(d->math >= 0 && d->eq >= 0 ? "math delta + eq delta" : "sum of all probe deltas"));
    report_rank_balanced(d, idx);
    json_object_set_new(o, "balanced", ranked(d, idx, k));
    for (int p = 0; p < d->n_probes; p++) {
        report_rank_by(d, p, idx);
        json_object_set_new(per, d->probe[p], ranked(d, idx, k));
    }
    report_rank_by(d, REPORT_COMBINED, idx);
    json_object_set_new(per, "combined", ranked(d, idx, k));
    json_object_set_new(o, "by_probe", per);
    json_object_set_new(o, "pareto", ranked(d, idx, report_pareto(d, idx)));
    if (d->validation) json_object_set_new(o, "validation", validation_json(d->validation));
    char *s = json_dumps(o, JSON_INDENT(1) | JSON_REAL_PRECISION(10));
    puts(s);
    free(s);
    json_decref(o);
    free(idx);
}

int cmd_report(int argc, char **argv) {
    const char *db = NULL, *out = NULL;
    double clip = 0;
    int top = 15;
    bool json = false;
    const cli_opt opts[] = {
        CLI_STR_OPT("--out", NULL, &out, "DIR", "write heatmaps, skylines, repeat maps, Pareto front (PNG + SVG) and DIR/index.html"),
        CLI_DOUBLE_OPT("--clip", NULL, &clip, 1e-9, 1e9, "X", "colour clip of every map (default: per map, the 98th percentile of |delta|)"),
        CLI_INT_OPT("--top", NULL, &top, 1, 1 << 20, "K", "rows per ranking (default 15)"),
        CLI_JSON(&json, "print rankings, Pareto front, baseline scores and counts as JSON"),
        CLI_END,
    };
    const cli_arg args[] = {{"DB", &db, true, "the scan's SQLite store (rys scan --db)"}, CLI_ARG_END};
    const cli_spec spec = {"report", "DB [--out DIR] [--clip X] [--top K] [--json]", opts, args, NULL, NULL, false,
                           "Deltas are configuration score - baseline score; combined = math delta + EQ delta\n"
                           "(the sum over all probe sets when the scan lacks one of the two kinds)."};
    cli_parse_or_exit(&spec, argc, argv);
    if (!out && !json) cli_fail(&spec, "give --out DIR, --json or both");
    if (access(db, R_OK)) rys_die("%s: no such scan database", db);
    report_data *d = report_load(db);
    if (!d) rys_die("%s", rys_lasterr());
    if (out && report_write(d, out, clip, top)) rys_die("%s", rys_lasterr());
    if (json) {
        print_json(d, top);
    } else {
        int *idx = xmalloc(((size_t)d->n_cfg + 1) * sizeof *idx);
        report_rank_balanced(d, idx);
        printf("%s/index.html: %d scan configurations measured", out, d->n_cfg);
        if (d->n_unfinished) printf(", %d still pending", d->n_unfinished);
        printf("\n");
        if (d->n_cfg) printf("best by balanced score:\n");
        for (int r = 0; r < d->n_cfg && r < 5; r++)
            printf("  %d. %-16s %+-4d layers  combined %+.4f  balanced z %+.3f\n", r + 1, d->cfg[idx[r]].spec,
                   d->cfg[idx[r]].extra, d->cfg[idx[r]].combined, d->cfg[idx[r]].balanced);
        free(idx);
        for (int c = 0; d->validation && c < d->validation->n_cfg; c++) {
            const report_val_config *v = &d->validation->cfg[c];
            const report_val_row *avg = &v->row[v->n_rows - 1];
            printf("standard benchmarks, %s: average delta %+.2f points [%+.2f, %+.2f] over %d tasks\n", v->spec, 100 * avg->delta,
                   100 * avg->ci_lo, 100 * avg->ci_hi, v->n_rows - 1);
        }
    }
    report_free(d);
    return 0;
}
