#!/usr/bin/env bash
# Lint, then the test suite on tiny random-weight models (no network, no GPU).
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1
.venv/bin/ruff check reprompt tests benchmarks comfyui scripts
.venv/bin/ruff format --check reprompt tests benchmarks comfyui scripts
.venv/bin/mypy  # the whole package ([tool.mypy] files in pyproject.toml)
.venv/bin/python -m pytest -q "$@"
