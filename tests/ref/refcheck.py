"""What the reference checks that drive the rys binary share: running it,
counting failures, and rank statistics in plain Python, written from their
definitions, for the checks that recompute rys's Spearman numbers
(surrogate holdout, pre-screen)."""
import http.client
import math
import os
import socket
import subprocess
import sys
import time

RYS = os.environ.get("RYS", "build/rys")
failures = []


def fail(msg):
    """Records and prints one failed check; the script ends non-zero when any was recorded."""
    print("FAIL: " + msg)
    failures.append(msg)


def run(args, ok=True):
    """rys ARGS; with ok, a non-zero exit stops the script with its stderr."""
    p = subprocess.run([RYS] + args, capture_output=True, text=True)
    if ok and p.returncode != 0:
        print(p.stderr)
        raise SystemExit(f"rys {' '.join(args)} exited {p.returncode}")
    return p


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model, port, args, wait_s=60):
    """rys serve MODEL on 127.0.0.1:PORT with ARGS, once /health answers 200; exits the script
    with the server's stderr if it ends first, or if it does not answer within wait_s seconds."""
    proc = subprocess.Popen([RYS, "serve", model, "--port", str(port), *args], stderr=subprocess.PIPE, text=True)
    deadline = time.time() + wait_s
    while time.time() < deadline:
        if proc.poll() is not None:
            sys.exit(f"rys serve exited {proc.returncode}: {proc.stderr.read()}")
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            c.request("GET", "/health")
            if c.getresponse().status == 200:
                return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    sys.exit(f"rys serve did not answer /health within {wait_s} s")


def ranks(v):
    """1-based ranks, ties given their average."""
    order = sorted(range(len(v)), key=lambda i: v[i])
    r = [0.0] * len(v)
    k = 0
    while k < len(order):
        e = k
        while e + 1 < len(order) and v[order[e + 1]] == v[order[k]]:
            e += 1
        for q in range(k, e + 1):
            r[order[q]] = (k + e) / 2 + 1
        k = e + 1
    return r


def spearman(a, b):
    """Pearson's correlation of the average ranks; NaN when either side is constant."""
    ra, rb = ranks(a), ranks(b)
    ma, mb = sum(ra) / len(ra), sum(rb) / len(rb)
    sab = sum((x - ma) * (y - mb) for x, y in zip(ra, rb))
    saa = sum((x - ma) ** 2 for x in ra)
    sbb = sum((y - mb) ** 2 for y in rb)
    return float("nan") if saa <= 0 or sbb <= 0 else sab / math.sqrt(saa * sbb)
