/* prefix: what one run computes that another, sharing its beginning, reuses.
 *
 * Two paths whose first k positions are the same layers (a RYS configuration
 * and the baseline) compute the same hidden states and the same K and V
 * there for the same tokens. So the first run keeps its hidden states at
 * chosen layer boundaries (state_store, filled by prefix_run_keep), and the
 * second starts at path position k from the states kept at boundary k
 * (prefix_start). Where the second must still run positions below k itself
 * (tokens the first never ran), it borrows the first's KV slots there
 * (forward_share_slot); a kv_snapshot saves the positions it will overwrite
 * so that the first's cache is whole again afterwards.
 * The reuse is exact: every kernel computes each token's row independently
 * of its batch, so a row's bits do not depend on which call ran it. */
#ifndef RYS_PREFIX_H
#define RYS_PREFIX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/forward.h"
#include "engine/model.h"

/* Hidden states (f32, so that reuse is exact) of numbered rows at chosen
 * layer boundaries: boundary b holds what enters path position b, the output
 * of position b - 1. Which token a row is, is up to the caller. */
typedef struct state_store state_store;

/* A store for states of dim floats at boundaries bounds[0..n_bounds) (each
 * >= 1, ascending, no repeats), with room for n_rows rows. NULL + error on
 * bad boundaries. */
state_store *state_store_new(int dim, const int *bounds, int n_bounds, long long n_rows);
void state_store_free(state_store *st);
/* Room for at least n_rows rows; the rows held so far stay. */
void state_store_reserve(state_store *st, long long n_rows);
/* Whether the store keeps states at boundary b. */
bool state_store_keeps(const state_store *st, int b);
size_t state_store_bytes(const state_store *st);

/* Runs path positions [p_begin, p_end) of f on the hidden states x[n][dim]
 * (forward_layers), and at every boundary of st inside (p_begin, p_end]
 * keeps batch row t's state in row rows[t] of st (rows NULL: row t).
 * 0 or -1 with an error. */
int prefix_run_keep(forward_ctx *f, const fwd_batch *b, float *x, int p_begin, int p_end, state_store *st,
                    const long long *rows);

/* The hidden states entering path position k for the batch's rows, into
 * x[n][dim]: the tokens' embeddings when k is 0, else the states st kept at
 * boundary k in rows rows[t] (rows NULL: row t). 0 or -1 with an error when
 * st does not keep boundary k. */
int prefix_start(const model *m, const fwd_batch *b, int k, const state_store *st, const long long *rows, float *x);

/* K and V of some positions of a cache, saved to be written back later. */
typedef struct kv_snapshot kv_snapshot;

/* Saves positions [pos[s], pos[s] + n_pos) of every sequence s < n_seq of f
 * in KV slots [slot_begin, slot_end). NULL + error when they lie outside the
 * cache. */
kv_snapshot *kv_snapshot_save(const forward_ctx *f, int slot_begin, int slot_end, int n_seq, const int *pos, int n_pos);
/* Writes the saved positions back into f (the cache they came from, or one
 * of the same shape). 0 or -1 with an error. */
int kv_snapshot_restore(const kv_snapshot *snap, forward_ctx *f);
void kv_snapshot_free(kv_snapshot *snap);

/* The recurrent states of some positions of a context, saved so that
 * another context whose first positions are the same layers can start from
 * them: a configuration takes the baseline's states after the prompts at
 * the positions it shares with it, which it never runs on the prompts. */
typedef struct recurrent_snapshot recurrent_snapshot;

/* Saves every sequence's state at the recurrent positions among [0, n_slots)
 * of f (none: an empty snapshot). NULL + error. */
recurrent_snapshot *recurrent_snapshot_save(const forward_ctx *f, int n_slots);
/* Writes the saved states of positions [0, k) into f (k at most the saved
 * n_slots; f's positions there are the same layers). 0 or -1 + error. */
int recurrent_snapshot_restore(const recurrent_snapshot *s, forward_ctx *f, int k);
void recurrent_snapshot_free(recurrent_snapshot *s);

#endif
