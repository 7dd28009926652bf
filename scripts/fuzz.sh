#!/usr/bin/env bash
# fuzz: builds the libFuzzer targets (make fuzz) and runs each for a bounded
# time, starting from its committed seeds in fuzz/corpus/<name>/. Inputs the
# fuzzer finds are kept in build/fuzz-corpus/<name>/ (never in the committed
# seeds); a crash leaves its input in build/fuzz-artifacts/ and fails the run.
#
# Knobs: RYS_FUZZ_SECONDS per target (default 60), BUILD (default build).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${RYS_FUZZ_SECONDS:-60}
build=${BUILD:-build}
make --no-print-directory BUILD="$build" fuzz

status=0
for target in "$build"/fuzz_*; do
    [ -x "$target" ] || continue
    name=${target##*/fuzz_}
    work="$build/fuzz-corpus/$name"
    artifacts="$build/fuzz-artifacts/$name/"
    mkdir -p "$work" "$artifacts"
    seeds=()
    [ -d "fuzz/corpus/$name" ] && seeds=("fuzz/corpus/$name")
    echo "fuzz: $name for $seconds s"
    if ! "$target" -max_total_time="$seconds" -max_len=16384 -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$artifacts" "$work" "${seeds[@]}"; then
        echo "fuzz: $name FAILED; reproduce with: $target $artifacts<file>"
        status=1
    fi
done
exit "$status"
