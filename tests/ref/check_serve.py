"""rys serve against the CLI it serves: start `rys serve MODEL` on a free
loopback port, then with the `openai` client check that greedy completions
and chat (plain and streamed) give exactly `rys run`'s text, along the
baseline and along blocks:10,24 (model id MODEL@blocks:10,24); that echo +
logprobs gives the prompt's log-probabilities of `rys logits` (numpy
log-softmax) to 1e-4; that every class of bad input gets its status and
OpenAI's error object (raw requests through http.client); that eight
concurrent clients along both paths get exactly their answers served alone
while sharing decode steps; that /metrics parses as Prometheus text
(prometheus_client's parser) and /tokenizer_info names the file's own
special tokens and template (gguf's reader); that a full queue answers 429
with Retry-After, a request past --timeout 504, and a client that leaves
(streamed or not) frees its slot; and that SIGTERM lets the requests in
flight finish and exits 0.

usage: check_serve.py [MODEL] (default smollm2-135m); RYS = the binary.
Loopback only, about a minute and a half."""
import concurrent.futures, http.client, json, os, signal, socket, subprocess, sys, tempfile, threading, time

import gguf
import numpy as np
import openai
from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from refcheck import RYS, free_port, start_server  # noqa: E402

MODEL = sys.argv[1] if len(sys.argv) > 1 else "smollm2-135m"
CTX = 256
fails = 0


def check(ok, what):
    global fails
    print(("ok   " if ok else "FAIL ") + f"[{time.time() - t0:5.1f} s] " + what, flush=True)
    fails += not ok


def start(port, *extra):
    ctx = [] if "--ctx" in extra else ["--ctx", str(CTX)]
    return start_server(MODEL, port, ["--paths", "baseline;blocks:10,24", *ctx, "-t", "2", *extra])


def raw(port, method, path, body=None, headers=None):
    """status and parsed JSON of one raw request (body: bytes or a JSON-able value)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    if body is not None and not isinstance(body, bytes):
        body = json.dumps(body).encode()
    c.request(method, path, body=body, headers=headers or {"Content-Type": "application/json"})
    r = c.getresponse()
    data = r.read()
    try:
        return r.status, json.loads(data)
    except ValueError:
        return r.status, data


def run_text(prompt, n, chat, blocks=None):
    args = [RYS, "run", MODEL, "-p", prompt, "-n", str(n), "-t", "2", "--json"] + (["--chat"] if chat else [])
    if blocks:
        args += ["--blocks", blocks]
    r = subprocess.run(args, capture_output=True, text=True, check=True)
    return json.loads(r.stdout)["text"]


def check_generation(client):
    for model, blocks in ((MODEL, None), (MODEL + "@blocks:10,24", "10,24")):
        prompt, n = "The capital of France is", 12
        want = run_text(prompt, n, False, blocks)
        got = client.completions.create(model=model, prompt=prompt, max_tokens=n, temperature=0)
        check(got.choices[0].text == want, f"{model}: greedy completion == rys run ({got.choices[0].text!r} vs {want!r})")
        question, n = "What is the tallest mountain?", 16
        want = run_text(question, n, True, blocks)
        msgs = [{"role": "user", "content": question}]
        got = client.chat.completions.create(model=model, messages=msgs, max_tokens=n, temperature=0)
        check(got.choices[0].message.content == want,
              f"{model}: greedy chat == rys run --chat ({got.choices[0].message.content!r} vs {want!r})")
        pieces, finish = [], None
        for chunk in client.chat.completions.create(model=model, messages=msgs, max_tokens=n, temperature=0,
                                                    stream=True):
            delta = chunk.choices[0].delta
            pieces.append(delta.content or "")
            finish = chunk.choices[0].finish_reason or finish
        check("".join(pieces) == want and finish in ("stop", "length"),
              f"{model}: streamed chat == rys run --chat ({len(pieces)} chunks, finish {finish})")
    # a streamed completion: text chunks adding up to the plain one
    prompt, n = "The capital of France is", 12
    pieces = [ch.choices[0].text for ch in client.completions.create(model=MODEL, prompt=prompt, max_tokens=n,
                                                                     temperature=0, stream=True)]
    check("".join(pieces) == run_text(prompt, n, False), f"streamed completion == rys run ({len(pieces)} chunks)")
    # a list of prompts and token-id prompts: each its own greedy answer
    prompts = ["The capital of France is", "One, two, three,"]
    got = client.completions.create(model=MODEL, prompt=prompts, max_tokens=6, temperature=0)
    want = [run_text(p, 6, False) for p in prompts]
    check([c.text for c in sorted(got.choices, key=lambda c: c.index)] == want, "a list of prompts: each == rys run")
    parts, finish = ["", ""], [None, None]
    for chunk in client.completions.create(model=MODEL, prompt=prompts, max_tokens=6, temperature=0, stream=True):
        for c in chunk.choices:
            parts[c.index] += c.text
            finish[c.index] = c.finish_reason or finish[c.index]
    check(parts == want and None not in finish, f"a streamed list of prompts: each index's chunks == rys run ({finish})")
    status, tok = raw(PORT, "POST", "/tokenize", {"content": prompts[1]})
    check(status == 200 and isinstance(tok.get("tokens"), list) and tok["tokens"], f"/tokenize ({tok})")
    got = client.completions.create(model=MODEL, prompt=tok["tokens"], max_tokens=6, temperature=0)
    check(got.choices[0].text == want[1], "a token-id prompt == the same text's completion")
    status, detok = raw(PORT, "POST", "/detokenize", {"tokens": tok["tokens"]})
    check(status == 200 and detok.get("content") == prompts[1], f"/detokenize round-trips ({detok})")
    got = client.completions.create(model=MODEL, prompt=prompts[1], max_tokens=12, temperature=0, stop=[" five"])
    full = run_text(prompts[1], 12, False)
    cut = full.find(" five")
    check(cut >= 0 and got.choices[0].text == full[:cut] and got.choices[0].finish_reason == "stop",
          f"stop string cuts the text ({got.choices[0].text!r})")


def check_logprobs(client):
    prompt = "The quick brown fox jumps over the lazy dog"
    with tempfile.TemporaryDirectory() as tmp:
        npy = os.path.join(tmp, "l.npy")
        r = subprocess.run([RYS, "logits", MODEL, "-p", prompt, "--all", "--npy", npy, "-t", "2"], capture_output=True,
                           text=True, check=True)
        ids = json.loads(r.stdout)["tokens"]
        logits = np.load(npy).astype(np.float64)
    lsm = logits - logits.max(axis=1, keepdims=True)
    lsm -= np.log(np.exp(lsm).sum(axis=1, keepdims=True))
    want = [lsm[i - 1, ids[i]] for i in range(1, len(ids))]
    for max_tokens in (0, 1):
        got = client.completions.create(model=MODEL, prompt=prompt, max_tokens=max_tokens, temperature=0, echo=True,
                                        logprobs=1)
        lp = got.choices[0].logprobs
        n = len(ids)
        ok = (len(lp.tokens) == n + max_tokens and lp.token_logprobs[0] is None and lp.top_logprobs[0] is None
              and len(lp.text_offset) == n + max_tokens and got.choices[0].text.startswith(prompt))
        diff = max(abs(a - b) for a, b in zip(lp.token_logprobs[1:n], want)) if ok else float("inf")
        top_ok = ok and all(abs(max(t.values()) - lsm[i - 1].max()) < 1e-4 for i, t in enumerate(lp.top_logprobs[1:n], 1))
        check(ok and diff < 1e-4 and top_ok,
              f"echo + logprobs=1, max_tokens={max_tokens}: prompt log-probabilities == rys logits (max diff {diff:.2e})")


def check_shared_context_logprobs(client):
    # lm-eval's requests: one context, several continuations, in one request so they share a prefill; the
    # server computes the context once and copies its KV (echo_prefill's donor): every prompt's entries must
    # equal the prompt served alone
    ctx = "Question: which planet is closest to the sun? Answer:"
    prompts = [ctx + " Mercury", ctx + " Venus, the second planet", ctx + " Mercury"]
    ids = [raw(PORT, "POST", "/tokenize", {"content": p})[1]["tokens"] for p in prompts]

    def common(a, b):
        c = 0
        while c < min(len(a), len(b)) and a[c] == b[c]:
            c += 1
        return c
    # each later prompt copies the longest beginning of an earlier one but its last shared token
    want_shared = sum(max(c - 1, 0) for c in (max(common(ids[q], ids[r]) for r in range(q)) for q in (1, 2)))
    before = metric(metrics(PORT), "rys_echo_shared_tokens_total")
    both = client.completions.create(model=MODEL, prompt=prompts, max_tokens=0, temperature=0, echo=True, logprobs=2)
    shared = metric(metrics(PORT), "rys_echo_shared_tokens_total") - before
    worst, same_tokens = 0.0, True
    for q, prompt in enumerate(prompts):
        alone = client.completions.create(model=MODEL, prompt=prompt, max_tokens=0, temperature=0, echo=True, logprobs=2)
        a, b = both.choices[q].logprobs, alone.choices[0].logprobs
        same_tokens &= a.tokens == b.tokens and a.text_offset == b.text_offset
        for x, y in zip(a.token_logprobs[1:], b.token_logprobs[1:]):
            worst = max(worst, abs(x - y))
        for x, y in zip(a.top_logprobs[1:], b.top_logprobs[1:]):
            same_tokens &= sorted(x) == sorted(y)
    check(same_tokens and worst == 0.0 and shared == want_shared > 0,
          f"echo of {len(prompts)} prompts sharing a context in one request == each alone (max diff {worst:.1e}); "
          f"{shared:.0f} positions copied, {want_shared} expected")


def check_eog_logprobs(client):
    # a chat turn as a plain prompt ends on <|im_end|>: not in the text, but
    # its log-probability is the last entry (lm-eval's echo reads it as the generated one)
    r = subprocess.run([RYS, "run", MODEL, "--chat", "-p", "What is 2+2?", "-n", "60", "-t", "2", "--json"],
                       capture_output=True, text=True, check=True)
    run = json.loads(r.stdout)
    prompt = run["prompt_tokens"]
    got = client.completions.create(model=MODEL, prompt=prompt, max_tokens=60, temperature=0, logprobs=1)
    ch = got.choices[0]
    lp = ch.logprobs
    check(run["hit_eog"] and ch.text == run["text"] and ch.finish_reason == "stop"
          and len(lp.tokens) == got.usage.completion_tokens + 1
          and lp.tokens[-1] not in ch.text and lp.token_logprobs[-1] is not None,
          f"the end-of-generation token closes the logprobs, not the text ({lp.tokens[-3:]}, {ch.finish_reason})")


def check_chat_logprobs(client):
    # a greedy chat with logprobs: its tokens spell the answer, each the top one of its alternatives, and
    # each log-probability is the completion endpoint's for the same prompt ids (checked against rys logits above)
    r = subprocess.run([RYS, "run", MODEL, "--chat", "-p", "Name a colour.", "-n", "12", "-t", "2", "--json"],
                       capture_output=True, text=True, check=True)
    run = json.loads(r.stdout)
    got = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Name a colour."}],
                                         max_tokens=12, temperature=0, logprobs=True, top_logprobs=3)
    ch = got.choices[0]
    content = ch.logprobs.content
    comp = client.completions.create(model=MODEL, prompt=run["prompt_tokens"], max_tokens=12, temperature=0, logprobs=3)
    want = comp.choices[0].logprobs.token_logprobs[:len(content)]
    ok = (ch.message.content == run["text"] and "".join(t.token for t in content) == ch.message.content
          and all(len(t.top_logprobs) == 3 and t.top_logprobs[0].token == t.token
                  and abs(t.top_logprobs[0].logprob - t.logprob) < 1e-6 and bytes(t.bytes).decode() == t.token
                  for t in content)
          and len(content) == got.usage.completion_tokens
          and max(abs(t.logprob - w) for t, w in zip(content, want)) < 1e-5)
    check(ok, f"chat logprobs: tokens spell the answer, top-1 is the token, == the completion's log-probabilities "
              f"({len(content)} tokens)")


def check_errors(port):
    def expect(status_want, method, path, body, what, param=None, headers=None):
        status, o = raw(port, method, path, body, headers)
        err = o.get("error") if isinstance(o, dict) else None
        ok = (status == status_want and isinstance(err, dict) and set(err) == {"message", "type", "param", "code"}
              and (param is None or err["param"] == param))
        check(ok, f"{what}: {status_want} with an error object ({status}, {err})")

    expect(400, "POST", "/v1/completions", b'{"model": "x", "prompt": ', "malformed JSON")
    expect(400, "POST", "/v1/completions", b'[1, 2]', "a body that is no object")
    expect(400, "POST", "/v1/completions", {"model": MODEL, "prompt": 5}, "prompt of the wrong type", "prompt")
    expect(400, "POST", "/v1/completions", {"model": MODEL, "prompt": "a", "max_tokens": "x"}, "max_tokens a string",
           "max_tokens")
    expect(400, "POST", "/v1/completions", {"model": MODEL, "prompt": "a", "temperature": "hot"}, "temperature a string",
           "temperature")
    expect(400, "POST", "/v1/completions", {"model": MODEL, "prompt": "a", "logprobs": 99}, "logprobs out of range",
           "logprobs")
    expect(400, "POST", "/v1/completions", {"model": MODEL}, "no prompt", "prompt")
    expect(400, "POST", "/v1/completions", {"model": MODEL, "prompt": [[1, 2], "x", 3]}, "a mixed prompt list", "prompt")
    expect(400, "POST", "/v1/completions", {"model": MODEL, "prompt": [10 ** 9]}, "a token id outside the vocabulary",
           "prompt")
    expect(400, "POST", "/v1/chat/completions", {"model": MODEL}, "chat without messages", "messages")
    expect(400, "POST", "/v1/chat/completions", {"model": MODEL, "messages": [{"role": "user", "content": 3}]},
           "a message content of the wrong type", "messages")
    expect(400, "POST", "/v1/chat/completions", {"model": MODEL, "messages": [{"role": "wizard", "content": "x"}]},
           "an unknown role", "messages")
    expect(400, "POST", "/v1/completions", {"model": MODEL, "prompt": "a", "stream": True, "echo": True},
           "a streamed completion with echo (not yet)", "echo")
    expect(400, "POST", "/v1/chat/completions", {"model": MODEL, "messages": [{"role": "user", "content": "a"}],
                                                 "logprobs": True, "stream": True},
           "a streamed chat with logprobs (not yet)", "logprobs")
    expect(400, "POST", "/v1/chat/completions", {"model": MODEL, "messages": [{"role": "user", "content": "a"}],
                                                 "top_logprobs": 2}, "top_logprobs without logprobs", "top_logprobs")
    status, o = raw(port, "POST", "/v1/chat/completions",
                    {"model": MODEL, "messages": [{"role": "user", "content": "word " * (CTX + 50)}]})
    check(status == 400 and o["error"]["code"] == "context_length_exceeded", "a chat over the context: 400")
    status, o = raw(port, "POST", "/v1/completions", {"model": MODEL, "prompt": "word " * (CTX + 50)})
    check(status == 400 and str(CTX) in o["error"]["message"] and o["error"]["code"] == "context_length_exceeded",
          f"a prompt over the context: 400 naming the limit ({o['error']['message']})")
    expect(404, "POST", "/v1/completions", {"model": "no-such-model", "prompt": "a"}, "an unknown model", "model")
    expect(404, "POST", "/v1/completions", {"model": MODEL + "@blocks:99,1", "prompt": "a"}, "a bad path spec", "model")
    expect(404, "GET", "/v1/nothing", None, "an unknown route")
    expect(405, "GET", "/v1/completions", None, "a route with the wrong method")
    expect(400, "POST", "/tokenize", {"content": 7}, "/tokenize content not a string", "content")
    # a body over the limit is refused from its Content-Length, before it is sent
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.putrequest("POST", "/v1/completions")
    c.putheader("Content-Type", "application/json")
    c.putheader("Content-Length", str(64 << 20))
    c.endheaders()
    r = c.getresponse()
    o = json.loads(r.read())
    check(r.status == 413 and "error" in o, f"a body over the limit: 413 ({r.status}, {o})")
    # a chunked body (no length) is read to its end, dropped past the limit, and refused
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    c.request("POST", "/v1/completions", body=(b"a" * (1 << 20) for _ in range(9)), encode_chunked=True,
              headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"})
    r = c.getresponse()
    o = json.loads(r.read())
    check(r.status == 413 and "error" in o, f"a chunked body over the limit: 413 ({r.status})")
    # the server still answers afterwards
    status, _ = raw(port, "GET", "/health")
    check(status == 200, "the server still answers after the bad requests")


def metrics(port):
    """/metrics parsed by prometheus_client: {(sample name, sorted labels): value} and the families' types."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request("GET", "/metrics")
    r = c.getresponse()
    text = r.read().decode()
    assert r.status == 200 and r.getheader("Content-Type", "").startswith("text/plain"), r.status
    samples, types = {}, {}
    for fam in text_string_to_metric_families(text):
        types[fam.name] = fam.type
        for smp in fam.samples:
            samples[(smp.name, tuple(sorted(smp.labels.items())))] = smp.value
    return samples, types


def metric(m, name, **labels):
    return m[0].get((name, tuple(sorted(labels.items()))), 0.0)


def one_request(spec, client=None, barrier=None):
    """One request through a client of its own: (kind, model, prompt, max_tokens, extra) -> its text. With a
    barrier, it is sent when all the barrier's parties are ready."""
    kind, model, prompt, n, extra = spec
    client = client or openai.OpenAI(base_url=f"http://127.0.0.1:{PORT}/v1", api_key="unused", timeout=300,
                                     max_retries=0)
    if barrier:
        barrier.wait()
    if kind == "completion":
        r = client.completions.create(model=model, prompt=prompt, max_tokens=n, temperature=0, **extra)
        return r.choices[0].text, r.choices[0].finish_reason
    msgs = [{"role": "user", "content": prompt}]
    if kind == "stream":
        pieces, finish = [], None
        for ch in client.chat.completions.create(model=model, messages=msgs, max_tokens=n, temperature=0, stream=True):
            pieces.append(ch.choices[0].delta.content or "")
            finish = ch.choices[0].finish_reason or finish
        return "".join(pieces), finish
    r = client.chat.completions.create(model=model, messages=msgs, max_tokens=n, temperature=0, **extra)
    return r.choices[0].message.content, r.choices[0].finish_reason


def check_concurrency(port):
    both = (MODEL, MODEL + "@blocks:10,24")
    texts = ["The capital of France is", "One, two, three,", "Water boils at", "My favourite colour is",
             "Why is the sky blue?", "Name a prime number.", "What is 2+2?", "Tell me about cats."]
    specs = []
    for i, text in enumerate(texts):
        kind = ("completion", "chat", "stream")[i % 3] if i < 4 else ("chat", "completion", "stream")[i % 3]
        extra = {"stop": [","]} if i == 1 else {}
        specs.append((kind, both[i % 2], text, 16 + 4 * i, extra))
    alone = [one_request(sp) for sp in specs]
    m0 = metrics(port)
    clients = [openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="unused", timeout=300, max_retries=0)
               for _ in specs]
    barrier = threading.Barrier(len(specs))
    with concurrent.futures.ThreadPoolExecutor(len(specs)) as ex:
        together = list(ex.map(lambda sc: one_request(sc[0], sc[1], barrier), zip(specs, clients)))
    m1 = metrics(port)
    same = [a == b for a, b in zip(alone, together)]
    check(all(same), f"{len(specs)} concurrent clients (completions, chat, streams, a stop string; two paths): "
                     f"each answer == the same request alone ({same})")
    steps = metric(m1, "rys_decode_steps_total") - metric(m0, "rys_decode_steps_total")
    seqs = metric(m1, "rys_step_sequences_total") - metric(m0, "rys_step_sequences_total")
    check(steps > 0 and seqs / steps > 1.5, f"the concurrent requests shared decode steps (mean batch {seqs / max(steps, 1):.2f})")


def check_metrics_and_tokenizer_info(port):
    mt = metrics(port)
    m, types = mt
    want = {"rys_requests": "counter", "rys_prompt_tokens": "counter", "rys_generation_tokens": "counter",
            "rys_queue_depth": "gauge", "rys_active_sequences": "gauge", "rys_request_duration_seconds": "histogram",
            "rys_cancelled": "counter", "rys_decode_steps": "counter"}
    check(all(types.get(k) == v for k, v in want.items()), f"/metrics parses as Prometheus text with the families ({types})")
    ok = metric(mt, "rys_requests_total", route="/v1/completions", status="200")
    bad = metric(mt, "rys_requests_total", route="/v1/completions", status="400")
    buckets = sorted((float(dict(k[1])["le"]), v) for k, v in m.items() if k[0] == "rys_request_duration_seconds_bucket")
    cum_ok = all(a[1] <= b[1] for a, b in zip(buckets, buckets[1:]))
    count = metric(mt, "rys_request_duration_seconds_count")
    check(ok >= 10 and bad >= 5 and cum_ok and buckets[-1][0] == float("inf") and buckets[-1][1] == count
          and metric(mt, "rys_generation_tokens_total") > 100 and metric(mt, "rys_active_sequences") == 0,
          f"/metrics counts requests by route and status (200: {ok:.0f}, 400: {bad:.0f}), tokens, a cumulative histogram")
    status, info = raw(port, "GET", "/tokenizer_info")
    g = gguf.GGUFReader(gguf_path())
    field = lambda k: g.fields[k].contents() if k in g.fields else None
    tokens = field("tokenizer.ggml.tokens")
    eos, bos = field("tokenizer.ggml.eos_token_id"), field("tokenizer.ggml.bos_token_id")
    check(status == 200 and info["eos_token"] == tokens[eos] and info["bos_token"] == (tokens[bos] if bos is not None else None)
          and info["chat_template"] == field("tokenizer.chat_template") and info["model_max_length"] == CTX,
          f"/tokenizer_info: the file's eos/bos tokens and chat template ({info['eos_token']!r}, {info['bos_token']!r})")
    # lm-evaluation-harness's remote tokenizer: vLLM's spellings, eos id = encode(eos)[0]
    status, tok = raw(port, "POST", "/tokenize", {"prompt": info["eos_token"], "add_special_tokens": False})
    status2, detok = raw(port, "POST", "/detokenize", {"tokens": [1, 2, 3]})
    check(status == 200 and tok["tokens"] == [eos] and status2 == 200 and isinstance(detok.get("prompt"), str),
          f"/tokenize and /detokenize take vLLM's spellings ({tok})")


def gguf_path():
    out = subprocess.run([RYS, "models", "--json"], capture_output=True, text=True, check=True).stdout
    for m in json.loads(out):
        if m.get("name") == MODEL and m.get("path"):
            return m["path"]
    return MODEL


def wait_metrics(port, cond, seconds):
    """/metrics once cond(metrics) holds, or the last one after seconds."""
    deadline = time.time() + seconds
    while True:
        m = metrics(port)
        if cond(m) or time.time() > deadline:
            return m
        time.sleep(0.05)


def raw_socket_request(port, req):
    """A POST /v1/completions sent on a socket of its own, its answer never read."""
    sock = socket.create_connection(("127.0.0.1", port))
    body = json.dumps(req).encode()
    sock.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    return sock


def check_limits():
    """One sequence per path, one request may wait, 20 s per request (long enough that the long request
    is still running when the queue checks finish, on a fast idle machine too)."""
    port = free_port()
    proc = start(port, "--max-batch", "1", "--max-queue", "1", "--timeout", "20", "--ctx", "2048")
    # four passes over the layers, 2000 tokens: a minute or more on any machine
    slow = MODEL + "@layers:" + ",".join(["0-29"] * 4)
    long_req = {"model": slow, "prompt": "Once upon a time", "max_tokens": 2000, "temperature": 0}
    # the short requests go along the same path, so they compete for the long one's lane and its one slot
    # (another path has a lane of its own, whose slot is free: a short request there waits only while the
    # server thread runs a step of the long one, a race that a fast step loses)
    short_req = {"model": slow, "prompt": "One, two, three,", "max_tokens": 4, "temperature": 0}
    try:
        st, want = raw(port, "POST", "/v1/completions", short_req)
        m0 = metrics(port)
        # a long request takes the slot, a short one waits, a third finds the queue full
        a = raw_socket_request(port, long_req)
        wait_metrics(port, lambda m: metric(m, "rys_active_sequences") == 1, 10)
        res = {}
        t = threading.Thread(target=lambda: res.__setitem__("short", raw(port, "POST", "/v1/completions", short_req)))
        t.start()
        wait_metrics(port, lambda m: metric(m, "rys_queue_depth") == 1, 10)
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        c.request("POST", "/v1/completions", body=json.dumps(short_req), headers={"Content-Type": "application/json"})
        r = c.getresponse()
        o = json.loads(r.read())
        check(r.status == 429 and r.getheader("Retry-After") == "1" and o["error"]["code"] == "queue_full",
              f"a full queue: 429 with Retry-After ({r.status}, {r.getheader('Retry-After')}, {o})")
        # the long request's client leaves: its slot goes to the waiting one
        a.close()
        t.join(60)
        st, o = res["short"]
        check(st == 200 and o["choices"][0]["text"] == want["choices"][0]["text"],
              f"a plain request's client leaves: the waiting request gets the slot, same answer ({st})")
        # a stream whose client leaves after two events
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        c.request("POST", "/v1/completions", body=json.dumps(dict(long_req, stream=True)),
                  headers={"Content-Type": "application/json"})
        r = c.getresponse()
        events = 0
        while events < 2:
            events += r.fp.readline().startswith(b"data: ")
        c.sock.shutdown(socket.SHUT_RDWR)
        c.close()
        m1 = wait_metrics(port, lambda m: metric(m, "rys_cancelled_total") - metric(m0, "rys_cancelled_total") >= 2
                          and metric(m, "rys_active_sequences") == 0, 10)
        check(metric(m1, "rys_cancelled_total") - metric(m0, "rys_cancelled_total") == 2
              and metric(m1, "rys_active_sequences") == 0 and metric(m1, "rys_queue_depth") == 0,
              "clients that leave (a plain request, a stream) are cancelled and free their slots (/metrics)")
        st, o = raw(port, "POST", "/v1/completions", long_req)
        m2 = metrics(port)
        check(st == 504 and set(o["error"]) == {"message", "type", "param", "code"}
              and metric(m2, "rys_timeouts_total") == 1, f"a request past --timeout: 504 with an error object ({st}, {o})")
        st, o = raw(port, "POST", "/v1/completions", short_req)
        check(st == 200 and o["choices"][0]["text"] == want["choices"][0]["text"], "the server answers the same afterwards")
    finally:
        proc.kill()
        proc.wait()


def check_drain(proc, port):
    results = [None] * 3

    def long_request(i):
        results[i] = raw(port, "POST", "/v1/completions",
                         {"model": MODEL, "prompt": "Once upon a time", "max_tokens": 100 + 30 * i, "temperature": 0})

    threads = [threading.Thread(target=long_request, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    m = wait_metrics(port, lambda m: metric(m, "rys_active_sequences") == 3, 30)
    check(metric(m, "rys_active_sequences") == 3, "three requests decode together")
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.2)
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        refused = False
    except OSError:
        refused = True
    for t in threads:
        t.join(120)
    rc = proc.wait(60)
    ok = all(r and r[0] == 200 and r[1]["usage"]["completion_tokens"] > 0 for r in results)
    check(ok, f"the 3 requests in flight at SIGTERM finish ({[r and r[0] for r in results]})")
    check(refused, "after SIGTERM the server accepts no new connection")
    check(rc == 0, f"SIGTERM: rys serve exits 0 ({rc})")


def check_api_key():
    port = free_port()
    proc = start(port, "--api-key", "sekrit")
    status, o = raw(port, "GET", "/v1/models")
    check(status == 401 and "error" in o, "--api-key: a request without the key gets 401")
    status, o = raw(port, "GET", "/v1/models", headers={"Authorization": "Bearer sekrit"})
    check(status == 200 and [m["id"] for m in o["data"]] == [MODEL, MODEL + "@blocks:10,24"],
          f"--api-key: with the key, /v1/models lists one id per path ({o})")
    proc.send_signal(signal.SIGTERM)
    check(proc.wait(60) == 0, "SIGTERM: exits 0")


t0 = time.time()
PORT = free_port()
proc = start(PORT)
try:
    client = openai.OpenAI(base_url=f"http://127.0.0.1:{PORT}/v1", api_key="unused", timeout=120, max_retries=0)
    ids = [m.id for m in client.models.list().data]
    check(ids == [MODEL, MODEL + "@blocks:10,24"], f"/v1/models: one id per served path ({ids})")
    check_generation(client)
    check_logprobs(client)
    check_shared_context_logprobs(client)
    check_eog_logprobs(client)
    check_chat_logprobs(client)
    check_errors(PORT)
    check_concurrency(PORT)
    check_metrics_and_tokenizer_info(PORT)
    check_drain(proc, PORT)
finally:
    if proc.poll() is None:
        proc.kill()
check_limits()
check_api_key()
print(f"check_serve: {fails} failed, {time.time() - t0:.0f} s")
sys.exit(1 if fails else 0)
