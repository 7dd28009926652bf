/* rys report: figures, rankings and an offline index.html from a scan database. */
#include "cli/cli.h"
#include "report.h"
#include "util.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(void) {
    puts("usage: rys report scan.sqlite --out DIR [--clip X] [--top K] [--json]\n"
         "  --out DIR   write heatmaps, skylines, Pareto front (PNG + SVG) and index.html\n"
         "  --clip X    colour clip for the heatmaps (default: 98th percentile of |delta|)\n"
         "  --top K     rows in the ranking tables (default 15)\n"
         "  --json      print the rankings, Pareto front and baseline for scripts");
}

static json_t *config_json(const report_data *d, const report_config *c) {
    json_t *o = json_pack("{s:s, s:i, s:f, s:f, s:f}", "spec", c->spec, "extra_layers", c->extra, "size_increase_pct",
                          100.0 * c->extra / d->n_layers, "combined_delta", c->combined, "balanced_z", c->balanced);
    json_t *dl = json_object();
    for (int p = 0; p < d->n_probes; p++) json_object_set_new(dl, d->probe[p], json_real(c->delta[p]));
    json_object_set_new(o, "deltas", dl);
    return o;
}

int cmd_report(int argc, char **argv) {
    const char *db = NULL, *out = NULL;
    double clip = 0;
    int top = 15;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) { usage(); return 0; }
        else if (!strcmp(a, "--out")) out = cli_value(argc, argv, &i);
        else if (!strcmp(a, "--clip")) clip = cli_parse_double(a, cli_value(argc, argv, &i), 1e-9, 1e9);
        else if (!strcmp(a, "--top")) top = (int)cli_parse_long(a, cli_value(argc, argv, &i), 1, 1 << 20);
        else if (!strcmp(a, "--json")) json = true;
        else if (a[0] == '-') rys_die("report: unknown option %s", a);
        else if (!db) db = a;
        else rys_die("report: unexpected argument %s", a);
    }
    if (!db || (!out && !json)) { usage(); return 1; }
    if (access(db, R_OK)) rys_die("%s: no such scan database", db);
    report_data *d = report_load(db);
    if (!d) rys_die("%s", rys_lasterr());
    if (!d->has_baseline) rys_die("%s: the baseline is not scored yet; deltas need it (resume the scan)", db);
    if (out && report_write(d, out, clip, top)) rys_die("%s", rys_lasterr());
    int *idx = xmalloc((size_t)(d->n_cfg + 1) * sizeof *idx);
    report_rank_balanced(d, idx);
    if (json) {
        json_t *o = json_object(), *bal = json_array(), *base = json_object(), *per = json_object(), *par = json_array();
        for (int p = 0; p < d->n_probes; p++) json_object_set_new(base, d->probe[p], json_real(d->baseline[p]));
        int k = top < d->n_cfg ? top : d->n_cfg;
        for (int r = 0; r < k; r++) json_array_append_new(bal, config_json(d, &d->cfg[idx[r]]));
        int *pi = xmalloc((size_t)(d->n_cfg + 1) * sizeof *pi);
        for (int p = 0; p < d->n_probes; p++) {
            report_rank_probe(d, p, pi);
            json_t *a = json_array();
            for (int r = 0; r < k; r++) json_array_append_new(a, config_json(d, &d->cfg[pi[r]]));
            json_object_set_new(per, d->probe[p], a);
        }
        int nf = report_pareto(d, pi);
        for (int r = 0; r < nf; r++) json_array_append_new(par, config_json(d, &d->cfg[pi[r]]));
        free(pi);
        json_object_set_new(o, "n_layers", json_integer(d->n_layers));
        json_object_set_new(o, "measured", json_integer(d->n_cfg));
        json_object_set_new(o, "pending", json_integer(d->n_pending));
        json_object_set_new(o, "baseline", base);
        json_object_set_new(o, "balanced", bal);
        json_object_set_new(o, "by_probe", per);
        json_object_set_new(o, "pareto", par);
        char *s = json_dumps(o, JSON_INDENT(1));
        puts(s);
        free(s);
        json_decref(o);
    } else {
        printf("%s: %d configurations measured", out, d->n_cfg);
        if (d->n_pending) printf(", %d pending", d->n_pending);
        printf("; open %s/index.html\n", out);
        int k = top < d->n_cfg ? top : d->n_cfg;
        if (k > 5) k = 5;
        for (int r = 0; r < k; r++)
            printf("  %d. %-16s +%-3d layers  combined %+.4f  balanced z %+.3f\n", r + 1, d->cfg[idx[r]].spec,
                   d->cfg[idx[r]].extra, d->cfg[idx[r]].combined, d->cfg[idx[r]].balanced);
    }
    free(idx);
    report_free(d);
    return 0;
}
