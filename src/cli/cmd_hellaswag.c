/* rys hellaswag: HellaSwag accuracy the way llama.cpp's --hellaswag scores it. */
#include "cli/cli.h"
#include "engine/loglik.h"
#include "probes/hellaswag.h"
#include "base/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct { progress *pg; } prog_ctx;

static void on_progress(void *user, int done) { progress_update(((prog_ctx *)user)->pg, done, NULL); }

int cmd_hellaswag(int argc, char **argv) {
    const char *model_spec = NULL, *file = NULL, *blocks = NULL, *layers = NULL;
    int n_tasks = 0, threads = 0;
    bool json = false;
    const cli_opt opts[] = {
        CLI_STR_REQUIRED("-f", NULL, &file, "FILE", "tasks, 6 lines each (context, gold index, four endings); .bz2 accepted"),
        CLI_INT_OPT("--tasks", NULL, &n_tasks, 1, 1 << 30, "N", "the first N tasks (default: all)"),
        CLI_BLOCKS(&blocks),
        CLI_LAYERS(&layers),
        CLI_THREADS(&threads),
        CLI_JSON(&json, "every task's scores and the accuracy as JSON"),
        CLI_END,
    };
    const cli_arg args[] = {CLI_MODEL_ARG(&model_spec), CLI_ARG_END};
    const cli_spec spec = {"hellaswag", "MODEL -f FILE [--tasks N] [--blocks SPEC | --layers SPEC] [-t N] [--json]", opts,
                           args, NULL, NULL, false, NULL};
    cli_parse_or_exit(&spec, argc, argv);
    int n;
    hellaswag_task *tasks = hellaswag_load(file, n_tasks, &n);
    if (!tasks) rys_die("%s", rys_lasterr());
    cli_model cm;
    cli_open_model(model_spec, threads, &cm);
    layer_path path;
    cli_path(&cm, blocks, layers, &path);

    loglik_doc *docs = xcalloc((size_t)n, sizeof *docs);
    int32_t *(*seqs)[4] = xcalloc((size_t)n, sizeof *seqs);
    int (*lens)[4] = xcalloc((size_t)n, sizeof *lens);
    const int32_t *(*conts)[4] = xcalloc((size_t)n, sizeof *conts);
    int (*n_conts)[4] = xcalloc((size_t)n, sizeof *n_conts);
    loglik_result **res = xcalloc((size_t)n, sizeof *res);
    for (int t = 0; t < n; t++) {
        for (int e = 0; e < 4; e++) {
            size_t l = strlen(tasks[t].context) + strlen(tasks[t].endings[e]) + 2;
            char *s = xmalloc(l);
            snprintf(s, l, "%s %s", tasks[t].context, tasks[t].endings[e]);
            seqs[t][e] = cli_tokenize(&cm, s, true, &lens[t][e]);
            free(s);
        }
        int cp = 0;
        while (cp < lens[t][0] && cp < lens[t][1] && cp < lens[t][2] && cp < lens[t][3] && seqs[t][0][cp] == seqs[t][1][cp] &&
               seqs[t][0][cp] == seqs[t][2][cp] && seqs[t][0][cp] == seqs[t][3][cp])
            cp++;
        if (cp == 0) rys_die("%s: task %d: the endings share no leading token (the model adds no BOS)", file, t);
        for (int e = 0; e < 4; e++) {
            if (lens[t][e] == cp) rys_die("%s: task %d: ending %d adds no token to the context", file, t, e);
            conts[t][e] = seqs[t][e] + cp;
            n_conts[t][e] = lens[t][e] - cp;
        }
        docs[t] = (loglik_doc){seqs[t][0], cp, 4, conts[t], n_conts[t]};
        res[t] = xcalloc(4, sizeof **res);
    }
    progress pg;
    progress_start(&pg, "hellaswag", n);
    prog_ctx pc = {&pg};
    double t0 = rys_now();
    if (loglik_score(cm.m, &path, cm.pool, docs, n, res, on_progress, &pc)) rys_die("%s", rys_lasterr());
    progress_finish(&pg);
    int correct = 0;
    if (json) printf("{\"tasks\": [");
    for (int t = 0; t < n; t++) {
        int best = 0;
        double sc[4];
        for (int e = 0; e < 4; e++) {
            sc[e] = res[t][e].logprob / res[t][e].n_tokens;
            if (sc[e] > sc[best]) best = e;
        }
        correct += best == tasks[t].gold;
        if (json)
            printf("%s\n {\"task\": %d, \"gold\": %d, \"pred\": %d, \"scores\": [%.6f, %.6f, %.6f, %.6f]}", t ? "," : "", t,
                   tasks[t].gold, best, sc[0], sc[1], sc[2], sc[3]);
    }
    double lo, hi;
    hellaswag_wilson(correct, n, &lo, &hi);
    double acc = 100.0 * correct / n, dt = rys_now() - t0;
    if (json)
        printf("],\n \"n\": %d, \"correct\": %d, \"accuracy\": %.4f, \"ci95\": [%.4f, %.4f], \"seconds\": %.2f}\n", n, correct, acc,
               100 * lo, 100 * hi, dt);
    else
        printf("hellaswag: %d tasks, accuracy %.2f%% [95%% CI %.2f%%, %.2f%%], %.1f s\n", n, acc, 100 * lo, 100 * hi, dt);
    for (int t = 0; t < n; t++) {
        for (int e = 0; e < 4; e++) free(seqs[t][e]);
        free(res[t]);
    }
    free(docs); free(seqs); free(lens); free(conts); free(n_conts); free(res);
    hellaswag_free(tasks, n);
    path_free(&path);
    cli_close_model(&cm);
    return 0;
}
