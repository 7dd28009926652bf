/* objective: benchmark documents as scan objectives ("TASK:VARIANT:loglik[@N]").
 *
 * A probe set spelled "arc_challenge:val_rc_5shot:loglik@100" is the first
 * 100 documents of that `rys data` task ("...@100/7": 100 drawn at random
 * with seed 7, kept in the file's order), scored by the log-likelihood of
 * each choice: nothing is generated. Every request runs through validate's engine
 * (validate_run: few-shot and per-document contexts computed once, a
 * configuration starting from the baseline's states at its first differing
 * layer), so a scan, `rys eval` and `rys validate` compute the same
 * log-likelihoods bit for bit from one implementation.
 *
 * Each objective gives two scores (two probe-set rows in the scan store):
 * "<task>:<variant>:acc", the task's primary metric (accuracy), and
 * "<task>:<variant>:margin", the mean over documents of the gold choice's
 * value minus the best wrong choice's in that metric's normalisation (per
 * character for acc_per_char, ...): continuous, so it separates
 * configurations with fewer documents.
 *
 * "ppl:FILE[@TOKENS]" is perplexity on a text file as `rys perplexity`
 * defines it (llama.cpp's): the text tokenized once, cut into chunks of
 * OBJECTIVE_PPL_CTX tokens (the first made BOS when the model uses one), the
 * second half of each chunk scored. Each chunk is one request of validate's
 * engine (context: its first half, continuation: the rest); the first
 * TOKENS tokens of the file are used (default: all), in whole chunks. Its
 * one score, "ppl:<file stem>", is the mean log-likelihood per scored token,
 * -log(perplexity): higher is better, like every other score. */
#ifndef RYS_OBJECTIVE_H
#define RYS_OBJECTIVE_H

#include <stdbool.h>
#include <stdio.h>

#include "validate/validate.h"

#define OBJECTIVE_SUFFIX ":loglik"
#define OBJECTIVE_PPL_PREFIX "ppl:"
#define OBJECTIVE_PPL_CTX 512   /* rys perplexity's default -c */

typedef struct {
    char *name;             /* "arc_challenge:val_rc_5shot", "ppl:wiki" */
    task_set ts;            /* the documents scored (the first N of the split; ppl: the chunks as token requests) */
    metric_kind metric;     /* the task's primary metric */
    bool ppl;               /* a perplexity text rather than benchmark documents */
    long seed;              /* "@N/SEED": the N documents were drawn with SEED; -1: the first N */
} objective_set;

/* Whether spec names a benchmark objective ("TASK:VARIANT:loglik[@N[/SEED]]") or a
 * perplexity text ("ppl:FILE[@TOKENS]"). */
bool objective_is_spec(const char *spec);
/* Loads the documents of spec from data_dir (NULL: the default data root),
 * or tokenizes the text of a ppl spec for m. 0, or -1 with a one-line error
 * naming spec. */
int objective_load(const char *spec, const char *data_dir, const model *m, const tokenizer *tok, objective_set *out);
void objective_set_free(objective_set *o);

/* Scores an objective gives: 2 (accuracy, margin) or 1 (ppl). */
int objective_n_scores(const objective_set *o);
/* Score i's name suffix ("acc", "margin"; NULL for ppl: its name alone)
 * and kind as the store records it ("loglik_acc", "loglik_margin", "ppl_loglik"). */
const char *objective_score_suffix(const objective_set *o, int i);
const char *objective_score_kind(const objective_set *o, int i);

/* Document d's scores[objective_n_scores(o)] from its choices'
 * log-likelihoods. loglik: scores[0] is 1 when the primary metric picks the
 * label, scores[1] the gold choice's value minus the best wrong one's (0 for
 * a document with one choice), *generated the picked continuation; ppl:
 * scores[0] is the chunk's mean log-likelihood per scored token and
 * *generated "". *parsed_json (malloc'd) is the audit record: prediction,
 * label, margin and every choice's log-likelihoods (%.17g). 0, or -1 with
 * an error when the metric cannot be computed for the document. */
int objective_doc_score(const objective_set *o, const validate_doc *doc, int d, double *scores, const char **generated,
                        char **parsed_json);

/* Every objective along paths[0..n_paths), through validate_run: with
 * reuse, paths[0] must be the baseline and the others start from its
 * states; without, every path runs from its first layer. dump (NULL: none)
 * gets validate's JSON lines of every request; progress shows validate's
 * bar (documents x paths). Results as validate_run's
 * (free with validate_results_free); 0, or -1 + error. */
int objective_run(const model *m, const tokenizer *tok, pool *pool, const objective_set *sets, int n_sets,
                  const layer_path *paths, const char *const *specs, int n_paths, bool reuse, FILE *dump, bool progress,
                  validate_results *out);

/* ---- the leakage guard -------------------------------------------------------
 * A split searched on must not be the one a configuration is then judged on:
 * one store file (scan tables beside val_ tables) may not hold both a scan
 * objective and validation results on the same task and split (the split
 * of the task's data, e.g. "validation": arc_challenge:rc_5shot and
 * :val_rc_5shot are both ARC-Challenge's validation split; MMLU subjects
 * count as mmlu). */

/* 0 when the store at db_path (absent: fine) holds no validation results on
 * the task and split of any of objs; else -1 with a one-line error naming
 * the split. */
int objective_check_validated(const char *db_path, const objective_set *objs, int n_objs);
/* 0 when the scan in the store at db_path (absent: fine) searched on no
 * benchmark objective sharing the task and split of one of tasks; else -1
 * with a one-line error naming the split. */
int objective_check_searched(const char *db_path, const task_set *tasks, int n_tasks);

#endif
