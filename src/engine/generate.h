/* generate: sampling and the generation loop over many sequences at once.
 * The prompts are prefilled together in one batch, then every still-active
 * sequence decodes one token per step in one batch, so a probe set of 32
 * prompts costs one forward call per generated token, not 32. */
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
} gen_output;

/* Generates for n_prompts sequences (seq ids 0..n_prompts-1 of f, which must
 * have n_seq >= n_prompts and n_ctx >= longest prompt + n_predict). on_token,
 * if set, is called after each step for streaming. Returns 0 or -1. */
typedef void (*gen_callback)(void *user, int seq, int32_t token);
int generate(forward_ctx *f, const tokenizer *tok, const int32_t *const *prompts, const int *prompt_lens,
             int n_prompts, const sample_params *sp, gen_output *out, gen_callback on_token, void *user);
void gen_output_free(gen_output *o, int n);

#endif
