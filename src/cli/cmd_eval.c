/* rys eval: score one layer path on probe sets, from scratch. */
#include "cli/cli.h"
#include "scan/evalset.h"
#include "scan/objective.h"
#include "scan/scan.h"
#include "base/util.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cmd_eval(int argc, char **argv) {
    const char *model_spec = NULL, *probes = NULL, *blocks = NULL, *layers = NULL, *dump_path = NULL;
    bool json = false;
    int threads = 0;
    evalset_options eo = {64, NULL, false};
    const cli_opt opts[] = {
        CLI_STR_REQUIRED("--probe", "--probes", &probes, "FILE[,FILE...]",
                         "probe sets; FILE.json:logit reads an EQ set by logits, nothing generated\n"
                         "(kind eq_logit, scored as \"<stem>:logit\", apart from the published EQ score);\n"
                         "TASK:VARIANT:loglik[@N] scores N benchmark documents by log-likelihood\n"
                         "(\"<task>:<variant>:acc\" and \":margin\"; see rys data list; @N/SEED draws N at random);\n"
                         "ppl:TEXT[@TOKENS] "
                         "scores perplexity on a text file as -log(ppl) (\"ppl:<stem>\", higher is better)"),
        CLI_BLOCKS(&blocks),
        CLI_LAYERS(&layers),
        CLI_INT_OPT("-n", NULL, &eo.n_predict, 1, 4096, "N", "new tokens per item (default 64)"),
        CLI_STR_OPT("--system", NULL, &eo.math_system, "TEXT", "system prompt for math items (default: the reference's)"),
        CLI_FLAG_OPT("--no-think", NULL, &eo.no_think, "prefix user turns with \"/no_think \" (thinking models)"),
        CLI_STR_OPT("--dump-requests", NULL, &dump_path, "F",
                    "benchmark objectives: every request's token ids and log-likelihood, as rys validate writes them"),
        CLI_THREADS(&threads),
        CLI_JSON(&json, "every item's prompt token ids, generated text, parsed values and score"),
        CLI_END,
    };
    const cli_arg args[] = {CLI_MODEL_ARG(&model_spec), CLI_ARG_END};
    const cli_spec spec = {"eval", "MODEL --probe FILE[,FILE...] [--blocks SPEC | --layers SPEC] [options]", opts, args, NULL,
                           NULL, false, NULL};
    cli_parse_or_exit(&spec, argc, argv);
    cli_model cm;
    cli_open_model(model_spec, threads, &cm);
    layer_path path;
    cli_path(&cm, blocks, layers, &path);
    int n_files;
    char **files = cli_split(probes, ',', &n_files);
    evalset *es = evalset_load((const char *const *)files, n_files, cm.m, cm.tok, &eo);
    if (!es) rys_die("%s", rys_lasterr());
    int n = evalset_n_prompts(es), n_logit = evalset_n_logit(es), n_sets = evalset_n_sets(es);
    gen_output *outs = xcalloc((size_t)n, sizeof *outs);
    reuse_stats rs;
    double t0 = rys_now();
    int n_docs = 0;     /* benchmark objectives' documents (chunks) */
    for (int o = 0; o < evalset_n_objectives(es); o++) n_docs += evalset_objectives(es)[o].ts.n_docs;
    if (!json) fprintf(stderr, "rys: %d items on a path of %d layers (%+d)...\n", n + n_logit + n_docs, path.n, path_extra_layers(&path));
    if (scan_generate_naive(cm.m, cm.tok, es, cm.pool, &path, outs, &rs)) rys_die("%s", rys_lasterr());
    eqlogit_result *lres = xcalloc((size_t)n_logit, sizeof *lres);
    if (scan_logit_naive(cm.m, cm.tok, es, cm.pool, &path, lres, &rs)) rys_die("%s", rys_lasterr());
    /* benchmark objectives: validate's engine along this one path from its first layer */
    int n_obj = evalset_n_objectives(es);
    validate_results ores = {0};
    FILE *dump = NULL;
    if (dump_path && !(dump = fopen(dump_path, "w"))) rys_die("%s: cannot write", dump_path);
    char *canon = path_canonical(&path);
    if (n_obj) {
        const char *spec_name = canon;
        if (objective_run(cm.m, cm.tok, cm.pool, evalset_objectives(es), n_obj, &path, &spec_name, 1, false, dump, false, &ores))
            rys_die("%s", rys_lasterr());
    }
    if (dump && fclose(dump)) rys_die("%s: cannot write", dump_path);
    double dt = rys_now() - t0;
    double *sums = xcalloc((size_t)n_sets, sizeof *sums);
    json_t *items = json_array();
    for (int o = 0; o < n_obj; o++) {
        const objective_set *ob = &evalset_objectives(es)[o];
        int s = evalset_objective_set(es, o), ns = objective_n_scores(ob);
        for (int d = 0; d < ob->ts.n_docs; d++) {
            double sc[2];
            const char *gen;
            char *parsed;
            if (objective_doc_score(ob, &ores.r[o].docs[d], d, sc, &gen, &parsed)) rys_die("%s", rys_lasterr());
            for (int w = 0; w < ns; w++) {
                sums[s + w] += sc[w];
                if (json)
                    json_array_append_new(items, json_pack("{s:s, s:s, s:s, s:o, s:f}", "probe", evalset_set_name(es, s + w), "key",
                                                           ob->ts.docs[d].doc_id, "generated", gen, "parsed",
                                                           json_loads(parsed, 0, NULL), "score", sc[w]));
            }
            free(parsed);
        }
    }
    validate_results_free(&ores);
    for (int k = 0; k < n; k++) {
        char *text = scan_output_text(cm.tok, &outs[k]), *parsed = NULL;
        double sc = evalset_score(es, k, text, &parsed);
        int s = evalset_prompt_set(es, k);
        sums[s] += sc;
        if (json) {
            json_t *p = json_loads(parsed, 0, NULL), *ids = json_array();
            /* the exact prompt, so other engines (bench/vs-peers) can be fed the same tokens */
            for (int t = 0; t < evalset_lens(es)[k]; t++) json_array_append_new(ids, json_integer(evalset_prompts(es)[k][t]));
            json_array_append_new(items, json_pack("{s:s, s:s, s:s, s:o, s:f, s:i, s:o}", "probe", evalset_set_name(es, s),
                                                   "key", evalset_prompt_key(es, k), "generated", text, "parsed",
                                                   p ? p : json_null(), "score", sc, "tokens", outs[k].n,
                                                   "prompt_ids", ids));
        }
        free(text);
        free(parsed);
    }
    for (int k = 0; k < n_logit; k++) {
        char *parsed = NULL;
        double sc = evalset_logit_score(es, k, &lres[k], &parsed);
        if (sc < 0) rys_die("%s", rys_lasterr());
        int s = evalset_logit_set(es, k);
        sums[s] += sc;
        if (json) {
            char *trace = eqlogit_trace_json(&lres[k]);
            json_array_append_new(items, json_pack("{s:s, s:s, s:s, s:o, s:f, s:o}", "probe", evalset_set_name(es, s), "key",
                                                   evalset_logit_key(es, k), "generated", lres[k].answer, "parsed",
                                                   json_loads(parsed, 0, NULL), "score", sc, "teacher_forced",
                                                   json_loads(trace, 0, NULL)));
            free(trace);
        }
        free(parsed);
    }
    if (json) {
        json_t *o = json_object(), *scores = json_object();
        for (int s = 0; s < n_sets; s++) json_object_set_new(scores, evalset_set_name(es, s), json_real(sums[s] / evalset_set_items(es, s)));
        json_object_set_new(o, "model", json_string(cm.path));
        json_object_set_new(o, "path", json_string(canon));
        json_object_set_new(o, "scores", scores);
        json_object_set_new(o, "seconds", json_real(dt));
        json_object_set_new(o, "items", items);
        cli_json_print(o, JSON_INDENT(1));
    } else {
        json_decref(items);
        for (int s = 0; s < n_sets; s++)
            printf("%-12s %-5s %3d items  score %.4f\n", evalset_set_name(es, s), evalset_set_kind(es, s),
                   evalset_set_items(es, s), sums[s] / evalset_set_items(es, s));
        printf("path %s (%d layers), %.1f s\n", canon, path.n, dt);
    }
    free(canon);
    free(sums);
    gen_output_free(outs, n);
    free(outs);
    eqlogit_result_free(lres, n_logit);
    free(lres);
    evalset_free(es);
    cli_free_split(files);
    path_free(&path);
    cli_close_model(&cm);
    return 0;
}
