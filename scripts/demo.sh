#!/usr/bin/env bash
# demo: from a fresh clone to the main job in one command. Installs what is
# missing, builds, pulls the small real model, answers one prompt along the
# model's own layers and along a RYS path (a middle block run twice, weights
# shared), then runs a coarse brain scan on the math probe, prints the best
# configurations and writes the report (heatmaps, rankings) to demo-report/.
# The scan is resumable: run the script again and it continues where it was.
#
# Knobs: RYS_DEMO_MODEL (default smollm2-135m), RYS_DEMO_BLOCKS (default
# 10,16: layers 0..15 then 10..29, so 10..15 run twice), RYS_DEMO_PROMPT,
# RYS_DEMO_STRIDE (scan grid, default 6), RYS_DEMO_PROBES.
set -euo pipefail
cd "$(dirname "$0")/.."
exec </dev/null

MODEL=${RYS_DEMO_MODEL:-smollm2-135m}
BLOCKS=${RYS_DEMO_BLOCKS:-10,16}
PROMPT=${RYS_DEMO_PROMPT:-"A farmer has 17 sheep and buys 26 more. How many sheep does he have now? Answer in one sentence."}

# quiet: run a set-up step with its output in a log, shown (the tail) only if it fails
quiet() {
    local what=$1 log
    shift
    log=$(mktemp -t rys-demo.XXXXXX)
    if ! "$@" >"$log" 2>&1; then
        tail -n 30 "$log" >&2
        echo "demo: $what failed (whole log: $log)" >&2
        exit 1
    fi
    rm -f "$log"
}

t0=$SECONDS
echo "== set-up: system libraries (scripts/deps.sh: apt, only what is missing)"
./scripts/deps.sh
echo "== set-up: building build/rys (make, about a minute on 2 cores)"
quiet "make build/rys" make -j"${RYS_JOBS:-2}" build/rys
echo "== set-up: pulling $MODEL"
build/rys pull "$MODEL"
echo "== set-up done in $((SECONDS - t0)) s"

echo
echo "== baseline: $MODEL, its own layer order"
build/rys run "$MODEL" --chat -n 64 -p "$PROMPT"
echo
echo "== RYS path: $MODEL --blocks $BLOCKS (a middle block runs twice)"
build/rys run "$MODEL" --chat -n 64 --blocks "$BLOCKS" -p "$PROMPT"
echo
STRIDE=${RYS_DEMO_STRIDE:-6}
PROBES=${RYS_DEMO_PROBES:-probes/math_16.json}
DB=${RYS_DEMO_DB:-demo-scan.sqlite}
echo
echo "== brain scan: $MODEL, every block (i,j) on a grid of $STRIDE layers, probes $PROBES -> $DB"
build/rys scan "$MODEL" --probes "$PROBES" --db "$DB" --stride "$STRIDE" --order coarse
build/rys report "$DB" --out demo-report
