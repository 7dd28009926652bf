#!/usr/bin/env python3
"""check_pipeline: `rys pipeline` on SmolLM2-135M with a small budget, killed
with SIGKILL at a random moment and rerun to the end, then its numbers
recomputed independently:

- every stage is recorded done, each search family it ran has rows in the
  store, and no layer path is stored twice;
- each validated configuration's task delta and paired interval equal
  `rys validate` run from scratch (no store) on the same documents and path;
- the best pick's math delta equals the mean of `rys eval` item scores along
  its path minus the baseline's, both from scratch, on the generated set;
- the last lines name a winner with its export command, or say none beats
  the baseline, consistently with the intervals;
- bad input (a budget of nothing, an unknown task) is one line and exit 1.

Prints the seed of the kill moment; RYS_TEST_SEED replays it.
"""
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

RYS = os.environ.get("RYS", "build/rys")
MODEL = "smollm2-135m"
TASK = "arc_challenge:test_rc_5shot"
LIMIT = 12
# 4-item probe sets (the first items of math_16 and eq_16) so that every stage measures something in the budget
ARGS = ["--budget", "240s", "--probes", "results/beam/math_4.json,results/beam/eq_4.json", "--tasks", f"{TASK}@{LIMIT}", "--per-family", "1",
        "--width", "2", "--depth", "2", "--surrogate-top", "3", "-t", "2"]


def fail(msg):
    print(f"FAIL: {msg}")
    sys.exit(1)


def run_json(args):
    p = subprocess.run([RYS] + args, capture_output=True, text=True)
    if p.returncode != 0:
        fail(f"{' '.join(args)}: exit {p.returncode}: {p.stderr.strip()[-400:]}")
    return json.loads(p.stdout)


def main():
    seed = int(os.environ.get("RYS_TEST_SEED", random.randrange(1 << 30)))
    print(f"seed {seed} (RYS_TEST_SEED={seed} replays it)")
    rng = random.Random(seed)
    env = dict(os.environ, RYS_PROGRESS="0")
    with tempfile.TemporaryDirectory() as tmp:
        d = os.path.join(tmp, "pl")
        cmd = [RYS, "pipeline", MODEL, "--dir", d] + ARGS

        # a kill at a random moment of the first run loses at most the step in flight
        kill_after = rng.uniform(3, 60)
        p = subprocess.Popen(cmd + ["--json"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        try:
            p.wait(timeout=kill_after)
        except subprocess.TimeoutExpired:
            p.send_signal(signal.SIGKILL)
            p.wait()
            print(f"killed the first run after {kill_after:.1f} s")

        t0 = time.time()
        out = subprocess.run(cmd + ["--json"], capture_output=True, text=True, env=env)
        if out.returncode != 0:
            fail(f"rerun: exit {out.returncode}: {out.stderr.strip()[-600:]}")
        res = json.loads(out.stdout)
        print(f"rerun finished in {time.time() - t0:.0f} s: {len(res['validated'])} configurations validated")

        db = sqlite3.connect(os.path.join(d, "pipeline.sqlite"))
        stages = dict(db.execute("SELECT name, done FROM stage"))
        want = ["coarse", "focus", "beam", "surrogate", "validate", "report"]
        if [s for s in want if stages.get(s) != 1]:
            fail(f"stages not all done: {stages}")
        paths = [r[0] for r in db.execute("SELECT path FROM config")]
        if len(paths) != len(set(paths)):
            fail("a layer path is stored twice")
        fams = {r[0] for r in db.execute("SELECT DISTINCT search FROM config WHERE status = 'done'")}
        print(f"stages done; {len(paths)} paths stored, families {sorted(fams)}")
        if "scan" not in fams:
            fail("no scan rows")
        if not os.path.exists(os.path.join(d, "report", "index.html")):
            fail("no report")

        # the validated numbers, recomputed from scratch
        for pk in res["validated"]:
            if pk["search"] not in fams:
                fail(f"{pk['spec']}: family {pk['search']} has no rows in the store")
            v = run_json(["validate", MODEL, "--tasks", TASK, "--limit", str(LIMIT), "--layers", pk["layers"], "--json", "-t", "2"])
            avg = v["configs"][1]["average"]
            # rys validate --json prints reals to 10 significant digits
            if abs(avg["delta"] - pk["delta"]) > 1e-9 or any(abs(a - b) > 1e-9 for a, b in zip(avg["ci95"], pk["ci95"])):
                fail(f"{pk['spec']}: pipeline {pk['delta']} {pk['ci95']} vs rys validate {avg['delta']} {avg['ci95']}")
        print("task deltas and intervals equal rys validate's from scratch")

        if res["validated"]:
            top = res["validated"][0]
            math = os.path.join(d, "math_120.json")

            def mean_score(extra):
                e = run_json(["eval", MODEL, "--probe", math, "--json", "-t", "2"] + extra)
                return e["scores"]["math_120"]

            want_delta = mean_score(["--layers", top["layers"]]) - mean_score([])
            if abs(want_delta - top["math_delta"]) > 1e-9:
                fail(f"{top['spec']}: math delta {top['math_delta']} vs rys eval {want_delta}")
            print(f"{top['spec']}: math delta {want_delta:+.4f} equals rys eval's from scratch")

        # the last lines agree with the intervals
        txt = subprocess.run(cmd, capture_output=True, text=True, env=env)
        lines = txt.stdout.strip().splitlines()
        winners = [pk for pk in res["validated"] if pk["ci95"][0] > 0]
        if winners:
            if res["winner"] != winners[0]["spec"] or not lines[-1].startswith("export it: rys export"):
                fail(f"winner lines: {lines[-2:]}")
        elif res["winner"] is not None or ("none of the" not in lines[-1] and "no configuration" not in lines[-1]):
            fail(f"no winner expected, got: {lines[-1]}")
        print(f"last line: {lines[-1]}")

        for bad, needle in ((["--budget", "0m"], "--budget"), (["--tasks", "nosuchtask:x"], "nosuchtask")):
            b = subprocess.run([RYS, "pipeline", MODEL, "--dir", os.path.join(tmp, "bad")] + bad, capture_output=True, text=True, env=env)
            err = b.stderr.strip().splitlines()
            if b.returncode != 1 or len(err) != 1 or needle not in err[0]:
                fail(f"bad input {bad}: exit {b.returncode}, stderr {err}")
        print("bad input: one line, exit 1")
    print("PASS")


if __name__ == "__main__":
    main()
