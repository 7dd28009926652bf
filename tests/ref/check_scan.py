"""Scanner equivalence on a real model: for >= 10 configurations, the scores
and generated texts a scan stores (prefix reuse) must equal, item by item,
what `rys eval --blocks` computes from scratch. Also checks the layer-token
accounting (reuse < naive, the baseline's pass charged, rows adding up to the total) and that a second run resumes with nothing to do.

usage: check_scan.py [MODEL] (default smollm2-135m); RYS = the binary."""
import json, os, sqlite3, subprocess, sys, tempfile

RYS = os.environ.get("RYS", "build/rys")
MODEL = sys.argv[1] if len(sys.argv) > 1 else "smollm2-135m"
HERE = os.path.dirname(os.path.abspath(__file__))
PROBES = os.path.join(HERE, "..", "..", "probes")


def subset(src, keys, dst):
    data = json.load(open(src))
    json.dump({k: data[k] for k in keys}, open(dst, "w"))


def main():
    tmp = tempfile.mkdtemp(prefix="rys-check-scan-")
    math = os.path.join(tmp, "math_sub.json")
    eq = os.path.join(tmp, "eq_sub.json")
    subset(os.path.join(PROBES, "math_16.json"), ["0", "5", "9", "13"], math)
    subset(os.path.join(PROBES, "eq_16.json"), ["1", "7"], eq)
    db = os.path.join(tmp, "scan.sqlite")
    # 0-29,... with stride 6 on a 30-layer model: 15 blocks + baseline
    cmd = [RYS, "scan", MODEL, "--probes", f"{math},{eq}", "--db", db, "--stride", "6", "-n", "24", "--json", "--top", "0"]
    out = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    print(f"scan: {out['done_now']} configurations, layer-token evaluations {out['layer_tokens_done']} vs "
          f"{out['layer_tokens_naive']} naive ({out['reuse_ratio']:.3f}x)")
    fails = 0
    if not out["layer_tokens_done"] < out["layer_tokens_naive"]:
        print("FAIL: reuse did not save work"); fails += 1
    again = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    if again["done_now"] != 0 or again["done_before"] != out["total"]:
        print(f"FAIL: resume redid {again['done_now']} configurations"); fails += 1
    con = sqlite3.connect(db)
    # the baseline's own pass (the states every configuration borrows) is charged to its row, less the
    # prompt beginnings it shares (the math items' chat-template system turn is common to all four), and
    # the rows of a fresh scan add up to the total the scan printed: no work goes uncounted
    base_done, base_naive = con.execute("SELECT layer_tokens_done, layer_tokens_naive FROM config "
                                        "WHERE spec = 'baseline'").fetchone()
    if not 0 < base_done < base_naive:
        print(f"FAIL: baseline row charges {base_done} layer-tokens of {base_naive}"); fails += 1
    rows = con.execute("SELECT sum(layer_tokens_done), sum(layer_tokens_naive) FROM config").fetchone()
    if rows != (out["layer_tokens_done"], out["layer_tokens_naive"]):
        print(f"FAIL: rows add up to {rows}, the scan printed {out['layer_tokens_done']}, "
              f"{out['layer_tokens_naive']}"); fails += 1
    configs = con.execute("SELECT id, spec FROM config WHERE status = 'done' ORDER BY sweep_order").fetchall()
    if len(configs) < 11:
        print(f"FAIL: only {len(configs)} configurations done"); fails += 1
    checked = 0
    for cid, spec in configs[:12]:
        args = [] if spec == "baseline" else ["--blocks", spec.split(":")[1]]
        ev = json.loads(subprocess.run([RYS, "eval", MODEL, "--probe", f"{math},{eq}", "-n", "24", "--json"] + args,
                                       check=True, capture_output=True, text=True).stdout)
        stored = {(p, k): (g, s) for p, k, g, s in
                  con.execute("SELECT probe, item_key, generated, score FROM item WHERE config_id = ?", (cid,))}
        for it in ev["items"]:
            g, s = stored[(it["probe"], it["key"])]
            if g != it["generated"] or s != it["score"]:
                print(f"FAIL {spec} {it['probe']}/{it['key']}: scan {g!r} ({s}) vs eval {it['generated']!r} ({it['score']})")
                fails += 1
        for probe, score in ev["scores"].items():
            (st,) = con.execute("SELECT score FROM score WHERE config_id = ? AND probe = ?", (cid, probe)).fetchone()
            if st != score:
                print(f"FAIL {spec} {probe}: scan score {st} vs eval {score}"); fails += 1
        checked += 1
    print(f"{checked} configurations compared item by item with rys eval: {'PASS' if not fails else 'FAIL'}")
    sys.exit(1 if fails else 0)


if __name__ == "__main__":
    main()
