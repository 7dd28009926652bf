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
    const int *seq;                 /* [n] the KV sequence each runs in; NULL = 0..n-1 */
} gen_request;

/* How a generation's batches run through the model. prefill runs the
 * prompts (prompt s in KV sequence rq->seq[s], or s when seq is NULL) and
 * writes the logits after each (prompt s's at row logit_row[s] of logits,
 * at most rq->n rows); step runs one decode step's rows (one token per
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

/* One sequence of a decode loop: its prompt, its limit and how it samples. */
typedef struct {
    const int32_t *prompt;
    int prompt_len;             /* >= 1 */
    int n_predict;              /* the most new tokens */
    const sample_params *sp;    /* temperature, top_p (its n_predict is not read) */
    rng_state *rng;             /* its draws; sequences may share one (then in slot order) */
} gen_seq;

/* The decode loop's state between steps, over n_slots KV sequences of the
 * runner's context. A caller that admits sequences while others decode (a
 * server) drives it step by step; generate_loop drives it to the end. */
typedef struct gen_loop gen_loop;

gen_loop *gen_loop_new(const gen_runner *r, const tokenizer *tok, int n_slots);
void gen_loop_free(gen_loop *g);
/* Admits s into the free slot `slot`: its prompt is prefilled at the start
 * of the next step, batched with every other admitted since, and its tokens
 * go to *out (initialized here; out and s's arrays must live until the slot
 * is free again). 0, or -1 with the error set (slot busy or out of range, an
 * empty prompt). */
int gen_loop_admit(gen_loop *g, int slot, const gen_seq *s, gen_output *out);
/* Ends the slot's sequence now (a stop string, a cancelled request): it is
 * sampled no more and the slot is free. May be called from the step's
 * on_token callback for the slot being reported. */
void gen_loop_drop(gen_loop *g, int slot);
/* Whether the slot holds a sequence that is admitted and not finished. */
bool gen_loop_busy(const gen_loop *g, int slot);
/* One step: prefills the sequences admitted since the last step, samples
 * the next token of every going sequence in slot order (ending one on an
 * end-of-generation token or at its n_predict, freeing its slot), then runs
 * the going ones' new tokens through the runner in one batch. on_token sees
 * each token as it comes. Returns how many sequences are still busy, or -1
 * with the error set (the runner failed: every slot is freed, the outputs
 * keep what they had). */
int gen_loop_step(gen_loop *g, gen_callback on_token, void *user);

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
