#!/usr/bin/env python3
"""gen_corpus_gguf: writes the seed corpus for fuzz/fuzz_gguf.c into
fuzz/corpus/gguf/ (each file well under 10 KB).

Valid seeds come from the reference writer (the Python `gguf` package) so the
fuzzer starts from every structure real files use (all value types, nested
arrays, several tensor types, a custom alignment); invalid seeds put it next
to each early exit of the reader (v1, bad magic, cut files, huge counts).

usage: ~/.cache/rys/venv/bin/python fuzz/gen_corpus_gguf.py
"""
import os
import struct
import tempfile

import numpy as np
import gguf
from gguf import GGMLQuantizationType as QT
from gguf import GGUFValueType as VT

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "gguf")


def written(build):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "x.gguf")
        w = gguf.GGUFWriter(path, "llama")
        build(w)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        with open(path, "rb") as f:
            return f.read()


def all_types(w):
    w.add_uint8("a.u8", 1)
    w.add_int8("a.i8", -1)
    w.add_uint16("a.u16", 2)
    w.add_int16("a.i16", -2)
    w.add_uint32("a.u32", 3)
    w.add_int32("a.i32", -3)
    w.add_uint64("a.u64", 4)
    w.add_int64("a.i64", -4)
    w.add_float32("a.f32", 0.5)
    w.add_float64("a.f64", 0.25)
    w.add_bool("a.bool", True)
    w.add_string("a.str", "hi")
    w.add_array("a.arr_str", ["x", "yz"])
    w.add_array("a.arr_i32", [1, 2, 3])
    w.add_array("a.nested", [[1, 2], [3]])
    w.add_array("a.nested_str", [["p"], ["q", "r"]])
    w.add_tensor("t.f32", np.arange(8, dtype=np.float32).reshape(2, 4))
    w.add_tensor("t.f16", np.ones(4, dtype=np.float16))
    w.add_tensor("t.q8_0", np.zeros((1, 34), dtype=np.uint8), raw_dtype=QT.Q8_0)


def llama_like(w):
    w.add_uint32("llama.block_count", 2)
    w.add_uint32("llama.embedding_length", 32)
    w.add_string("tokenizer.ggml.model", "gpt2")
    w.add_array("tokenizer.ggml.tokens", ["<s>", "a", "b", "ab"])
    w.add_array("tokenizer.ggml.merges", ["a b"])
    w.add_tensor("token_embd.weight", np.zeros((4, 1, 34), dtype=np.uint8).reshape(4, 34), raw_dtype=QT.Q8_0)
    w.add_tensor("blk.0.attn_norm.weight", np.ones(32, dtype=np.float32))
    w.add_tensor("blk.0.ffn_down.weight", np.zeros((1, 144), dtype=np.uint8), raw_dtype=QT.Q4_K)


def aligned_64(w):
    w.add_custom_alignment(64)
    w.add_tensor("a", np.ones(3, dtype=np.float32))
    w.add_tensor("b", np.ones(5, dtype=np.float32))


def header(version, n_tensors, n_kv):
    return b"GGUF" + struct.pack("<IQQ", version, n_tensors, n_kv)


def main():
    os.makedirs(OUT, exist_ok=True)
    full = written(all_types)
    seeds = {
        "valid_all_types.gguf": full,
        "valid_llama_like.gguf": written(llama_like),
        "valid_align64.gguf": written(aligned_64),
        "valid_empty.gguf": header(3, 0, 0),
        "valid_v2_one_kv.gguf": header(2, 0, 1) + struct.pack("<Q", 1) + b"k" + struct.pack("<II", VT.UINT32, 7),
        "bad_v1.gguf": header(1, 0, 0),
        "bad_magic.gguf": b"GGUG" + full[4:64],
        "bad_cut_kv.gguf": full[: len(full) // 3],
        "bad_cut_data.gguf": full[:-40],
        "bad_huge_kv_count.gguf": header(3, 0, 1 << 60) + full[24:200],
        "bad_huge_string_array.gguf": header(3, 0, 1) + struct.pack("<Q", 1) + b"k"
        + struct.pack("<IIQ", VT.ARRAY, VT.STRING, 1 << 60) + b"\0" * 32,
    }
    for name, data in seeds.items():
        assert len(data) < 10 * 1024, name
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
    print(f"wrote {len(seeds)} seeds to {OUT}")


if __name__ == "__main__":
    main()
