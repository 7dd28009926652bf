#!/usr/bin/env python3
"""materialize: write a relayered GGUF along a layer path with the Python `gguf`
package, independently of `rys export`, so llama.cpp can run a path rys runs
virtually and the two can be compared.

Position p of the path becomes blk.p.* holding the bytes of the source's
blk.<path[p]>.* tensors; <arch>.block_count = path length; every other
metadata key and tensor is copied unchanged (a qwen35 / qwen35moe copy also
gets <arch>.attention.recurrent_layers, each position's layer kind). With --f32 every tensor is
dequantized to F32 instead of copied, which lets llama.cpp compute without
quantizing its activations (numpy_forward's exact self-check uses that).

usage: materialize.py SRC.gguf OUT.gguf [--blocks "i,j;.." | --layers "0-5,3-9"] [--f32]
API:   materialize(src, dst, path, f32=False)
"""
import argparse
import os
import re
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T, GGUFValueType as V
from gguf.quants import dequantize

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from numpy_forward import blocks_path, layers_path  # noqa: E402

BLOCK_TENSOR = re.compile(r"^blk\.(\d+)\.(.+)$")
SKIPPED_KEYS = ("GGUF.", "general.architecture")


def copy_metadata(reader, writer, arch, n_path):
    for key, f in reader.fields.items():
        if key.startswith(SKIPPED_KEYS):
            continue
        vtype = f.types[0]
        if key == f"{arch}.block_count":
            writer.add_key_value(key, n_path, vtype)
        elif key == "general.alignment":
            writer.data_alignment = int(f.contents())
            writer.add_key_value(key, f.contents(), vtype)
        elif vtype == V.ARRAY:
            writer.add_key_value(key, f.contents(), vtype, sub_type=f.types[-1])
        else:
            writer.add_key_value(key, f.contents(), vtype)


def add_copy(writer, name, t, f32):
    if f32:
        writer.add_tensor(name, np.ascontiguousarray(dequantize(t.data, t.tensor_type), dtype=np.float32))
    elif t.tensor_type in (T.F32, T.F16):
        writer.add_tensor(name, np.ascontiguousarray(t.data))
    else:
        writer.add_tensor(name, np.ascontiguousarray(t.data), raw_dtype=t.tensor_type)


def materialize(src, dst, path, f32=False):
    reader = gguf.GGUFReader(src)
    arch = reader.fields["general.architecture"].contents()
    n_layers = int(reader.fields[f"{arch}.block_count"].contents())
    if not path or min(path) < 0 or max(path) >= n_layers:
        raise ValueError(f"path {path} outside 0..{n_layers - 1}")
    by_layer = {}
    others = []
    for t in reader.tensors:
        m = BLOCK_TENSOR.match(t.name)
        if m:
            by_layer.setdefault(int(m.group(1)), []).append((m.group(2), t))
        else:
            others.append(t)
    writer = gguf.GGUFWriter(dst, arch)
    copy_metadata(reader, writer, arch, len(path))
    if arch in ("qwen35", "qwen35moe") and f"{arch}.attention.recurrent_layers" not in reader.fields:
        # llama.cpp takes a layer's kind (Gated DeltaNet or attention) from its position unless the file lists
        # it: list each position's, the kind of the layer it holds (the one with DeltaNet tensors)
        writer.add_array(f"{arch}.attention.recurrent_layers",
                         [any(s == "ssm_a" for s, _ in by_layer[layer]) for layer in path])
    # the source's order: embeddings first, blocks, then the rest
    head = [t for t in others if t.name.startswith("token_embd")]
    tail = [t for t in others if not t.name.startswith("token_embd")]
    for t in head:
        add_copy(writer, t.name, t, f32)
    for pos, layer in enumerate(path):
        for suffix, t in by_layer[layer]:
            add_copy(writer, f"blk.{pos}.{suffix}", t, f32)
    for t in tail:
        add_copy(writer, t.name, t, f32)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("src")
    ap.add_argument("dst")
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--blocks")
    g.add_argument("--layers")
    ap.add_argument("--f32", action="store_true")
    a = ap.parse_args()
    reader = gguf.GGUFReader(a.src)
    arch = reader.fields["general.architecture"].contents()
    n = int(reader.fields[f"{arch}.block_count"].contents())
    del reader
    path = blocks_path(a.blocks, n) if a.blocks else layers_path(a.layers, n) if a.layers else list(range(n))
    materialize(a.src, a.dst, path, a.f32)
    print(f"{a.dst}: {len(path)} layers: {','.join(map(str, path))}")


if __name__ == "__main__":
    main()
