/* model: architecture tables. Reads hyper-parameters from GGUF metadata and
 * binds each layer's tensors (pointers into the mapping; nothing is copied
 * except small 1-D norm/bias vectors, converted to f32 once).
 * Supported: llama (tied or untied output), qwen2 (QKV bias), qwen3 (q/k
 * norms), gemma3 (q/k norms, post-norms, GELU, sliding-window layers),
 * qwen3moe (qwen3's attention, a mixture-of-experts feed-forward: a router
 * and n_expert SwiGLU experts stored as 3-D tensors, one slice each),
 * qwen35 (Gated DeltaNet layers with a recurrent state, and every
 * full_attention_interval-th layer attention with q/k norms and an output
 * gate; see deltanet.h), qwen35moe (qwen35's layers with qwen3moe's
 * experts plus a shared expert gated per token). */
#ifndef RYS_MODEL_H
#define RYS_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/gguf.h"
#include "quant/quant.h"

enum model_arch { ARCH_LLAMA, ARCH_QWEN2, ARCH_QWEN3, ARCH_GEMMA3, ARCH_QWEN3MOE, ARCH_QWEN35, ARCH_QWEN35MOE };
enum rope_kind { ROPE_NORMAL, ROPE_NEOX };   /* adjacent pairs vs split halves */

typedef struct {
    quant_matrix wq, wk, wv, wo;
    quant_matrix w_gate, w_up, w_down;      /* dense feed-forward; unset (n_out 0) in a MoE layer */
    /* MoE feed-forward (n_expert > 0): the router [n_expert][dim] and each
     * expert's gate, up [expert_ffn_dim][dim] and down [dim][expert_ffn_dim],
     * slices of the file's 3-D tensors (pointers into the mapping); NULL in
     * a dense layer */
    quant_matrix router;
    quant_matrix *gate_exps, *up_exps, *down_exps;
    /* qwen35moe's shared expert: SwiGLU of shexp_ffn_dim, its output times
     * sigmoid(shexp_gate . x) (shexp_gate: one row of dim); n_out 0 if none */
    quant_matrix shexp_gate, shexp_up, shexp_down, shexp_gate_inp;
    float *attn_norm, *ffn_norm;            /* [dim] */
    float *bq, *bk, *bv;                    /* qwen2 biases, or NULL */
    float *q_norm, *k_norm;                 /* [head_dim], qwen3/gemma3, or NULL */
    float *post_attn_norm, *post_ffn_norm;  /* gemma3, or NULL */
    bool sliding;                           /* gemma3 local-attention layer */
    /* qwen35: a Gated DeltaNet layer (recurrent) in place of attention:
     * ssm_qkv [dim -> 2 key_dim + value_dim], ssm_z [dim -> value_dim],
     * ssm_beta, ssm_alpha [dim -> n_v_heads], ssm_out [value_dim -> dim];
     * f32 copies of the convolution [conv_dim][d_conv], dt bias and a
     * [n_v_heads], and the output norm [S]. An attention layer of qwen35
     * has wq of 2 q_dim rows (each head's query, then its gate). */
    bool recurrent;
    quant_matrix ssm_qkv, ssm_z, ssm_beta, ssm_alpha, ssm_out;
    float *ssm_conv, *ssm_dt, *ssm_a, *ssm_norm;
} layer_weights;

typedef struct {
    enum model_arch arch;
    const char *arch_name;
    int n_layers, dim, ffn_dim, n_head, n_head_kv, head_dim, n_vocab, n_ctx_train;
    float rms_eps;
    float rope_base, rope_base_local;       /* local: gemma3 sliding layers */
    float rope_scale;                       /* linear position scaling (1 = none) */
    int rope_dims;
    enum rope_kind rope;
    int sliding_window;                     /* 0 = none */
    float attn_scale;                       /* multiplies q.k */
    float embd_scale;                       /* gemma3: sqrt(dim), else 1 */
    bool gelu;                              /* gemma3 uses GELU(tanh) gates */
    /* mixture of experts (qwen3moe), 0 for a dense model: each token's
     * feed-forward is the sum of its n_expert_used best-scored experts'
     * outputs, weighted by the router's softmax renormalised over them */
    int n_expert, n_expert_used, expert_ffn_dim, shexp_ffn_dim;
    /* qwen35: attention output gated by sigmoid of a second query half;
     * Gated DeltaNet geometry (0 elsewhere): convolution width, head size S
     * of keys and values, key heads and value heads (value head h reads
     * key head h % ssm_n_k) */
    bool attn_gate;
    int ssm_d_conv, ssm_s, ssm_n_k, ssm_n_v;
} model_hparams;

typedef struct {
    gguf_file *gguf;
    model_hparams hp;
    quant_matrix tok_embd;                  /* [n_vocab][dim] */
    quant_matrix output;                    /* [n_vocab][dim]; tok_embd when tied */
    float *output_norm;
    layer_weights *layers;                  /* n_layers */
    char *name;                             /* general.name or the file name */
} model;

/* Opens, validates and binds. NULL with rys_lasterr() = "<file>: <problem>". */
model *model_load(const char *path);
/* Bind a model to an already-open GGUF (takes ownership of g on success). */
model *model_from_gguf(gguf_file *g);
void model_free(model *m);

/* Whether layer l of a file of architecture arch attends within a sliding
 * window: gemma3 makes every sixth layer global. Decided by the layer's index
 * in its file, as llama.cpp decides it (its gemma3 loader reads no per-layer
 * list), so a relayered copy can keep each layer's kind only where the path
 * puts it at a position of the same kind. */
bool model_layer_sliding(const char *arch, int l);

/* Dequantize one embedding row into out[dim] (scaled as the arch says). */
void model_embed(const model *m, int32_t token, float *out);

#endif
