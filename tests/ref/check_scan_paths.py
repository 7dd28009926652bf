"""`rys scan --paths` on a real model: a paths file of multi-block paths, layers:
paths (one skipping layers, one sharing nothing with the baseline) and a second
spelling of one of them. Checks that every distinct path is measured once, with
items (generated text and score) equal to `rys eval --blocks/--layers` on the
same path from scratch; that paths borrowing the baseline's prefix cost fewer
layer-token evaluations than from scratch; that a rerun, and a sweep over a
block already measured under another spelling, measure nothing; that a bad file
and a sweep option beside --paths are refused before any work (the store
unchanged); and that `rys report` reads the store.

usage: check_scan_paths.py [MODEL] (default smollm2-135m); RYS = the binary."""
import hashlib, json, os, sqlite3, subprocess, sys, tempfile

RYS = os.environ.get("RYS", "build/rys")
MODEL = sys.argv[1] if len(sys.argv) > 1 else "smollm2-135m"
HERE = os.path.dirname(os.path.abspath(__file__))
PROBES = os.path.join(HERE, "..", "..", "probes")

# 30 layers on smollm2-135m. The first spelling of a path is the one the store keeps.
PATHS = """# multi-block paths, layers: paths and a duplicate spelling
blocks:3,9;12,18
blocks:6,12; 8,14
blocks:10,16;20,24
layers:0-9,5-29        # the block (5,10) spelled out
blocks:5,10            # the same path again: measured once

layers:0-14,20-29      # skips layers 15..19: shorter than the model
layers:1-29            # shares no position with the baseline (k = 0)
"""
SPECS = ["baseline", "blocks:3,9;12,18", "blocks:6,12;8,14", "blocks:10,16;20,24", "layers:0-9,5-29",
         "layers:0-14,20-29", "layers:1-29"]
SHARED = {"baseline": 30, "blocks:3,9;12,18": 9, "blocks:6,12;8,14": 12, "blocks:10,16;20,24": 16,
          "layers:0-9,5-29": 10, "layers:0-14,20-29": 15, "layers:1-29": 0}


def subset(src, keys, dst):
    data = json.load(open(src))
    json.dump({k: data[k] for k in keys}, open(dst, "w"))


def sha(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def main():
    tmp = tempfile.mkdtemp(prefix="rys-check-scan-paths-")
    math = os.path.join(tmp, "math_sub.json")
    eq = os.path.join(tmp, "eq_sub.json")
    subset(os.path.join(PROBES, "math_16.json"), ["0", "5", "9", "13"], math)
    subset(os.path.join(PROBES, "eq_16.json"), ["1", "7"], eq)
    paths = os.path.join(tmp, "paths.txt")
    open(paths, "w").write(PATHS)
    db = os.path.join(tmp, "scan.sqlite")
    base = [RYS, "scan", MODEL, "--probes", f"{math},{eq}", "--db", db, "-n", "24", "--json", "--top", "0"]
    cmd = base + ["--paths", paths]
    out = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    print(f"scan --paths: {out['done_now']} paths, layer-token evaluations {out['layer_tokens_done']} vs "
          f"{out['layer_tokens_naive']} naive ({out['reuse_ratio']:.3f}x)")
    fails = 0

    def fail(msg):
        nonlocal fails
        print("FAIL: " + msg)
        fails += 1

    if out["done_now"] != len(SPECS) or out["total"] != len(SPECS):
        fail(f"measured {out['done_now']} of {out['total']} paths, want {len(SPECS)} (each distinct path once)")
    con = sqlite3.connect(db)
    rows = con.execute("SELECT id, spec, i, j, status, layer_tokens_done, layer_tokens_naive FROM config "
                       "ORDER BY sweep_order").fetchall()
    if [r[1] for r in rows] != SPECS:
        fail(f"stored specs {[r[1] for r in rows]}, want {SPECS} (the baseline first, first spellings)")
    for cid, spec, i, j, status, done, naive in rows:
        if status != "done":
            fail(f"{spec} is {status}")
        if (i, j) != (None, None):
            fail(f"{spec}: i, j = {i}, {j}; a path that is not spelled as one block has none")
        # borrowing the baseline's first k positions saves their work; k = 0 saves at most the prompts' shared beginning
        if spec != "baseline" and SHARED.get(spec, 0) > 0 and not done < naive:
            fail(f"{spec}: {done} layer-token evaluations, not fewer than the {naive} of a run from scratch")
        if done > naive:
            fail(f"{spec}: {done} layer-token evaluations, more than the {naive} of a run from scratch")

    # item by item against rys eval from scratch on the same path
    checked = 0
    for cid, spec, *_ in rows:
        kind, _, arg = spec.partition(":")
        args = [] if spec == "baseline" else [f"--{kind}", arg]
        ev = json.loads(subprocess.run([RYS, "eval", MODEL, "--probe", f"{math},{eq}", "-n", "24", "--json"] + args,
                                       check=True, capture_output=True, text=True).stdout)
        stored = {(p, k): (g, s) for p, k, g, s in
                  con.execute("SELECT probe, item_key, generated, score FROM item WHERE config_id = ?", (cid,))}
        if len(stored) != len(ev["items"]):
            fail(f"{spec}: {len(stored)} stored items, eval has {len(ev['items'])}")
        for it in ev["items"]:
            g, s = stored.get((it["probe"], it["key"]), (None, None))
            if g != it["generated"] or s != it["score"]:
                fail(f"{spec} {it['probe']}/{it['key']}: scan {g!r} ({s}) vs eval {it['generated']!r} ({it['score']})")
        for probe, score in ev["scores"].items():
            (st,) = con.execute("SELECT score FROM score WHERE config_id = ? AND probe = ?", (cid, probe)).fetchone()
            if st != score:
                fail(f"{spec} {probe}: scan score {st} vs eval {score}")
        checked += 1
    con.close()

    # nothing is measured twice: the same file again, or a sweep whose one block (5,10) was stored as layers:0-9,5-29
    again = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    if again["done_now"] != 0 or again["done_before"] != len(SPECS):
        fail(f"rerun measured {again['done_now']} paths")
    sweep = json.loads(subprocess.run(base + ["--only", "5-5,10-10"], check=True, capture_output=True, text=True).stdout)
    if sweep["done_now"] != 0 or sweep["done_before"] != 2:
        fail(f"the sweep of block (5,10) measured {sweep['done_now']} configurations, knew {sweep['done_before']}")

    # refused before any work: the store's bytes do not change
    before = sha(db)
    bad = os.path.join(tmp, "bad.txt")
    open(bad, "w").write("blocks:2,7\n# fine so far\nblocks:7,x\n")
    r = subprocess.run(base + ["--paths", bad], capture_output=True, text=True)
    lines = r.stderr.strip().splitlines()
    if r.returncode != 1 or len(lines) != 1 or f"{bad}:3:" not in lines[0] or "7,x" not in lines[0]:
        fail(f"bad file: exit {r.returncode}, stderr {r.stderr!r} (want one line naming {bad}:3)")
    r = subprocess.run(cmd + ["--stride", "2"], capture_output=True, text=True)
    if r.returncode != 1 or "--stride" not in r.stderr:
        fail(f"--paths with --stride: exit {r.returncode}, stderr {r.stderr!r}")
    if sha(db) != before:
        fail("a refused command changed the store")

    # the report ranks the multi-block paths and draws a store without single blocks
    rep = subprocess.run([RYS, "report", db, "--json", "--out", os.path.join(tmp, "report")], capture_output=True, text=True)
    if rep.returncode != 0:
        fail(f"rys report: exit {rep.returncode}: {rep.stderr.strip()}")
    else:
        ranked = {c["spec"] for c in json.loads(rep.stdout)["balanced"]}
        if ranked != set(SPECS[1:]):
            fail(f"report ranks {sorted(ranked)}, want {sorted(SPECS[1:])}")
    print(f"{checked} paths compared item by item with rys eval; rerun, sweep overlap, refusals, report: "
          f"{'PASS' if not fails else 'FAIL'}")
    sys.exit(1 if fails else 0)


if __name__ == "__main__":
    main()
