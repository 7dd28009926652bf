/* evalset: probe sets made ready for one model: every item rendered with the
 * model's chat template and tokenized, plus scoring of generated texts.
 * `rys eval` and `rys scan` share it, so a configuration scored by either
 * sees exactly the same prompts. Prompt k of the flat list belongs to one
 * (set, item); sets keep their file order, items their key order.
 *
 * A file named "FILE.json:logit" is an EQ set read by logits instead
 * (eqlogit.h): its set is named "<stem>:logit" and of kind "eq_logit", so its
 * scores never mix with the published EQ probe's, and its items are not
 * among the prompts to generate from but among the logit items.
 *
 * A file spelled "TASK:VARIANT:loglik[@N]" is a benchmark objective
 * (objective.h): no prompts, two score sets "<task>:<variant>:acc" (kind
 * loglik_acc) and "...:margin" (loglik_margin) after every probe file's set,
 * each with one item per document; "ppl:FILE[@TOKENS]" one set "ppl:<stem>"
 * (ppl_loglik) with one item per chunk. */
#ifndef RYS_EVALSET_H
#define RYS_EVALSET_H

#include <stdbool.h>
#include <stdint.h>

#include "scan/eqlogit.h"
#include "scan/objective.h"
#include "engine/model.h"
#include "engine/tokenizer.h"

typedef struct {
    int n_predict;              /* new tokens per item (default 64) */
    const char *math_system;    /* system prompt for math items (NULL = the reference's) */
    bool no_think;              /* prefix user turns with "/no_think " */
} evalset_options;

typedef struct evalset evalset;

evalset *evalset_load(const char *const *files, int n_files, const model *m, const tokenizer *tok,
                      const evalset_options *o);
void evalset_free(evalset *e);

int evalset_n_sets(const evalset *e);
const char *evalset_set_name(const evalset *e, int s);   /* file stem, e.g. "math_16" */
const char *evalset_set_path(const evalset *e, int s);
const char *evalset_set_sha256(const evalset *e, int s);
const char *evalset_set_kind(const evalset *e, int s);   /* "math" | "eq" | "eq_logit" */
int evalset_set_items(const evalset *e, int s);
/* Benchmark objectives, in the order given; evalset_objective_set(k) is the
 * index of objective k's first score set (objective_n_scores of them follow in order). */
int evalset_n_objectives(const evalset *e);
const objective_set *evalset_objectives(const evalset *e);
int evalset_objective_set(const evalset *e, int k);

int evalset_n_prompts(const evalset *e);
const int32_t *const *evalset_prompts(const evalset *e);
const int *evalset_lens(const evalset *e);
int evalset_prompt_set(const evalset *e, int k);
const char *evalset_prompt_key(const evalset *e, int k);
int evalset_n_predict(const evalset *e);

/* Score prompt k's generated text; *parsed_json (malloc'd) explains it. */
double evalset_score(const evalset *e, int k, const char *text, char **parsed_json);
/* Logit-read items (sets given as "FILE:logit"), in set and key order. */
int evalset_n_logit(const evalset *e);
const eqlogit_item *evalset_logit_items(const evalset *e);
int evalset_logit_set(const evalset *e, int k);
const char *evalset_logit_key(const evalset *e, int k);
/* Score of logit item k from its read probabilities (eq_logit_score);
 * *parsed_json (malloc'd) holds probabilities, expected values and choices.
 * -1 with an error if the probabilities are unusable. */
double evalset_logit_score(const evalset *e, int k, const eqlogit_result *r, char **parsed_json);

/* The settings that change scores, as canonical JSON (malloc'd). */
char *evalset_settings_json(const evalset *e);

#endif
