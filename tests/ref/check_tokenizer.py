#!/usr/bin/env python3
"""Compare rys's tokenizer with llama.cpp's (through llama-cpp-python) on a
list of strings: ids must agree token for token, with and without BOS and
special-token parsing, and rys's detokenization must give back what
llama.cpp's gives back for the same ids (and the original text wherever
llama.cpp's round trip does).

usage: check_tokenizer.py [MODEL.gguf ...] [--tiny-spm] [--strings FILE] [--rys build/rys]
  With no MODEL, every known model found in the cache ($RYS_CACHE_DIR/models or
  ~/.cache/rys/models) is checked, and --tiny-spm is implied.
  --tiny-spm: a small random SentencePiece vocabulary written as GGUF, checked the
  same way on the strings plus random text over its alphabet (until a SentencePiece
  model such as gemma3-270m is pulled, this is what checks that side).
The binary is $RYS, else build/rys. Exit status 0 when everything matches, 1 on any
mismatch."""
import argparse
import ctypes
import json
import os
import subprocess
import sys
import tempfile

import random
import shutil

import llama_cpp

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KNOWN_MODELS = ["smollm2-135m", "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b", "gemma3-270m"]


def rys_json(rys, model, flag, path, extra):
    out = subprocess.run([rys, "tokenize", model, flag, path] + extra, check=True, capture_output=True)
    return json.loads(out.stdout)


def llama_detokenize(vocab, ids):
    """llama.cpp's own detokenize (special tokens rendered, none removed)."""
    arr = (llama_cpp.llama_token * max(1, len(ids)))(*ids)
    cap = 64 + 64 * len(ids)
    buf = ctypes.create_string_buffer(cap)
    n = llama_cpp.llama_detokenize(vocab, arr, len(ids), buf, cap, False, True)
    if n < 0:
        raise RuntimeError("detokenize buffer too small")
    return buf.raw[:n]


def write_tiny_spm(path, strings_path):
    """A SentencePiece vocabulary: <unk> <s> </s>, 256 byte tokens, a small
    alphabet with '▁', random multi-character pieces with random scores, one
    control and one user-defined token. Returns the strings file to use."""
    import gguf
    rng = random.Random(5)
    w = gguf.GGUFWriter(path, "llama")
    w.add_block_count(1)
    w.add_context_length(64)
    w.add_embedding_length(8)
    w.add_feed_forward_length(8)
    w.add_head_count(1)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_tokenizer_model("llama")
    w.add_tokenizer_pre("default")
    toks, types, scores = ["<unk>", "<s>", "</s>"], [2, 3, 3], [0.0, 0.0, 0.0]
    for b in range(256):
        toks.append("<0x%02X>" % b)
        types.append(6)
        scores.append(0.0)
    alpha = list("abcdeé▁") + ["你"]
    for c in alpha:
        toks.append(c)
        types.append(1)
        scores.append(-10.0)
    seen = set(toks)
    while len(toks) < 600:
        piece = "".join(rng.choice(alpha) for _ in range(rng.randint(2, 5)))
        if piece not in seen:
            seen.add(piece)
            toks.append(piece)
            types.append(1)
            scores.append(-rng.random() * 9)
    for piece, ty in [("<ctl>", 3), ("<ud>", 4)]:
        toks.append(piece)
        types.append(ty)
        scores.append(0.0)
    w.add_token_list(toks)
    w.add_token_types(types)
    w.add_token_scores(scores)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    strings = json.load(open(strings_path, encoding="utf-8"))
    letters = "abcdeé 你x<ctl><ud>"
    for _ in range(300):
        strings.append("".join(rng.choice(letters) for _ in range(rng.randint(1, 40))))
    out = path + ".strings.json"
    json.dump(strings, open(out, "w", encoding="utf-8"), ensure_ascii=False)
    return out


def show(s, limit=80):
    r = repr(s)
    return r if len(r) <= limit else r[:limit] + "..."


def check(model, strings_path, rys):
    """Number of mismatches for one model, each printed."""
    strings = json.load(open(strings_path, encoding="utf-8"))
    llm = llama_cpp.Llama(model, vocab_only=True, verbose=False)
    vocab = llm._model.vocab
    failures = 0
    n_checked = 0

    for add_bos, special in [(True, True), (False, True), (True, False)]:
        extra = ([] if add_bos else ["--no-bos"]) + ([] if special else ["--no-special"])
        ours = rys_json(rys, model, "--json-strings", strings_path, extra)
        if len(ours) != len(strings):
            print(f"rys returned {len(ours)} id lists for {len(strings)} strings")
            return 1
        for s, got in zip(strings, ours):
            want = llm.tokenize(s.encode("utf-8"), add_bos=add_bos, special=special)
            n_checked += 1
            if got != want:
                failures += 1
                print(f"MISMATCH add_bos={add_bos} special={special} text={show(s)}\n  rys:   {got}\n  llama: {want}")

    # Round trip: decode rys's own ids (no BOS) with rys and with llama.cpp.
    ids = rys_json(rys, model, "--json-strings", strings_path, ["--no-bos"])
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(ids, f)
        ids_path = f.name
    try:
        texts = rys_json(rys, model, "--decode-json", ids_path, [])
    finally:
        os.unlink(ids_path)
    lossy = 0
    for s, tok, text in zip(strings, ids, texts):
        llama_text = llama_detokenize(vocab, tok)
        ours = text.encode("utf-8") if text is not None else None
        n_checked += 1
        if ours != llama_text and ours == s.encode("utf-8"):
            print(f"note: rys round-trips {show(s)}, llama.cpp gives {show(llama_text)}")
        elif ours != llama_text:
            failures += 1
            print(f"DECODE MISMATCH text={show(s)}\n  rys:   {show(ours)}\n  llama: {show(llama_text)}")
        elif ours != s.encode("utf-8"):
            lossy += 1
            print(f"note: both lose information on {show(s)} -> {show(ours)}")

    print(f"{model}: {len(strings)} strings, {n_checked} checks, {failures} mismatches"
          + (f", {lossy} lossy round trips shared with llama.cpp" if lossy else ""))
    return failures


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("models", nargs="*")
    ap.add_argument("--tiny-spm", action="store_true")
    ap.add_argument("--strings", default=os.path.join(ROOT, "tests/data/tokenizer_strings.json"))
    ap.add_argument("--rys", default=os.environ.get("RYS", os.path.join(ROOT, "build/rys")))
    args = ap.parse_args()
    models = args.models
    if not models:
        cache = os.path.join(os.environ.get("RYS_CACHE_DIR", os.path.expanduser("~/.cache/rys")), "models")
        for name in KNOWN_MODELS:
            path = os.path.join(cache, name + ".gguf")
            if os.path.exists(path):
                models.append(path)
            else:
                print(f"skip {name}: not in {cache}")
        args.tiny_spm = True
    failed = 0
    for model in models:
        failed += check(model, args.strings, args.rys)
    if args.tiny_spm:
        tmp = tempfile.mkdtemp()
        try:
            model = os.path.join(tmp, "tiny-spm.gguf")
            failed += check(model, write_tiny_spm(model, args.strings), args.rys)
        finally:
            shutil.rmtree(tmp)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
