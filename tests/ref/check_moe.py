#!/usr/bin/env python3
"""check_moe: the qwen3moe forward pass (router, top-k, renormalised expert
weights, tokens grouped by expert) against llama.cpp (llama-cpp-python) on
small models with random weights that make_tiny_moe.py writes here, since no
mixture-of-experts model ships in a package these machines reach. The checks
are check_engine.py's, on two copies of the tiny model:

  F32 (every tensor F32, so neither engine quantizes activations):
    (a) last-position logits of check_engine's 5 prompts: max|diff| <= 1e-2
        of max|logit| and the same argmax;
    (b) 64-token greedy continuations (`rys run`), identical for >= 4 of 5;
    (d) `rys logits --blocks` on the original file against llama.cpp on a
        copy materialized along the path (tests/ref/materialize.py), for
        three block specs (one repeats a block twice, one chains two);
    (c) perplexity (llama.cpp's definition, the Apache-2.0 licence text,
        -c 512) within 0.5%.
  Q8_0 (matrices and experts Q8_0, router and norms F32, as llama.cpp's
  quantizer leaves them): both engines quantize every activation to 8 bits,
  and llama.cpp differs from itself by 2-4e-2 of max|logit| here between
  flash attention on and off (a value on the other side of a rounding step
  moves a whole step, and may move a token to another expert), so, as
  check_engine's (q) on quantized files:
    (q) last-position logits of the 5 prompts: the same argmax, and the gap
        to llama.cpp at most 1.5 x the larger of rys's spread across its
        kernel paths (portable / AVX2 / AVX-512) and llama.cpp's between
        flash attention on and off, + 1e-2;
    (dq) the same bound for `rys logits --blocks` against llama.cpp on the
        materialized copy, for two of (d)'s block specs;
    (c) perplexity within 0.5%.
  (r) a file with expert_used_count > expert_count, and one whose 3-D
      expert tensor is short of an expert, are refused with one line naming
      the key or tensor (exit status non-zero).
  (s) scan: `rys scan --stride 1` over the F32 model (every block of its 4
      layers and the baseline) with four math and two EQ probe items; each
      configuration's stored items and scores equal `rys eval` from scratch
      on the same path (the scanner reuses the baseline's prefix states and
      KV slots, which here hold the experts' outputs too).

With --mid, also the mid-sized model (6 layers, dim 256, 32 experts) made
Q4_K_M by llama.cpp's own quantizer: (q) its logits against llama.cpp within
check_engine's bound for quantized files (1.5 x the larger of rys's spread
across its kernel paths and llama.cpp's between flash attention on and off,
+ 1e-2) and the same argmax.

Prints PASS/FAIL per check; exits 1 when any fails.
usage: check_moe.py [--mid] [--keep DIR]   binary: $RYS or build/rys
"""
import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import numpy as np  # noqa: E402
import check_engine as ce  # noqa: E402
from make_tiny_moe import make_moe  # noqa: E402
from materialize import materialize  # noqa: E402
from numpy_forward import blocks_path  # noqa: E402

PROBES = os.path.join(HERE, "..", "..", "probes")
SCAN_TOKENS = "24"
QUANT_PATH_SPECS = ["0,4", "1,2;2,3"]   # two of check_engine's (d) specs for 4 layers (time)


def subset(src, keys, dst):
    with open(src, encoding="utf-8") as f:
        data = json.load(f)
    with open(dst, "w", encoding="utf-8") as f:
        json.dump({k: data[k] for k in keys}, f)


def run_json(args):
    r = subprocess.run([ce.RYS, *args], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"rys {' '.join(args[:2])} failed ({r.returncode}): {r.stderr.strip()[-400:]}")
    return json.loads(r.stdout)


def rys_logits_on(model, tokens, blocks, cpu):
    """rys's last-position logits on kernel path cpu; None where this CPU lacks it."""
    with tempfile.NamedTemporaryFile(suffix=".npy") as f:
        r = subprocess.run([ce.RYS, "logits", model, "--tokens", ",".join(map(str, tokens)), "--npy", f.name,
                            "--blocks", blocks, "-t", ce.THREADS], capture_output=True, text=True,
                           env=dict(os.environ, RYS_CPU=cpu))
        return np.load(f.name).astype(np.float64)[-1] if r.returncode == 0 else None


def check_paths_quantized(model, ref, items, tmp):
    """(dq): (d) on a quantized file, with check_engine's (q) bound."""
    toks_list = [(name, ref.tokenize(text)) for name, text in items if name in ("chat", "code")]
    for spec in QUANT_PATH_SPECS:
        copy = os.path.join(tmp, "relayered-q.gguf")
        materialize(model, copy, blocks_path(spec, 4))
        plain, flash = ce.LlamaRef(copy, n_ctx=256), ce.LlamaRef(copy, n_ctx=256, flash_attn=True)
        for name, toks in toks_list:
            want = plain.logits(toks)[-1]
            scale = np.abs(want).max()
            got = ce.rys_logits(model, toks, blocks=spec)
            outs = [o for o in (rys_logits_on(model, toks, spec, c) for c in ("portable", "avx2", "avx512"))
                    if o is not None]
            spread = max((float(np.abs(x - y).max() / scale) for i, x in enumerate(outs) for y in outs[i + 1:]),
                         default=0.0)
            lc_spread = float(np.abs(flash.logits(toks)[-1] - want).max() / scale)
            rel = float(np.abs(got - want).max() / scale)
            bound = 1.5 * max(spread, lc_spread) + ce.LOGIT_TOL
            same = int(got.argmax()) == int(want.argmax())
            ce.report(f"(dq) quantized path blocks {spec} '{name}'", rel <= bound and same,
                      f"vs llama.cpp on a materialized copy {rel:.2e}; rys across {len(outs)} kernel paths "
                      f"{spread:.2e}; llama.cpp flash attention on vs off {lc_spread:.2e}; bound {bound:.2e}; "
                      f"argmax {int(got.argmax())} vs {int(want.argmax())}")
        del plain, flash
        os.remove(copy)


def check_refused(tmp):
    """(r): malformed MoE files are refused with a one-line error naming the problem."""
    for broken, want in (("used", "expert_used_count = 17 out of range"),
                         ("experts", "tensor blk.1.ffn_up_exps.weight has 3 dimensions [64, 32, 15], expected [64, 32, 16]")):
        path = os.path.join(tmp, f"broken-{broken}.gguf")
        make_moe(path, "tiny", "f32", broken=broken)
        r = subprocess.run([ce.RYS, "logits", path, "--tokens", "1,2,3", "--npy", os.path.join(tmp, "never.npy")],
                           capture_output=True, text=True)
        err = r.stderr.strip()
        ce.report(f"(r) refused: {broken}", r.returncode != 0 and want in err and len(err.splitlines()) == 1,
                  f"exit {r.returncode}: {err[-200:]!r}")


def check_scan(model, tmp):
    """(s): every configuration a scan stores equals `rys eval` from scratch, its reuse running fewer layer-tokens."""
    math, eq = os.path.join(tmp, "math_sub.json"), os.path.join(tmp, "eq_sub.json")
    subset(os.path.join(PROBES, "math_16.json"), ["0", "5", "9", "13"], math)
    subset(os.path.join(PROBES, "eq_16.json"), ["1", "7"], eq)
    db = os.path.join(tmp, "scan.sqlite")
    out = run_json(["scan", model, "--probes", f"{math},{eq}", "--db", db, "--stride", "1", "-n", SCAN_TOKENS,
                    "--json", "--top", "0", "-t", ce.THREADS])
    con = sqlite3.connect(db)
    configs = con.execute("SELECT id, spec FROM config WHERE status = 'done' ORDER BY sweep_order").fetchall()
    bad, items = [], 0
    for cid, spec in configs:
        args = [] if spec == "baseline" else ["--blocks", spec.split(":")[1]]
        ev = run_json(["eval", model, "--probe", f"{math},{eq}", "-n", SCAN_TOKENS, "--json", "-t", ce.THREADS] + args)
        stored = {(p, k): (g, s) for p, k, g, s in
                  con.execute("SELECT probe, item_key, generated, score FROM item WHERE config_id = ?", (cid,))}
        for it in ev["items"]:
            items += 1
            if stored.get((it["probe"], it["key"])) != (it["generated"], it["score"]):
                bad.append(f"{spec} {it['probe']}/{it['key']}")
    con.close()
    ce.report("(s) scan items equal rys eval from scratch", len(configs) == 11 and not bad and items > 0
              and out["layer_tokens_done"] < out["layer_tokens_naive"],
              f"{len(configs)} configurations (10 blocks of 4 layers + baseline), {items} items compared, "
              f"reuse {out['layer_tokens_done']} of {out['layer_tokens_naive']} layer-tokens"
              + (f"; differ: {', '.join(bad[:6])}" if bad else ""))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mid", action="store_true", help="also the mid-sized Q4_K_M model")
    ap.add_argument("--keep", help="write the models into DIR and keep them")
    a = ap.parse_args()
    ce.PPL_TEXTS = ["Apache-2.0"]   # ~10k tokens of the tiny vocabulary: 19 chunks of 512
    with tempfile.TemporaryDirectory(prefix="rys-check-moe-") as tmp:
        out = a.keep or tmp
        os.makedirs(out, exist_ok=True)
        f32, q8 = os.path.join(out, "tiny-qwen3moe-f32.gguf"), os.path.join(out, "tiny-qwen3moe-q8_0.gguf")
        make_moe(f32, "tiny", "f32")
        make_moe(q8, "tiny", "q8_0")
        print(f"check_moe: {f32}, {q8}; rys = {ce.RYS}", flush=True)
        for model, checks in ((f32, "abdc"), (q8, "qpc")):
            print(f"check_moe: {os.path.basename(model)}", flush=True)
            items = ce.prompts(model)
            ref = ce.LlamaRef(model)
            try:
                if "a" in checks:
                    ce.check_logits(model, ref, items)
                if "b" in checks:
                    ce.check_greedy(model, ref, items)
                if "d" in checks:
                    ce.check_paths(model, ref, items, 4, "qwen3moe", tmp)
                if "q" in checks:
                    ce.check_quantized(model, ref, items)
                if "p" in checks:
                    check_paths_quantized(model, ref, items, tmp)
                if "c" in checks:
                    ce.check_perplexity(model, ref, tmp)
            except (RuntimeError, OSError, ValueError, KeyError, json.JSONDecodeError) as e:
                ce.report(f"{os.path.basename(model)}", False, f"could not run: {e}")
            del ref
        check_refused(tmp)
        try:
            check_scan(f32, tmp)
        except (RuntimeError, OSError, KeyError, json.JSONDecodeError, sqlite3.Error) as e:
            ce.report("(s) scan", False, f"could not run: {e}")
        if a.mid:
            mid = os.path.join(out, "mid-qwen3moe-q4_k_m.gguf")
            make_moe(mid, "mid", "q4_k_m")
            print(f"check_moe: {os.path.basename(mid)}", flush=True)
            ref = ce.LlamaRef(mid)
            ce.check_quantized(mid, ref, ce.prompts(mid))
    failed = ce.results.count(False)
    print(f"check_moe: {len(ce.results) - failed} passed, {failed} failed")
    sys.exit(1 if failed or not ce.results else 0)


if __name__ == "__main__":
    main()
