/* validate_store: the SQLite tables of `rys validate`, per document and per
 * request, so every accuracy can be audited and a killed run resumed.
 *
 * One database holds one model (by sha256); a task is keyed by (name,
 * variant) and recorded with its data file's sha256; a path by its canonical
 * string. Using a database with another model or another version of a task
 * file is refused. The tables live beside the scan store's (prefix val_),
 * so a scan database can also hold the validation of its best
 * configurations, and `rys report` finds both. */
#ifndef RYS_VALIDATE_STORE_H
#define RYS_VALIDATE_STORE_H

#include <stdint.h>

#include "validate/validate.h"

/* Opens or creates. NULL + error. */
validate_store *validate_store_open(const char *path);
void validate_store_close(validate_store *st);

/* Records the model on first use, or checks it is the one recorded. */
int validate_store_identity(validate_store *st, const char *model_path, const char *model_sha256, const char *arch,
                            int n_layers);
/* Registers the task (name, variant, file, sha256, primary metric) or
 * checks its file's sha256 against the one recorded. */
int validate_store_task(validate_store *st, const task_set *ts, long long *task_id);
int validate_store_config(validate_store *st, const validate_config *c, long long *config_id);

/* Reads back the documents of ts already recorded for (config, task) into
 * docs[d] (whose choices must be allocated) and sets done[d]. Returns how
 * many, or -1. */
int validate_store_load(validate_store *st, long long config_id, long long task_id, const task_set *ts, validate_doc *docs,
                        bool *done);

/* Documents [d0, d1) of ts, their requests and predictions, in one
 * transaction, replacing what an interrupted attempt may have left. */
typedef struct {
    double seconds;
    long long layer_tokens_done, layer_tokens_naive;
} validate_chunk_stats;

int validate_store_save(validate_store *st, long long config_id, long long task_id, const task_set *ts, int d0, int d1,
                        const validate_doc *docs, const validate_chunk_stats *stats);

/* ---- reading (report) ------------------------------------------------------- */

/* Opens an existing database read-only, creating and changing nothing.
 * NULL + error. */
validate_store *validate_store_open_readonly(const char *path);
/* 1 with the model's path (malloc'd) and layer count when the file holds
 * validation results, 0 when it holds none (no val_ tables or no model
 * recorded), -1 + error. */
int validate_store_get_run(validate_store *st, char **model_path, int *n_layers);

typedef struct {
    long long id;
    char *name, *variant, *primary_metric;
} validate_store_task_info;

/* The recorded tasks in the order first scored. 0, or -1 + error. */
int validate_store_list_tasks(validate_store *st, validate_store_task_info **out, int *n);
void validate_store_tasks_free(validate_store_task_info *tasks, int n);

typedef struct {
    long long id;
    char *spec;
} validate_store_config_info;

/* The recorded configurations in the order first scored. 0, or -1 + error. */
int validate_store_list_configs(validate_store *st, validate_store_config_info **out, int *n);
void validate_store_configs_free(validate_store_config_info *cfgs, int n);

/* Per-document correctness under metric (a metrics.h name) of configuration
 * a and of configuration b on one task, over the documents both answered
 * with that metric available, in document order: (*a_correct)[k] and
 * (*b_correct)[k] are 0/1 (malloc'd, *n entries). 0, or -1 + error. */
int validate_store_paired(validate_store *st, long long a_id, long long b_id, long long task_id, const char *metric,
                          uint8_t **a_correct, uint8_t **b_correct, int *n);

#endif
