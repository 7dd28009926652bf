#!/usr/bin/env bash
# check_layers: the folders under src/ are the layers, and a file may include
# only headers of its own folder and of the folders its layer may know
# (docs/LAYOUT.md draws the same table). Also checks that the Makefile's
# ENGINE_TESTS, the tests linked against the engine library alone, are exactly
# the tests that include nothing above the engine.
# Prints one line per violation and exits 1 if there is any.
set -euo pipefail
cd "$(dirname "$0")/.."

# folder -> the folders it may include besides itself (lowest layer first)
declare -A may=(
    [base]=""
    [quant]="base"
    [kernels]="quant base"
    [engine]="quant base"
    [probes]="base"
    [tasks]="engine quant base"
    [scan]="validate tasks probes engine quant base"
    [validate]="tasks engine quant base"
    [export]="engine quant base"
    [serve]="engine quant base"
    [report]="scan validate probes tasks engine quant base"
    [search]="report scan validate probes tasks engine quant base"
    [cli]="search report serve export validate scan tasks probes engine kernels quant base"
)
engine_layers=" base quant kernels engine "

bad=0
folders_seen=()
for dir in src/*/; do
    folder=$(basename "$dir")
    folders_seen+=("$folder")
    if [ -z "${may[$folder]+set}" ]; then
        echo "check_layers: src/$folder/: a folder with no layer (add it to scripts/check_layers.sh and docs/LAYOUT.md)"
        bad=1
        continue
    fi
    allowed=" $folder ${may[$folder]} "
    while IFS= read -r hit; do
        file=${hit%%:*}
        rest=${hit#*:}
        line=${rest%%:*}
        inc=$(sed -E 's/.*#include "([^"]*)".*/\1/' <<<"${rest#*:}")
        case "$inc" in
            */*) target=${inc%%/*} ;;
            *) target=$folder ;;    # a header beside the file
        esac
        [ -n "${may[$target]+set}" ] || continue   # third-party (nanoarrow/...) is not a layer
        if [[ "$allowed" != *" $target "* ]]; then
            echo "check_layers: $file:$line: includes \"$inc\": $folder may include only:$allowed"
            bad=1
        fi
    done < <(grep -n '#include "' "$dir"*.[ch] /dev/null || true)
done
[ -n "$(ls -A src/*.[ch] 2>/dev/null)" ] && { echo "check_layers: src/ holds files outside any layer folder: $(ls src/*.[ch] | tr '\n' ' ')"; bad=1; }

# ENGINE_TESTS in the Makefile == tests whose includes are all engine layers
# (a test helper header beside them, tiny_loaded.h say, counts by its own
# includes)
engine_only() {
    local inc
    while IFS= read -r inc; do
        case "$inc" in
            */*) [[ "$engine_layers" == *" ${inc%%/*} "* ]] || return 1 ;;
            *) [ -f "tests/$inc" ] && engine_only "tests/$inc" || return 1 ;;
        esac
    done < <(sed -n -E 's/^#include "([^"]*)".*/\1/p' "$1")
}
listed=$(sed -n 's/^ENGINE_TESTS *:= *//p' Makefile | tr ' ' '\n' | sort | tr '\n' ' ')
wanted=""
for t in tests/test_*.c; do
    engine_only "$t" && wanted+="$(basename "$t" .c) "
done
wanted=$(tr ' ' '\n' <<<"$wanted" | sed '/^$/d' | sort | tr '\n' ' ')
if [ "$listed" != "$wanted" ]; then
    echo "check_layers: Makefile ENGINE_TESTS is '$listed' but the tests using only engine headers are '$wanted'"
    bad=1
fi

if [ "$bad" = 0 ]; then
    echo "check_layers: ${#folders_seen[@]} folders, every include within its layer; engine tests: $wanted"
fi
exit "$bad"
