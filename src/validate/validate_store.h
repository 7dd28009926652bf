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

#include "validate/validate.h"

struct sqlite3;

/* Opens or creates. NULL + error. */
validate_store *validate_store_open(const char *path);
void validate_store_close(validate_store *st);
struct sqlite3 *validate_store_db(validate_store *st);

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

#endif
