#!/usr/bin/env python3
"""check_export: `rys export` outputs read back with independent readers.

1. Hugging Face directories (tests/ref/make_tiny_hf.py: sharded, single file,
   multimodal) exported along blocks (1,3): every output tensor, loaded with
   the `safetensors` package, must equal the source tensor of the layer the
   path puts at that position (names renumbered, dtype and shape kept); the
   index, config.json (num_hidden_layers, layer_types along the path, nothing
   else changed), side files and the manifest's sha256 list are checked.
2. Bad Hugging Face inputs fail with one line "rys: <file>: <problem>", a
   non-zero exit and no output directory.
3. The real smollm2-135m GGUF exported along blocks (10,15), read with the
   Python `gguf` package: tensor bytes per path position, block_count, rys.*
   metadata; the --virtual export keeps the tensors and the size (within 1%).
4. llama-cpp-python gives identical logits for the source and its baseline
   export; `rys logits` of the (10,15) export equals `rys logits --blocks
   10,15` of the source; llama-cpp-python loads the (10,15) export and its
   logits for tokens 1,2,3 match rys's: max|diff| <= 1e-2 * max|logit|, or, while the engine
   itself misses that bound on the unmodified model (reported as ENGINE GAP), by no more than
   1.5x the unmodified model's gap + 1e-2 * max|logit| with the same argmax.
5. The strict bound, where it is meaningful: the F32 copy of smollm2-135m
   (and of qwen2.5-coder-0.5b when pulled)
   (check_engine.py's, weights dequantized by the gguf package) exported
   along (10,15); llama.cpp on that file vs `rys logits --blocks 10,15` on the
   F32 source, for a 24-token prompt: max|diff| <= 1e-2 * max|logit|, same
   argmax (quantized files cannot meet it, see check_engine.py).

usage: check_export.py     (binary: $RYS or build/rys; model cache: $RYS_CACHE_DIR or ~/.cache/rys)
"""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
from safetensors.numpy import load_file, save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_tiny_hf import LAYER_TYPES, N_LAYERS, SIDE_FILES, make_tiny_hf  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RYS = os.environ.get("RYS", os.path.join(ROOT, "build", "rys"))
CACHE = os.environ.get("RYS_CACHE_DIR", os.path.expanduser("~/.cache/rys"))


class Mismatch(Exception):
    pass


def expect(cond, what):
    if not cond:
        raise Mismatch(what)


def blocks_path(i, j, n):
    """RYS (i,j): layers 0..j-1 then i..n-1 (from the method's definition)."""
    return list(range(j)) + list(range(i, n))


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def rys(*args):
    return subprocess.run([RYS, *args], capture_output=True, text=True)


def renumber(name, prefix, path):
    """Output name -> source name for a decoder tensor, None for others."""
    if not name.startswith(prefix):
        return None
    pos, rest = name[len(prefix):].split(".", 1)
    return f"{prefix}{path[int(pos)]}.{rest}"


# ---- 1. Hugging Face directories ---------------------------------------------

def check_hf(tmp, sharded, multimodal):
    src, out = os.path.join(tmp, "src"), os.path.join(tmp, "out")
    shutil.rmtree(src, ignore_errors=True)
    shutil.rmtree(out, ignore_errors=True)
    source = make_tiny_hf(src, sharded=sharded, multimodal=multimodal)
    r = rys("export", src, "--blocks", "1,3", "-o", out, "--quiet")
    expect(r.returncode == 0, f"export failed: {r.stderr.strip()}")
    path = blocks_path(1, 3, N_LAYERS)
    prefix = "model.language_model.layers." if multimodal else "model.layers."

    files = sorted(os.listdir(out))
    shards = [f for f in files if f.endswith(".safetensors")]
    if sharded:
        with open(os.path.join(out, "model.safetensors.index.json")) as f:
            index = json.load(f)
        weight_map = index["weight_map"]
        expect(set(weight_map.values()) == set(shards), f"index names {set(weight_map.values())}, dir has {shards}")
    else:
        expect(shards == ["model.safetensors"], f"single-file source gave {shards}")
        expect("model.safetensors.index.json" not in files, "index written for a single-file source")
        weight_map = None

    got = {}
    for s in shards:
        tensors = load_file(os.path.join(out, s))
        for name in tensors:
            expect(weight_map is None or weight_map.get(name) == s, f"{name} in {s}, index says {weight_map and weight_map.get(name)}")
        got.update(tensors)
    if weight_map is not None:
        expect(set(weight_map) == set(got), "index and shards list different tensors")
        expect(index["metadata"]["total_size"] == sum(a.nbytes for a in got.values()), "index total_size is wrong")

    want_names = {n for n in source if not n.startswith(prefix)}
    per_layer = {n[len(prefix):].split(".", 1)[1] for n in source if n.startswith(prefix)}
    want_names |= {f"{prefix}{p}.{rest}" for p in range(len(path)) for rest in per_layer}
    expect(set(got) == want_names, f"tensor names differ: extra {sorted(set(got) - want_names)[:4]}, "
                                   f"missing {sorted(want_names - set(got))[:4]}")
    for name, arr in got.items():
        src_name = renumber(name, prefix, path) or name
        ref = source[src_name]
        expect(arr.dtype == ref.dtype and arr.shape == ref.shape, f"{name}: {arr.dtype}{arr.shape} vs {ref.dtype}{ref.shape}")
        expect(np.array_equal(arr, ref), f"{name} differs from {src_name}")

    with open(os.path.join(src, "config.json")) as f:
        cfg_src = json.load(f)
    with open(os.path.join(out, "config.json")) as f:
        cfg = json.load(f)
    tc, tc_src = (cfg["text_config"], cfg_src["text_config"]) if multimodal else (cfg, cfg_src)
    expect(tc["num_hidden_layers"] == len(path), f"num_hidden_layers {tc['num_hidden_layers']}")
    expect(tc["layer_types"] == [LAYER_TYPES[l] for l in path], f"layer_types {tc['layer_types']}")
    for k in tc_src:
        if k not in ("num_hidden_layers", "layer_types"):
            expect(tc[k] == tc_src[k], f"config {k} changed")
    if multimodal:
        expect(cfg["vision_config"] == cfg_src["vision_config"], "vision_config changed")
    for name in SIDE_FILES:
        with open(os.path.join(src, name), "rb") as a, open(os.path.join(out, name), "rb") as b:
            expect(a.read() == b.read(), f"{name} not copied verbatim")

    with open(os.path.join(out, "rys_export_manifest.json")) as f:
        man = json.load(f)
    expect(man["layer_path"] == "layers:" + ",".join(map(str, path)), f"manifest path {man['layer_path']}")
    expect(man["blocks"] == "1,3", "manifest blocks")
    expect(os.path.realpath(man["source_dir"]) == os.path.realpath(src), "manifest source_dir")
    listed = set(man["files"])
    expect(listed == set(files) - {"rys_export_manifest.json"}, f"manifest lists {sorted(listed)}, dir has {files}")
    for name, digest in man["files"].items():
        expect(sha256(os.path.join(out, name)) == digest, f"manifest sha256 of {name} is wrong")
    print(f"ok: hf export ({'sharded' if sharded else 'single file'}{', multimodal' if multimodal else ''}): "
          f"{len(got)} tensors, path {path}")


def check_hf_bad(tmp):
    src, out = os.path.join(tmp, "bad"), os.path.join(tmp, "bad-out")

    def fresh():
        shutil.rmtree(src, ignore_errors=True)
        make_tiny_hf(src, sharded=True)

    def must_fail(what, needle, args=("--blocks", "1,3")):
        r = rys("export", src, *args, "-o", out, "--quiet")
        lines = r.stderr.strip().splitlines()
        expect(r.returncode != 0, f"{what}: exit 0")
        expect(len(lines) == 1 and lines[0].startswith("rys: ") and needle in lines[0],
               f"{what}: stderr {r.stderr!r} lacks one line with {needle!r}")
        leftovers = [f for f in os.listdir(tmp) if f.startswith("bad-out")]
        expect(not leftovers, f"{what}: left {leftovers}")

    fresh()
    os.remove(os.path.join(src, "model-00002-of-00002.safetensors"))
    must_fail("missing shard", "model-00002-of-00002.safetensors: missing shard")
    fresh()
    ip = os.path.join(src, "model.safetensors.index.json")
    with open(ip) as f:
        idx = json.load(f)
    idx["weight_map"]["model.layers.0.mlp.down_proj.weight"] = "model-00002-of-00002.safetensors"
    with open(ip, "w") as f:
        json.dump(idx, f)
    must_fail("inconsistent index", "model.safetensors.index.json: tensor 'model.layers.0.mlp.down_proj.weight'")
    fresh()
    must_fail("path out of range", "past the model's 4 layers", ("--blocks", "2,9"))
    must_fail("layers out of range", "out of range", ("--layers", "0-4"))
    fresh()
    sp = os.path.join(src, "model-00001-of-00002.safetensors")
    with open(sp, "r+b") as f:
        f.write((10 ** 12).to_bytes(8, "little"))
    must_fail("malformed header", "model-00001-of-00002.safetensors: header length")
    shutil.rmtree(src)
    os.makedirs(src)
    plain = make_tiny_hf(os.path.join(tmp, "plain"), sharded=False)
    save_file({n.replace("model.layers.", "transformer.h."): a for n, a in plain.items()},
              os.path.join(src, "model.safetensors"), metadata={"format": "pt"})
    shutil.copy(os.path.join(tmp, "plain", "config.json"), src)
    must_fail("unknown naming", "unknown tensor naming scheme")
    print("ok: bad hf inputs refused with one-line errors, nothing left behind")


# ---- 3. GGUF ---------------------------------------------------------------------

def tensor_bytes(t):
    return np.asarray(t.data).tobytes()


def check_gguf(tmp, model):
    import gguf
    out, virt = os.path.join(tmp, "mat.gguf"), os.path.join(tmp, "virt.gguf")
    r = rys("export", model, "--blocks", "10,15", "-o", out, "--quiet")
    expect(r.returncode == 0, f"export failed: {r.stderr.strip()}")
    src, dst = gguf.GGUFReader(model), gguf.GGUFReader(out)
    arch = src.fields["general.architecture"].contents()
    n = src.fields[f"{arch}.block_count"].contents()
    path = blocks_path(10, 15, n)
    expect(dst.fields[f"{arch}.block_count"].contents() == len(path), "block_count")
    expect(dst.fields["rys.layer_path"].contents() == "layers:" + ",".join(map(str, path)), "rys.layer_path")
    expect(dst.fields["rys.blocks"].contents() == "10,15", "rys.blocks")
    expect(dst.fields["rys.source_sha256"].contents() == sha256(model), "rys.source_sha256")
    expect("rys.version" in dst.fields, "rys.version missing")
    st = {t.name: t for t in src.tensors}
    seen = 0
    for t in dst.tensors:
        name = t.name
        if name.startswith("blk."):
            _, pos, rest = name.split(".", 2)
            name = f"blk.{path[int(pos)]}.{rest}"
        ref = st[name]
        expect(t.tensor_type == ref.tensor_type and list(t.shape) == list(ref.shape), f"{t.name}: type/shape")
        expect(tensor_bytes(t) == tensor_bytes(ref), f"{t.name} bytes differ from {name}")
        seen += 1
    n_layer = sum(1 for t in src.tensors if t.name.startswith("blk.0."))
    expect(seen == len(src.tensors) - n * n_layer + len(path) * n_layer, f"{seen} tensors")
    for k, f in src.fields.items():
        if k.startswith("GGUF.") or k == f"{arch}.block_count":
            continue
        expect(k in dst.fields, f"metadata {k} dropped")
    print(f"ok: materialized gguf: {seen} tensors byte-equal along {len(path)} positions")

    r = rys("export", model, "--blocks", "10,15", "--virtual", "-o", virt, "--quiet")
    expect(r.returncode == 0, f"virtual export failed: {r.stderr.strip()}")
    a, b = os.path.getsize(model), os.path.getsize(virt)
    expect(abs(b - a) <= 0.01 * a, f"virtual export is {b} bytes, source {a}")
    v = gguf.GGUFReader(virt)
    expect(v.fields[f"{arch}.block_count"].contents() == n, "virtual block_count changed")
    expect(v.fields["rys.layer_path"].contents() == "layers:" + ",".join(map(str, path)), "virtual rys.layer_path")
    vt = {t.name: t for t in v.tensors}
    expect(set(vt) == set(st), "virtual export tensor names")
    for name, t in st.items():
        expect(tensor_bytes(vt[name]) == tensor_bytes(t), f"virtual {name} differs")
    print(f"ok: virtual gguf: {len(vt)} tensors, {b} bytes vs {a}")
    return out, path


# ---- 4. llama.cpp runs the export ---------------------------------------------------

def llama_logits(path, tokens):
    import llama_cpp
    llm = llama_cpp.Llama(model_path=path, n_ctx=64, n_batch=64, logits_all=True, verbose=False)
    llm.eval(tokens)
    return np.array(llm.scores[len(tokens) - 1], dtype=np.float32)


def check_llama(tmp, model, exported):
    tokens = [1, 2, 3]
    # a baseline export is the same model: llama.cpp must give identical logits
    base = os.path.join(tmp, "base.gguf")
    r = rys("export", model, "-o", base, "--quiet")
    expect(r.returncode == 0, f"baseline export failed: {r.stderr.strip()}")
    a, b = llama_logits(model, tokens), llama_logits(base, tokens)
    expect(np.array_equal(a, b), f"baseline export changes llama.cpp's logits by {np.max(np.abs(a - b)):.3g}")
    print("ok: llama.cpp gives identical logits for the source and its baseline export")

    def rys_logits(path, *extra):
        npy = os.path.join(tmp, "rys.npy")
        r = rys("logits", path, "--tokens", ",".join(map(str, tokens)), *extra, "--npy", npy)
        expect(r.returncode == 0, f"rys logits failed: {r.stderr.strip()}")
        out = np.load(npy)
        return out.reshape(-1, out.shape[-1])[-1]

    ours = rys_logits(model, "--blocks", "10,15")
    # rys running the exported file must be rys running the path on the source
    baked = rys_logits(exported)
    expect(np.max(np.abs(baked - ours)) <= 1e-5 * np.max(np.abs(ours)),
           f"rys on the export differs from rys --blocks 10,15 by {np.max(np.abs(baked - ours)):.3g}")
    ref = llama_logits(exported, tokens)
    expect(ref.shape == ours.shape, f"vocab {ref.shape} vs {ours.shape}")
    diff, scale = float(np.max(np.abs(ref - ours))), float(np.max(np.abs(ref)))
    if diff <= 1e-2 * scale:
        print(f"ok: llama.cpp runs the (10,15) export like rys runs the path: max|diff| {diff:.3g} vs "
              f"max|logit| {scale:.3g}, argmax {int(np.argmax(ref))} / {int(np.argmax(ours))}")
        return
    # The engine's own agreement with llama.cpp on the UNMODIFIED model is the
    # yardstick for the export: the relayered file may not disagree more than
    # the source does. The strict 1e-2 bound is the engine's acceptance check
    # (tests/ref/check_engine.py) and is reported here, not hidden.
    base_ref, base_ours = a, rys_logits(model)
    base_diff = float(np.max(np.abs(base_ours - base_ref)))
    print(f"ENGINE GAP: strict bound not met: max|diff| {diff:.4g} > 1e-2 * {scale:.4g}; on the unmodified model rys and "
          f"llama.cpp differ by {base_diff:.4g} (engine numerics, not the export)")
    if diff > 1.5 * base_diff + 1e-2 * scale or int(np.argmax(ref)) != int(np.argmax(ours)):
        raise Mismatch(f"the (10,15) export disagrees with rys --blocks 10,15 by {diff:.4g} (argmax {int(np.argmax(ref))} / "
                       f"{int(np.argmax(ours))}), more than the unmodified model does ({base_diff:.4g})")
    print(f"ok: llama.cpp runs the (10,15) export within the engine's own gap: max|diff| {diff:.3g} <= 1.5 x {base_diff:.3g} "
          f"+ 1e-2 x {scale:.3g}, same argmax {int(np.argmax(ref))}")


def check_llama_f32(tmp, model):
    from check_engine import f32_copy
    src = f32_copy(model)
    name = os.path.basename(model)[:-5]
    out = os.path.join(tmp, "f32-10-15.gguf")
    r = rys("export", src, "--blocks", "10,15", "-o", out, "--quiet")
    expect(r.returncode == 0, f"export of the F32 copy failed: {r.stderr.strip()}")
    tokens = list(range(1, 25))
    npy = os.path.join(tmp, "rys-f32.npy")
    r = rys("logits", src, "--tokens", ",".join(map(str, tokens)), "--blocks", "10,15", "--npy", npy)
    expect(r.returncode == 0, f"rys logits failed: {r.stderr.strip()}")
    out_logits = np.load(npy)
    ours = out_logits.reshape(-1, out_logits.shape[-1])[-1]
    ref = llama_logits(out, tokens)
    diff, scale = float(np.max(np.abs(ref - ours))), float(np.max(np.abs(ref)))
    expect(diff <= 1e-2 * scale and int(np.argmax(ref)) == int(np.argmax(ours)),
           f"{name} F32 (10,15) export: llama.cpp vs rys --blocks differ by {diff:.4g} (max|logit| {scale:.4g}), "
           f"argmax {int(np.argmax(ref))} / {int(np.argmax(ours))}")
    print(f"ok: {name} F32 copy exported along (10,15): llama.cpp vs rys --blocks max|diff| {diff:.3g} = "
          f"{diff / scale:.2e} of max|logit| (<= 1e-2), argmax {int(np.argmax(ref))}")
    os.remove(out)


def main():
    if not os.path.exists(RYS):
        sys.exit(f"check_export: {RYS} not built")
    failed = 0
    with tempfile.TemporaryDirectory(prefix="rys-check-export-") as tmp:
        steps = [
            ("hf sharded", lambda: check_hf(tmp, True, False)),
            ("hf single", lambda: check_hf(tmp, False, False)),
            ("hf multimodal", lambda: check_hf(tmp, True, True)),
            ("hf bad inputs", lambda: check_hf_bad(tmp)),
        ]
        model = os.path.join(CACHE, "models", "smollm2-135m.gguf")
        exported = {}
        if os.path.exists(model):
            steps.append(("gguf", lambda: exported.update(path=check_gguf(tmp, model)[0])))
            steps.append(("llama.cpp", lambda: check_llama(tmp, model, exported["path"])))
            steps.append(("llama.cpp, F32 copy", lambda: check_llama_f32(tmp, model)))
        else:
            print(f"FAIL: {model} missing (rys pull smollm2-135m)")
            failed += 1
        # the qwen2 architecture (QKV biases) too, where it is pulled
        qwen = os.path.join(CACHE, "models", "qwen2.5-coder-0.5b.gguf")
        if os.path.exists(qwen):
            steps.append(("llama.cpp, qwen2 F32 copy", lambda: check_llama_f32(tmp, qwen)))
        else:
            print(f"note: {qwen} not pulled; the qwen2 export check is skipped (rys pull qwen2.5-coder-0.5b)")
        for name, fn in steps:
            try:
                fn()
            except Mismatch as e:
                print(f"FAIL: {name}: {e}")
                failed += 1
            except Exception as e:  # a crash in one step should not hide the others
                print(f"FAIL: {name}: {type(e).__name__}: {e}")
                failed += 1
    print("check_export: " + ("all ok" if not failed else f"{failed} failed"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
