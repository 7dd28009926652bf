/* validate: standard benchmarks (ARC, HellaSwag, Winogrande, MMLU, ...)
 * scored along the baseline and along relayered paths on the same
 * documents, so a configuration's gain is measured against the unmodified
 * model with its uncertainty.
 *
 * Every choice of a document is one log-likelihood request (context +
 * continuation, tokenized as lm-evaluation-harness does). The work is shaped
 * so that nothing is computed twice: tokens shared by every document of a
 * batch (the few-shot examples) are run once and their KV entries copied,
 * the same for the context shared by a document's choices; for a
 * configuration whose path starts with layers 0..k-1 the baseline's states
 * at that boundary are kept and the configuration starts at position k.
 * Results are the same as one independent forward per request because each
 * token's row is computed independently of its batch.
 *
 * With a store the results of each (path, task) are committed in chunks of
 * documents, one transaction each: a killed run loses at most the chunk in
 * flight, and re-running reads back what is done and prints the same
 * output. */
#ifndef RYS_VALIDATE_H
#define RYS_VALIDATE_H

#include <stdbool.h>
#include <stdio.h>

#include "engine/model.h"
#include "engine/path.h"
#include "base/pool.h"
#include "tasks/metrics.h"
#include "tasks/tasks.h"
#include "engine/tokenizer.h"

/* Documents per committed chunk. */
#define VALIDATE_CHUNK 32

typedef struct {
    char *spec;                 /* "baseline", "blocks:10,15", "layers:0-9,5-29" */
    layer_path path;
} validate_config;

typedef struct {
    int n_choices;
    choice_score *choices;
} validate_doc;

typedef struct {
    int n_docs;
    validate_doc *docs;
    int docs_run;               /* documents computed now (the others came from the store) */
    double seconds;             /* spent computing them */
    long long layer_tokens_done;    /* layer x token evaluations run */
    long long layer_tokens_naive;   /* one full forward per request would run */
} validate_task_result;

typedef struct {
    int n_cfgs, n_tasks;
    validate_task_result *r;    /* [cfg * n_tasks + task]; cfg 0 is the baseline */
    bool stopped;               /* a stop was asked for (base/util.h): documents were left undone */
    long long docs_done, docs_total; /* document x path results held (stored earlier or computed), and asked for */
} validate_results;

typedef struct validate_store validate_store;

typedef struct {
    validate_store *store;      /* NULL: nothing kept */
    FILE *dump;                 /* NULL, or JSON lines: every request's token ids and log-likelihood */
    bool reuse;                 /* baseline prefix states for configurations (off: every path from scratch) */
    bool progress;
} validate_opts;

/* Scores every task along every path (cfgs[0] must be the baseline path,
 * unless o->reuse is off and there is no store: then any paths).
 * Returns 0, or -1 with an error naming the task file and line. When a stop
 * is asked for it returns 0 after the chunk in flight (committed to the
 * store) with out->stopped set: the results are then incomplete. */
int validate_run(const model *m, const tokenizer *tok, pool *pool, const task_set *tasks, int n_tasks,
                 const validate_config *cfgs, int n_cfgs, const validate_opts *o, validate_results *out);
void validate_results_free(validate_results *r);

/* ---- the table ---------------------------------------------------------- */

/* One row of the leaderboard-style table: a task (or the average) along one
 * path, with its comparison against the baseline on the same documents. */
typedef struct {
    metric_kind metric;         /* the task's primary metric */
    int n;                      /* documents */
    double value, stderr_;      /* accuracy and lm-eval's standard error */
    double macro;               /* mean of per-subject accuracies (MMLU, several subjects); NAN elsewhere */
    double delta, ci_lo, ci_hi; /* vs baseline, paired bootstrap 95% interval; 0 for the baseline */
    int only_base, only_cfg;    /* discordant documents */
    double p;                   /* exact McNemar; NAN for the average */
} validate_row;

/* Per-document correctness under metric k (0/1); correct[] has n_docs entries.
 * Returns -1 when the metric cannot be computed for some document. */
int validate_correct(const task_set *ts, const validate_task_result *r, metric_kind k, uint8_t *correct);

/* rows[0..n_tasks-1] per task, rows[n_tasks] the average of the primary
 * metrics (stderr: sqrt of the summed squared stderrs over n_tasks). */
int validate_summarize(const task_set *tasks, int n_tasks, const validate_results *r, int cfg, validate_row *rows);

/* Accuracy per subject (MMLU) along cfg: subjects in order of first
 * appearance; names point into ts. Returns the number of subjects. */
int validate_subjects(const task_set *ts, const validate_task_result *r, metric_kind k, const char ***names, double **acc,
                      int **n_docs);

#endif
