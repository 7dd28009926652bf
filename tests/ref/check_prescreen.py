#!/usr/bin/env python3
"""`rys prescreen` against an independent computation, and the scan order it gives.

For tiny-gemma3 (8 layers) and SmolLM2-135M (30 layers): the calibration
prompts' token ids from `rys prescreen --json` go through numpy_forward.py's
float64 forward pass, which keeps the hidden state entering every layer; from
those, this file computes CircuitProbe's per-layer statistics (arXiv
2604.00716, as the README's "Pre-screen" states them: mean over positions,
then |b - a|, cos(a, b), the variance over prompts, the effective rank by
numpy's SVD) and every block's stability, anomaly and composite scores,
written here from that definition, not from rys's C. Checks:
  - each layer's four statistics agree (relative 1e-2: rys keeps K, V and Q
    in fp16 and multiplies block-quantized weights (SmolLM2's Q4_1) with
    activations rounded to 8 bits, as llama.cpp does; the reference is
    float64 throughout; the drift grows with
    depth, 0.7% at SmolLM2's last layer);
  - every block's score recomputed here from rys's own statistics equals
    rys's (1e-9), and the ranking from the reference's statistics has
    Spearman > 0.99 with rys's;
  - `rys scan --order prescreen --limit K` measures the baseline and then the
    pre-screen's top K blocks, in its order, and a rerun continues with the
    next ones; `rys prescreen --db` of that store prints the Spearman of its
    scores against the measured balanced scores (with one probe set: the math
    delta's z, so its ranks), recomputed here;
  - `rys report` draws prescreen.png and names the Spearman;
  - bad input: --db of another model's store, --n 1, --method bogus.

usage: check_prescreen.py; RYS = the binary."""
import json, os, sqlite3, sys, tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import numpy_forward as nf  # noqa: E402
from refcheck import fail, failures, run, spearman  # noqa: E402

ROOT = os.path.join(HERE, "..", "..")
TINY = os.path.join(ROOT, "tests", "data", "tiny-gemma3.gguf")
OTHER = os.path.join(ROOT, "tests", "data", "tiny-llama.gguf")
def layer_stats(hidden_per_prompt):
    """CircuitProbe's statistics per layer from each prompt's list of states."""
    n_layers = len(hidden_per_prompt[0]) - 1
    out = []
    for l in range(n_layers):
        a = np.array([h[l].mean(axis=0) for h in hidden_per_prompt])
        b = np.array([h[l + 1].mean(axis=0) for h in hidden_per_prompt])
        c = b - a
        change = float(np.mean(np.linalg.norm(c, axis=1)))
        sim = float(np.mean([x @ y / (np.linalg.norm(x) * np.linalg.norm(y)) for x, y in zip(a, b)]))
        var = float(np.mean(np.var(b, axis=0)))
        rank = 0.0
        if len(a) >= 5:
            s = np.linalg.svd(c, compute_uv=False)
            p = s / (s.sum() + 1e-10)
            p = p[p > 1e-10]
            rank = float(np.exp(-(p * np.log(p)).sum()))
        out.append({"change": change, "self_sim": sim, "variance": var, "eff_rank": rank})
    return out


def z(values, lo, hi):
    v = np.array(values, dtype=np.float64)
    return (v[lo:hi].mean() - v.mean()) / (v.std() + 1e-10)


def block_scores(stats, i, j):
    """(stability, anomaly) of the block of layers i..j-1."""
    n = len(stats)
    ch = [s["change"] for s in stats]
    sim = [s["self_sim"] for s in stats]
    var = [s["variance"] for s in stats]
    rk = [s["eff_rank"] for s in stats]
    anomaly = z(ch, i, j) - z(sim, i, j) + z(var, i, j) + z(rk, i, j)
    stab = 0.0
    if j < n:
        deltas = [abs(ch[l + 1] - ch[l]) for l in range(n - 1)]
        stab += -1.5 * z(deltas, i, j)
    if j < n and i > 0:
        growth = [var[l] / max(var[l - 1], 1e-10) for l in range(1, n)]   # growth[l - 1]: layer l
        med = float(np.median(growth))
        block = abs(np.mean(growth[i - 1:j - 1]) - med)
        devs = np.abs(np.array(growth) - med)
        stab += -(block - devs.mean()) / (devs.std() + 1e-10)
    if i > 2:
        before = np.mean(ch[i - 3:i])
        if before > 0:
            stab += max(0.0, 1 - np.mean(ch[i:j]) / before)
    stab += 0.5 * z(rk, i, j)
    return stab, anomaly


def composite(stats, i, j):
    s, a = block_scores(stats, i, j)
    return (s + a) / 2


def check_model(path, n_prompts):
    out = json.loads(run(["prescreen", path, "--n", str(n_prompts), "--json", "-t", "1"]).stdout)
    name = os.path.basename(path)
    if out["n_prompts"] != n_prompts or len(out["prompt_tokens"]) != n_prompts:
        fail(f"{name}: {out['n_prompts']} calibration prompts, asked for {n_prompts}")
    m = nf.Model(path)
    hidden = []
    for toks in out["prompt_tokens"]:
        s = nf.Session(m)
        s.hidden = []
        s.eval(toks)
        hidden.append(s.hidden)
    ref = layer_stats(hidden)
    worst = 0.0
    for l, (r, o) in enumerate(zip(ref, out["layers"])):
        for key in ("change", "self_sim", "variance", "eff_rank"):
            d = abs(r[key] - o[key]) / max(abs(r[key]), 1e-6)
            worst = max(worst, d)
            if d > 1e-2:
                fail(f"{name}: layer {l} {key}: rys {o[key]:.6g}, reference {r[key]:.6g}")
    n = m.n_layers
    rys_scores = {(b["i"], b["j"]): b["score"] for b in out["blocks"]}
    if len(rys_scores) != n * (n + 1) // 2:
        fail(f"{name}: {len(rys_scores)} blocks scored, not {n * (n + 1) // 2}")
    worst_score = 0.0
    for (i, j), score in rys_scores.items():
        mine = composite(out["layers"], i, j)
        worst_score = max(worst_score, abs(mine - score))
        if abs(mine - score) > 1e-9 * max(1.0, abs(mine)):
            fail(f"{name}: block ({i},{j}) scores {score!r} in rys, {mine!r} from rys's statistics here")
    keys = sorted(rys_scores)
    rho = spearman([rys_scores[k] for k in keys], [composite(ref, *k) for k in keys])
    if not rho > 0.99:
        fail(f"{name}: Spearman {rho:.4f} between rys's ranking and the reference's")
    order = [(b["i"], b["j"]) for b in out["blocks"]]
    if order != sorted(order, key=lambda k: (-rys_scores[k], k[0], k[1])):
        fail(f"{name}: blocks not listed best score first")
    print(f"ok   {name}: {n} layers, {n_prompts} prompts: statistics within {worst:.2e} of numpy's float64 pass; "
          f"{len(rys_scores)} block scores within {worst_score:.1e} of this file's formula; ranking Spearman {rho:.4f}")
    return out


def check_scan_order(tmp):
    db = os.path.join(tmp, "order.sqlite")
    # EQ read by logits: continuous scores, so the tiny model's blocks differ (its math answers are all wrong)
    probe = os.path.join(ROOT, "probes", "eq_16.json") + ":logit"
    base = ["scan", TINY, "--probes", probe, "--db", db, "--order", "prescreen", "-t", "1"]
    run(base + ["--limit", "5"])        # the baseline counts as one
    pre = json.loads(run(["prescreen", TINY, "--json", "-t", "1"]).stdout)
    top = [(b["i"], b["j"]) for b in pre["blocks"]]
    con = sqlite3.connect(db)
    done = con.execute("SELECT spec, i, j FROM config WHERE status = 'done' ORDER BY sweep_order").fetchall()
    if done[0][0] != "baseline" or [(r[1], r[2]) for r in done[1:]] != top[:4]:
        fail(f"scan --order prescreen measured {done}, the pre-screen's top 4 are {top[:4]}")
    run(base + ["--limit", "3"])
    done = con.execute("SELECT i, j FROM config WHERE status = 'done' AND spec != 'baseline' ORDER BY sweep_order").fetchall()
    if [tuple(r) for r in done] != top[:7]:
        fail(f"the resumed scan measured {done}, the pre-screen's top 7 are {top[:7]}")
    # the comparison: with one probe set the balanced score is that delta's z, so its ranks
    res = json.loads(run(["prescreen", TINY, "--db", db, "--json", "-t", "1"]).stdout)
    base_score = con.execute("SELECT s.score FROM score s JOIN config c ON c.id = s.config_id WHERE c.spec = 'baseline'").fetchone()[0]
    rows = con.execute("SELECT c.i, c.j, s.score FROM score s JOIN config c ON c.id = s.config_id "
                       "WHERE c.status = 'done' AND c.i IS NOT NULL").fetchall()
    scores = {(b["i"], b["j"]): b["score"] for b in res["blocks"]}
    want = spearman([scores[(i, j)] for i, j, _ in rows], [s - base_score for _, _, s in rows])
    got = res["measured"]["spearman"]
    if len(rows) != res["measured"]["blocks"] or got is None or abs(got - want) > 1e-12:
        fail(f"prescreen --db: Spearman {got} over {res['measured']['blocks']} blocks, recomputed {want} over {len(rows)}")
    con.close()
    rep = os.path.join(tmp, "report")
    run(["report", db, "--out", rep])
    html = open(os.path.join(rep, "index.html")).read()
    if not os.path.getsize(os.path.join(rep, "prescreen.png")) or "Pre-screen" not in html or f"Spearman {want:.3f}" not in html:
        fail("rys report: no pre-screen figure or Spearman in index.html")
    print(f"ok   scan --order prescreen: baseline then the top 4, resumed with the next 3; Spearman {want:.3f} "
          f"against {len(rows)} measured blocks, as recomputed; report draws it")
    return db


def check_refusals(db):
    for args, needle in ((["prescreen", OTHER, "--db", db], "another model"),
                         (["prescreen", TINY, "--n", "1"], "--n"),
                         (["prescreen", TINY, "--method", "bogus"], "--method"),
                         (["prescreen", TINY, "--db", "/nonexistent/x.sqlite"], "no such scan store")):
        p = run(args, ok=False)
        if p.returncode == 0 or needle not in p.stderr or len(p.stderr.strip().splitlines()) != 1:
            fail(f"rys {' '.join(args)}: exit {p.returncode}, stderr {p.stderr.strip()!r} (wanted one line naming {needle!r})")
    print("ok   refusals: another model's store, --n 1, a bad --method, a missing store")


def main():
    smol = os.path.join(os.environ.get("RYS_CACHE_DIR", os.path.expanduser("~/.cache/rys")), "models", "smollm2-135m.gguf")
    check_model(TINY, 8)
    check_model(smol, 6)
    with tempfile.TemporaryDirectory(prefix="rys-check-prescreen-") as tmp:
        check_refusals(check_scan_order(tmp))
    print("PASS" if not failures else f"FAIL ({len(failures)})")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
