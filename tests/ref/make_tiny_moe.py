#!/usr/bin/env python3
"""make_tiny_moe: small qwen3moe GGUFs with random weights, for the MoE
reference checks (no mixture-of-experts model ships in a package these
machines reach).

Written with the Python `gguf` package, with the tensors and metadata
llama.cpp's qwen3moe loader reads: qwen3's attention (q/k norms, NEOX RoPE,
head_dim larger than dim / n_head), and per layer a router ffn_gate_inp
[dim -> n_expert] (F32 in every variant, as llama.cpp's quantizer leaves it)
and three 3-D expert tensors ffn_gate_exps, ffn_up_exps [dim -> expert_ffn,
n_expert] and ffn_down_exps [expert_ffn -> dim, n_expert]; expert_count,
expert_used_count and expert_feed_forward_length in the metadata (and a
feed_forward_length of expert_ffn x used, the dense equivalent, as the
converter writes it). The router's weights are scaled so that a token's
softmax is neither flat nor one-hot, and each expert has its own scale, so
the choice of experts and their weights both matter to the output.

Sizes, in Qwen3-30B-A3B's ratios (128 experts, 8 used, expert_ffn 0.375 dim,
32 query heads over 4 KV heads):
  tiny  4 layers, dim 64, 4 query heads over 2 KV heads of head_dim 32,
        16 experts, 4 used, expert_ffn 32; the byte-level BPE vocabulary of
        make_tiny.py. Types: f32 (every tensor F32) or q8_0 (matrices and
        experts Q8_0, embeddings Q8_0, norms and router F32).
  mid   6 layers, dim 256, 8 query heads over 2 KV heads of head_dim 64,
        32 experts, 4 used, expert_ffn 256, the same vocabulary. Types: f32,
        q8_0, and q4_k_m: the f32 file through llama.cpp's own quantizer
        (llama_model_quantize, as the real releases are made; experts Q4_K
        with some down projections Q6_K).
  a3b   2 layers of Qwen3-30B-A3B's own shapes (dim 2048, 32 query heads over
        4 KV heads of head_dim 128, 128 experts, 8 used, expert_ffn 768), the
        same vocabulary: the MoE speed benchmark's model (bench/vs-peers on
        it; q4_k_m is 0.7 GB, its F32 intermediate 4.8 GB).

usage: make_tiny_moe.py OUT.gguf [--size tiny|mid] [--type f32|q8_0|q4_k_m] [--seed N]
API:   make_moe(path, size="tiny", qtype="f32", seed=None)
"""
import argparse
import os
import sys
import tempfile

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T
from gguf.quants import quantize

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_tiny import CHATML, MERGES, vocabulary  # noqa: E402

SIZES = {
    "tiny": dict(n_layers=4, dim=64, n_head=4, n_head_kv=2, head_dim=32, n_expert=16, n_used=4, expert_ffn=32,
                 seed=55),
    "mid": dict(n_layers=6, dim=256, n_head=8, n_head_kv=2, head_dim=64, n_expert=32, n_used=4, expert_ffn=256,
                seed=66),
    "a3b": dict(n_layers=2, dim=2048, n_head=32, n_head_kv=4, head_dim=128, n_expert=128, n_used=8, expert_ffn=768,
                seed=77),
}
CTX = 1024


def _add(w, name, arr, qtype):
    """arr is numpy [..., rows=out, cols=in]; GGUF ne = [in, out, ...]."""
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    if qtype == T.F32:
        w.add_tensor(name, arr)
    else:
        w.add_tensor(name, quantize(arr, qtype), raw_dtype=qtype)


def _write(path, size, qtype, seed, broken=None):
    c = SIZES[size]
    rng = np.random.default_rng(c["seed"] if seed is None else seed)
    dim, hd, ne, nu, ef = c["dim"], c["head_dim"], c["n_expert"], c["n_used"], c["expert_ffn"]
    q_dim, kv_dim = c["n_head"] * hd, c["n_head_kv"] * hd
    tokens, types = vocabulary()
    n_vocab = len(tokens)
    mat_t = T.F32 if qtype == "f32" else T.Q8_0

    w = gguf.GGUFWriter(path, "qwen3moe")
    w.add_name(f"rys {size} qwen3moe {qtype}")
    w.add_block_count(c["n_layers"])
    w.add_context_length(CTX)
    w.add_embedding_length(dim)
    w.add_feed_forward_length(ef * nu)
    w.add_expert_feed_forward_length(ef)
    w.add_expert_count(ne)
    w.add_expert_used_count(ne + 1 if broken == "used" else nu)
    w.add_head_count(c["n_head"])
    w.add_head_count_kv(c["n_head_kv"])
    w.add_key_length(hd)
    w.add_value_length(hd)
    w.add_layer_norm_rms_eps(1e-6)
    w.add_rope_freq_base(1000000.0)
    w.add_file_type(gguf.LlamaFileType.ALL_F32 if qtype == "f32" else gguf.LlamaFileType.MOSTLY_Q8_0)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("qwen2")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(MERGES)
    w.add_bos_token_id(tokens.index("<|endoftext|>"))
    w.add_eos_token_id(tokens.index("<|im_end|>"))
    w.add_pad_token_id(tokens.index("<|endoftext|>"))
    w.add_add_bos_token(False)
    w.add_chat_template(CHATML)

    def mat(*shape, scale=1.0):
        return rng.standard_normal(shape) * (scale / np.sqrt(shape[-1]))

    def norm(n):
        return (1.0 + 0.2 * rng.standard_normal(n)).astype(np.float32)

    _add(w, "token_embd.weight", rng.standard_normal((n_vocab, dim)) * 0.7, T.F32 if qtype == "f32" else T.Q8_0)
    for L in range(c["n_layers"]):
        p = f"blk.{L}."
        w.add_tensor(p + "attn_norm.weight", norm(dim))
        _add(w, p + "attn_q.weight", mat(q_dim, dim), mat_t)
        _add(w, p + "attn_k.weight", mat(kv_dim, dim), mat_t)
        _add(w, p + "attn_v.weight", mat(kv_dim, dim), mat_t)
        w.add_tensor(p + "attn_q_norm.weight", norm(hd))
        w.add_tensor(p + "attn_k_norm.weight", norm(hd))
        _add(w, p + "attn_output.weight", mat(dim, q_dim), mat_t)
        w.add_tensor(p + "ffn_norm.weight", norm(dim))
        # router logits of spread ~1.5: a few experts stand out, none owns the token
        _add(w, p + "ffn_gate_inp.weight", mat(ne, dim, scale=1.5), T.F32)
        scale = (0.6 + 0.8 * rng.random(ne))[:, None, None]   # each expert its own output scale
        _add(w, p + "ffn_gate_exps.weight", mat(ne, ef, dim), mat_t)
        # broken="experts": layer 1's up projections hold one expert too few
        _add(w, p + "ffn_up_exps.weight", mat(ne - (broken == "experts" and L == 1), ef, dim), mat_t)
        _add(w, p + "ffn_down_exps.weight", mat(ne, dim, ef, scale=2.0) * scale, mat_t)
    w.add_tensor("output_norm.weight", norm(dim))
    _add(w, "output.weight", mat(n_vocab, dim, scale=3.0), mat_t)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def quantize_llama(src, dst, ftype):
    """src (F32) -> dst through llama.cpp's quantizer, as llama-quantize does."""
    import llama_cpp
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftype
    params.nthread = 2
    rc = llama_cpp.llama_model_quantize(src.encode(), dst.encode(), params)
    if rc != 0:
        raise RuntimeError(f"llama_model_quantize({src}) failed: {rc}")


def make_moe(path, size="tiny", qtype="f32", seed=None, broken=None):
    """Writes the model; broken = "used" (expert_used_count > expert_count) or
    "experts" (a 3-D tensor short of one expert) makes a file rys must refuse."""
    if size not in SIZES:
        raise ValueError(f"size {size}: not one of {', '.join(SIZES)}")
    if qtype in ("f32", "q8_0"):
        _write(path, size, qtype, seed, broken)
    elif qtype == "q4_k_m":
        import llama_cpp
        with tempfile.TemporaryDirectory(prefix="rys-moe-") as tmp:
            f32 = os.path.join(tmp, "f32.gguf")
            _write(f32, size, "f32", seed)
            quantize_llama(f32, path, llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_K_M)
    else:
        raise ValueError(f"type {qtype}: not one of f32, q8_0, q4_k_m")
    return os.path.getsize(path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("--size", default="tiny", choices=sorted(SIZES))
    ap.add_argument("--type", default="f32", choices=("f32", "q8_0", "q4_k_m"))
    ap.add_argument("--seed", type=int)
    a = ap.parse_args()
    print(f"{a.out}: {make_moe(a.out, a.size, a.type, a.seed)} bytes")


if __name__ == "__main__":
    main()
