/* metrics: how a multiple-choice document is scored from its choices'
 * log-likelihoods, and how accuracies of two layer paths on the same
 * documents are compared.
 *
 * The definitions follow lm-evaluation-harness / OLMES so that numbers can
 * be set beside the leaderboards': the predicted choice is the argmax (first
 * maximum wins, like numpy.argmax) of the summed log-probability (acc_raw),
 * of it divided by the continuation's characters (acc_per_char, Unicode code
 * points of the continuation as the data file spells it, leading space
 * included) or tokens (acc_per_token), or of logprob(cont | context) minus
 * logprob(cont | unconditional context) (acc_uncond). The standard error is
 * lm-eval's: sample standard deviation of per-document correctness over
 * sqrt(n). The comparison is paired because both paths answer the same
 * documents: an exact McNemar test on the discordant documents and a paired
 * bootstrap of the accuracy difference with a fixed seed. */
#ifndef RYS_TASKS_METRICS_H
#define RYS_TASKS_METRICS_H

#include <stdbool.h>
#include <stdint.h>

typedef enum { METRIC_ACC_RAW, METRIC_ACC_PER_CHAR, METRIC_ACC_PER_TOKEN, METRIC_ACC_UNCOND, METRIC_COUNT } metric_kind;

/* "acc_raw", ... */
const char *metric_name(metric_kind k);
/* The metric named, or -1. */
int metric_from_name(const char *name);

/* What one choice of a document scored. */
typedef struct {
    double logprob;         /* sum of the continuation's token log-probabilities */
    int n_tokens;           /* continuation tokens */
    int n_chars;            /* continuation characters (task_doc.cont_chars) */
    bool greedy;            /* every continuation token was the argmax */
    double uncond_logprob;  /* the same continuation after the unconditional context; NAN if none */
    int uncond_n_tokens;
    bool uncond_greedy;
} choice_score;

/* Choice c's value under metric k (the quantity metric_predict maximises):
 * logprob, per character, per token, or minus the unconditional logprob. */
double metric_choice_value(metric_kind k, const choice_score *c);

/* The choice the metric picks (first maximum wins), or -1 when it cannot be
 * computed (acc_uncond without unconditional scores, no choices). */
int metric_predict(metric_kind k, const choice_score *choices, int n);

/* Mean of per-document correctness (0/1) and lm-eval's standard error
 * (sample std with n-1 over sqrt(n); 0 when n < 2). */
void accuracy_stderr(const uint8_t *correct, int n, double *acc, double *stderr_out);

/* Exact two-sided McNemar test: b documents right only in one path, c only
 * in the other; p = min(1, 2 P(X <= min(b,c))), X ~ Binomial(b+c, 1/2);
 * 1 when b+c = 0. */
double mcnemar_exact_p(int b, int c);

/* Paired bootstrap of the accuracy difference (cfg - base) over several
 * tasks at once: replicate r resamples every task's documents with
 * replacement, giving per-task deltas and their mean (the leaderboard's
 * "average" row). Each task draws from its own generator, seeded from seed
 * and the task's name, so a task's interval does not depend on which other
 * tasks ran. lo/hi get the 2.5% and 97.5% percentiles (numpy's linear
 * interpolation) of each task's delta and, at index n_tasks, of the
 * average's. Returns 0 or -1 (n_rep < 1, a task with no documents). */
typedef struct {
    const char *name;
    const uint8_t *base, *cfg;  /* per-document correctness */
    int n;
} paired_task;

int paired_bootstrap_ci(const paired_task *tasks, int n_tasks, int n_rep, uint64_t seed, double *lo, double *hi);
/* The same bootstrap for one task whose documents carry scores in [0, 1]
 * (a probe's items) rather than 0/1 correctness: *lo, *hi get the 95%
 * interval of mean(cfg - base). 0 or -1 (n < 1, n_rep < 1). */
int paired_bootstrap_scores(const char *name, const double *base, const double *cfg, int n, int n_rep, uint64_t seed, double *lo,
                            double *hi);

#define BOOTSTRAP_REPS 2000
#define BOOTSTRAP_SEED 1234

#endif
