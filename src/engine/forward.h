/* forward: one forward pass over a batch of tokens along a layer path.
 *
 * The layer loop runs over path *positions* p: position p computes with the
 * weights of layer path.layers[p] and reads/writes KV slot p. A batch may mix
 * several sequences of different lengths; each token carries its sequence id
 * and position, and attends to its own sequence's cache up to itself. */
#ifndef RYS_FORWARD_H
#define RYS_FORWARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/model.h"
#include "engine/path.h"
#include "base/pool.h"

/* The forward pass's rounding rules (fp16 KV cache and Q, softmax and RoPE as
 * llama.cpp computes them). Bump it whenever they change: a store scored
 * under other rules must not be resumed, its scores would not compare. */
#define RYS_NUMERICS 2

/* The KV cache's geometry: one slot per path position, each holding K and V
 * of n_seq sequences of n_ctx positions, kv_dim values each. The buffers
 * stay inside forward.c: everything else reads and writes them through
 * forward_kv_read / forward_kv_write. */
typedef struct {
    int n_slots, n_seq, n_ctx, kv_dim;
} kv_shape;

typedef struct {
    int n;                      /* tokens in the batch */
    const int32_t *tokens;      /* [n] */
    const int32_t *pos;         /* [n] position of each token in its sequence */
    const int32_t *seq;         /* [n] sequence id, < n_seq */
    const bool *want_logits;    /* [n], or NULL = logits for every token */
} fwd_batch;

typedef struct forward_ctx forward_ctx;

/* n_seq sequences of up to n_ctx tokens each. NULL + error if too large. */
forward_ctx *forward_new(const model *m, const layer_path *path, int n_seq, int n_ctx, pool *pool);
void forward_free(forward_ctx *f);
const layer_path *forward_path(const forward_ctx *f);
/* The model f runs (its n_vocab is the width of every logits row f writes). */
const model *forward_model(const forward_ctx *f);
/* Make KV slot `slot` of f use the buffers of slot `src_slot` of src (same
 * n_seq, n_ctx and model): f then reads and writes src's cache there (the
 * scanner lets a configuration borrow the baseline's prefix slots). */
int forward_share_slot(forward_ctx *f, int slot, forward_ctx *src, int src_slot);
kv_shape forward_kv_shape(const forward_ctx *f);
size_t forward_kv_bytes(const forward_ctx *f);
/* Copies K and V of positions [pos, pos + n_pos) of sequence seq in KV slot
 * slot into k and v ([n_pos][kv_dim] fp16 values each). 0 or -1 with an
 * error when the range lies outside the cache. */
int forward_kv_read(const forward_ctx *f, int slot, int seq, int pos, int n_pos, uint16_t *k, uint16_t *v);
/* The reverse: writes k and v there (a borrowed slot's owner sees it). */
int forward_kv_write(forward_ctx *f, int slot, int seq, int pos, int n_pos, const uint16_t *k, const uint16_t *v);
/* Whether path position slot is a recurrent layer (it keeps a state per
 * sequence instead of K and V). */
bool forward_slot_recurrent(const forward_ctx *f, int slot);
/* Floats of one sequence's recurrent state at one such position (0 for a
 * model without recurrent layers). */
size_t forward_recurrent_floats(const forward_ctx *f);
/* Sequence seq's recurrent state at position slot (and the tokens it has
 * absorbed) into buf, and back: a configuration sharing a path's first
 * positions starts from that path's states there. 0 or -1 with an error. */
int forward_recurrent_read(const forward_ctx *f, int slot, int seq, float *buf, int *held);
int forward_recurrent_write(forward_ctx *f, int slot, int seq, const float *buf, int held);
/* Copy positions [0, n_pos) of sequence src to sequence dst in every KV slot:
 * several continuations of one context then share its computation. */
int forward_copy_seq(forward_ctx *f, int src, int dst, int n_pos);
/* The same in KV slots [slot_begin, slot_end) only. */
int forward_copy_seq_slots(forward_ctx *f, int slot_begin, int slot_end, int src, int dst, int n_pos);

/* Runs the batch. Logits of the tokens with want_logits set are written, in
 * batch order, to logits[k * n_vocab]. Returns the number of logit rows or -1
 * with an error (bad token id, position beyond n_ctx, sequence out of range). */
int forward_batch(forward_ctx *f, const fwd_batch *b, float *logits);

/* Lower-level entry for the scanner: run path positions [p_begin, p_end) on
 * the hidden states x[n][dim] in place (tokens' pos/seq as in b), without
 * embedding or output. */
int forward_layers(forward_ctx *f, const fwd_batch *b, float *x, int p_begin, int p_end);
/* forward_layers from p_begin to the path's end when only the rows with
 * want_logits go on to forward_output: the others get only the last
 * position's K and V, and their hidden states are left undefined (the other
 * rows' are the bits forward_layers gives). forward_batch always runs so. */
int forward_layers_for_output(forward_ctx *f, const fwd_batch *b, float *x, int p_begin);
/* Final norm + output projection of hidden states x[n][dim] for rows with
 * want_logits (all rows when b->want_logits is NULL). */
int forward_output(forward_ctx *f, const fwd_batch *b, const float *x, float *logits);

#endif
