"""`rys surrogate train|rank` end to end on a tiny model's real scan store.

Scans tests/data/tiny-gemma3.gguf (8 layers: every single block and repeat,
two math and two EQ-by-logit items), trains, and checks against plain Python
(no numpy, no scipy): the targets of the holdout rows (deltas from the score
table, the balanced z-score sum over the non-baseline rows), the holdout's
Spearman with average ranks and its MAE as stored and as written in the file,
the holdout's size, the model identity in the file. Then: the ranking is the
same file for one and two threads; its lines are counts: vectors within the
limits, distinct, none measured already; `rys scan --paths top --search
surrogate` measures them and marks them; a surrogate is refused for another
model's store and, after a failed gate, without --force; `rys report` draws
the search views.

usage: check_surrogate.py; RYS = the binary."""
import hashlib, json, math, os, sqlite3, sys, tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from refcheck import fail, failures, run, spearman  # noqa: E402
ROOT = os.path.join(HERE, "..", "..")
MODEL = os.path.join(ROOT, "tests", "data", "tiny-gemma3.gguf")
OTHER = os.path.join(ROOT, "tests", "data", "tiny-llama.gguf")
def counts(path, n):
    c = [0] * n
    for l in path.split(":", 1)[1].split(","):
        c[int(l)] += 1
    return c


def main():
    tmp = tempfile.mkdtemp(prefix="rys-check-surrogate-")
    m, e = os.path.join(tmp, "m.json"), os.path.join(tmp, "e.json")
    mj = json.load(open(os.path.join(ROOT, "probes", "math_16.json")))
    ej = json.load(open(os.path.join(ROOT, "probes", "eq_16.json")))
    json.dump({k: mj[k] for k in ["0", "5"]}, open(m, "w"))
    json.dump({k: ej[k] for k in ["1", "7"]}, open(e, "w"))
    db = os.path.join(tmp, "scan.sqlite")
    scan = ["scan", MODEL, "--probes", f"{m},{e}:logit", "--db", db, "-n", "4", "-t", "1", "--top", "0", "--json"]
    run(scan)
    run(scan + ["--mode", "repeat"])
    sj = os.path.join(tmp, "s.json")
    out = json.loads(run(["surrogate", "train", "--db", db, "-o", sj, "--json", "-t", "1"]).stdout)
    print(f"train: {out['train']} + {out['holdout']} rows, balanced Spearman {out['balanced']['spearman']}, "
          f"gate passed {out['gate_passed']}")
    f = json.load(open(sj))
    if f["model"]["sha256"] != hashlib.sha256(open(MODEL, "rb").read()).hexdigest() or f["model"]["n_layers"] != 8:
        fail(f"file's model {f['model']} is not tiny-gemma3's")
    if f["targets"] != ["math_delta", "eq_delta", "balanced"] or set(f["boosters_ubj_base64"]) != set(f["targets"]):
        fail(f"targets {f['targets']}, boosters {list(f['boosters_ubj_base64'])}")

    con = sqlite3.connect(db)
    probes = [r[0] for r in con.execute("SELECT name FROM probe_set ORDER BY position")]
    score = {}
    for path, probe, s in con.execute("SELECT c.path, s.probe, s.score FROM score s JOIN config c ON c.id = s.config_id "
                                      "WHERE c.status = 'done'"):
        score.setdefault(path, {})[probe] = s
    base = score[con.execute("SELECT path FROM config WHERE spec = 'baseline'").fetchone()[0]]
    rows = list(score)
    n = len(rows)
    want_hold = max(1, min(n - 1, int(n * 0.05 + 0.5)))
    if out["holdout"] != want_hold or out["train"] + out["holdout"] != n:
        fail(f"{out['train']} + {out['holdout']} rows; the store has {n} (holdout {want_hold})")
    # targets by hand: deltas, and z(math) + z(eq) over the non-baseline rows (population std)
    delta = {p: {q: score[p][q] - base[q] for q in probes} for p in rows}
    others = [p for p in rows if p != con.execute("SELECT path FROM config WHERE spec = 'baseline'").fetchone()[0]]
    z = {}
    for q in probes:
        mu = sum(delta[p][q] for p in others) / len(others)
        sd = math.sqrt(sum((delta[p][q] - mu) ** 2 for p in others) / len(others))
        sd = sd if sd >= 1e-12 else 1
        for p in rows:
            z[p] = z.get(p, 0) + (delta[p][q] - mu) / sd
    want = {"math_delta": {p: delta[p][probes[0]] for p in rows}, "eq_delta": {p: delta[p][probes[1]] for p in rows},
            "balanced": z}
    for target, rho, mae, nh in con.execute("SELECT target, spearman, mae, n_holdout FROM surrogate_fit ORDER BY position"):
        pts = con.execute("SELECT path, measured, predicted FROM surrogate_holdout WHERE target = ?", (target,)).fetchall()
        if len(pts) != nh or nh != out["holdout"]:
            fail(f"{target}: {len(pts)} holdout rows stored, {nh} counted, {out['holdout']} printed")
        for path, meas, pred in pts:
            if abs(meas - want[target][path]) > 1e-9:
                fail(f"{target} of {path}: stored {meas}, by hand {want[target][path]}")
        r = spearman([p[1] for p in pts], [p[2] for p in pts])
        a = sum(abs(p[1] - p[2]) for p in pts) / len(pts)
        fr = f["holdout"][target]["spearman"]
        if math.isnan(r):
            if fr is not None or out[target]["spearman"] is not None or rho is not None:
                fail(f"{target}: Spearman undefined by hand (a constant side), file says {fr}")
        elif abs(r - rho) > 1e-9 or fr is None or abs(r - fr) > 1e-9:
            fail(f"{target}: Spearman {r} by hand, {rho} stored, {fr} in the file")
        if abs(a - mae) > 1e-6 or abs(a - f["holdout"][target]["mae"]) > 1e-6:
            fail(f"{target}: MAE {a} by hand, {mae} stored")
        print(f"  {target}: {nh} holdout rows, Spearman {r:.4f} (by hand), stored {rho}, MAE {a:.4g}")

    if not out["gate_passed"]:
        run(["surrogate", "train", "--db", db, "-o", sj, "--gate", "-1", "-t", "1", "--json"])
    top1, top2 = os.path.join(tmp, "top1.txt"), os.path.join(tmp, "top2.txt")
    rank = ["surrogate", "rank", sj, "--candidates", "20000", "--top", "5", "--max-extra", "6", "--max-count", "3",
            "--db", db, "--min-math", "-1", "--min-eq", "-1"]
    run(rank + ["-o", top1, "-t", "1"])
    run(rank + ["-o", top2, "-t", "2"])
    t1 = open(top1).read()
    if t1 != open(top2).read():
        fail("the ranking differs between one and two threads")
    lines = [l for l in t1.splitlines() if l and not l.startswith("#")]
    measured = {tuple(counts(p, 8)) for p in rows}
    vecs = []
    for l in lines:
        c = [int(x) for x in l.split(":", 1)[1].split(",")] if l.startswith("counts:") else []
        if len(c) != 8 or min(c) < 1 or max(c) > 3 or sum(c) - 8 > 6 or sum(c) == 8:
            fail(f"top line '{l}' is not a counts: vector within --max-extra 6 --max-count 3")
        vecs.append(tuple(c))
    if len(set(vecs)) != len(vecs) or set(vecs) & measured or len(vecs) != 5:
        fail(f"top paths {vecs}: duplicated, measured already, or not 5")

    res = json.loads(run(["scan", MODEL, "--probes", f"{m},{e}:logit", "--db", db, "-n", "4", "-t", "1", "--top", "0",
                          "--json", "--paths", top1, "--search", "surrogate"]).stdout)
    marks = dict(con.execute("SELECT path, search FROM config").fetchall())
    got = {tuple(counts(p, 8)): s for p, s in marks.items()}
    if res["done_now"] != 5 or any(got.get(v) != "surrogate" for v in vecs):
        fail(f"scan --paths --search surrogate measured {res['done_now']}, marks {[got.get(v) for v in vecs]}")

    # another model's store: refused in one line
    odb = os.path.join(tmp, "other.sqlite")
    bl = os.path.join(tmp, "baseline.txt")
    open(bl, "w").write("baseline\n")
    run(["scan", OTHER, "--probes", f"{m},{e}:logit", "--db", odb, "-n", "4", "-t", "1", "--top", "0", "--paths", bl])
    p = run(["surrogate", "rank", sj, "-o", os.path.join(tmp, "x.txt"), "--db", odb], ok=False)
    if p.returncode != 1 or "another model" not in p.stderr or p.stderr.strip().count("\n"):
        fail(f"rank on another model's store: exit {p.returncode}, {p.stderr!r}")
    # a gate no fit of 26 holdout rows passes: exit 1, the file marked, rank refuses it unless forced
    p = run(["surrogate", "train", "--db", db, "-o", sj, "--gate", "1", "--holdout", "0.5", "--retries", "1", "-t", "1"], ok=False)
    if p.returncode != 1 or "gate failed" not in p.stderr or json.load(open(sj))["gate"]["passed"]:
        fail(f"train with --gate 1: exit {p.returncode}, {p.stderr!r}")
    p = run(["surrogate", "rank", sj, "-o", os.path.join(tmp, "x.txt"), "--candidates", "1000"], ok=False)
    if p.returncode != 1 or "gate" not in p.stderr or p.stderr.strip().count("\n"):
        fail(f"rank of an ungated surrogate: exit {p.returncode}, {p.stderr!r}")
    run(["surrogate", "rank", sj, "-o", os.path.join(tmp, "x.txt"), "--candidates", "1000", "--force"])

    rep = os.path.join(tmp, "report")
    run(["report", db, "--out", rep])
    html = open(os.path.join(rep, "index.html")).read()
    for fig in ("searches", "surrogate"):
        if f'src="{fig}.png"' not in html or not os.path.exists(os.path.join(rep, fig + ".svg")):
            fail(f"report lacks {fig}.png/svg")
    print("check_surrogate: " + ("OK" if not failures else f"{len(failures)} failures"))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
