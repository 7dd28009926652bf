#!/usr/bin/env python3
"""check_gguf: `rys info FILE --json` against the Python `gguf` package.

The gguf package (llama.cpp's own Python reader and writer) is the independent
reference for the file format. For each file, every metadata key (order, value
type, array element type and length, values of scalars and short arrays, the
flattened leaves of nested arrays), the alignment, the data section offset and
every tensor (name, ggml type, shape, offset, byte size) must agree.

Files checked: the ones named on the command line, else the real models found
in the model cache ($RYS_CACHE_DIR/models or ~/.cache/rys/models; at least one
must be there), plus small files written here with gguf.GGUFWriter covering
every value type, nested arrays, several tensor types and a custom alignment.

usage: check_gguf.py [FILE.gguf ...]     (binary: $RYS or build/rys)
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import gguf
from gguf import GGMLQuantizationType as QT
from gguf import GGUFValueType as VT

TYPE_NAMES = {
    VT.UINT8: "u8", VT.INT8: "i8", VT.UINT16: "u16", VT.INT16: "i16", VT.UINT32: "u32",
    VT.INT32: "i32", VT.FLOAT32: "f32", VT.BOOL: "bool", VT.STRING: "string", VT.ARRAY: "array",
    VT.UINT64: "u64", VT.INT64: "i64", VT.FLOAT64: "f64",
}
KNOWN_MODELS = ["smollm2-135m", "qwen2.5-coder-0.5b"]
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class Mismatch(Exception):
    pass


def expect(cond, what):
    if not cond:
        raise Mismatch(what)


def rys_info(rys, path):
    out = subprocess.run([rys, "info", path, "--json"], check=True, capture_output=True)
    return json.loads(out.stdout.decode("utf-8"))


def same_scalar(vtype, ours, ref):
    if vtype == VT.FLOAT32:
        if isinstance(ours, str):       # non-finite values are written as strings
            return np.isnan(ref) if ours == "nan" else float(ours) == float(ref)
        return np.float32(ours) == np.float32(ref)
    if vtype == VT.FLOAT64:
        return float(ours) == float(ref)
    if vtype == VT.BOOL:
        return bool(ours) == bool(ref)
    if vtype == VT.STRING:
        return ours == ref
    return int(ours) == int(ref)


def flatten(value):
    """Leaves of our nested-array JSON, in order; None when a level was summarized."""
    if "value" not in value:
        return None
    if value["elem_type"] != "array":
        return list(value["value"])
    leaves = []
    for item in value["value"]:
        sub = flatten(item)
        if sub is None:
            return None
        leaves += sub
    return leaves


def type_chain(value):
    """[type, elem type, elem type of the first element, ...] as the reader's field.types lists it."""
    chain = [value["type"]]
    while value["type"] == "array":
        chain.append(value["elem_type"])
        if value["elem_type"] != "array" or value["length"] == 0 or "value" not in value:
            break
        value = value["value"][0]
    return chain


def check_field(key, field, ours):
    ref_types = [TYPE_NAMES[t] for t in field.types]
    main = field.types[0]
    expect(ours["type"] == ref_types[0], f"{key}: type {ours['type']} vs {ref_types[0]}")
    if main != VT.ARRAY:
        ref = field.contents()
        expect(same_scalar(main, ours["value"], ref), f"{key}: value {ours['value']!r} vs {ref!r}")
        return
    ref_elem, ref_len = int(field.parts[3][0]), int(field.parts[4][0])
    expect(ours["elem_type"] == TYPE_NAMES[VT(ref_elem)], f"{key}: element type {ours['elem_type']} vs {VT(ref_elem)}")
    expect(ours["length"] == ref_len, f"{key}: length {ours['length']} vs {ref_len}")
    chain = type_chain(ours)
    expect(chain == ref_types[:len(chain)], f"{key}: nested types {chain} vs {ref_types}")
    if "value" not in ours:
        expect(ref_len > 64, f"{key}: array of {ref_len} summarized although short")
        return
    leaves = flatten(ours)
    if leaves is None:
        return
    ref_leaves = field.contents()
    leaf_type = field.types[-1]
    expect(len(leaves) == len(ref_leaves), f"{key}: {len(leaves)} leaves vs {len(ref_leaves)}")
    for i, (a, b) in enumerate(zip(leaves, ref_leaves)):
        expect(same_scalar(leaf_type, a, b), f"{key}[{i}]: {a!r} vs {b!r}")


def check_file(rys, path):
    ours = rys_info(rys, path)
    reader = gguf.GGUFReader(path)
    fields = [(k, f) for k, f in reader.fields.items() if not k.startswith("GGUF.")]
    expect(ours["version"] == int(reader.fields["GGUF.version"].parts[0][0]), "version")
    expect(ours["alignment"] == reader.alignment, f"alignment {ours['alignment']} vs {reader.alignment}")
    expect(ours["data_offset"] == reader.data_offset, f"data offset {ours['data_offset']} vs {reader.data_offset}")
    keys = list(ours["metadata"].keys())
    expect(keys == [k for k, _ in fields], f"metadata keys differ: {keys} vs {[k for k, _ in fields]}")
    for key, field in fields:
        check_field(key, field, ours["metadata"][key])

    tensors = ours["tensors"]
    expect(len(tensors) == len(reader.tensors) == ours["n_tensors"],
           f"{len(tensors)} tensors vs {len(reader.tensors)}")
    total = 0
    for t, r in zip(tensors, reader.tensors):
        expect(t["name"] == r.name, f"tensor name {t['name']} vs {r.name}")
        expect(t["type_id"] == int(r.tensor_type), f"{r.name}: type id {t['type_id']} vs {int(r.tensor_type)}")
        expect(t["type"] == r.tensor_type.name, f"{r.name}: type {t['type']} vs {r.tensor_type.name}")
        expect(t["shape"] == [int(d) for d in r.shape], f"{r.name}: shape {t['shape']} vs {list(r.shape)}")
        expect(t["offset"] == r.data_offset - reader.data_offset, f"{r.name}: offset {t['offset']}")
        expect(t["nbytes"] == int(r.n_bytes), f"{r.name}: {t['nbytes']} bytes vs {r.n_bytes}")
        total += int(r.n_bytes)
    expect(ours["tensor_bytes"] == total, "total tensor bytes")
    return len(fields), len(tensors)


def write_synthetic(directory):
    """Small files from the reference writer: every value type, nested arrays, several tensor types."""
    paths = []
    for alignment in (32, 64):
        path = os.path.join(directory, f"synthetic-{alignment}.gguf")
        w = gguf.GGUFWriter(path, "llama")
        if alignment != 32:
            w.add_custom_alignment(alignment)
        w.add_uint8("t.u8", 200)
        w.add_int8("t.i8", -100)
        w.add_uint16("t.u16", 60000)
        w.add_int16("t.i16", -30000)
        w.add_uint32("t.u32", 4000000000)
        w.add_int32("t.i32", -2000000000)
        w.add_uint64("t.u64", 2**64 - 1)
        w.add_int64("t.i64", -2**63)
        w.add_float32("t.f32", 0.1)
        w.add_float64("t.f64", 0.1)
        w.add_bool("t.bool", True)
        w.add_string("t.str", "h\u00e9llo \u2713 \"quoted\"\n")
        w.add_array("t.arr_i32", [1, -2, 3])
        w.add_array("t.arr_f32", [0.5, -1.25])
        w.add_array("t.arr_bool", [True, False, True])
        w.add_array("t.arr_str", ["a", "", "\u00fc"])
        w.add_key_value("t.arr_u64", [2**64 - 1, 7], VT.ARRAY, sub_type=VT.UINT64)
        w.add_key_value("t.arr_i8", [-1, 2], VT.ARRAY, sub_type=VT.INT8)
        w.add_array("t.arr_long", list(range(100)))
        w.add_array("t.nested_i32", [[1, 2], [3]])
        w.add_array("t.nested_str", [["x", "y"], ["z"]])
        w.add_array("t.nested3", [[[1.5]], [[2.5], [3.5, 4.5]]])
        rng = np.random.default_rng(1)
        w.add_tensor("f32", rng.standard_normal((3, 4)).astype(np.float32))
        w.add_tensor("f16", rng.standard_normal((2, 2, 8)).astype(np.float16))
        w.add_tensor("q8_0", rng.integers(0, 255, (2, 34), dtype=np.uint8), raw_dtype=QT.Q8_0)
        w.add_tensor("q4_k", rng.integers(0, 255, (3, 144), dtype=np.uint8), raw_dtype=QT.Q4_K)
        w.add_tensor("q6_k", rng.integers(0, 255, (1, 210), dtype=np.uint8), raw_dtype=QT.Q6_K)
        w.add_tensor("q5_0", rng.integers(0, 255, (1, 22), dtype=np.uint8), raw_dtype=QT.Q5_0)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        paths.append(path)
    return paths


def main():
    rys = os.environ.get("RYS") or os.path.join(ROOT, "build", "rys")
    files = sys.argv[1:]
    if not files:
        cache = os.environ.get("RYS_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "rys")
        files = [p for p in (os.path.join(cache, "models", m + ".gguf") for m in KNOWN_MODELS) if os.path.exists(p)]
        if not files:
            print(f"check_gguf: no real model in {cache}/models (run: rys pull smollm2-135m)")
            return 1
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for path in files + write_synthetic(tmp):
            try:
                n_kv, n_t = check_file(rys, path)
                print(f"ok   {os.path.basename(path)}: {n_kv} keys, {n_t} tensors agree with gguf.GGUFReader")
            except (Mismatch, subprocess.CalledProcessError) as e:
                failed += 1
                detail = e.stderr.decode(errors="replace").strip() if isinstance(e, subprocess.CalledProcessError) else e
                print(f"FAIL {os.path.basename(path)}: {detail}")
    print(f"check_gguf: {len(files) + 2 - failed} files agree, {failed} differ")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
