"""HellaSwag against llama.cpp: the first N tasks (default 400) scored by
`rys hellaswag` and by the same procedure as llama.cpp's --hellaswag mode run
through llama-cpp-python (context + " " + ending tokenized with BOS, the
tokens shared by all four endings as context, each ending's mean token
log-probability). Accuracies must agree within 1.0 point.

usage: check_hellaswag.py [MODEL.gguf|name] [N]; RYS = the binary."""
import bz2, json, math, os, subprocess, sys

import numpy as np
from llama_cpp import Llama

RYS = os.environ.get("RYS", "build/rys")
MODEL = sys.argv[1] if len(sys.argv) > 1 else "smollm2-135m"
N = int(sys.argv[2]) if len(sys.argv) > 2 else 400
HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.environ.get("RYS_HELLASWAG", os.path.join(HERE, "..", "..", "..", "shared", "benchmarks", "hellaswag_val_full.txt.bz2"))


def model_path(spec):
    if os.path.exists(spec):
        return spec
    return os.path.join(os.environ.get("RYS_CACHE_DIR", os.path.expanduser("~/.cache/rys")), "models", spec + ".gguf")


def log_softmax(v):
    m = v.max()
    return v - m - math.log(np.exp(v - m).sum())


def main():
    if not os.path.exists(DATA):
        print(f"SKIP: {DATA} not found"); return
    lines = bz2.open(DATA, "rt", encoding="utf-8").read().split("\n")
    llm = Llama(model_path=model_path(MODEL), n_ctx=1024, logits_all=True, verbose=False, n_threads=2)
    correct_ref, preds_ref = 0, []
    for t in range(N):
        ctx, gold, ends = lines[6 * t], int(lines[6 * t + 1]), lines[6 * t + 2:6 * t + 6]
        seqs = [llm.tokenize((ctx + " " + e).encode(), add_bos=True, special=False) for e in ends]
        cp = 0
        while all(cp < len(s) for s in seqs) and all(s[cp] == seqs[0][cp] for s in seqs):
            cp += 1
        scores = []
        for s in seqs:
            llm.reset()
            llm.eval(s)
            lp = [log_softmax(np.array(llm.scores[j - 1]))[s[j]] for j in range(cp, len(s))]
            scores.append(sum(lp) / len(lp))
        pred = int(np.argmax(scores))
        preds_ref.append(pred)
        correct_ref += pred == gold
    out = subprocess.run([RYS, "hellaswag", MODEL, "-f", DATA, "--tasks", str(N), "--json"], check=True,
                         capture_output=True, text=True).stdout
    got = json.loads(out)
    agree = sum(int(a["pred"] == b) for a, b in zip(got["tasks"], preds_ref))
    acc_ref = 100.0 * correct_ref / N
    diff = abs(got["accuracy"] - acc_ref)
    print(f"hellaswag, first {N} tasks: rys {got['accuracy']:.2f}%  llama.cpp procedure {acc_ref:.2f}%  "
          f"|diff| {diff:.2f} points; same prediction on {agree}/{N} tasks")
    ok = diff <= 1.0
    print("PASS" if ok else "FAIL")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
