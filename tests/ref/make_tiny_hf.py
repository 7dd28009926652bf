#!/usr/bin/env python3
"""make_tiny_hf: a tiny Hugging Face-style model directory for export tests.

Written with the `safetensors` package (numpy flavour, no torch), so the files
are what real Hugging Face tooling produces: a llama-like config with
num_hidden_layers=4 and a per-layer `layer_types` list, random weights in a
few dtypes, optionally sharded into two files with model.safetensors.index.json,
and the tokenizer / generation side files an exporter must carry along.
The multimodal flavour nests the decoder config under text_config and names
the layers model.language_model.layers.N.* beside a vision tower whose own
"layers" must be left alone.

usage: make_tiny_hf.py OUT_DIR [--single] [--multimodal]
"""
import json
import os
import sys

import numpy as np
from safetensors.numpy import save_file

N_LAYERS = 4
HIDDEN = 16
VOCAB = 40
LAYER_TYPES = ["sliding_attention", "full_attention", "sliding_attention", "full_attention"]
SIDE_FILES = {
    "tokenizer.json": '{"version": "1.0", "model": {"type": "BPE", "vocab": {}, "merges": []}}\n',
    "tokenizer_config.json": '{"bos_token": "<s>", "eos_token": "</s>"}\n',
    "special_tokens_map.json": '{"bos_token": "<s>"}\n',
    "generation_config.json": '{"bos_token_id": 1, "eos_token_id": 2}\n',
    "chat_template.jinja": "{% for m in messages %}{{ m['content'] }}{% endfor %}\n",
}


def layer_tensors(rng, layer):
    """One decoder layer: float32 matrices, a float16 norm, an int64 buffer."""
    return {
        "self_attn.q_proj.weight": rng.standard_normal((HIDDEN, HIDDEN)).astype(np.float32),
        "self_attn.k_proj.weight": rng.standard_normal((HIDDEN // 2, HIDDEN)).astype(np.float32),
        "mlp.down_proj.weight": rng.standard_normal((HIDDEN, 2 * HIDDEN)).astype(np.float32),
        "input_layernorm.weight": (1 + 0.01 * layer + rng.standard_normal(HIDDEN) * 0.1).astype(np.float16),
        "self_attn.rotary_emb.inv_freq_index": np.arange(layer, layer + 4, dtype=np.int64),
    }


def make_tiny_hf(out_dir, sharded=True, multimodal=False, seed=1234):
    """Writes the model; returns {tensor name: numpy array} of everything written."""
    rng = np.random.default_rng(seed)
    os.makedirs(out_dir, exist_ok=True)
    prefix = "model.language_model.layers." if multimodal else "model.layers."
    embed = "model.language_model.embed_tokens.weight" if multimodal else "model.embed_tokens.weight"
    norm = "model.language_model.norm.weight" if multimodal else "model.norm.weight"
    head = {embed: rng.standard_normal((VOCAB, HIDDEN)).astype(np.float32)}
    tail = {norm: np.ones(HIDDEN, dtype=np.float32), "lm_head.weight": rng.standard_normal((VOCAB, HIDDEN)).astype(np.float32)}
    if multimodal:
        for v in range(2):
            head[f"model.vision_tower.encoder.layers.{v}.mlp.fc1.weight"] = rng.standard_normal((8, 8)).astype(np.float32)
    layers = {}
    for layer in range(N_LAYERS):
        for name, arr in layer_tensors(rng, layer).items():
            layers[f"{prefix}{layer}.{name}"] = arr

    text_config = {
        "hidden_size": HIDDEN, "intermediate_size": 2 * HIDDEN, "num_attention_heads": 2, "num_key_value_heads": 1,
        "num_hidden_layers": N_LAYERS, "layer_types": list(LAYER_TYPES), "vocab_size": VOCAB,
        "rms_norm_eps": 1e-6, "sliding_window": 64, "model_type": "llama",
    }
    if multimodal:
        config = {"architectures": ["TinyForConditionalGeneration"], "model_type": "tiny_mm",
                  "text_config": text_config,
                  "vision_config": {"num_hidden_layers": 2, "hidden_size": 8}}
    else:
        config = dict(text_config, architectures=["LlamaForCausalLM"])
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    for name, text in SIDE_FILES.items():
        with open(os.path.join(out_dir, name), "w") as f:
            f.write(text)

    everything = {**head, **layers, **tail}
    if not sharded:
        save_file(everything, os.path.join(out_dir, "model.safetensors"), metadata={"format": "pt"})
        return everything
    # layers 0-1 with the embeddings in the first shard, the rest in the second
    first = dict(head)
    second = dict(tail)
    for name, arr in layers.items():
        (first if int(name[len(prefix):].split(".")[0]) < 2 else second)[name] = arr
    shards = {"model-00001-of-00002.safetensors": first, "model-00002-of-00002.safetensors": second}
    weight_map = {}
    for fname, tensors in shards.items():
        save_file(tensors, os.path.join(out_dir, fname), metadata={"format": "pt"})
        weight_map.update({n: fname for n in tensors})
    total = sum(a.nbytes for a in everything.values())
    with open(os.path.join(out_dir, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}, f, indent=2)
    return everything


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if len(args) != 1:
        sys.exit(__doc__)
    make_tiny_hf(args[0], sharded="--single" not in sys.argv, multimodal="--multimodal" in sys.argv)
    print(args[0])
