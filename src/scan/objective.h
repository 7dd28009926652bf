/* objective: benchmark documents as scan objectives ("TASK:VARIANT:loglik[@N]").
 *
 * A probe set spelled "arc_challenge:val_rc_5shot:loglik@100" is the first
 * 100 documents of that `rys data` task, scored by the log-likelihood of each
 * choice: nothing is generated. Every request runs through validate's engine
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
 * configurations with fewer documents. */
#ifndef RYS_OBJECTIVE_H
#define RYS_OBJECTIVE_H

#include <stdbool.h>
#include <stdio.h>

#include "validate/validate.h"

#define OBJECTIVE_SUFFIX ":loglik"

typedef struct {
    char *name;             /* "arc_challenge:val_rc_5shot" */
    task_set ts;            /* the documents scored (the first N of the split) */
    metric_kind metric;     /* the task's primary metric */
} objective_set;

/* Whether spec names a benchmark objective ("TASK:VARIANT:loglik[@N]"). */
bool objective_is_spec(const char *spec);
/* Loads the documents of spec from data_dir (NULL: the default data root).
 * 0, or -1 with a one-line error naming spec. */
int objective_load(const char *spec, const char *data_dir, objective_set *out);
void objective_set_free(objective_set *o);

/* Document d's scores from its choices' log-likelihoods: *pred the choice
 * the primary metric picks, *correct 1 when
 * the primary metric picks the label, *margin the gold choice's value minus
 * the best wrong one's (0 for a document with one choice); *parsed_json
 * (malloc'd) is the audit record: prediction, label, margin and every
 * choice's log-likelihoods (%.17g). 0, or -1 with an error when the
 * metric cannot be computed for the document. */
int objective_doc_score(const objective_set *o, const validate_doc *doc, int d, int *pred, double *correct, double *margin,
                        char **parsed_json);

/* Every objective along paths[0..n_paths), through validate_run: with
 * reuse, paths[0] must be the baseline and the others start from its
 * states; without, every path runs from its first layer. dump (NULL: none)
 * gets validate's JSON lines of every request. Results as validate_run's
 * (free with validate_results_free); 0, or -1 + error. */
int objective_run(const model *m, const tokenizer *tok, pool *pool, const objective_set *sets, int n_sets,
                  const layer_path *paths, const char *const *specs, int n_paths, bool reuse, FILE *dump,
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
