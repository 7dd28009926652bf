"""`rys report --json` against numpy on a random partial scan database: deltas,
combined score, the balanced ranking (z(math delta) + z(EQ delta), population
std, ties by EQ then math delta), per-probe rankings, the Pareto front and
the counts, recomputed here from the raw scores.

The database holds only the tables and columns the report reads (src/scan/store.c
has the full schema). Scores are multiples of 1/32 so that ties, which the
tie rules exist for, occur often. usage: check_report.py; RYS = the binary."""
import json, os, random, shutil, sqlite3, subprocess, sys, tempfile

import numpy as np

RYS = os.environ.get("RYS", "build/rys")
N = 12

SCHEMA = """
CREATE TABLE scan_run (id INTEGER PRIMARY KEY, model_path TEXT NOT NULL, n_layers INTEGER NOT NULL);
CREATE TABLE probe_set (name TEXT PRIMARY KEY, kind TEXT NOT NULL, position INTEGER NOT NULL);
CREATE TABLE config (id INTEGER PRIMARY KEY, path TEXT NOT NULL UNIQUE, spec TEXT NOT NULL, i INTEGER, j INTEGER,
                     extra_layers INTEGER NOT NULL, sweep_order INTEGER NOT NULL, status TEXT NOT NULL);
CREATE TABLE score (config_id INTEGER NOT NULL, probe TEXT NOT NULL, score REAL NOT NULL, PRIMARY KEY (config_id, probe));
"""


def make_db(path, rng):
    con = sqlite3.connect(path)
    con.executescript(SCHEMA)
    con.execute("INSERT INTO scan_run VALUES (1, '/m/model.gguf', ?)", (N,))
    # EQ first: the report must find the sets by kind, not by position
    con.execute("INSERT INTO probe_set VALUES ('eq_x', 'eq', 0)")
    con.execute("INSERT INTO probe_set VALUES ('math_x', 'math', 1)")
    cfgs = [("baseline", None, None, 0)]
    cfgs += [(f"blocks:{i},{j}", i, j, j - i) for i in range(N) for j in range(i + 1, N + 1)]
    cfgs += [(f"repeat:{l},{r}", None, None, r - 1) for r in (2, 3) for l in range(N)]
    rows = []
    for k, (spec, i, j, extra) in enumerate(cfgs):
        done = spec == "baseline" or rng.random() < 0.7
        con.execute("INSERT INTO config VALUES (?,?,?,?,?,?,?,?)",
                    (k + 1, f"layers:{spec}", spec, i, j, extra, k, "done" if done else "pending"))
        if done:
            # longer paths score a little higher, so the Pareto front has several steps
            lift = min(extra, 6)
            m, e = (rng.randint(4, 20) + lift) / 32, (rng.randint(4, 20) + lift) / 32
            con.execute("INSERT INTO score VALUES (?, 'math_x', ?)", (k + 1, m))
            con.execute("INSERT INTO score VALUES (?, 'eq_x', ?)", (k + 1, e))
            rows.append((k, spec, i, extra, m, e))
    con.commit()
    con.close()
    n_pending = len(cfgs) - len(rows)
    return rows, n_pending


def main():
    rng = random.Random(7)
    tmp = tempfile.mkdtemp(prefix="rys-check-report-")
    db = os.path.join(tmp, "scan.sqlite")
    rows, n_pending = make_db(db, rng)
    out = subprocess.run([RYS, "report", db, "--json", "--top", "100000", "--out", os.path.join(tmp, "report")],
                         check=True, capture_output=True, text=True).stdout
    got = json.loads(out)

    base = next(r for r in rows if r[1] == "baseline")
    cfg = [r for r in rows if r[1] != "baseline"]
    order = np.array([r[0] for r in cfg])
    spec = [r[1] for r in cfg]
    extra = np.array([r[3] for r in cfg])
    dm = np.array([r[4] for r in cfg]) - base[4]
    de = np.array([r[5] for r in cfg]) - base[5]

    def z(v):
        sd = v.std()   # population std, as the reference
        return (v - v.mean()) / (sd if sd >= 1e-12 else 1.0)

    balanced = z(dm) + z(de)
    combined = dm + de

    def ranking(value):
        # descending value, then EQ delta, then math delta, then fewer extra layers, then sweep order
        keys = (order, extra, -dm, -de, -np.round(value, 9))
        return [spec[k] for k in np.lexsort(keys)]

    fails = 0

    def expect(what, a, b):
        nonlocal fails
        if a != b:
            print(f"FAIL {what}: rys {a if not isinstance(a, list) else a[:8]} ... numpy {b if not isinstance(b, list) else b[:8]} ...")
            fails += 1

    expect("balanced ranking", [c["spec"] for c in got["balanced"]], ranking(balanced))
    expect("math ranking", [c["spec"] for c in got["by_probe"]["math_x"]], ranking(dm))
    expect("eq ranking", [c["spec"] for c in got["by_probe"]["eq_x"]], ranking(de))
    expect("combined ranking", [c["spec"] for c in got["by_probe"]["combined"]], ranking(combined))
    by_spec = {c["spec"]: c for c in got["balanced"]}
    worst = max(max(abs(by_spec[s]["balanced_z"] - balanced[k]), abs(by_spec[s]["combined_delta"] - combined[k]),
                    abs(by_spec[s]["deltas"]["math_x"] - dm[k]), abs(by_spec[s]["deltas"]["eq_x"] - de[k]),
                    abs(by_spec[s]["size_increase_pct"] - 100 * extra[k] / N))
                for k, s in enumerate(spec))
    if worst > 1e-8:
        print(f"FAIL values: largest difference {worst:g}")
        fails += 1

    front = sorted((extra[k], spec[k]) for k in range(len(spec))
                   if not any(combined[o] >= combined[k] and extra[o] <= extra[k] and
                              (combined[o] > combined[k] or extra[o] < extra[k]) for o in range(len(spec))))
    expect("Pareto front", sorted((c["extra_layers"], c["spec"]) for c in got["pareto"]), front)

    n_blocks = sum(1 for s in spec if s.startswith("blocks:"))
    expect("counts", got["counts"], {"measured": len(cfg), "blocks_measured": n_blocks,
                                     "blocks_possible": N * (N + 1) // 2, "blocks_missing": N * (N + 1) // 2 - n_blocks,
                                     "repeats_measured": len(cfg) - n_blocks, "pending": n_pending})
    expect("baseline", got["baseline"], {"eq_x": base[5], "math_x": base[4]})
    html = open(os.path.join(tmp, "report", "index.html")).read()
    if f"{n_pending} configurations are still missing" not in html:
        print("FAIL index.html does not say how many configurations are missing")
        fails += 1
    ties = len(cfg) - len(set(zip(np.round(balanced, 9))))
    print(f"{len(cfg)} configurations ({ties} balanced-score ties), {n_pending} pending, front of {len(front)}: "
          f"{'FAIL' if fails else 'ok'}")
    if not fails:
        shutil.rmtree(tmp)
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
