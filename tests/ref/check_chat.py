#!/usr/bin/env python3
"""Keep tests/data/chat_golden.json honest. test_tokenizer.c compares rys's
chat_format() with it byte for byte; this re-renders every case with jinja2
and fails if the file's expected texts are not what jinja2 gives (stale or
hand-edited data), and if a cached model's tokenizer.chat_template is missing
from the file (regenerate with gen_chat_golden.py --gguf ...).

usage: check_chat.py [--golden tests/data/chat_golden.json]"""
import argparse
import json
import os
import sys

from jinja2.sandbox import ImmutableSandboxedEnvironment

sys.dont_write_bytecode = True         # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_chat_golden import ROOT, render  # noqa: E402

MODELS = ["smollm2-135m", "qwen2.5-coder-0.5b"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--golden", default=os.path.join(ROOT, "tests/data/chat_golden.json"))
    args = ap.parse_args()
    golden = json.load(open(args.golden, encoding="utf-8"))
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    bad = 0
    n = 0
    for tpl in golden:
        for i, case in enumerate(tpl["cases"]):
            n += 1
            got = render(env, tpl["template"], case["messages"], case["add_generation_prompt"])
            if got != case["expected"]:
                bad += 1
                print(f"{tpl['name']} case {i}: file has {case['expected']!r}, jinja2 gives {got!r}")
    templates = {t["template"] for t in golden}
    cache = os.path.join(os.environ.get("RYS_CACHE_DIR", os.path.expanduser("~/.cache/rys")), "models")
    for name in MODELS:
        path = os.path.join(cache, name + ".gguf")
        if not os.path.exists(path):
            print(f"skip {name}: not in {cache}")
            continue
        import gguf
        field = gguf.GGUFReader(path).fields.get("tokenizer.chat_template")
        if field is not None and field.contents() not in templates:
            bad += 1
            print(f"{name}: its chat template is not in {args.golden}")
    print(f"{args.golden}: {len(golden)} templates, {n} cases, {bad} problems")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
