#!/usr/bin/env bash
# Whole-process benchmark: import the public corpus into a fresh study, then `vuf run`
# (offline coder -> consensus -> analysis -> report) and `vuf analyze` alone.
# Prints wall time and peak RSS of each step (GNU time). Usage: bench/full_corpus.sh [DATA_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
D="${1:-${VUF_SHARED_DATA:-../shared/data}}"
cargo build --release --quiet
BIN=target/release/vuf
S=$(mktemp -d)/study
t() { local label=$1; shift; /usr/bin/time -f "$label: wall %e s, peak RSS %M KiB" "$@" >/dev/null; }
t import  $BIN --study-dir "$S" import "$D/corpus-v2-values" "$D/extra-manifests/gemini-3-5-flash.json" \
          "$D/reference/analysis-corpus/paper-snapshot-9fb17c01/models.json"
t run     $BIN --study-dir "$S" run
for i in 1 2 3; do t "analyze#$i" $BIN --study-dir "$S" analyze --source offline --out "$S/bench-analysis"; done
t report  $BIN --study-dir "$S" report
du -sh "$S/report" | sed 's/^/report size (folder, with data exports): /'
du -ch "$S/report/report.html" "$S/report/models" "$S/report/figures" | tail -n1 | sed 's/^/report size (pages and figures): /'
# Open the report in headless Chromium; the page's own script stamps the time from the
# start of navigation to the end of <body> into data-parsed-ms.
if [ -x /usr/bin/chromium ]; then
  P=$(mktemp -d)
  for i in 1 2 3; do
    start=$(date +%s.%N)
    ms=$(/usr/bin/chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
         --disable-background-networking --disable-component-update --disable-sync \
         --user-data-dir="$P/p$i" --dump-dom "file://$S/report/report.html" 2>/dev/null \
         | grep -o 'data-parsed-ms="[0-9.]*"' | head -n1 | grep -o '[0-9.]*')
    end=$(date +%s.%N)
    echo "chromium#$i: report.html parsed and laid out in ${ms:-?} ms (in-page clock); chromium process $(awk "BEGIN{printf \"%.2f\", $end - $start}") s"
  done
fi
