#!/usr/bin/env python3
"""check_engine: rys's forward pass against llama.cpp (llama-cpp-python, AMX
off) on the same GGUF and the same token ids — the engine's acceptance test.

Two copies of the model are checked. Quantized weights make both engines
quantize every activation to 8 bits before each matrix product, and a value
that lands on the other side of a rounding boundary (after any difference in
float summation order) moves by a whole step; over 30 layers those flips
compound until two equally correct engines differ by 2-5% of max|logit| at
the last position. rys differs from itself by that much between its own
kernel paths (portable / AVX2 / AVX-512 sum in different orders), so no
engine that is not ggml bit for bit can meet 1e-2 there. Hence:
  - the strict checks (a), (b), (d) run on an F32 copy of the model (weights
    dequantized by the `gguf` package, made once under $RYS_CACHE_DIR/ref):
    the same graph, RoPE, attention and fp16 KV cache, no activation
    quantization, so any real difference in the engine shows;
  - (q) the quantized file itself: same argmax on the 5 prompts, and the gap
    to llama.cpp at most 1.5x the larger of rys's own spread between its
    kernel paths and llama.cpp's own between flash attention on and off
    (+ the 1e-2 bound): printed side by side. llama.cpp against itself
    misses 1e-2 on all three quantized models too (measured 1.6e-2 .. 7.5e-2);
    on the F32 copy the same switch moves it by at most 7e-4;
  - (c) perplexity and (e) memory run on the quantized file.

(a) logits: last-position logits of 5 prompts (two chat-formatted with the
    model's own template rendered by jinja2, code, plain text, ~300 tokens of
    licence text), fed to both as token ids: max|diff| <= 1e-2 * max|logit|
    and the same argmax.
(b) greedy: 64-token greedy continuations (llama.cpp: argmax of the logits each
    step, stop at an end-of-generation token) vs `rys run -n 64 --json`;
    identical for >= 4 of the 5 prompts; rys's prompt tokens must equal
    llama.cpp's (tokenized with the model's BOS rule, special tokens parsed).
(c) perplexity: llama.cpp's definition (tools/perplexity/perplexity.cpp),
    computed here from llama-cpp-python logits: one trailing newline of the
    file dropped, the text tokenized once (BOS by the model's rule, special
    tokens not parsed), cut into floor(n/CTX) chunks of CTX tokens; each
    chunk's first token replaced by BOS when the model adds one, evaluated
    from an empty cache; the logits of positions CTX/2 .. CTX-2 score the
    next token; ppl = exp(mean NLL) over all chunks. This implementation
    reproduces MODELS.md's llama-perplexity number for SmolLM2 on GPL-3
    (-c 512 --chunks 12: 18.5570). Text: Debian's /usr/share/common-licenses
    GPL-3 + GPL-2 + LGPL-2.1 + Apache-2.0 concatenated (~21.6k SmolLM2
    tokens; the machine has no wikitext). `rys perplexity -c 512 --json`
    must be within 0.5%.
(d) layer paths: tests/ref/materialize.py writes relayered copies for (0,N),
    (N/3,2N/3) and a two-block spec; llama.cpp runs each copy; `rys logits
    --blocks` on the ORIGINAL file must match within the tolerance of (a).
    gemma3 takes blocks whose lengths are multiples of six (see check_paths).
(e) memory: `rys run --blocks 0,N` may use at most its extra KV cache
    (kv_bytes(0,N) - kv_bytes(baseline)) + 8 MiB more peak RSS than the
    baseline run: the repeated layers' weights are shared, not copied.

Prints PASS/FAIL per check; exits 1 when any fails.

usage: check_engine.py [MODEL] [--only a,b,c,d,e,q] [--as-is]
       --as-is: run (a), (b), (d) on MODEL itself instead of its F32 copy
       MODEL: a .gguf path or a name under $RYS_CACHE_DIR/models (default smollm2-135m);
       binary: $RYS or build/rys
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from materialize import materialize  # noqa: E402
from numpy_forward import blocks_path  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(HERE))
RYS = os.environ.get("RYS", os.path.join(ROOT, "build", "rys"))
CACHE = os.environ.get("RYS_CACHE_DIR", os.path.expanduser("~/.cache/rys"))
THREADS = "2"
LOGIT_TOL = 1e-2
PPL_TOL = 5e-3
N_GREEDY = 64
PPL_CTX = 512
PPL_TEXTS = ["GPL-3", "GPL-2", "LGPL-2.1", "Apache-2.0"]
LICENSES = "/usr/share/common-licenses"

results = []


def report(name, ok, detail):
    results.append(ok)
    print(f"{'PASS' if ok else 'FAIL'} {name}: {detail}", flush=True)


def rys(*args):
    r = subprocess.run([RYS, *args, "-t", THREADS], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"rys {' '.join(args[:2])} failed ({r.returncode}): {r.stderr.strip()[-400:]}")
    return r.stdout


def rys_logits(model, tokens, blocks=None):
    with tempfile.NamedTemporaryFile(suffix=".npy") as f:
        args = ["logits", model, "--tokens", ",".join(map(str, tokens)), "--npy", f.name]
        if blocks:
            args += ["--blocks", blocks]
        rys(*args)
        return np.load(f.name).astype(np.float64)[-1]


def f32_copy(model):
    """MODEL with every tensor dequantized to F32 by the gguf package (cached)."""
    import gguf
    out_dir = os.path.join(CACHE, "ref")
    os.makedirs(out_dir, exist_ok=True)
    st = os.stat(model)
    out = os.path.join(out_dir, f"{os.path.basename(model)[:-5]}-{st.st_size}-f32.gguf")
    if os.path.isfile(out):
        return out
    r = gguf.GGUFReader(model)
    arch = r.fields["general.architecture"].contents()
    tmp = out + ".part"
    w = gguf.GGUFWriter(tmp, arch)
    for k, f in r.fields.items():
        if k.startswith("GGUF.") or k == "general.architecture":
            continue
        t = f.types[0]
        if t == gguf.GGUFValueType.ARRAY:
            if f.types[1] == gguf.GGUFValueType.STRING:
                w.add_array(k, [bytes(f.parts[i]).decode("utf-8", errors="surrogateescape") for i in f.data])
            else:
                w.add_array(k, [f.parts[i][0].item() for i in f.data])
        elif t == gguf.GGUFValueType.STRING:
            w.add_string(k, bytes(f.parts[f.data[0]]).decode("utf-8", errors="surrogateescape"))
        else:
            w.add_key_value(k, f.parts[f.data[0]][0].item(), t)
    for t in r.tensors:
        shape = list(reversed([int(x) for x in t.shape]))
        w.add_tensor(t.name, gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32).reshape(shape))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    os.replace(tmp, out)
    return out


def rys_logits_on(model, tokens, cpu):
    env = dict(os.environ, RYS_CPU=cpu)
    with tempfile.NamedTemporaryFile(suffix=".npy") as f:
        r = subprocess.run([RYS, "logits", model, "--tokens", ",".join(map(str, tokens)), "--npy", f.name,
                            "-t", THREADS], capture_output=True, text=True, env=env)
        if r.returncode != 0:
            return None  # a path this CPU lacks
        return np.load(f.name).astype(np.float64)[-1]


def check_quantized(model, ref, items):
    """(q): the gap to llama.cpp against both engines' own spreads: rys across its
    kernel paths, llama.cpp with flash attention on against off (a llama.cpp
    option that changes only the attention's summation order and roundings)."""
    flash = LlamaRef(model, flash_attn=True)
    for name, text in items:
        toks = ref.tokenize(text)
        want = ref.logits(toks)[-1]
        got = rys_logits(model, toks)
        scale = np.abs(want).max()
        outs = [o for o in (rys_logits_on(model, toks, c) for c in ("portable", "avx2", "avx512")) if o is not None]
        spread = max((float(np.abs(x - y).max() / scale) for i, x in enumerate(outs) for y in outs[i + 1:]),
                     default=0.0)
        lc_spread = float(np.abs(flash.logits(toks)[-1] - want).max() / scale)
        rel = float(np.abs(got - want).max() / scale)
        same = int(got.argmax()) == int(want.argmax())
        bound = 1.5 * max(spread, lc_spread) + LOGIT_TOL
        report(f"(q) quantized logits '{name}'", rel <= bound and same,
               f"{len(toks)} tokens: vs llama.cpp {rel:.2e}; rys vs rys across {len(outs)} kernel paths "
               f"{spread:.2e}; llama.cpp flash attention on vs off {lc_spread:.2e}; bound 1.5 x the larger "
               f"+ {LOGIT_TOL} = {bound:.2e}; argmax {int(got.argmax())} vs {int(want.argmax())}"
               + ("" if rel <= LOGIT_TOL else " (strict 1e-2 not met"
                  + (", nor by llama.cpp against itself)" if lc_spread > LOGIT_TOL else ")")))


def resolve_model(name):
    if os.path.isfile(name):
        return os.path.abspath(name)
    path = os.path.join(CACHE, "models", f"{name}.gguf")
    if not os.path.isfile(path):
        raise SystemExit(f"check_engine: {name}: no such file or cached model ({path})")
    return path


class LlamaRef:
    """llama.cpp through llama-cpp-python: tokenize, logits, greedy, perplexity."""

    def __init__(self, path, n_ctx=1024, **options):
        import llama_cpp
        self.lc = llama_cpp
        self.llm = llama_cpp.Llama(path, n_ctx=n_ctx, n_batch=512, logits_all=True, verbose=False,
                                   n_threads=int(THREADS), n_threads_batch=int(THREADS), **options)
        self.vocab = llama_cpp.llama_model_get_vocab(self.llm.model)

    def tokenize(self, text, special=True):
        # add_bos=True asks for the model's own rule (add_special), as rys's -p does
        return self.llm.tokenize(text.encode(), add_bos=True, special=special)

    def add_bos(self):
        return bool(self.lc.llama_vocab_get_add_bos(self.vocab))

    def is_eog(self, tok):
        return bool(self.lc.llama_vocab_is_eog(self.vocab, tok))

    def logits(self, tokens):
        """float64 [len(tokens), n_vocab], from an empty cache."""
        self.llm.reset()
        self.llm.eval(tokens)
        return np.array(self.llm.scores[:len(tokens)], dtype=np.float64)

    def greedy(self, tokens, n):
        last = self.logits(tokens)[-1]
        out = []
        for _ in range(n):
            t = int(np.argmax(last))
            out.append(t)
            if self.is_eog(t):
                break
            self.llm.eval([t])
            last = np.array(self.llm.scores[self.llm.n_tokens - 1], dtype=np.float64)
        return out

    def perplexity(self, text, ctx):
        if text.endswith("\n"):
            text = text[:-1]
        tokens = self.tokenize(text, special=False)
        n_chunks = len(tokens) // ctx
        first = ctx // 2
        nll, count = 0.0, 0
        for c in range(n_chunks):
            chunk = list(tokens[c * ctx:(c + 1) * ctx])
            if self.add_bos():
                chunk[0] = self.lc.llama_vocab_bos(self.vocab)
            lg = self.logits(chunk)[first:ctx - 1]
            m = lg.max(axis=1, keepdims=True)
            logz = (m[:, 0] + np.log(np.exp(lg - m).sum(axis=1)))
            target = np.array(chunk[first + 1:ctx])
            nll += float((logz - lg[np.arange(len(target)), target]).sum())
            count += len(target)
        return float(np.exp(nll / count)), n_chunks, len(tokens)


def chat(path, system, user):
    """The model's own chat template, rendered with jinja2 (generation prompt on)."""
    import gguf
    import jinja2
    r = gguf.GGUFReader(path)
    f = r.fields.get("tokenizer.chat_template")
    if f is None:
        return f"{system}\n\n{user}\n"
    tokens = r.fields["tokenizer.ggml.tokens"].contents()
    bos_f, eos_f = r.fields.get("tokenizer.ggml.bos_token_id"), r.fields.get("tokenizer.ggml.eos_token_id")
    env = jinja2.Environment(loader=jinja2.BaseLoader(), trim_blocks=False, lstrip_blocks=False)
    env.globals["raise_exception"] = lambda msg: (_ for _ in ()).throw(jinja2.TemplateError(msg))
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": user}]
    return env.from_string(f.contents()).render(
        messages=messages, add_generation_prompt=True,
        bos_token=tokens[bos_f.contents()] if bos_f else "", eos_token=tokens[eos_f.contents()] if eos_f else "")


def prompts(path):
    with open(os.path.join(LICENSES, "GPL-3"), encoding="utf-8") as f:
        gpl = f.read()
    return [
        ("chat", chat(path, "You are a helpful assistant.", "What is the capital of France? Answer in one sentence.")),
        ("chat-math", chat(path, "You are an expert with excellent intuition. Always give an estimate.",
                           "What is the square root of 12345678987? Answer with an integer guess only.")),
        ("code", "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n    if n < 2:\n"),
        ("plain", "The history of the printing press begins in"),
        ("long", gpl[2000:3300]),
    ]


def check_logits(model, ref, items):
    for name, text in items:
        toks = ref.tokenize(text)
        want = ref.logits(toks)[-1]
        got = rys_logits(model, toks)
        rel = float(np.abs(got - want).max() / np.abs(want).max())
        same = int(got.argmax()) == int(want.argmax())
        report(f"(a) logits '{name}'", rel <= LOGIT_TOL and same,
               f"{len(toks)} tokens, max|diff|/max|logit| = {rel:.2e} (<= {LOGIT_TOL}), "
               f"argmax {int(got.argmax())} vs llama.cpp {int(want.argmax())}")


def strip_eog(ref, toks):
    toks = list(toks)
    while toks and ref.is_eog(toks[-1]):
        toks.pop()
    return toks


def check_greedy(model, ref, items):
    same = 0
    for name, text in items:
        toks = ref.tokenize(text)
        want = ref.greedy(toks, N_GREEDY)
        out = json.loads(rys("run", model, "-p", text, "-n", str(N_GREEDY), "--json"))
        if list(out["prompt_tokens"]) != list(toks):
            print(f"  greedy '{name}': prompt tokens differ: rys {out['prompt_tokens'][:12]}... "
                  f"llama.cpp {toks[:12]}...")
            continue
        a, b = strip_eog(ref, out["tokens"]), strip_eog(ref, want)
        if a == b:
            same += 1
            print(f"  greedy '{name}': identical ({len(b)} tokens)")
        else:
            k = next((i for i in range(min(len(a), len(b))) if a[i] != b[i]), min(len(a), len(b)))
            print(f"  greedy '{name}': first difference at token {k} of {len(a)}/{len(b)}: "
                  f"rys {a[k:k + 4]} vs llama.cpp {b[k:k + 4]}")
    report("(b) greedy 64-token continuations", same >= 4, f"{same}/5 identical (need >= 4)")


def check_perplexity(model, ref, tmp):
    text = "".join(open(os.path.join(LICENSES, n), encoding="utf-8").read() for n in PPL_TEXTS)
    path = os.path.join(tmp, "licenses.txt")
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    want, chunks, n_tokens = ref.perplexity(text, PPL_CTX)
    out = json.loads(rys("perplexity", model, "-f", path, "-c", str(PPL_CTX), "--json"))
    rel = abs(out["ppl"] - want) / want
    report("(c) perplexity", rel <= PPL_TOL and out.get("chunks") == chunks,
           f"{' + '.join(PPL_TEXTS)}, {n_tokens} tokens, -c {PPL_CTX}: rys {out['ppl']:.4f} "
           f"({out.get('chunks')} chunks) vs llama.cpp definition {want:.4f} ({chunks} chunks), "
           f"rel diff {rel:.2e} (<= {PPL_TOL})")


def check_paths(model, ref, items, n_layers, arch, tmp):
    n = n_layers
    specs = [f"0,{n}", f"{n // 3},{2 * n // 3}", f"{n // 4},{n // 2};{n // 2},{n // 2 + max(1, n // 6)}"]
    if arch == "gemma3":
        # llama.cpp's gemma3 loader derives each layer's attention kind (sliding
        # window or global, every sixth) from its position in the file, while a
        # relayered path keeps each layer's own kind (rys --blocks, and the
        # pointer-sharing reference pipeline): a materialized copy runs the same
        # model only when every block's length is a multiple of six
        # (rys export refuses the others).
        specs = [f"0,{n}", "6,12", "0,6;6,12"]
    toks_list = [(name, ref.tokenize(text)) for name, text in items if name in ("chat", "code")]
    for spec in specs:
        path = blocks_path(spec, n)
        copy = os.path.join(tmp, "relayered.gguf")
        materialize(model, copy, path)
        other = LlamaRef(copy, n_ctx=256)
        for name, toks in toks_list:
            want = other.logits(toks)[-1]
            got = rys_logits(model, toks, blocks=spec)
            rel = float(np.abs(got - want).max() / np.abs(want).max())
            same = int(got.argmax()) == int(want.argmax())
            report(f"(d) path blocks {spec} '{name}'", rel <= LOGIT_TOL and same,
                   f"{len(path)} layers, max|diff|/max|logit| = {rel:.2e}, argmax {int(got.argmax())} vs "
                   f"llama.cpp on a materialized copy {int(want.argmax())}")
        del other
        os.remove(copy)


def check_memory(model, n_layers):
    args = ["run", model, "-p", "The history of the printing press begins in", "-n", str(N_GREEDY), "--json"]
    base = json.loads(rys(*args))
    rep = json.loads(rys(*args, "--blocks", f"0,{n_layers}"))
    extra = rep["peak_rss"] - base["peak_rss"]
    budget = rep["kv_bytes"] - base["kv_bytes"] + (8 << 20)
    report("(e) memory of a repeated path", extra <= budget,
           f"peak RSS baseline {base['peak_rss'] / 2**20:.1f} MiB, blocks 0,{n_layers} "
           f"{rep['peak_rss'] / 2**20:.1f} MiB: extra {extra / 2**20:.2f} MiB <= extra KV "
           f"{(rep['kv_bytes'] - base['kv_bytes']) / 2**20:.2f} MiB + 8 MiB")


def main():
    ap = argparse.ArgumentParser(description="rys vs llama.cpp acceptance checks")
    ap.add_argument("model", nargs="?", default="smollm2-135m")
    ap.add_argument("--only", default="a,b,c,d,e,q")
    ap.add_argument("--as-is", action="store_true")
    a = ap.parse_args()
    only = set(a.only.split(","))
    model = resolve_model(a.model)
    import gguf
    r = gguf.GGUFReader(model)
    arch = r.fields["general.architecture"].contents()
    n_layers = int(r.fields[f"{arch}.block_count"].contents())
    del r
    print(f"check_engine: {model} ({arch}, {n_layers} layers), rys = {RYS}", flush=True)
    items = prompts(model)
    exact = model if a.as_is else None
    if not a.as_is and only & {"a", "b", "d"}:
        exact = f32_copy(model)
        print(f"check_engine: (a), (b), (d) on the F32 copy {exact}", flush=True)
    state = {}

    def ref_of(path):  # one llama.cpp instance per file, made when first needed
        if path not in state:
            state.clear()
            state[path] = LlamaRef(path)
        return state[path]

    with tempfile.TemporaryDirectory(prefix="rys-check-engine-") as tmp:
        for key, fn in (("a", lambda: check_logits(exact, ref_of(exact), items)),
                        ("b", lambda: check_greedy(exact, ref_of(exact), items)),
                        ("d", lambda: check_paths(exact, ref_of(exact), items, n_layers, arch, tmp)),
                        ("q", lambda: check_quantized(model, ref_of(model), items)),
                        ("c", lambda: check_perplexity(model, ref_of(model), tmp)),
                        ("e", lambda: check_memory(model, n_layers))):
            if key not in only:
                continue
            try:
                fn()
            except (RuntimeError, OSError, ValueError, KeyError, json.JSONDecodeError) as e:
                report(f"({key})", False, f"could not run: {e}")
    failed = results.count(False)
    print(f"check_engine: {len(results) - failed} passed, {failed} failed")
    sys.exit(1 if failed or not results else 0)


if __name__ == "__main__":
    main()
