/* hellaswag: llama.cpp's HellaSwag mode, so accuracies compare with
 * `llama-perplexity --hellaswag`: tasks of 6 lines (context, gold index, four
 * endings); each ending is tokenized as context + " " + ending with BOS, the
 * tokens common to all four are the shared context, and an ending's score is
 * its mean token log-probability. Plain or .bz2 files. */
#ifndef RYS_HELLASWAG_H
#define RYS_HELLASWAG_H

#include <stdint.h>

typedef struct {
    char *context;
    int gold;
    char *endings[4];
} hellaswag_task;

/* Reads up to max_tasks tasks (0 = all). NULL + error naming file and line. */
hellaswag_task *hellaswag_load(const char *path, int max_tasks, int *n_out);
void hellaswag_free(hellaswag_task *t, int n);

/* Wilson score interval (95%) of k successes in n, in [0,1]. */
void hellaswag_wilson(int k, int n, double *lo, double *hi);

#endif
