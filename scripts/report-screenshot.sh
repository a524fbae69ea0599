#!/usr/bin/env bash
# Opens a report.html in headless Chromium and saves a PNG of it: the
# browser check of the HTML report (does it render, is it readable?).
#
# Usage: scripts/report-screenshot.sh RUN_DIR|REPORT.html OUT.png [WIDTH,HEIGHT]
#
# RUN_DIR: a run directory; its report.html is (re)written first with
# `harness report` when $HARNESS (default: target/debug/harness, then
# `harness` on PATH) is available. WIDTH,HEIGHT is the window (default
# 1280,3200: tall enough for the whole page of a typical run; Chromium
# shoots the window, not the whole page).
#
# Without Chromium (Debian: `apt-get install chromium`) this prints a
# message and exits 0, so CI and tests never depend on a browser.
set -euo pipefail

if [ $# -lt 2 ]; then
    echo "usage: $0 RUN_DIR|REPORT.html OUT.png [WIDTH,HEIGHT]" >&2
    exit 254
fi
src=$1
out=$2
size=${3:-1280,3200}

chrome=""
for c in chromium chromium-browser google-chrome; do
    if command -v "$c" >/dev/null 2>&1; then
        chrome=$(command -v "$c")
        break
    fi
done
if [ -z "$chrome" ]; then
    echo "report-screenshot: no chromium found (apt-get install chromium); skipping the browser check"
    exit 0
fi

root=$(cd "$(dirname "$0")/.." && pwd)
if [ -d "$src" ]; then
    harness=${HARNESS:-}
    if [ -z "$harness" ]; then
        if [ -x "$root/target/debug/harness" ]; then
            harness="$root/target/debug/harness"
        elif command -v harness >/dev/null 2>&1; then
            harness=$(command -v harness)
        fi
    fi
    if [ -n "$harness" ]; then
        "$harness" report "$src" >/dev/null
    fi
    report="$src/report.html"
else
    report=$src
fi
if [ ! -f "$report" ]; then
    echo "report-screenshot: $report: no such file" >&2
    exit 254
fi

report_abs=$(cd "$(dirname "$report")" && pwd)/$(basename "$report")
mkdir -p "$(dirname "$out")"
out_abs=$(cd "$(dirname "$out")" && pwd)/$(basename "$out")
rm -f "$out_abs"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# A throwaway profile: no first-run state, no interference between runs.
profile=$(mktemp -d)
trap 'rm -f "$log"; rm -rf "$profile"' EXIT
if ! timeout 120 "$chrome" --headless --no-sandbox --disable-gpu --hide-scrollbars \
    --user-data-dir="$profile" --no-first-run --disable-extensions \
    --window-size="$size" --screenshot="$out_abs" "file://$report_abs" >"$log" 2>&1; then
    cat "$log" >&2
    echo "report-screenshot: chromium failed on $report" >&2
    exit 255
fi
if [ ! -s "$out_abs" ]; then
    cat "$log" >&2
    echo "report-screenshot: chromium wrote no screenshot" >&2
    exit 255
fi
echo "wrote $out (window $size) from $report"
