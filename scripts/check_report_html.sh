#!/usr/bin/env bash
# check_report_html: renders a scan report's index.html in headless Chromium,
# offline, and saves a full-page screenshot for a person to look at. Checks on
# the way that every image and link the page names is a file in the report
# folder and that the page loads nothing from elsewhere.
#
#   scripts/check_report_html.sh                  report of the unit test's synthetic partial scan
#   scripts/check_report_html.sh scan.sqlite      report of that scan
# The report and screenshot.png go to $RYS_REPORT_CHECK_DIR (default
# build/report-check); the window is 1400 x $RYS_REPORT_CHECK_HEIGHT (2000). Needs build/rys (make) and chromium (apt-get install chromium).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${RYS_REPORT_CHECK_DIR:-build/report-check}
rys=${RYS:-build/rys}
chromium=$(command -v chromium || command -v chromium-browser || true)
[ -n "$chromium" ] || { echo "check_report_html: chromium not installed (apt-get install -y chromium)"; exit 1; }
rm -rf "$out"
mkdir -p "$out"
out=$(cd "$out" && pwd)

if [ $# -ge 1 ]; then
    "$rys" report "$1" --out "$out/report"
else
    # the unit test writes its report under $TMPDIR; keep that one
    test_bin=${RYS_TEST_REPORT:-build/tests/test_report}
    TMPDIR="$out" "$test_bin" >"$out/test.log" 2>&1 || { cat "$out/test.log"; exit 1; }
    mv "$out"/rys-test-*-report-out "$out/report"
fi
page="$out/report/index.html"
[ -s "$page" ] || { echo "check_report_html: no $page"; exit 1; }

if grep -Eiq '(src|href)="?(https?:|//)|<script|@import|url\(' "$page"; then
    echo "check_report_html: $page refers to something outside the report folder"
    exit 1
fi
missing=0
for f in $(grep -Eo '(src|href)="[^"]+"' "$page" | sed -E 's/^(src|href)="//; s/"$//' | sort -u); do
    case "$f" in \#*) continue ;; esac   # anchors within the page
    [ -f "$out/report/$f" ] || { echo "check_report_html: $page names $f, which is not there"; missing=1; }
done
[ "$missing" -eq 0 ] || exit 1

# a fresh profile and no network: the page must render from the folder alone
timeout 120 "$chromium" --headless --no-sandbox --disable-gpu --hide-scrollbars --user-data-dir="$out/profile" \
    --proxy-server=127.0.0.1:9 --screenshot="$out/screenshot.png" --window-size=1400,"${RYS_REPORT_CHECK_HEIGHT:-2000}" "file://$page" \
    >"$out/chromium.log" 2>&1 || { cat "$out/chromium.log"; exit 1; }
rm -rf "$out/profile"
size=$(stat -c %s "$out/screenshot.png" 2>/dev/null || echo 0)
[ "$size" -gt 20000 ] || { echo "check_report_html: screenshot missing or blank ($size bytes)"; exit 1; }
echo "check_report_html: $page rendered; look at $out/screenshot.png"
