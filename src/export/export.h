/* export: write a relayered model that other tools load.
 *
 * A scan finds a layer path; export turns it into files llama.cpp or
 * Hugging Face transformers run without knowing about rys:
 *   materialized GGUF  every path position gets its own "blk.<p>.*" tensors
 *                      (bytes copied from the source layer, quantization
 *                      untouched), block_count = path length; a position
 *                      with residual scale a (path.h) gets its output
 *                      projections (gemma3: post-norm weights) times a,
 *                      block formats through their fp16 scales;
 *   virtual GGUF       the source tensors once plus rys.layer_path, which rys
 *                      itself runs by default (the file stays the same size);
 *   Hugging Face dir   safetensors shards with the decoder layers renumbered
 *                      along the path (o_proj / down_proj times a residual
 *                      scale), config.json and tokenizer files.
 * Damped-Euler traversals (path.h) mix a traversal's input and output state,
 * which no weight expresses: only the virtual GGUF keeps them.
 * Every output is written under a temporary name and renamed at the end, so a
 * failure never leaves a half-written model under the final name.
 * Per-layer metadata (GGUF arrays with one entry per layer under "<arch>.",
 * config lists such as layer_types) follows the path. What a loader derives
 * from the layer INDEX alone (llama.cpp puts gemma3's global-attention layers
 * at every sixth position) follows the new positions, not the source layers;
 * no metadata can change that.
 *
 * Metadata written into GGUF exports (all strings unless noted):
 *   rys.version, rys.source_sha256, rys.layer_path ("layers:..." over the
 *   SOURCE layers), rys.blocks (the --blocks spec, when one was given),
 *   rys.export_kind ("materialized" or "virtual"). A materialized file keeps
 *   rys.layer_path as provenance only: its path is already baked into its
 *   tensors, so export_read_virtual_path() reports none for it. */
#ifndef RYS_EXPORT_H
#define RYS_EXPORT_H

#include <stdbool.h>

#include "engine/gguf.h"
#include "engine/path.h"

typedef struct {
    const char *blocks;     /* --blocks spec, or NULL */
    const char *layers;     /* --layers spec, or NULL (both NULL: baseline) */
    bool virtual_path;      /* GGUF only: record the path instead of copying layers */
    bool progress;          /* draw a progress bar on stderr (util.h rules apply) */
} export_opts;

/* GGUF file in, GGUF file out. 0 on success, -1 with rys_lasterr() =
 * "<file>: <problem>"; dst is untouched on failure. */
int export_gguf(const char *src_path, const char *dst_path, const export_opts *o);

/* Hugging Face model directory (config.json + safetensors, one file or
 * sharded with model.safetensors.index.json) in, a new directory out; dst_dir
 * must not exist yet or be empty. 0 on success, -1 with the error set; no
 * dst_dir is left behind on failure. virtual_path is not supported here. */
int export_hf(const char *src_dir, const char *dst_dir, const export_opts *o);

/* The layer path a (virtual) GGUF asks rys to run: 1 and *out filled (its
 * n_model = the file's block_count) when rys.layer_path is present and not a
 * materialized export's provenance, 0 when the file carries none, -1 with the
 * error set when the key is malformed (wrong type, bad grammar, a layer out of
 * range, missing architecture or block_count). */
int export_read_virtual_path(const gguf_file *g, layer_path *out);

#endif
