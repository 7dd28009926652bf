#!/usr/bin/env python3
"""lm-evaluation-harness against `rys serve`, and against `rys validate`.

A task YAML over the local ARC-Challenge test documents (`rys data show
arc_challenge:test_rc_5shot --json`: each document's 5-shot context, its four
continuations and its label) is written to a temporary directory; `lm_eval
--model local-completions` (tokenized requests, the server's own tokenizer
through lm-eval's RemoteTokenizer: /tokenizer_info, /tokenize) scores the
first N documents against `rys serve MODEL`, along the baseline and along
blocks:10,24 (model id MODEL@blocks:10,24), with --log_samples. `rys validate`
scores the same documents on the same paths into its store. Checks:
  - every request's log-likelihood from the harness equals rys validate's
    for the same (document, choice) to 1e-4 nats (the server and validate
    share the engine, not the code path: the server prefills the echoed
    prompt, validate its context and continuation with reuse);
  - the harness's acc and acc_norm (byte-length normalised, which is
    acc_per_char for this ASCII data) equal rys validate's acc_raw and
    acc_per_char on those documents.
Prints both accuracies side by side.

usage: check_lm_eval.py [--model smollm2-135m] [--limit 12] [--keep DIR]; RYS = the binary.
The README's table: --model qwen2.5-coder-0.5b --limit 200."""
import argparse, json, os, signal, sqlite3, subprocess, sys, tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from refcheck import RYS, fail, failures, free_port, run, start_server  # noqa: E402

TASK, VARIANT, PATHS = "arc_challenge", "test_rc_5shot", ["baseline", "blocks:10,24"]


def serve(model, port):
    return start_server(model, port, ["--paths", ";".join(PATHS), "--ctx", "2048", "-t", "2"], wait_s=120)


def write_task(tmp, limit):
    """The documents as JSON lines and the task YAML that reads them; the documents' ids in order."""
    out = run(["data", "show", f"{TASK}:{VARIANT}", "--limit", str(limit), "--json"]).stdout.splitlines()
    docs = [json.loads(line) for line in out[1:]]
    path = os.path.join(tmp, "docs.jsonl")
    with open(path, "w") as f:
        for d in docs:
            f.write(json.dumps({"doc_id": d["doc_id"], "context": d["context"], "choices": d["continuations"],
                                "label": d["label"]}) + "\n")
    with open(os.path.join(tmp, "rys_arc.yaml"), "w") as f:
        f.write(f"""task: rys_arc_challenge
dataset_path: json
dataset_kwargs:
  data_files:
    test: {path}
test_split: test
output_type: multiple_choice
doc_to_text: "{{{{context}}}}"
doc_to_choice: "{{{{choices}}}}"
doc_to_target: label
target_delimiter: ""
num_fewshot: 0
metric_list:
  - metric: acc
  - metric: acc_norm
""")
    return [d["doc_id"] for d in docs], sum(len(d["continuations"]) for d in docs)


def harness(model, port, spec, tmp):
    """lm_eval's per-document log-likelihoods {(doc index, choice): ll} and its acc, acc_norm."""
    name = model if spec == "baseline" else f"{model}@{spec}"
    out = os.path.join(tmp, "out-" + spec.replace(":", "_").replace(",", "_"))
    # JSON: the path's model id holds a comma, which key=value,... would split
    margs = {"model": name, "base_url": f"http://127.0.0.1:{port}/v1/completions", "tokenizer_backend": "remote",
             "tokenized_requests": True, "num_concurrent": 1, "max_retries": 1, "max_length": 2048}
    args = [sys.executable, "-m", "lm_eval", "--model", "local-completions", "--model_args", json.dumps(margs),
            "--batch_size", "4",
            "--tasks", "rys_arc_challenge", "--include_path", tmp, "--log_samples", "--output_path", out]
    p = subprocess.run(args, capture_output=True, text=True, env=dict(os.environ, HF_DATASETS_OFFLINE="1", TOKENIZERS_PARALLELISM="false"))
    if p.returncode != 0:
        print(p.stderr[-3000:])
        sys.exit(f"lm_eval exited {p.returncode}")
    samples, results = None, None
    for root, _, files in os.walk(out):
        for fn in files:
            if fn.startswith("samples_") and fn.endswith(".jsonl"):
                samples = [json.loads(line) for line in open(os.path.join(root, fn))]
            elif fn.startswith("results") and fn.endswith(".json"):
                results = json.load(open(os.path.join(root, fn)))["results"]["rys_arc_challenge"]
    ll = {}
    for s in samples:
        for c, resp in enumerate(s["resps"]):
            ll[(s["doc_id"], c)] = float(resp[0][0])
    return ll, results["acc,none"], results["acc_norm,none"]


def validate(model, limit, tmp):
    """rys validate's per-request log-likelihoods {(spec, doc index, choice): ll} and accuracies per spec."""
    db = os.path.join(tmp, "validate.sqlite")
    run(["validate", model, "--tasks", f"{TASK}:{VARIANT}", "--limit", str(limit), "--configs", "10,24", "--db", db,
         "-t", "2"])
    con = sqlite3.connect(db)
    ll, acc = {}, {}
    for spec, doc, choice, lp in con.execute(
            "SELECT c.spec, r.doc_id, r.choice, r.logprob FROM val_request r JOIN val_config c ON c.id = r.config_id "
            "WHERE r.uncond = 0"):
        ll[(spec, doc, choice)] = lp
    for spec, raw, per_char, n in con.execute(
            "SELECT c.spec, avg(d.correct_acc_raw), avg(d.correct_acc_per_char), count(*) FROM val_doc d "
            "JOIN val_config c ON c.id = d.config_id GROUP BY c.spec"):
        acc[spec] = (raw, per_char, n)
    con.close()
    return ll, acc


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--limit", type=int, default=12)
    ap.add_argument("--keep", help="keep the work directory here")
    a = ap.parse_args()
    tmp = a.keep or tempfile.mkdtemp(prefix="rys-check-lm-eval-")
    os.makedirs(tmp, exist_ok=True)
    doc_ids, n_requests = write_task(tmp, a.limit)   # ARC has documents of 3 and 5 choices too
    vll, vacc = validate(a.model, a.limit, tmp)
    specs = {s: s for s in vacc}
    port = free_port()
    proc = serve(a.model, port)
    try:
        for spec in PATHS:
            vspec = next(s for s in specs if (s == "baseline") == (spec == "baseline"))
            hll, hacc, hnorm = harness(a.model, port, spec, tmp)
            worst, n = 0.0, 0
            for (idx, choice), ll in hll.items():
                want = vll.get((vspec, doc_ids[idx], choice))
                if want is None:
                    fail(f"{spec}: document {doc_ids[idx]} choice {choice} has no rys validate request")
                    continue
                worst = max(worst, abs(ll - want))
                n += 1
            raw, per_char, n_docs = vacc[vspec]
            ok = n == n_requests and worst <= 1e-4 and abs(hacc - raw) < 1e-9 and abs(hnorm - per_char) < 1e-9
            if not ok:
                fail(f"{spec}: {n} requests, max |harness - validate| {worst:.2e}; acc {hacc} vs {raw}, acc_norm {hnorm} vs {per_char}")
            print(f"{'ok  ' if ok else 'FAIL'} {a.model} {spec}: {n} requests of {a.limit} documents, max |lm_eval - rys validate| "
                  f"{worst:.2e} nats; lm_eval acc {100 * hacc:.2f} acc_norm {100 * hnorm:.2f}, rys validate acc_raw "
                  f"{100 * raw:.2f} acc_per_char {100 * per_char:.2f} ({n_docs} documents)", flush=True)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    print("PASS" if not failures else f"FAIL ({len(failures)})")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
