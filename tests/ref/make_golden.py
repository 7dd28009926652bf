#!/usr/bin/env python3
"""make_golden: golden logits for the tiny models along several layer paths,
computed by numpy_forward.py (float64, independent of rys), in a line format
a C test reads with sscanf/strtod, no JSON library.

Writes tests/data/golden/tiny-<arch>.<tag>.txt for each path below. Format
(whitespace-separated, one record per line, '#' lines are comments):

  model tiny-llama.gguf            file name under tests/data/
  spec blocks:1,3                  the path as given ("blocks:..." / "layers:...";
                                   strip the prefix for --blocks / --layers)
  path 6 0 1 2 1 2 3               path length, then the layer index per position
  tokens 16 298 84 ...             count, then token ids (fed as given, no BOS added)
  vocab 300
  last 300 v0 v1 ... v299          logits of the last position (%.9g)
  topk POS 5 id lp id lp ...       for every position POS = 0..count-1: the 5
                                   highest tokens and their log-probabilities
                                   (log-softmax over the vocabulary), best first
  end

The reference evaluates all tokens in one pass; every position's values are the
same for any chunking (prefill then one token at a time), so a test may feed
them either way.

Tolerances. The tiny models' matrices are quantized (Q4_0..Q8_0, F16, BF16), and
an engine that quantizes activations as llama.cpp does (Q8 blocks, F16/BF16)
lands 1-2.5e-2 * max|logit| from these exact values (llama.cpp itself: 1.2-1.6e-2
at the last position, rys at the time of writing: <= 2.4e-2), while a different
layer path moves the last logits by 0.3-0.95 * max|logit|. Suggested: last
max|diff| <= 5e-2 * max|golden last|; the log-probabilities of the golden top-k
within 0.5; the top-1 token equal wherever the golden margin lp[0] - lp[1]
exceeds 0.5 (measured disagreements occurred only at margins <= 0.14).

tiny-gemma3 (8 layers, window 7, its own paths below): rys at the time of
writing lands 0.8-1.4e-2 * max|logit| from the last logits and within 0.18 on
the top-5 log-probabilities, the same bounds as the others; a different path
moves the last logits by 0.14-0.41, and each of these slips in rys's gemma3
forward failed the bounds when tried: window of 6 or 8 keys instead of 7, no
window, local RoPE base 1e6, no linear RoPE scaling on the global layer or
scaling on the sliding ones too, attention scale 1/sqrt(dim/n_head), either
post-norm dropped, SiLU for GELU, no embedding scale, layer 0 global
instead of 5.

usage: make_golden.py [OUT_DIR [ARCH...]]   (default tests/data/golden, all four)
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from numpy_forward import Model, forward, parse_path  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "data")
ARCHS = ("llama", "qwen2", "qwen3", "gemma3")
# (spec, file tag); N = 4 layers
SPECS = [
    ("blocks:0,0", "base"),
    ("blocks:0,4", "b0-4"),
    ("blocks:1,3", "b1-3"),
    ("blocks:2,4", "b2-4"),
    ("blocks:1,3;2,4", "b1-3_2-4"),
    ("layers:0,1,1,1,2,3", "l0-1-1-1-2-3"),
]
# tiny-gemma3: 8 layers, layer 5 global, the rest sliding (window 7 < 32 tokens)
GEMMA3_SPECS = [
    ("blocks:0,0", "base"),
    ("blocks:2,6", "b2-6"),             # repeats 2..5: the global layer twice
    ("blocks:0,8", "b0-8"),             # the whole model twice
    ("blocks:5,7", "b5-7"),             # global then sliding, repeated
    ("blocks:1,3;4,6", "b1-3_4-6"),
    ("layers:0,1,2,3,4,5,5,6,7", "l0-5-5-7"),
]
SPECS_BY_ARCH = {"gemma3": GEMMA3_SPECS}
# "<|im_start|>user\nHello the world<|im_end|>\n<|im_start|>assistant\n" in the tiny
# vocabulary, then a few arbitrary ids (byte tokens, merges, <|endoftext|>)
TOKENS = [298, 84, 82, 263, 198, 39, 68, 273, 78, 262, 268, 267, 75, 67, 299, 198,
          298, 64, 82, 82, 72, 82, 83, 64, 77, 83, 198, 5, 140, 277, 297, 31]
TOP_K = 5


def log_softmax(x):
    m = x.max(axis=-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=-1, keepdims=True))


def write_golden(out_dir, arch, model, spec, tag):
    path = parse_path(spec, model.n_layers)
    logits = forward(model, TOKENS, path)
    lp = log_softmax(logits)
    lines = [
        f"# golden logits, written by tests/ref/make_golden.py (numpy_forward.py, float64); format: see there",
        f"model tiny-{arch}.gguf",
        f"spec {spec}",
        f"path {len(path)} " + " ".join(map(str, path)),
        f"tokens {len(TOKENS)} " + " ".join(map(str, TOKENS)),
        f"vocab {model.n_vocab}",
        f"last {model.n_vocab} " + " ".join(f"{v:.9g}" for v in logits[-1]),
    ]
    for pos in range(len(TOKENS)):
        best = np.argsort(-lp[pos], kind="stable")[:TOP_K]
        lines.append(f"topk {pos} {TOP_K} " + " ".join(f"{int(t)} {lp[pos, t]:.9g}" for t in best))
    lines.append("end")
    name = os.path.join(out_dir, f"tiny-{arch}.{tag}.txt")
    with open(name, "w") as f:
        f.write("\n".join(lines) + "\n")
    return name


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(DATA, "golden")
    os.makedirs(out_dir, exist_ok=True)
    for arch in sys.argv[2:] or ARCHS:
        model = Model(os.path.join(DATA, f"tiny-{arch}.gguf"))
        assert max(TOKENS) < model.n_vocab
        for spec, tag in SPECS_BY_ARCH.get(arch, SPECS):
            print(write_golden(out_dir, arch, model, spec, tag))


if __name__ == "__main__":
    main()
