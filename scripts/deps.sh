#!/usr/bin/env bash
# deps: install what rys needs, and nothing twice.
#   deps.sh              the system libraries building and running rys needs
#                        (apt, only the missing ones, one `apt-get update` first)
#   deps.sh --reference  also what the tests need: cmocka, clang for fuzzing, and
#                        the Python reference venv (what scripts/check.sh runs)
#   deps.sh --bench      --reference plus the peers bench/ compares against
# The Python side (numpy, gguf, tokenizers, jinja2, llama-cpp-python) lives in a
# venv at $RYS_VENV (default ~/.cache/rys/venv) and serves only as the
# independent reference for tests. llama-cpp-python is compiled here with
# AMX off: its default -march=native build crashes in ggml_backend_amx_mul_mat
# on the AMX Xeons these machines have (a SIGSEGV in the first matrix product).
# A stamp in the venv makes a second run take about a second.
# The bench peers (PyTorch, transformers, accelerate) are several GB: not
# needed for building or testing.
# apt's output goes to a log, shown (its tail) only when the install fails.
set -euo pipefail
cd "$(dirname "$0")/.."
REFERENCE=0 BENCH=0
case "${1:-}" in
    "") ;;
    --reference) REFERENCE=1 ;;
    --bench) REFERENCE=1 BENCH=1 ;;
    *) echo "deps: unknown option '$1' (use --reference or --bench)" >&2; exit 2 ;;
esac

# building and running (rys pull fetches packages with pip)
APT_PKGS=(build-essential libpcre2-dev libsqlite3-dev libjansson-dev libcairo2-dev libgmp-dev
          libbz2-dev zlib1g-dev libmicrohttpd-dev libxgboost-dev pkg-config python3 python3-pip)
# the tests: cmocka, libFuzzer, the reference venv and llama-cpp-python's build
REF_APT_PKGS=(libcmocka-dev clang libclang-rt-14-dev bzip2 unzip python3-venv cmake)
[ "$REFERENCE" = 1 ] && APT_PKGS+=("${REF_APT_PKGS[@]}")
PY_PKGS=(numpy==2.4.6 gguf==0.19.0 tokenizers==0.23.3 jinja2==3.1.6 safetensors==0.8.0 pyarrow==26.0.1 openai==3.63.0
         prometheus_client==0.26.0 "lm_eval[api]==0.4.13")
LLAMA_PKG=llama-cpp-python==0.3.36
BENCH_PKGS=(torch==2.15.0 transformers==5.24.0 accelerate==1.15.0)
NOAMX="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
VENV=${RYS_VENV:-$HOME/.cache/rys/venv}
STAMP=$VENV/.rys-deps-stamp
# The stamp records what was installed; editing the lists above invalidates it.
WANT_STAMP="${PY_PKGS[*]} $LLAMA_PKG noamx"

say() { echo "deps: $*"; }

# ---- system packages -------------------------------------------------------
# A package already provided by the base image (e.g. python3 from pyenv, cmake
# from pip) counts when its command is on PATH.
have_cmd_for() {
    case "$1" in
        python3) command -v python3 >/dev/null ;;
        python3-venv) python3 -c 'import venv, ensurepip' 2>/dev/null ;;
        python3-pip) python3 -m pip --version >/dev/null 2>&1 ;;
        cmake) command -v cmake >/dev/null ;;
        *) return 1 ;;
    esac
}
missing=()
for p in "${APT_PKGS[@]}"; do
    if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then continue; fi
    have_cmd_for "$p" && continue
    missing+=("$p")
done
if ((${#missing[@]})); then
    sudo=()
    [ "$(id -u)" -ne 0 ] && sudo=(sudo -n)
    say "installing ${missing[*]} (apt)"
    export DEBIAN_FRONTEND=noninteractive
    log=$(mktemp -t rys-apt.XXXXXX)
    if ! { "${sudo[@]}" apt-get update -qq && "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"; } \
        </dev/null >"$log" 2>&1; then
        tail -n 25 "$log" >&2
        say "apt-get failed installing ${missing[*]} (whole log: $log)"
        exit 1
    fi
    rm -f "$log"
fi
[ "$REFERENCE" = 1 ] || { say "ok (system libraries)"; exit 0; }

# ---- Python reference venv -------------------------------------------------
py_ok() {
    "$VENV/bin/python" - <<'PY' 2>/dev/null
import numpy, gguf, tokenizers, jinja2, safetensors, pyarrow, openai, llama_cpp, prometheus_client, lm_eval
info = llama_cpp.llama_print_system_info().decode()
raise SystemExit(1 if "AMX" in info else 0)
PY
}

# One forward pass on a real model catches a build that imports but crashes
# (the AMX failure is a SIGSEGV in the first matrix product).
llama_smoke() {
    local model=${RYS_CACHE_DIR:-$HOME/.cache/rys}/models/smollm2-135m.gguf
    [ -f "$model" ] || model=$HOME/.cache/rys/models/smollm2-135m.gguf
    [ -f "$model" ] || return 0
    "$VENV/bin/python" - "$model" <<'PY'
import sys, llama_cpp
m = llama_cpp.Llama(model_path=sys.argv[1], n_ctx=64, n_threads=2, verbose=False)
m.eval(m.tokenize(b"Hello"))
PY
}

bench_deps() {
    [ "$BENCH" = 1 ] || return 0
    if "$VENV/bin/python" -c 'import torch, transformers, accelerate' 2>/dev/null; then
        say "venv $VENV already has the bench peers (torch, transformers, accelerate)"
    else
        say "installing the bench peers ${BENCH_PKGS[*]} (several GB)"
        "$VENV/bin/python" -m pip install -q --disable-pip-version-check "${BENCH_PKGS[@]}" </dev/null
    fi
}

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT_STAMP" ] && [ -x "$VENV/bin/python" ]; then
    bench_deps
    say "ok (stamp $STAMP)"
    exit 0
fi

if py_ok; then
    say "venv $VENV already has the reference packages (llama-cpp-python without AMX)"
else
    if [ ! -x "$VENV/bin/python" ]; then
        say "creating venv $VENV"
        python3 -m venv "$VENV"
    fi
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check "${PY_PKGS[@]}" </dev/null
    if ! "$VENV/bin/python" -c 'import llama_cpp' 2>/dev/null || ! py_ok; then
        # --no-cache-dir: pip's wheel cache is keyed by the sdist, not by
        # CMAKE_ARGS, so a cached -march=native (AMX) build would come back.
        say "building $LLAMA_PKG with AMX off (about 5-10 minutes on 2 cores)"
        CMAKE_ARGS="-DCMAKE_C_FLAGS='$NOAMX' -DCMAKE_CXX_FLAGS='$NOAMX'" CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) \
            "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-cache-dir --force-reinstall \
            --no-deps "$LLAMA_PKG" </dev/null
        "$VENV/bin/python" -m pip install -q --disable-pip-version-check "$LLAMA_PKG" </dev/null
    fi
    py_ok || { say "venv $VENV: reference packages still not importable (or llama.cpp built with AMX)"; exit 1; }
fi
llama_smoke || { say "llama-cpp-python in $VENV crashes on a forward pass; delete $VENV and run again"; exit 1; }
echo "$WANT_STAMP" > "$STAMP"
bench_deps
say "ok"
