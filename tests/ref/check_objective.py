"""Benchmark objectives (`TASK:VARIANT:loglik[@N]`, `ppl:FILE[@TOKENS]`) in
`rys eval` and `rys scan` on a real model:
  1. `rys eval --probe arc_challenge:val_rc_5shot:loglik@N --dump-requests`
     along each path (from its first layer) writes the same requests (context
     and continuation token ids) with the same log-likelihoods, bit for bit,
     as `rys validate --dump-requests` (batched, prefix-sharing, reusing the
     baseline's states) on the same documents and paths;
  2. eval's two scores recomputed here from its dump: accuracy under the
     task's primary metric (acc_per_char: logprob / characters, first maximum)
     and the mean margin (gold value minus best wrong one);
     `@6/SEED` draws 6 distinct documents, the same for the same seed;
  3. `ppl:TEXT@TOKENS` gives -log of `rys perplexity -c 512 --chunks K` on
     the same text (within the 6 digits rys perplexity prints);
  4. `rys scan --paths` on the same objectives (with the baseline's states)
     stores items (score, picked continuation, every choice's log-likelihood)
     and set scores equal to eval's from scratch, and costs fewer layer-token
     evaluations than from scratch for paths sharing a prefix with the baseline;
  5. a scan with another document count on the same store is refused; the leakage guard: `rys validate --db` on the scan's store refuses a task
     split the scan searched on (another variant of the same split too), and a
     scan refuses to search on a split its store holds validation results on;
     both with a one-line error naming the split, the store unchanged.

usage: check_objective.py [MODEL] (default smollm2-135m); RYS = the binary."""
import hashlib
import json
import math
import os
import sqlite3
import subprocess
import sys
import tempfile

RYS = os.environ.get("RYS", "build/rys")
MODEL = sys.argv[1] if len(sys.argv) > 1 else "smollm2-135m"
TASK = "arc_challenge:val_rc_5shot"
N_DOCS = 16
OBJ = f"{TASK}:loglik@{N_DOCS}"
TEXT = "/usr/share/common-licenses/GPL-3"
PPL_CHUNKS = 2
PPL = f"ppl:{TEXT}@{512 * PPL_CHUNKS}"
# 30 layers on smollm2-135m: two single blocks and a two-block path
CONFIGS = {"baseline": [], "blocks:10,15": ["--blocks", "10,15"], "blocks:3,5;20,23": ["--blocks", "3,5;20,23"]}

fails = 0


def fail(msg):
    global fails
    print("FAIL: " + msg)
    fails += 1


def run(args, **kw):
    return subprocess.run([RYS] + args, check=True, capture_output=True, text=True, **kw)


def sha(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def requests(path):
    """(doc, choice, uncond) -> (ctx ids, cont ids, logprob, n_chars, label) per config of a dump, TASK's only."""
    out = {}
    for line in open(path):
        r = json.loads(line)
        if r["task"] != TASK:
            continue
        out.setdefault(r["config"], {})[(r["doc"], r["choice"], r["uncond"])] = (
            r["ctx"], r["cont"], r["logprob"], r["n_chars"], r["label"])
    return out


def scores_from_dump(reqs):
    """accuracy and mean margin under acc_per_char (the task's primary metric), in document order."""
    docs = sorted({d for d, _, _ in reqs})
    acc = margin = 0.0
    for d in docs:
        ch = sorted(c for dd, c, u in reqs if dd == d and not u)
        val = [reqs[(d, c, False)][2] / max(1, reqs[(d, c, False)][3]) for c in ch]
        label = reqs[(d, 0, False)][4]
        pred = max(range(len(val)), key=lambda c: (val[c], -c))   # first maximum
        acc += pred == label
        margin += val[label] - max(v for c, v in enumerate(val) if c != label)
    return acc / len(docs), margin / len(docs)


def main():
    tmp = tempfile.mkdtemp(prefix="rys-check-objective-")
    # 1. validate along every path at once (reuse) vs eval per path from scratch
    vdump = os.path.join(tmp, "validate.jsonl")
    run(["validate", MODEL, "--tasks", TASK, "--limit", str(N_DOCS), "--configs", "10,15",
         "--blocks", "3,5;20,23", "--dump-requests", vdump, "--json"])
    val = requests(vdump)
    evals = {}
    for spec, args in CONFIGS.items():
        edump = os.path.join(tmp, f"eval-{len(evals)}.jsonl")
        ev = json.loads(run(["eval", MODEL, "--probe", f"{OBJ},{PPL}", "--dump-requests", edump, "--json"] + args).stdout)
        evals[spec] = ev
        (er,) = requests(edump).values()
        vr = val.get(spec)
        if vr is None:
            fail(f"validate dumped no requests for {spec} (it has {sorted(val)})")
            continue
        if set(er) != set(vr):
            fail(f"{spec}: eval has {len(er)} requests, validate {len(vr)}")
        diff = [k for k in er if k in vr and er[k] != vr[k]]
        if diff:
            k = diff[0]
            fail(f"{spec}: {len(diff)} requests differ from validate's, e.g. doc {k[0]} choice {k[1]}: "
                 f"logprob {er[k][2]!r} vs {vr[k][2]!r}")
        # 2. the scores from the requests
        acc, margin = scores_from_dump(er)
        sc = ev["scores"]
        if sc.get(f"{TASK}:acc") != acc or sc.get(f"{TASK}:margin") != margin:
            fail(f"{spec}: eval scores {sc}, recomputed accuracy {acc!r}, margin {margin!r}")
        print(f"{spec}: {len(er)} requests {'differ from' if diff else 'equal'} validate's; acc {acc:.4f}, margin {margin:+.5f}, "
              f"ppl:GPL-3 {sc.get('ppl:GPL-3')}")
    # 2b. "@N/SEED": N distinct documents drawn with the seed, the same each time, in the file's order
    drawn = []
    for seed in (3, 3, 4):
        ev = json.loads(run(["eval", MODEL, "--probe", f"{TASK}:loglik@6/{seed}", "--json"]).stdout)
        drawn.append([int(it["key"]) for it in ev["items"] if it["probe"] == f"{TASK}:acc"])
    if len(set(drawn[0])) != 6 or drawn[0] != sorted(drawn[0]) or drawn[0] != drawn[1] or drawn[0] == drawn[2] \
            or drawn[0] == list(range(6)):
        fail(f"@6/SEED drew documents {drawn} (want 6 distinct in file order, the same for seed 3 twice, others for 4)")
    print(f"@6/3 drew documents {drawn[0]}, @6/4 {drawn[2]}")
    # 3. perplexity as rys perplexity computes it
    ppl = json.loads(run(["perplexity", MODEL, "-f", TEXT, "-c", "512", "--chunks", str(PPL_CHUNKS), "--json"]).stdout)
    got = math.exp(-evals["baseline"]["scores"]["ppl:GPL-3"])
    if abs(got - ppl["ppl"]) > 1e-6 * ppl["ppl"] + 5e-7:
        fail(f"ppl objective gives perplexity {got:.6f}, rys perplexity {ppl['ppl']:.6f}")
    print(f"ppl objective: exp(-score) = {got:.6f}, rys perplexity {ppl['ppl']:.6f}")

    # 4. the scan with reuse vs eval from scratch
    db = os.path.join(tmp, "scan.sqlite")
    paths = os.path.join(tmp, "paths.txt")
    open(paths, "w").write("\n".join(s for s in CONFIGS if s != "baseline") + "\n")
    out = json.loads(run(["scan", MODEL, "--probes", f"{OBJ},{PPL}", "--paths", paths, "--db", db, "--json",
                          "--top", "0"]).stdout)
    print(f"scan: {out['done_now']} paths, layer-token evaluations {out['layer_tokens_done']} vs "
          f"{out['layer_tokens_naive']} naive ({out['reuse_ratio']:.3f}x)")
    con = sqlite3.connect(db)
    kinds = dict(con.execute("SELECT name, kind FROM probe_set"))
    if kinds != {f"{TASK}:acc": "loglik_acc", f"{TASK}:margin": "loglik_margin", "ppl:GPL-3": "ppl_loglik"}:
        fail(f"probe sets {kinds}")
    for cid, spec, done, naive in con.execute("SELECT id, spec, layer_tokens_done, layer_tokens_naive FROM config"):
        ev = evals[spec]
        stored = {(p, k): (g, s, json.loads(j)) for p, k, g, s, j in
                  con.execute("SELECT probe, item_key, generated, score, parsed FROM item WHERE config_id = ?", (cid,))}
        if len(stored) != len(ev["items"]):
            fail(f"{spec}: {len(stored)} stored items, eval has {len(ev['items'])}")
        for it in ev["items"]:
            got = stored.get((it["probe"], it["key"]))
            if got != (it["generated"], it["score"], it["parsed"]):
                fail(f"{spec} {it['probe']}/{it['key']}: scan {got} vs eval {it}")
                break
        for probe, score in ev["scores"].items():
            (st,) = con.execute("SELECT score FROM score WHERE config_id = ? AND probe = ?", (cid, probe)).fetchone()
            if st != score:
                fail(f"{spec} {probe}: scan score {st!r} vs eval {score!r}")
        if spec != "baseline" and not done < naive:
            fail(f"{spec}: {done} layer-token evaluations, not fewer than the {naive} from scratch")
    con.close()

    # 5. leakage, both ways; refusals change nothing (nor does another document count on the same store)
    before = sha(db)
    r = subprocess.run([RYS, "scan", MODEL, "--probes", f"{TASK}:loglik@{N_DOCS - 1},{PPL}", "--paths", paths, "--db", db],
                       capture_output=True, text=True)
    if r.returncode != 1 or "other settings" not in r.stderr:
        fail(f"a scan with another document count on the store: exit {r.returncode}, stderr {r.stderr!r}")
    for task in (TASK, "arc_challenge:rc_5shot"):    # the same split under another variant
        r = subprocess.run([RYS, "validate", MODEL, "--tasks", task, "--limit", "2", "--db", db],
                           capture_output=True, text=True)
        lines = r.stderr.strip().splitlines()
        if r.returncode != 1 or len(lines) != 1 or "validation split" not in lines[0] or task not in lines[0]:
            fail(f"validate {task} on the scan's store: exit {r.returncode}, stderr {r.stderr!r}")
    if sha(db) != before:
        fail("a refused validate changed the store")
    vdb = os.path.join(tmp, "validated.sqlite")
    run(["validate", MODEL, "--tasks", "arc_challenge:test_rc_5shot", "--limit", "1", "--db", vdb])
    before = sha(vdb)
    r = subprocess.run([RYS, "scan", MODEL, "--probes", "arc_challenge:test_rc_5shot:loglik@2", "--paths", paths,
                        "--db", vdb], capture_output=True, text=True)
    lines = r.stderr.strip().splitlines()
    if r.returncode != 1 or len(lines) != 1 or "test split" not in lines[0]:
        fail(f"scan on a store validated on the same split: exit {r.returncode}, stderr {r.stderr!r}")
    if sha(vdb) != before:
        fail("a refused scan changed the store")
    print(f"leakage guard both ways; {'PASS' if not fails else 'FAIL'}")
    sys.exit(1 if fails else 0)


if __name__ == "__main__":
    main()
