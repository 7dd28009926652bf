/* moe: the mixture-of-experts feed-forward (qwen3moe), one micro-batch at a
 * time. Each token's router scores pick its n_expert_used experts; the
 * tokens are then grouped by expert, so each chosen expert's weights are
 * read once per batch (one matrix product over all of its tokens' rows) and
 * experts no token chose are not read at all (a decode step reads only the
 * k it picked). Numbers follow llama.cpp's build_moe_ffn for this gating:
 * softmax over all experts, top-k, weights renormalised to sum 1, each
 * expert's output scaled by its weight and the k outputs added in rank
 * order. forward.c calls it in place of the dense gate/up/down. */
#ifndef RYS_MOE_H
#define RYS_MOE_H

#include "engine/model.h"
#include "base/pool.h"

typedef struct moe_scratch moe_scratch;

/* Scratch for batches of up to max_tokens tokens of a model with hp's
 * experts (hp->n_expert > 0). */
moe_scratch *moe_new(const model_hparams *hp, int max_tokens);
void moe_free(moe_scratch *s);

/* One token's routing: of the n_expert router logits, the k experts of the
 * highest softmax probability (the lower index first on a tie) go to
 * chosen[0..k) best first, and weights[r] = their probabilities divided by
 * the sum of the k (that sum clamped below at fp16's smallest normal, as
 * llama.cpp clamps it). probs: n_expert floats of scratch. */
void moe_route(const float *logits, int n_expert, int k, float *probs, int *chosen, float *weights);

/* out[t][dim] = sum over token t's chosen experts e (best first) of
 * weight(t, e) * down_e(silu(gate_e(x_t)) * up_e(x_t)), for the n <=
 * max_tokens rows of xn[n][dim], with layer L's router and experts; plus,
 * where L has a shared expert (qwen35moe), its SwiGLU output times
 * sigmoid(shexp_gate_inp . x_t). */
void moe_ffn(moe_scratch *s, const layer_weights *L, const float *xn, int n, float *out, pool *pool);

#endif
