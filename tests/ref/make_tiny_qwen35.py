#!/usr/bin/env python3
"""make_tiny_qwen35: a small qwen35 GGUF (Qwen3.5 dense: Gated DeltaNet layers
with a gated full-attention layer every fourth) with random weights, and a
float64 numpy forward pass of it, checked against llama.cpp: the tensors and
the update rule written out, with numbers (rys's implementation is
src/engine/deltanet.c; tests/ref/check_qwen35.py checks it on this model).

File layout (what llama.cpp's qwen35 loader reads):
  metadata  qwen35.ssm.conv_kernel (d_conv), ssm.inner_size (value_dim),
            ssm.state_size (S, the head size of keys and values),
            ssm.time_step_rank (n_v_heads), ssm.group_count (n_k_heads),
            full_attention_interval (layer l is full attention iff
            (l + 1) % interval == 0), rope.dimension_sections (IMROPE; text
            has the same position in every section, which makes it NEOX
            RoPE over rope.dimension_count dims)
  every layer  attn_norm, post_attention_norm (the FFN's input norm), dense
            SwiGLU ffn_gate / ffn_up / ffn_down
  attention  attn_q [dim -> 2 n_head hd], per head its query then its gate;
            attn_q_norm, attn_k_norm; attn_k, attn_v, attn_output; the
            attention output times sigmoid(gate) before attn_output
  DeltaNet  attn_qkv [dim -> 2 key_dim + value_dim], attn_gate [dim ->
            value_dim] (z), ssm_conv1d [d_conv, 2 key_dim + value_dim],
            ssm_dt.bias [n_v_heads], ssm_a [n_v_heads] (-exp(A_log)),
            ssm_beta and ssm_alpha [dim -> n_v_heads], ssm_norm [S],
            ssm_out [value_dim -> dim]
The DeltaNet step of one token (forward() below): mixed = attn_qkv(x); a
causal depthwise convolution of each channel over its last d_conv inputs
(weight 0 on the oldest; the state is the previous d_conv - 1 inputs), then
SiLU; q, k (n_k_heads x S) L2-normalised per head, v (n_v_heads x S); v head
h reads k and q head h % n_k_heads; beta = sigmoid(ssm_beta x); g = ssm_a *
softplus(ssm_alpha x + ssm_dt); per v head the S x S state M: M *= exp(g);
delta = (v - M^T k) * beta; M += k delta^T; out = M^T q / sqrt(S); then
rmsnorm(out, ssm_norm) * silu(z) per head and ssm_out. A path through such
a model needs, per path position and sequence, the convolution state and M
beside the attention layers' KV slots.

usage: make_tiny_qwen35.py OUT.gguf [--type f32|q8_0|q4_k_m] [--size tiny|mid] [--moe] [--check]   (--check: numpy against llama.cpp,
       last-position logits within 1e-3 of max|logit|, exit 1 otherwise)
"""
import argparse
import os
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T
from gguf.quants import dequantize, quantize

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_tiny import CHATML, MERGES, vocabulary  # noqa: E402

# 4 layers (three DeltaNet, one attention), dim 64, 4 query heads over 2 KV heads of 32,
# DeltaNet heads of 16: 2 key heads shared by 4 value heads (as 16 over 32 in the 27B)
N_LAYERS, DIM, N_HEAD, N_HEAD_KV, HEAD_DIM, FFN, N_ROT = 4, 64, 4, 2, 32, 128, 8
S, N_K, N_V, D_CONV, INTERVAL = 16, 2, 4, 4, 4
# qwen35moe: 8 experts of width 32, 2 used, and a shared expert of width 64
N_EXPERT, N_USED, EXPERT_FFN, SHEXP_FFN = 8, 2, 32, 64


# mid: 8 layers (two attention), every matrix's input a multiple of 256, so that llama.cpp's own quantizer
# can make the K-quant file the real releases are (Q4_K_M); the numpy pass below is the tiny model's only
SIZES = {
    "tiny": (N_LAYERS, DIM, N_HEAD, N_HEAD_KV, HEAD_DIM, FFN, N_ROT, S, N_K, N_V, D_CONV, INTERVAL),
    "mid": (8, 256, 4, 2, 64, 512, 8, 64, 2, 4, 4, 4),
}


def write(path, seed=77, qtype="f32", moe=False, size="tiny"):
    """The model; qtype "q8_0" stores the matrices (not the embeddings, norms,
    convolution, dt, a, beta and alpha) as Q8_0, "q4_k_m" is the F32 file through
    llama.cpp's quantizer (size "mid": K-quants need inputs of 256); moe writes a
    qwen35moe file (every layer's feed-forward qwen3moe's experts plus a gated
    shared expert)."""
    if qtype == "q4_k_m":
        import tempfile
        import llama_cpp
        from make_tiny_moe import quantize_llama
        with tempfile.TemporaryDirectory(prefix="rys-qwen35-") as tmp:
            f32 = os.path.join(tmp, "f32.gguf")
            write(f32, seed, "f32", moe, size)
            quantize_llama(f32, path, llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_K_M)
        return
    N_LAYERS, DIM, N_HEAD, N_HEAD_KV, HEAD_DIM, FFN, N_ROT, S, N_K, N_V, D_CONV, INTERVAL = SIZES[size]
    arch = "qwen35moe" if moe else "qwen35"
    rng = np.random.default_rng(seed + moe)
    key_dim, val_dim = S * N_K, S * N_V
    conv_dim = 2 * key_dim + val_dim
    tokens, types = vocabulary()
    w = gguf.GGUFWriter(path, arch)
    w.add_name(f"rys {size} {arch}")
    w.add_block_count(N_LAYERS)
    w.add_context_length(256)
    w.add_embedding_length(DIM)
    w.add_feed_forward_length(FFN)
    w.add_head_count(N_HEAD)
    w.add_head_count_kv(N_HEAD_KV)
    w.add_key_length(HEAD_DIM)
    w.add_value_length(HEAD_DIM)
    w.add_layer_norm_rms_eps(1e-6)
    w.add_rope_freq_base(1e7)
    w.add_rope_dimension_count(N_ROT)
    w.add_array(f"{arch}.rope.dimension_sections", [2, 1, 1, 0])
    w.add_uint32(f"{arch}.ssm.conv_kernel", D_CONV)
    w.add_uint32(f"{arch}.ssm.inner_size", val_dim)
    w.add_uint32(f"{arch}.ssm.state_size", S)
    w.add_uint32(f"{arch}.ssm.time_step_rank", N_V)
    w.add_uint32(f"{arch}.ssm.group_count", N_K)
    w.add_uint32(f"{arch}.full_attention_interval", INTERVAL)
    if moe:
        w.add_expert_count(N_EXPERT)
        w.add_expert_used_count(N_USED)
        w.add_expert_feed_forward_length(EXPERT_FFN)
        w.add_uint32(f"{arch}.expert_shared_feed_forward_length", SHEXP_FFN)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("qwen2")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(MERGES)
    w.add_bos_token_id(tokens.index("<|endoftext|>"))
    w.add_eos_token_id(tokens.index("<|im_end|>"))
    w.add_add_bos_token(False)
    w.add_chat_template(CHATML)

    def mat(*shape, scale=1.0):
        return (rng.standard_normal(shape) * scale / np.sqrt(shape[-1])).astype(np.float32)

    def big(name, arr):
        if qtype == "q8_0":
            w.add_tensor(name, quantize(arr, T.Q8_0), raw_dtype=T.Q8_0)
        else:
            w.add_tensor(name, arr)

    def norm(n):
        return (1 + 0.2 * rng.standard_normal(n)).astype(np.float32)

    w.add_tensor("token_embd.weight", (0.7 * rng.standard_normal((len(tokens), DIM))).astype(np.float32))
    for L in range(N_LAYERS):
        p = f"blk.{L}."
        w.add_tensor(p + "attn_norm.weight", norm(DIM))
        w.add_tensor(p + "post_attention_norm.weight", norm(DIM))
        if (L + 1) % INTERVAL == 0:
            big(p + "attn_q.weight", mat(2 * N_HEAD * HEAD_DIM, DIM))
            big(p + "attn_k.weight", mat(N_HEAD_KV * HEAD_DIM, DIM))
            big(p + "attn_v.weight", mat(N_HEAD_KV * HEAD_DIM, DIM))
            big(p + "attn_output.weight", mat(DIM, N_HEAD * HEAD_DIM))
            w.add_tensor(p + "attn_q_norm.weight", norm(HEAD_DIM))
            w.add_tensor(p + "attn_k_norm.weight", norm(HEAD_DIM))
        else:
            big(p + "attn_qkv.weight", mat(conv_dim, DIM))
            big(p + "attn_gate.weight", mat(val_dim, DIM))
            w.add_tensor(p + "ssm_conv1d.weight", mat(conv_dim, D_CONV))
            w.add_tensor(p + "ssm_dt.bias", (0.5 * rng.standard_normal(N_V)).astype(np.float32))
            w.add_tensor(p + "ssm_a", (-np.exp(0.3 * rng.standard_normal(N_V))).astype(np.float32))
            w.add_tensor(p + "ssm_beta.weight", mat(N_V, DIM))
            w.add_tensor(p + "ssm_alpha.weight", mat(N_V, DIM))
            w.add_tensor(p + "ssm_norm.weight", norm(S))
            big(p + "ssm_out.weight", mat(DIM, val_dim))
        if moe:
            w.add_tensor(p + "ffn_gate_inp.weight", mat(N_EXPERT, DIM, scale=1.5))
            big(p + "ffn_gate_exps.weight", mat(N_EXPERT, EXPERT_FFN, DIM))
            big(p + "ffn_up_exps.weight", mat(N_EXPERT, EXPERT_FFN, DIM))
            big(p + "ffn_down_exps.weight", mat(N_EXPERT, DIM, EXPERT_FFN))
            w.add_tensor(p + "ffn_gate_inp_shexp.weight", mat(DIM, scale=2.0))
            big(p + "ffn_gate_shexp.weight", mat(SHEXP_FFN, DIM))
            big(p + "ffn_up_shexp.weight", mat(SHEXP_FFN, DIM))
            big(p + "ffn_down_shexp.weight", mat(DIM, SHEXP_FFN))
        else:
            big(p + "ffn_gate.weight", mat(FFN, DIM))
            big(p + "ffn_up.weight", mat(FFN, DIM))
            big(p + "ffn_down.weight", mat(DIM, FFN))
    w.add_tensor("output_norm.weight", norm(DIM))
    big("output.weight", mat(len(tokens), DIM, scale=3.0))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def moe_ffn(W, p, h):
    """qwen35moe's feed-forward of rows h: softmax router, top N_USED renormalised, + the gated shared expert."""
    def swiglu(x, g, u, d):
        a = x @ g.T
        return (a / (1 + np.exp(-a)) * (x @ u.T)) @ d.T
    logits = h @ W[p + "ffn_gate_inp.weight"].T
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    out = np.zeros_like(h)
    for t in range(len(h)):
        top = np.argsort(-probs[t])[:N_USED]
        for e in top:
            out[t] += probs[t, e] / probs[t, top].sum() * swiglu(
                h[t], W[p + "ffn_gate_exps.weight"][e], W[p + "ffn_up_exps.weight"][e], W[p + "ffn_down_exps.weight"][e])
    shared = swiglu(h, W[p + "ffn_gate_shexp.weight"], W[p + "ffn_up_shexp.weight"], W[p + "ffn_down_shexp.weight"])
    gate = 1 / (1 + np.exp(-(h @ W[p + "ffn_gate_inp_shexp.weight"].reshape(-1))))
    return out + shared * gate[:, None]


def forward(path, toks, layers=None, share_states=False):
    """float64 logits [len(toks), n_vocab] of the file at path, from an empty state, along the layer path
    `layers` (default 0..N-1). Each path position keeps its own recurrent state; share_states=True keeps one
    per layer instead, so a repeated layer's second traversal continues from the state its first one left
    (what an engine sharing the state by layer would compute), for the check that this matters."""
    r = gguf.GGUFReader(path)
    arch = r.fields["general.architecture"].contents()
    W = {t.name: dequantize(t.data, t.tensor_type).astype(np.float64).reshape([int(d) for d in reversed(t.shape)])
         for t in r.tensors}
    eps = float(r.fields[f"{arch}.attention.layer_norm_rms_epsilon"].contents())
    base = float(r.fields[f"{arch}.rope.freq_base"].contents())

    def rms(x, w, e=eps):
        return x / np.sqrt((x * x).mean(-1, keepdims=True) + e) * w

    def silu(x):
        return x / (1 + np.exp(-x))

    def sigmoid(x):
        return 1 / (1 + np.exp(-x))

    def rope(x, pos):
        half = N_ROT // 2
        theta = pos * base ** (-2.0 * np.arange(half) / N_ROT)
        c, s = np.cos(theta), np.sin(theta)
        y = x.copy()
        a, b = x[..., :half], x[..., half:N_ROT]
        y[..., :half], y[..., half:N_ROT] = a * c - b * s, a * s + b * c
        return y

    n = len(toks)
    x = W["token_embd.weight"][toks]
    states = {}                 # key -> (conv past [D_CONV - 1, conv_dim], M [N_V, S, S])
    for position, L in enumerate(range(N_LAYERS) if layers is None else layers):
        p = f"blk.{L}."
        h = rms(x, W[p + "attn_norm.weight"])
        if (L + 1) % INTERVAL:
            mixed, z = h @ W[p + "attn_qkv.weight"].T, h @ W[p + "attn_gate.weight"].T
            beta = sigmoid(h @ W[p + "ssm_beta.weight"].T)
            g = W[p + "ssm_a"] * np.log1p(np.exp(h @ W[p + "ssm_alpha.weight"].T + W[p + "ssm_dt.bias"]))
            cw = W[p + "ssm_conv1d.weight"]                     # [conv_dim, d_conv], column 0 the oldest
            key = L if share_states else position
            past0, M = states.get(key, (np.zeros((D_CONV - 1, mixed.shape[1])), np.zeros((N_V, S, S))))
            past = np.concatenate([past0, mixed])
            conv = silu(np.stack([(past[t:t + D_CONV].T * cw).sum(1) for t in range(n)]))
            kd = S * N_K
            q, k = conv[:, :kd].reshape(n, N_K, S), conv[:, kd:2 * kd].reshape(n, N_K, S)
            v = conv[:, 2 * kd:].reshape(n, N_V, S)
            q = q / np.sqrt((q * q).sum(-1, keepdims=True) + eps)
            k = k / np.sqrt((k * k).sum(-1, keepdims=True) + eps)
            M, out = M.copy(), np.zeros((n, N_V, S))
            for t in range(n):
                for hh in range(N_V):
                    kh, qh = k[t, hh % N_K], q[t, hh % N_K]
                    M[hh] *= np.exp(g[t, hh])
                    delta = (v[t, hh] - M[hh].T @ kh) * beta[t, hh]
                    M[hh] += np.outer(kh, delta)
                    out[t, hh] = M[hh].T @ qh / np.sqrt(S)
            states[key] = (past[-(D_CONV - 1):], M)
            o = rms(out, W[p + "ssm_norm.weight"]) * silu(z.reshape(n, N_V, S))
            y = o.reshape(n, -1) @ W[p + "ssm_out.weight"].T
        else:
            qg = (h @ W[p + "attn_q.weight"].T).reshape(n, N_HEAD, 2, HEAD_DIM)
            q, gate = rms(qg[:, :, 0], W[p + "attn_q_norm.weight"]), qg[:, :, 1]
            k = rms((h @ W[p + "attn_k.weight"].T).reshape(n, N_HEAD_KV, HEAD_DIM), W[p + "attn_k_norm.weight"])
            v = (h @ W[p + "attn_v.weight"].T).reshape(n, N_HEAD_KV, HEAD_DIM)
            pos = np.arange(n)[:, None, None]
            q, k = rope(q, pos), rope(k, pos)
            att = np.zeros((n, N_HEAD, HEAD_DIM))
            for hh in range(N_HEAD):
                kv = hh // (N_HEAD // N_HEAD_KV)
                sc = q[:, hh] @ k[:, kv].T / np.sqrt(HEAD_DIM)
                sc[np.triu_indices(n, 1)] = -np.inf
                wt = np.exp(sc - sc.max(1, keepdims=True))
                att[:, hh] = (wt / wt.sum(1, keepdims=True)) @ v[:, kv]
            y = (att * sigmoid(gate)).reshape(n, -1) @ W[p + "attn_output.weight"].T
        x = x + y
        hf = rms(x, W[p + "post_attention_norm.weight"])
        if arch == "qwen35moe":
            x = x + moe_ffn(W, p, hf)
        else:
            x = x + (silu(hf @ W[p + "ffn_gate.weight"].T) * (hf @ W[p + "ffn_up.weight"].T)) @ W[p + "ffn_down.weight"].T
    return rms(x, W["output_norm.weight"]) @ W["output.weight"].T


def check(path):
    import llama_cpp
    llm = llama_cpp.Llama(path, n_ctx=256, logits_all=True, verbose=False, n_threads=2)
    worst = 0.0
    for text in (b"The history of the printing press begins in the town of Mainz, where Gutenberg",
                 b"def fibonacci(n):\n    if n < 2:\n        return n\n"):
        toks = llm.tokenize(text, add_bos=True)
        llm.reset()
        llm.eval(toks)
        want = np.array(llm.scores[len(toks) - 1], dtype=np.float64)
        got = forward(path, toks)[-1]
        rel = float(np.abs(got - want).max() / np.abs(want).max())
        same = int(got.argmax()) == int(want.argmax())
        worst = max(worst, rel if same else 1.0)
        print(f"{'PASS' if rel <= 1e-3 and same else 'FAIL'} numpy qwen35 vs llama.cpp, {len(toks)} tokens: "
              f"max|diff|/max|logit| = {rel:.2e}, argmax {int(got.argmax())} vs {int(want.argmax())}")
    return worst <= 1e-3


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--type", default="f32", choices=("f32", "q8_0", "q4_k_m"))
    ap.add_argument("--size", default="tiny", choices=sorted(SIZES))
    ap.add_argument("--moe", action="store_true", help="qwen35moe")
    a = ap.parse_args()
    if a.check and a.size != "tiny":
        ap.error("--check: the numpy pass is the tiny model's")
    write(a.out, qtype=a.type, moe=a.moe, size=a.size)
    print(f"{a.out}: {os.path.getsize(a.out)} bytes")
    if a.check and not check(a.out):
        sys.exit(1)


if __name__ == "__main__":
    main()
