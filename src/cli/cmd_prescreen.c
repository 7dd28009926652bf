/* rys prescreen: ranks every single block from activation statistics of the
 * unmodified model (scan/prescreen.h) in seconds, before any is measured;
 * with --db it keeps the ranking in a scan store, where `rys scan --order
 * prescreen` measures in its order and `rys report` compares it with what
 * was measured. */
#include "cli/cli.h"
#include "report/report.h"
#include "scan/prescreen.h"
#include "scan/scan.h"
#include "base/util.h"

#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What the measured blocks of the store at db_path say of the ranking: into o
 * (JSON) or printed. Nothing when the store has no measured single block. */
static void compare_measured(const char *db_path, json_t *o) {
    report_data *d = report_load(db_path);
    if (!d) {
        /* no baseline yet (or an unreadable store): nothing measured to compare with */
        if (o) json_object_set_new(o, "measured", json_null());
        else printf("nothing to compare with: %s\n", rys_lasterr());
        return;
    }
    const report_prescreen *p = d->prescreen;
    if (!p || !p->n || p->best_cfg < 0) {
        if (o) json_object_set_new(o, "measured", json_null());
        else printf("no measured single block in %s to compare with yet\n", db_path);
        report_free(d);
        return;
    }
    const report_config *b = &d->cfg[p->best_cfg];
    double best_pre_rank = 0;
    for (int k = 0; k < p->n; k++)
        if (p->cfg[k] == p->best_cfg) best_pre_rank = p->pre_rank[k];
    if (o) {
        json_t *m = json_pack("{s:i, s:o, s:[i,i], s:f, s:[i,i], s:f, s:i, s:i}", "blocks", p->n, "spearman",
                              isnan(p->spearman) ? json_null() : json_real(p->spearman), "best_measured", b->i, b->j,
                              "best_measured_prescreen_rank", best_pre_rank, "top", p->top_i, p->top_j, "top_measured_rank",
                              p->top_measured_rank, "top_start_offset", abs(p->top_i - b->i), "top_end_offset", abs(p->top_j - b->j));
        json_object_set_new(o, "measured", m);
    } else {
        if (isnan(p->spearman)) printf("against %d measured blocks: Spearman undefined\n", p->n);
        else printf("against %d measured blocks (balanced score): Spearman %.3f\n", p->n, p->spearman);
        printf("best measured block (%d,%d): pre-screen rank %g of those %d\n", b->i, b->j, best_pre_rank, p->n);
        if (p->top_measured_rank > 0)
            printf("top prediction (%d,%d): measured rank %g of %d; %d layers from the best at the start, %d at the end\n", p->top_i,
                   p->top_j, p->top_measured_rank, p->n, abs(p->top_i - b->i), abs(p->top_j - b->j));
        else
            printf("top prediction (%d,%d): not measured; %d layers from the best at the start, %d at the end\n", p->top_i, p->top_j,
                   abs(p->top_i - b->i), abs(p->top_j - b->j));
    }
    report_free(d);
}

int cmd_prescreen(int argc, char **argv) {
    const char *model_spec = NULL, *probes = NULL, *db_path = NULL;
    int threads = 0, n_prompts = 16, top = 10, method = 0;
    bool json = false;
    static const char *const methods[] = {"composite", "stability", "anomaly", NULL};
    const cli_opt opts[] = {
        CLI_STR_OPT("--probes", NULL, &probes, "A.json[,B.json]",
                    "probe sets whose prompts calibrate it (default probes/math_16.json,probes/eq_16.json;\n"
                    "any scan's store takes it, whatever the scan measures)"),
        CLI_INT_OPT("--n", NULL, &n_prompts, 2, 4096, "N", "calibration prompts, taken in turn from each set (default 16)"),
        CLI_CHOICE_OPT("--method", NULL, &method, methods, "composite|stability|anomaly",
                       "the block score (default composite: the mean of the other two)"),
        CLI_STR_OPT("--db", NULL, &db_path, "FILE", "a scan's store (of this model) to keep the ranking in, replacing any there:\n"
                                                    "rys scan --order prescreen measures in its order; its measured blocks are compared"),
        CLI_INT_OPT("--top", NULL, &top, 0, 1 << 20, "K", "blocks to print (default 10)"),
        CLI_THREADS(&threads),
        CLI_JSON(&json, "every block's score, the layers' statistics and the comparison, as JSON"),
        CLI_END,
    };
    const cli_arg args[] = {CLI_MODEL_ARG(&model_spec), CLI_ARG_END};
    const cli_spec spec = {"prescreen", "MODEL [--probes A.json[,B.json]] [--n 16] [--db scan.sqlite]", opts, args, NULL, NULL, false,
                           "CircuitProbe (R. Panuganti, arXiv 2604.00716): per-layer statistics of the hidden states\n"
                           "over the calibration prompts, a z-scored block score (README: Pre-screen). Seconds, not a scan."};
    cli_parse_or_exit(&spec, argc, argv);

    char probe_buf[2 * PATH_MAX + 2];
    evalset_options eo = {64, NULL, false};
    if (!probes) {
        cli_default_search_probes(probe_buf, sizeof probe_buf);
        probes = probe_buf;
    }
    cli_model cm;
    cli_open_model(model_spec, threads, &cm);
    int n_files;
    char **files = cli_split(probes, ',', &n_files);
    evalset *es = evalset_load((const char *const *)files, n_files, cm.m, cm.tok, &eo);
    cli_free_split(files);
    if (!es) rys_die("%s", rys_lasterr());
    store *st = NULL;
    if (db_path && !(st = scan_store_attach(db_path, cm.path)))
        rys_die("%s (rys scan --order prescreen computes the pre-screen and keeps it in a new store)", rys_lasterr());
    prescreen_result r;
    if (st ? prescreen_run_save(st, cm.m, es, n_prompts, method, cm.pool, &r) : prescreen_run(cm.m, es, n_prompts, method, cm.pool, &r))
        rys_die("%s", rys_lasterr());
    if (st) store_close(st);
    if (json) {
        char *about = prescreen_about_json(&r);
        json_t *o = json_loads(about, 0, NULL);
        free(about);
        json_t *blocks = json_array(), *toks = json_array();
        for (int k = 0; k < r.n_blocks; k++)
            json_array_append_new(blocks, json_pack("{s:i, s:i, s:f}", "i", r.blocks[k].i, "j", r.blocks[k].j, "score", r.blocks[k].score));
        /* the calibration prompts' token ids, so that an independent forward pass can recompute every statistic */
        for (int e = 0; e < r.n_prompts; e++) {
            json_t *t = json_array();
            int k = r.prompt_index[e];
            for (int q = 0; q < evalset_lens(es)[k]; q++) json_array_append_new(t, json_integer(evalset_prompts(es)[k][q]));
            json_array_append_new(toks, t);
        }
        json_object_set_new(o, "blocks", blocks);
        json_object_set_new(o, "prompt_tokens", toks);
        json_object_set_new(o, "seconds", json_real(r.seconds));
        json_object_set_new(o, "model", json_string(cm.m->name));
        json_object_set_new(o, "n_layers", json_integer(r.n_layers));
        if (db_path) {
            json_object_set_new(o, "db", json_string(db_path));
            compare_measured(db_path, o);
        }
        cli_json_print(o, JSON_INDENT(1));
    } else {
        printf("pre-screen of %s (%d layers): CircuitProbe %s score, %d calibration prompts, %.1f s\n", cm.m->name, r.n_layers,
               prescreen_method_name[r.method], r.n_prompts, r.seconds);
        printf("%5s  %-9s %5s  %9s\n", "rank", "block", "extra", "score");
        for (int k = 0; k < r.n_blocks && k < top; k++) {
            char block[32];
            snprintf(block, sizeof block, "(%d,%d)", r.blocks[k].i, r.blocks[k].j);
            printf("%5d  %-9s %5d  %+9.4f\n", k + 1, block, r.blocks[k].j - r.blocks[k].i, r.blocks[k].score);
        }
        if (db_path) {
            printf("kept in %s: rys scan --order prescreen measures in this order\n", db_path);
            compare_measured(db_path, NULL);
        }
    }
    prescreen_result_free(&r);
    evalset_free(es);
    cli_close_model(&cm);
    return 0;
}
