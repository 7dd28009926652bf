"""How far llama.cpp's benchmark choices move against themselves: the first N
documents of one task scored by rys validate (its dumped requests), then by
llama.cpp with flash attention off and on (same build, same file, same token
ids; only the attention's summation order and roundings differ). Prints how
often each pair picks the same choice and each one's accuracy, the yardstick
for check_validate's same-choice and accuracy bars on quantized files.

usage: validate_self_spread.py MODEL TASK:VARIANT N   (e.g. smollm2-135m winogrande:rc_5shot 200)
RYS = the binary (default build/rys)."""
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import check_validate as cv  # noqa: E402


def choices(reqs, lps, metric):
    (docs,) = cv.docs_of(reqs, lps).values()
    pred = {d: cv.predict(metric, [v for _, v in sorted(x["choices"].items())]) for d, x in docs.items()}
    return pred, {d: x["label"] for d, x in docs.items()}


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    model, task, n = sys.argv[1:]
    with tempfile.TemporaryDirectory(prefix="rys-self-spread-") as tmp:
        dump = os.path.join(tmp, "requests.jsonl")
        js, _ = cv.run_rys(model, [task], n, None, None, dump, os.path.join(tmp, "rys.sqlite"))
        reqs = [json.loads(line) for line in open(dump)]
    (metric,) = [t["primary_metric"] for t in js["tasks"]]
    lps = {"rys": [r["logprob"] for r in reqs]}
    for label, options in (("llama.cpp", {}), ("llama.cpp flash", {"flash_attn": True})):
        lps[label], _ = cv.reference_logprobs(cv.model_path(model), reqs, **options)
    preds = {}
    for label, v in lps.items():
        preds[label], labels = choices(reqs, v, metric)
    names = list(preds)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            same = sum(preds[a][d] == preds[b][d] for d in preds[a])
            print(f"{task} {model} ({metric}): {a} vs {b}: same choice {same}/{len(preds[a])}")
    for a in names:
        print(f"  accuracy {a}: {100.0 * sum(preds[a][d] == labels[d] for d in preds[a]) / len(labels):.2f}")


if __name__ == "__main__":
    main()
