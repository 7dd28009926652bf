#!/usr/bin/env bash
# demo: from a fresh clone to the main job in one command. Installs what is
# missing, builds, pulls the small real model, and answers one prompt twice:
# along the model's own layers, then along a RYS path that runs a middle
# block of layers a second time (weights shared, no copy of the model).
#
# Knobs: RYS_DEMO_MODEL (default smollm2-135m), RYS_DEMO_BLOCKS (default
# 10,16: layers 0..15 then 10..29, so 10..15 run twice), RYS_DEMO_PROMPT.
set -euo pipefail
cd "$(dirname "$0")/.."
exec </dev/null

MODEL=${RYS_DEMO_MODEL:-smollm2-135m}
BLOCKS=${RYS_DEMO_BLOCKS:-10,16}
PROMPT=${RYS_DEMO_PROMPT:-"A farmer has 17 sheep and buys 26 more. How many sheep does he have now? Answer in one sentence."}

./scripts/deps.sh
make -j"${RYS_JOBS:-2}" build/rys
build/rys pull "$MODEL"

echo
echo "== baseline: $MODEL, its own layer order"
build/rys run "$MODEL" --chat -n 64 -p "$PROMPT"
echo
echo "== RYS path: $MODEL --blocks $BLOCKS (a middle block runs twice)"
build/rys run "$MODEL" --chat -n 64 --blocks "$BLOCKS" -p "$PROMPT"
echo
