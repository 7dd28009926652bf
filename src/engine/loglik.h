/* loglik: log-likelihood of continuations given a context, the primitive of
 * multiple-choice benchmarks (HellaSwag, ARC, MMLU...). The choices of one
 * document share their context: it is evaluated once and its KV entries are
 * copied to each choice's sequence; many documents are batched together. */
#ifndef RYS_LOGLIK_H
#define RYS_LOGLIK_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/model.h"
#include "engine/path.h"
#include "base/pool.h"

typedef struct {
    const int32_t *ctx;             /* context tokens (at least one) */
    int n_ctx;
    int n_choices;
    const int32_t *const *cont;     /* continuation tokens per choice (at least one each) */
    const int *n_cont;
} loglik_doc;

typedef struct {
    double logprob;                 /* sum of the continuation's token log-probabilities */
    int n_tokens;
    bool greedy;                    /* every continuation token was the argmax */
} loglik_result;

/* Progress callback: documents finished so far. */
typedef void (*loglik_progress)(void *user, int docs_done);

/* log p(target) under the softmax of one logits row lg[n], in double; is_max
 * tells whether target is the row's first maximum (greedy would pick it).
 * Every log-likelihood rys reports (HellaSwag, validate) goes through it. */
double loglik_token(const float *lg, int n, int target, bool *is_max);

/* results[d] must hold docs[d].n_choices entries. Returns 0 or -1. */
int loglik_score(const model *m, const layer_path *path, pool *pool, const loglik_doc *docs, int n_docs,
                 loglik_result **results, loglik_progress cb, void *user);

#endif
