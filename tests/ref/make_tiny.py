#!/usr/bin/env python3
"""make_tiny: tiny deterministic GGUF models for forward-pass reference tests.

Written with the Python `gguf` package (GGUFWriter), independently of rys's own
GGUF writer, with the tensor names and metadata llama.cpp expects per
architecture, so llama.cpp loads the same files rys does:

  llama  tied embeddings (no output.weight), "normal" RoPE, BOS added
  qwen2  q/k/v biases, untied output.weight, NEOX RoPE
  qwen3  attn_q_norm/attn_k_norm, no biases, head_dim (key_length 32) larger
         than embedding_length / head_count (16), as real Qwen3 has

Shared shape: 4 layers, dim 64, ffn 128, 4 query heads over 2 KV heads (GQA),
context 256, a real byte-level BPE vocabulary of 300 tokens (256 GPT-2 byte
symbols, 41 merges, <|endoftext|> <|im_start|> <|im_end|>) with pre-tokenizer
"qwen2" and a ChatML template. Weights are seeded random; norms are F32 and
matrices rotate through F16/BF16/Q8_0/Q4_0/Q4_1/Q5_0/Q5_1 (two small ones
are F32), so each file exercises all of them. Each file stays under 300 KB.

  gemma3 (make_tiny_gemma3) has its own shape, in Gemma 3's ratios: 8 layers
         (0-4 and 6-7 sliding, 5 global: both kinds, and a path can repeat
         either), dim 64, 4 query heads over 2 KV heads of head_dim 32 (so
         head_dim != dim / n_head and n_head * head_dim = 2 dim), ffn 4 dim,
         sliding window 7 (shorter than the golden sequences, and under the
         engine's 16-query blocks), rope base 1e6 with linear scaling 8 on the
         global layers (as the 4B-27B files have), tied embeddings, q/k norms,
         post-attention and post-FFN norms, norm weights around 1 (GGUF holds
         1 + w, see numpy_forward.py), the same BPE vocabulary with BOS
         added. Under 560 KB.

usage: make_tiny.py [OUT_DIR [ARCH...]]   (default tests/data and all four;
       writes tiny-<arch>.gguf)
"""
import os
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T
from gguf.quants import quantize

ARCHS = ("llama", "qwen2", "qwen3", "gemma3")
N_LAYERS, DIM, FFN, N_HEAD, N_HEAD_KV, CTX = 4, 64, 128, 4, 2, 256
QWEN3_HEAD_DIM = 32
MATRIX_TYPES = (T.F16, T.Q8_0, T.Q4_0, T.Q5_1, T.BF16, T.Q4_1, T.Q5_0, T.Q8_0)
F32_MATRICES = ("blk.1.attn_k.weight", "blk.2.attn_v.weight")
CHATML = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content']"
          " + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}"
          "{% endif %}")
# Merges in rank order; each one's parts are byte symbols or earlier results.
MERGES = ["Ġ t", "h e", "Ġ a", "i n", "r e", "o n", "Ġt he", "e r", "Ġ s", "a t", "e n", "o r",
          "Ġ w", "Ġ o", "e s", "i s", "Ġ c", "l l", "Ġ b", "Ġ f", "a n", "an d", "Ġ and", "i t",
          "Ġ p", "e d", "in g", "Ġ m", "Ġ i", "o u", "a r", "Ġ d", "Ġo f", "Ġ h", "l e", "Ġt o",
          "Ġ l", "Ġ in", "Ġ n", "s t", "i c"]
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def byte_symbols():
    """GPT-2's reversible byte -> printable unicode map, in its own list order."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for c in cs]


def vocabulary():
    tokens = byte_symbols()
    for m in MERGES:
        a, b = m.split(" ")
        assert a in tokens and b in tokens, m
        tokens.append(a + b)
    assert len(set(tokens)) == len(tokens)
    types = [gguf.TokenType.NORMAL] * len(tokens) + [gguf.TokenType.CONTROL] * len(SPECIALS)
    return tokens + SPECIALS, types


def add_matrix(w, name, arr, qtype):
    """arr is numpy [rows=out, cols=in]; GGUF ne = [in, out]."""
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    if name in F32_MATRICES:
        qtype = T.F32
    if qtype == T.F32:
        w.add_tensor(name, arr)
    elif qtype == T.F16:
        w.add_tensor(name, arr.astype(np.float16))
    else:
        w.add_tensor(name, quantize(arr, qtype), raw_dtype=qtype)


def make_tiny(arch, out_path):
    seed = {"llama": 11, "qwen2": 22, "qwen3": 33}[arch]
    rng = np.random.default_rng(seed)
    head_dim = QWEN3_HEAD_DIM if arch == "qwen3" else DIM // N_HEAD
    q_dim, kv_dim = N_HEAD * head_dim, N_HEAD_KV * head_dim
    tokens, types = vocabulary()
    n_vocab = len(tokens)
    eos = tokens.index("<|im_end|>") if arch != "llama" else tokens.index("<|endoftext|>")

    w = gguf.GGUFWriter(out_path, arch)
    w.add_name(f"rys tiny {arch}")
    w.add_block_count(N_LAYERS)
    w.add_context_length(CTX)
    w.add_embedding_length(DIM)
    w.add_feed_forward_length(FFN)
    w.add_head_count(N_HEAD)
    w.add_head_count_kv(N_HEAD_KV)
    w.add_layer_norm_rms_eps(1e-5 if arch == "llama" else 1e-6)
    w.add_rope_freq_base(10000.0 if arch == "llama" else 1000000.0)
    if arch == "llama":
        w.add_rope_dimension_count(head_dim)
        w.add_vocab_size(n_vocab)
    if arch == "qwen3":
        w.add_key_length(head_dim)
        w.add_value_length(head_dim)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("qwen2")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(MERGES)
    w.add_bos_token_id(tokens.index("<|endoftext|>"))
    w.add_eos_token_id(eos)
    w.add_pad_token_id(tokens.index("<|endoftext|>"))
    w.add_add_bos_token(arch == "llama")
    w.add_chat_template(CHATML)

    def mat(rows, cols, scale=1.0):
        return rng.standard_normal((rows, cols)) * (scale / np.sqrt(cols))

    def norm(n):
        return (1.0 + 0.2 * rng.standard_normal(n)).astype(np.float32)

    rot = {"llama": 0, "qwen2": 3, "qwen3": 5}[arch]

    def next_type():
        nonlocal rot
        rot += 1
        return MATRIX_TYPES[rot % len(MATRIX_TYPES)]

    add_matrix(w, "token_embd.weight", rng.standard_normal((n_vocab, DIM)) * 0.7,
               T.Q8_0 if arch != "qwen2" else T.F16)
    for L in range(N_LAYERS):
        p = f"blk.{L}."
        w.add_tensor(p + "attn_norm.weight", norm(DIM))
        add_matrix(w, p + "attn_q.weight", mat(q_dim, DIM, 1.0), next_type())
        add_matrix(w, p + "attn_k.weight", mat(kv_dim, DIM, 1.0), next_type())
        add_matrix(w, p + "attn_v.weight", mat(kv_dim, DIM), next_type())
        if arch == "qwen2":
            for t, n in (("q", q_dim), ("k", kv_dim), ("v", kv_dim)):
                w.add_tensor(p + f"attn_{t}.bias", (0.3 * rng.standard_normal(n)).astype(np.float32))
        if arch == "qwen3":
            w.add_tensor(p + "attn_q_norm.weight", norm(head_dim))
            w.add_tensor(p + "attn_k_norm.weight", norm(head_dim))
        add_matrix(w, p + "attn_output.weight", mat(DIM, q_dim), next_type())
        w.add_tensor(p + "ffn_norm.weight", norm(DIM))
        add_matrix(w, p + "ffn_gate.weight", mat(FFN, DIM), next_type())
        add_matrix(w, p + "ffn_up.weight", mat(FFN, DIM), next_type())
        add_matrix(w, p + "ffn_down.weight", mat(DIM, FFN), next_type())
    w.add_tensor("output_norm.weight", norm(DIM))
    if arch != "llama":
        add_matrix(w, "output.weight", mat(n_vocab, DIM, 3.0), T.Q8_0 if arch == "qwen3" else T.F16)

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    size = os.path.getsize(out_path)
    if size >= 300 * 1024:
        raise SystemExit(f"{out_path}: {size} bytes, over the 300 KB budget")
    return size


GEMMA3_LAYERS, GEMMA3_HEAD_DIM, GEMMA3_FFN, GEMMA3_WINDOW = 8, 32, 192, 7


def make_tiny_gemma3(out_path):
    rng = np.random.default_rng(44)
    head_dim = GEMMA3_HEAD_DIM
    q_dim, kv_dim = N_HEAD * head_dim, N_HEAD_KV * head_dim
    tokens, types = vocabulary()
    n_vocab = len(tokens)

    w = gguf.GGUFWriter(out_path, "gemma3")
    w.add_name("rys tiny gemma3")
    w.add_block_count(GEMMA3_LAYERS)
    w.add_context_length(CTX)
    w.add_embedding_length(DIM)
    w.add_feed_forward_length(GEMMA3_FFN)
    w.add_head_count(N_HEAD)
    w.add_head_count_kv(N_HEAD_KV)
    w.add_key_length(head_dim)
    w.add_value_length(head_dim)
    w.add_layer_norm_rms_eps(1e-6)
    w.add_rope_freq_base(1000000.0)
    w.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
    w.add_rope_scaling_factor(8.0)
    w.add_sliding_window(GEMMA3_WINDOW)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("qwen2")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(MERGES)
    w.add_bos_token_id(tokens.index("<|endoftext|>"))
    w.add_eos_token_id(tokens.index("<|im_end|>"))
    w.add_pad_token_id(tokens.index("<|endoftext|>"))
    w.add_add_bos_token(True)
    w.add_chat_template(CHATML)

    def mat(rows, cols, scale=1.0):
        return rng.standard_normal((rows, cols)) * (scale / np.sqrt(cols))

    def norm(n):
        return (1.0 + 0.2 * rng.standard_normal(n)).astype(np.float32)

    rot = 2

    def next_type():
        nonlocal rot
        rot += 1
        return MATRIX_TYPES[rot % len(MATRIX_TYPES)]

    # embeddings of rms ~0.4, x sqrt(64) = 8 on input; tied output
    add_matrix(w, "token_embd.weight", rng.standard_normal((n_vocab, DIM)) * 0.4, T.Q8_0)
    for L in range(GEMMA3_LAYERS):
        p = f"blk.{L}."
        w.add_tensor(p + "attn_norm.weight", norm(DIM))
        add_matrix(w, p + "attn_q.weight", mat(q_dim, DIM), next_type())
        add_matrix(w, p + "attn_k.weight", mat(kv_dim, DIM), next_type())
        add_matrix(w, p + "attn_v.weight", mat(kv_dim, DIM), next_type())
        w.add_tensor(p + "attn_q_norm.weight", norm(head_dim))
        w.add_tensor(p + "attn_k_norm.weight", norm(head_dim))
        add_matrix(w, p + "attn_output.weight", mat(DIM, q_dim), next_type())
        w.add_tensor(p + "post_attention_norm.weight", norm(DIM))
        w.add_tensor(p + "ffn_norm.weight", norm(DIM))
        add_matrix(w, p + "ffn_gate.weight", mat(GEMMA3_FFN, DIM), next_type())
        add_matrix(w, p + "ffn_up.weight", mat(GEMMA3_FFN, DIM), next_type())
        add_matrix(w, p + "ffn_down.weight", mat(DIM, GEMMA3_FFN), next_type())
        w.add_tensor(p + "post_ffw_norm.weight", norm(DIM))
    w.add_tensor("output_norm.weight", norm(DIM))

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    size = os.path.getsize(out_path)
    if size >= 600 * 1024:
        raise SystemExit(f"{out_path}: {size} bytes, over the 600 KB budget")
    return size


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "data")
    archs = sys.argv[2:] or ARCHS
    os.makedirs(out_dir, exist_ok=True)
    for arch in archs:
        path = os.path.join(out_dir, f"tiny-{arch}.gguf")
        size = make_tiny_gemma3(path) if arch == "gemma3" else make_tiny(arch, path)
        print(f"{path}: {size} bytes")


if __name__ == "__main__":
    main()
