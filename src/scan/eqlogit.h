/* eqlogit: the logit-read EQ probe (beyond the reference). The published EQ
 * probe lets the model write its scores and parses them; a small model's
 * format slips then cost more than its judgement. Here nothing is generated:
 * the answer the EQ prompt asks for ("First pass scores:" then one
 * "Emotion: <score>" line per emotion) is teacher-forced line by line, and at
 * each "Emotion: " the model's probability of every score 0..10 is read from
 * its logits. eq_logit_score() turns those into expected values and a score.
 *
 * A score is the whole number, not its first token: P(v) is the probability
 * of v's tokens followed by a token that does not start with a digit. Both
 * tokenizers we run split "10" into "1" "0", so without the terminator
 * "1" would also hold the mass of "10" (and of "15", "100"...). The 11 values
 * are then normalised over themselves; what the model puts elsewhere (prose,
 * "<score>") is reported as 1 - mass.
 *
 * Between lines the most probable score (argmax, ties to the smaller value)
 * is written into the answer: it is a value the model itself would write in
 * full, so later lines stay on the model's own path; the rounded expected
 * value of a split distribution (mass at 0 and at 10) can be a score the
 * model gives almost nothing (and feeding the reference scores would hand
 * the model the answer).
 * Everything is deterministic: no sampling, and each token's logits do not
 * depend on the batch around it. */
#ifndef RYS_EQLOGIT_H
#define RYS_EQLOGIT_H

#include <stdint.h>

#include "engine/model.h"
#include "engine/path.h"
#include "base/pool.h"
#include "engine/tokenizer.h"

#define EQLOGIT_VALUES 11           /* scores 0..10 */

typedef struct {
    const char *prompt;             /* the chat-rendered prompt, generation prompt included */
    const char *emotion[4];         /* names, in the order the prompt lists them */
} eqlogit_item;

/* What was fed for one emotion line, for reference checks. */
typedef struct {
    int32_t *ctx;                   /* tokens up to the score: prompt + answer so far + "Name: " */
    int n_ctx;
    int32_t *value[EQLOGIT_VALUES]; /* each score's tokens after ctx */
    int n_value[EQLOGIT_VALUES];
} eqlogit_line;

typedef struct {
    double probs[4][EQLOGIT_VALUES];  /* normalised over 0..10, per emotion */
    double mass[4];                 /* their sum before normalising */
    int choice[4];                  /* the score written into the answer */
    char *answer;                   /* the teacher-forced answer, choices included */
    eqlogit_line line[4];
    long long tokens_run;           /* tokens fed through the path */
} eqlogit_result;

/* Reads the four lines of every item along path. out[n] is filled (free with
 * eqlogit_result_free). Returns 0, or -1 with an error. */
int eqlogit_run(const model *m, const tokenizer *tok, const layer_path *path, pool *pool, const eqlogit_item *items,
                int n, eqlogit_result *out);
void eqlogit_result_free(eqlogit_result *r, int n);

/* {"probs":[[11]x4],"expected":[4],"choices":[4],"mass":[4],"score":s},
 * malloc'd: what the store keeps as the item's parsed values. */
char *eqlogit_result_json(const eqlogit_result *r, const double expected[4], double score);
/* The token ids fed, per line: {"lines":[{"context_from":k,"context_tail":[..],
 * "values":[[..] x 11]}]} where a line's context is the previous line's first
 * context_from tokens followed by context_tail. Malloc'd. */
char *eqlogit_trace_json(const eqlogit_result *r);

#endif
