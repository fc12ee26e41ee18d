#!/usr/bin/env bash
# The standing GPU order as one prepared run (about 8 minutes on an H200): the rewrite against its ~0.26 s
# bandwidth floor (plain, prompt lookup, static cache + compile = CUDA graphs) and FLUX.1-dev renders against
# their ~1.9 s compute floor (batch sizes, eager vs torch.compile). Random weights at the real sizes, so no
# model hub is needed. JSON goes to $OUT (the device tool's folder) or benchmarks/results/.
#   bash benchmarks/gpu_standing_order.sh
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-benchmarks/results}"
mkdir -p "$out"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
py="${PYTHON:-python3}"
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv 2>&1 | tee "$out/gpu_info.txt"
timeout 270 "$py" benchmarks/gpu_render.py --batches 1,4,8 --compile-batches 1,8 --repeats 2 \
    --out "$out/gpu_render.json" 2>&1 | tee "$out/gpu_render.log"
timeout 240 "$py" benchmarks/gpu_latency.py --variants plain,lookup,static-compile --repeats 2 --no-vllm \
    --out "$out/gpu_latency.json" 2>&1 | tee "$out/gpu_latency.log"
