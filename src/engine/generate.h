/* generate: sampling and the generation loop over many sequences at once.
 * The prompts are prefilled together in one batch, then every still-active
 * sequence decodes one token per step in one batch, so a probe set of 32
 * prompts costs one forward call per generated token, not 32. The loop is
 * the engine's only one: how a step's rows go through the model is a
 * gen_runner, so the scanner's reuse runs the same loop. */
#ifndef RYS_GENERATE_H
#define RYS_GENERATE_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/forward.h"
#include "engine/tokenizer.h"

typedef struct {
    float temperature;      /* 0 = greedy */
    float top_p;            /* 1 = off */
    uint64_t seed;
    int n_predict;          /* max new tokens per sequence */
} sample_params;

typedef struct { uint64_t s[4]; } rng_state;
void rng_seed(rng_state *r, uint64_t seed);
double rng_uniform(rng_state *r);          /* [0, 1) */

/* Greedy: the first index of the maximum (llama.cpp's tie rule). */
int32_t sample_argmax(const float *logits, int n);
int32_t sample_token(const float *logits, int n, const sample_params *sp, rng_state *rng);

typedef struct {
    int32_t *tokens;        /* generated ids, malloc'd */
    int n;
    bool hit_eog;           /* stopped on an end-of-generation token (not included) */
    int32_t eog_token;      /* that token (a server reports its log-probability), -1 if none */
} gen_output;

typedef void (*gen_callback)(void *user, int seq, int32_t token);

/* A generation's sequences, ids 0..n-1: each with its prompt and its own
 * limit of new tokens (a server gives each request its own). */
typedef struct {
    int n;
    const int32_t *const *prompts;  /* [n] */
    const int *prompt_len;          /* [n], each >= 1 */
    const int *n_predict;           /* [n] the most new tokens of each */
} gen_request;

/* How a generation's batches run through the model. prefill runs the
 * prompts and writes the logits after each (sequence s's at row
 * logit_row[s] of logits); step runs one decode step's rows (one token per
 * sequence still going, in sequence order, each wanting logits) and writes
 * row i's logits at row logit_row[i]. Each returns 0 or -1 with an error.
 * The default (generate_seqs) runs forward_batch on one forward context;
 * the scanner's runners keep or reuse the baseline's hidden states. */
typedef struct {
    void *self;
    int n_vocab;                    /* logits per row */
    int (*prefill)(void *self, const gen_request *rq, float *logits, int *logit_row);
    int (*step)(void *self, const fwd_batch *rows, float *logits, int *logit_row);
} gen_runner;

/* The decode loop, the one every generation runs: after r's prefill, each
 * step samples every going sequence's next token, stops the sequence on an
 * end-of-generation token or at its n_predict, and runs the others' new
 * tokens through r, until none goes on. on_token, if set, sees each token
 * as it comes (streaming). out has rq->n entries; 0, or -1 with an error
 * and out freed. */
int generate_loop(const gen_runner *r, const tokenizer *tok, const gen_request *rq, const sample_params *sp,
                  gen_output *out, gen_callback on_token, void *user);

/* The default runner: every batch through forward_batch on f, rows as wide
 * as f's model's output (a caller wraps it to see the logits, e.g. for
 * log-probabilities). */
gen_runner gen_runner_forward(forward_ctx *f);

/* generate_loop on forward context f (sequence ids 0..rq->n - 1 of f, which
 * must have n_seq >= rq->n and room in n_ctx for each prompt and its
 * n_predict); sp->n_predict is not read. Returns 0 or -1. */
int generate_seqs(forward_ctx *f, const tokenizer *tok, const gen_request *rq, const sample_params *sp, gen_output *out,
                  gen_callback on_token, void *user);

/* generate_seqs for n_prompts sequences that all may make sp->n_predict new
 * tokens. Returns 0 or -1. */
int generate(forward_ctx *f, const tokenizer *tok, const int32_t *const *prompts, const int *prompt_lens,
             int n_prompts, const sample_params *sp, gen_output *out, gen_callback on_token, void *user);
void gen_output_free(gen_output *o, int n);

#endif
