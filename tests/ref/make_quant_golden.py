#!/usr/bin/env python3
"""make_quant_golden: golden vectors for tests/test_quant.c, from references
independent of rys.

For every format rys computes with, writes tests/data/quant/<TYPE>.bin holding
a few blocks of raw ggml bytes and what the `gguf` package (llama.cpp's own
numpy implementation) dequantizes them to; for F16 and BF16 also the f32
values the bytes were converted from, so the C converters are checked too.

Where the blocks come from:
  F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0: gguf.quants.quantize of
      synthetic rows (random, all-zero, constant, outliers, special floats);
  Q4_K, Q5_K, Q6_K: gguf has no quantizer for them, so ggml's own
      ggml_quantize_chunk (the libggml-base shipped with llama-cpp-python) on
      the same synthetic rows;
  and, where the model cache has them, real blocks of the real models
      (Q4_1 from smollm2-135m; Q5_0, Q8_0, Q4_K, Q6_K from qwen2.5-coder-0.5b).

File layout (little-endian): "RYSQGLD1", u32 ggml type, u32 element count n,
u32 has_source (0/1), u32 0; then the raw blocks (n / block_size * type_size
bytes); then n f32 expected values; then n f32 source values if has_source.

usage: make_quant_golden.py [OUT_DIR]   (default tests/data/quant)
"""
import ctypes
import glob
import os
import struct
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as QT

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODELS = os.environ.get("RYS_CACHE_DIR", os.path.expanduser("~/.cache/rys")) + "/models"
TYPES = [QT.F32, QT.F16, QT.BF16, QT.Q4_0, QT.Q4_1, QT.Q5_0, QT.Q5_1, QT.Q8_0, QT.Q4_K, QT.Q5_K, QT.Q6_K]
REAL = {QT.Q4_1: "smollm2-135m", QT.Q5_0: "qwen2.5-coder-0.5b", QT.Q8_0: "qwen2.5-coder-0.5b",
        QT.Q4_K: "qwen2.5-coder-0.5b", QT.Q6_K: "qwen2.5-coder-0.5b"}
K_QUANTS = (QT.Q4_K, QT.Q5_K, QT.Q6_K)


def synthetic_rows(block, n_blocks, rng):
    """Rows of n_blocks*block values exercising scales, signs and edge blocks."""
    n = block * n_blocks
    rows = [
        rng.standard_normal(n).astype(np.float32),
        (rng.standard_normal(n) * 1e-3).astype(np.float32),
        (rng.uniform(0.5, 2.0, n) * 40).astype(np.float32),       # all positive: minimum matters
        np.zeros(n, np.float32),
        np.full(n, -0.75, np.float32),
    ]
    spiky = (rng.standard_normal(n) * 0.02).astype(np.float32)
    spiky[::37] = rng.standard_normal(len(spiky[::37])) * 8       # outliers set the scale
    rows.append(spiky)
    return np.stack(rows)


def float_specials():
    """f32 values at the edges of the fp16/bf16 conversions."""
    v = [0.0, -0.0, 1.0, -2.5, 65504.0, 65519.0, 65520.0, 1e5, -1e38, np.inf, -np.inf,
         6.1035156e-05, 5.9604645e-08, 2.9802322e-08, 2.9802326e-08, 8.940697e-08, 1e-10,
         1.00048828125, 1.00146484375, 3.0000002, 1.0000001, 1.00390625, 1.01171875]
    bits = np.array([0x7FC00000, 0xFFC00001, 0x7F800001, 0x3F808000, 0x3F818000, 0x00000001], np.uint32)
    return np.concatenate([np.array(v, np.float32), bits.view(np.float32)])


def ggml_quantizer():
    """ggml_quantize_chunk from the ggml that llama-cpp-python ships."""
    import llama_cpp
    libdir = os.path.join(os.path.dirname(llama_cpp.__file__), "lib")
    lib = ctypes.CDLL(glob.glob(os.path.join(libdir, "libggml-base.so*"))[0])
    f = lib.ggml_quantize_chunk
    f.restype = ctypes.c_size_t
    f.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64,
                  ctypes.c_int64, ctypes.c_void_p]

    def quantize(x, qtype):
        x = np.ascontiguousarray(x, np.float32)
        _, tsize = gguf.GGML_QUANT_SIZES[qtype]
        bsize = gguf.GGML_QUANT_SIZES[qtype][0]
        out = np.zeros(x.shape[0] * x.shape[1] // bsize * tsize, np.uint8)
        f(int(qtype), x.ctypes.data, out.ctypes.data, 0, x.shape[0], x.shape[1], None)
        return out.reshape(x.shape[0], -1)
    return quantize


def real_blocks(qtype, n_blocks):
    """The first n_blocks blocks of the first tensor of qtype in the model."""
    path = os.path.join(MODELS, REAL[qtype] + ".gguf")
    if not os.path.exists(path):
        return None
    reader = gguf.GGUFReader(path)
    _, tsize = gguf.GGML_QUANT_SIZES[qtype]
    for t in reader.tensors:
        if t.tensor_type == qtype:
            raw = np.asarray(t.data).reshape(-1)[: n_blocks * tsize]
            return raw.reshape(1, -1).copy()
    return None


def write(out_dir, qtype, raw, expected, source):
    raw = np.ascontiguousarray(raw, np.uint8).reshape(-1)
    expected = np.ascontiguousarray(expected, np.float32).reshape(-1)
    bsize, tsize = gguf.GGML_QUANT_SIZES[qtype]
    assert raw.size == expected.size // bsize * tsize
    with open(os.path.join(out_dir, qtype.name + ".bin"), "wb") as f:
        f.write(b"RYSQGLD1")
        f.write(struct.pack("<IIII", int(qtype), expected.size, source is not None, 0))
        f.write(raw.tobytes())
        f.write(expected.tobytes())
        if source is not None:
            f.write(np.ascontiguousarray(source, np.float32).reshape(-1).tobytes())


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "tests", "data", "quant")
    os.makedirs(out_dir, exist_ok=True)
    rng = np.random.default_rng(20240611)
    ggml_quantize = ggml_quantizer()
    for qtype in TYPES:
        bsize, _ = gguf.GGML_QUANT_SIZES[qtype]
        source = None
        if bsize == 1:
            source = np.concatenate([float_specials(), synthetic_rows(8, 8, rng).reshape(-1)])
            source = source[: len(source) // 8 * 8].reshape(1, -1)
            with np.errstate(over="ignore"):  # 1e5 and -1e38 overflow fp16 to inf, as they should
                raw = gguf.quants.quantize(source, qtype).view(np.uint8)
        elif qtype in K_QUANTS:
            raw = ggml_quantize(synthetic_rows(bsize, 1, rng), qtype)
        else:
            src = synthetic_rows(bsize, 2, rng)
            raw = gguf.quants.quantize(src, qtype)
        raw = raw.reshape(1, -1)
        if qtype in REAL:
            real = real_blocks(qtype, 4 if qtype in K_QUANTS else 8)
            if real is None:
                print(f"warning: no {REAL[qtype]} model in {MODELS}; {qtype.name} gets synthetic blocks only")
            else:
                raw = np.concatenate([raw, real], axis=1)
        expected = gguf.quants.dequantize(raw, qtype).astype(np.float32)
        write(out_dir, qtype, raw, expected, source)
        print(f"{qtype.name}: {expected.size} values")


if __name__ == "__main__":
    main()
