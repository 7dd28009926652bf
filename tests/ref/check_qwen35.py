#!/usr/bin/env python3
"""check_qwen35: the qwen35 and qwen35moe forward passes (Gated DeltaNet layers with their
recurrent state per path position, gated attention) against llama.cpp
(llama-cpp-python) on the tiny model tests/ref/make_tiny_qwen35.py writes (F32,
random weights: three DeltaNet layers and one attention layer, 2 key heads
shared by 4 value heads), with check_engine's checks:
  (a) last-position logits of the 5 prompts: max|diff| <= 1e-2 of max|logit|
      and the same argmax;
  (b) 64-token greedy continuations (`rys run`, decode token by token through
      the states), identical for >= 4 of 5;
  (d) `rys logits --blocks` on the original file against llama.cpp on copies
      materialized along the path (materialize.py lists each position's layer
      kind in qwen35.attention.recurrent_layers, which llama.cpp reads), for
      0,4 (every layer twice), 1,2 and 1,2;2,3;
  (c) perplexity (Apache-2.0 licence text, -c 512) within 0.5%;
  Q8_0 copy (matrices Q8_0), and a mid-sized model (8 layers, dim 256) made
  Q4_K_M by llama.cpp's own quantizer, as the releases are: (q) check_engine's bound for quantized files
  (1.5 x the larger of rys's spread across its kernel paths and llama.cpp's
  between flash attention on and off, + 1e-2; same argmax) and (c).
  (t) along --blocks 0,2 (two recurrent layers traversed twice) rys equals
      make_tiny_qwen35's float64 pass with a state per path position, and
      that pass with one state per layer (both traversals sharing it) lies
      outside that bound (1e-3 of max|logit|): the states must be separate;
  (i) `rys info --blocks 0,2` lists each path position's kind;
  (s) `rys scan --stride 1` (every block of the 4 layers, math and EQ items):
      every stored item equals `rys eval --blocks` from scratch (check_moe's
      check), with fewer layer-tokens than a naive run: configurations start
      from the baseline's recurrent states after the prompts;
  (o) a scan of a perplexity objective (Apache-2.0, 1024 tokens; objectives
      run from scratch on recurrent models): every stored score equals
      `rys eval --blocks` on that path.
  qwen35moe (the same layers, each feed-forward 8 experts of which 2 are
  used plus a shared expert gated per token; F32): (a), (b), (d), (c), (s);
  its Q8_0 copy: (q), (c).
Prints PASS/FAIL per check; exits 1 when any fails.
usage: check_qwen35.py   binary: $RYS or build/rys
"""
import json
import os
import sqlite3
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import check_engine as ce  # noqa: E402
from check_moe import check_scan  # noqa: E402
from make_tiny_qwen35 import INTERVAL, N_LAYERS, forward, write  # noqa: E402
from numpy_forward import blocks_path  # noqa: E402


def check_objective_scan(model, tmp):
    """(o): a perplexity objective scanned (reuse off: recurrent layers) equals `rys eval` per path."""
    probe = f"ppl:{os.path.join(ce.LICENSES, 'Apache-2.0')}@1024"
    db = os.path.join(tmp, "objective.sqlite")
    subprocess.run([ce.RYS, "scan", model, "--probes", probe, "--db", db, "--stride", "1", "--top", "0", "-t", ce.THREADS],
                   capture_output=True, text=True, check=True)
    con = sqlite3.connect(db)
    rows = con.execute("SELECT c.spec, s.score FROM score s JOIN config c ON c.id = s.config_id").fetchall()
    con.close()
    bad = []
    for spec, score in rows:
        args = [] if spec == "baseline" else ["--blocks", spec.split(":")[1]]
        ev = json.loads(subprocess.run([ce.RYS, "eval", model, "--probe", probe, "--json", "-t", ce.THREADS] + args,
                                       capture_output=True, text=True, check=True).stdout)
        if list(ev["scores"].values()) != [score]:
            bad.append(f"{spec}: {score!r} vs {ev['scores']}")
    ce.report("(o) scan of a perplexity objective equals rys eval", len(rows) == 11 and not bad,
              f"{len(rows)} configurations" + (f"; differ: {'; '.join(bad[:4])}" if bad else ""))


def check_info_kinds(model):
    """(i): `rys info --blocks` names each path position's kind (every INTERVAL-th layer is attention)."""
    spec = "0,2"
    out = json.loads(subprocess.run([ce.RYS, "info", model, "--blocks", spec, "--json"], capture_output=True, text=True,
                                    check=True).stdout)
    want = ["attention" if (L + 1) % INTERVAL == 0 else "recurrent" for L in blocks_path(spec, N_LAYERS)]
    text = subprocess.run([ce.RYS, "info", model, "--blocks", spec], capture_output=True, text=True, check=True).stdout
    ce.report("(i) rys info: layer kinds along the path", out["path"].get("kinds") == want and "kinds: 0-1 recurrent" in text,
              f"{out['path'].get('kinds')} (want {want})")


def check_separate_states(model, ref, items):
    """(t): along --blocks 0,2 (layers 0 and 1, both recurrent, twice) rys equals the float64 reference with a
    state per path position, and that reference with one state per layer (shared by both traversals) differs."""
    spec = "0,2"
    layers = blocks_path(spec, N_LAYERS)
    for name, text in items:
        if name not in ("chat", "code"):
            continue
        toks = ref.tokenize(text)
        got = ce.rys_logits(model, toks, blocks=spec)
        own = forward(model, toks, layers)[-1]
        shared = forward(model, toks, layers, share_states=True)[-1]
        rel_own = float(np.abs(got - own).max() / np.abs(own).max())
        rel_shared = float(np.abs(got - shared).max() / np.abs(own).max())
        # the bound rys meets tells the two apart: a shared state lies outside it
        ce.report(f"(t) separate recurrent states, blocks {spec} '{name}'", rel_own <= 1e-3 < rel_shared,
                  f"rys vs a state per position {rel_own:.2e} (<= 1e-3); vs one state per layer {rel_shared:.2e} (> 1e-3)")


def main():
    ce.PPL_TEXTS = ["Apache-2.0"]
    with tempfile.TemporaryDirectory(prefix="rys-check-qwen35-") as tmp:
        f32, q8, moe, moe_q8, kq = (os.path.join(tmp, n) for n in (
            "tiny-qwen35.gguf", "tiny-qwen35-q8_0.gguf", "tiny-qwen35moe.gguf", "tiny-qwen35moe-q8_0.gguf",
            "mid-qwen35-q4_k_m.gguf"))
        write(f32)
        write(q8, qtype="q8_0")
        write(moe, moe=True)
        write(moe_q8, qtype="q8_0", moe=True)
        write(kq, qtype="q4_k_m", size="mid")
        print(f"check_qwen35: {f32}, {q8}, {moe}, {moe_q8}, {kq}; rys = {ce.RYS}", flush=True)
        for model, checks in ((f32, "abdcts"), (q8, "qc"), (moe, "abdcs"), (moe_q8, "qc"), (kq, "qc")):
            print(f"check_qwen35: {os.path.basename(model)}", flush=True)
            items = ce.prompts(model)
            ref = ce.LlamaRef(model)
            arch = "qwen35moe" if model in (moe, moe_q8) else "qwen35"
            try:
                if "a" in checks:
                    ce.check_logits(model, ref, items)
                if "b" in checks:
                    ce.check_greedy(model, ref, items)
                if "d" in checks:
                    ce.check_paths(model, ref, items, N_LAYERS, arch, tmp)
                if "q" in checks:
                    ce.check_quantized(model, ref, items)
                if "c" in checks:
                    ce.check_perplexity(model, ref, tmp)
                if "t" in checks:
                    check_separate_states(model, ref, items)
                    check_info_kinds(model)
                if "s" in checks:
                    own = os.path.join(tmp, "scan-" + arch)     # a store per model
                    os.makedirs(own, exist_ok=True)
                    check_scan(model, own)
                    check_objective_scan(model, own)
            except (RuntimeError, OSError, ValueError, KeyError) as e:
                ce.report(os.path.basename(model), False, f"could not run: {e}")
            del ref
    failed = ce.results.count(False)
    print(f"check_qwen35: {len(ce.results) - failed} passed, {failed} failed")
    sys.exit(1 if failed or not ce.results else 0)


if __name__ == "__main__":
    main()
