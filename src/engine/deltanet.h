/* deltanet: the Gated DeltaNet mixer of qwen35's recurrent layers and the
 * recurrent state it keeps, one per path position (like a KV slot) and
 * sequence: the convolution's last d_conv - 1 inputs and, per value head,
 * an S x S matrix. Unlike a KV cache the state holds a sequence's whole
 * past in one place, so tokens must come in order: a token at position 0
 * starts the sequence afresh, any other must be the next after those the
 * state has absorbed (dn_check says so before a batch runs). The numbers
 * follow llama.cpp's ggml_ssm_conv and ggml_gated_delta_net (see
 * tests/ref/make_tiny_qwen35.py for the rule written out). */
#ifndef RYS_DELTANET_H
#define RYS_DELTANET_H

#include <stdint.h>

#include "engine/model.h"
#include "engine/path.h"
#include "base/pool.h"

typedef struct dn_cache dn_cache;

/* States for the recurrent positions of path in m (none: NULL), n_seq
 * sequences, and scratch for batches of up to max_tokens tokens. */
dn_cache *dn_new(const model *m, const layer_path *path, int n_seq, int max_tokens);
void dn_free(dn_cache *c);
/* Whether path position slot has a recurrent state. */
bool dn_slot_recurrent(const dn_cache *c, int slot);
/* 0 if the n tokens (positions pos, sequences seq, in batch order) may run
 * through the recurrent positions in [slot_begin, slot_end); else -1 with
 * an error naming the first token out of order. */
int dn_check(const dn_cache *c, int slot_begin, int slot_end, int n, const int32_t *seq, const int32_t *pos);
/* out[n][dim] = the mixer's output for the normed inputs xn[n][dim] of
 * layer L at path position slot, tokens in batch order (dn_check'd),
 * updating their sequences' states there. */
void dn_layer(dn_cache *c, int slot, const layer_weights *L, const float *xn, int n, const int32_t *seq,
              const int32_t *pos, float *out, pool *pool);
/* Sequence dst's states in slots [slot_begin, slot_end) become copies of
 * src's, which must hold exactly n_pos tokens; 0 or -1 with an error. */
int dn_copy_seq(dn_cache *c, int slot_begin, int slot_end, int src, int dst, int n_pos);
/* Floats of one sequence's state at one recurrent position (convolution
 * inputs, then the value heads' matrices); 0 for a NULL cache. */
size_t dn_state_floats(const dn_cache *c);
/* Copies sequence seq's state at recurrent position slot into buf
 * (dn_state_floats of them) and the tokens it absorbed into *held; the
 * reverse with dn_state_write. -1 with an error for a position that is not
 * recurrent or a sequence out of range. */
int dn_state_read(const dn_cache *c, int slot, int seq, float *buf, int *held);
int dn_state_write(dn_cache *c, int slot, int seq, const float *buf, int held);

#endif
