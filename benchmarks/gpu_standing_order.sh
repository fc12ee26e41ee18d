#!/usr/bin/env bash
# The standing GPU order as one prepared run (at most 8 minutes on an H200):
#  1. FLUX.1-dev 512² renders at 50 and 28 steps, plain / First-Block-Cache 0.12 / compiled / both, per image,
#     against the ~1.9 s compute floor at 50 steps, with peak memory (gpu_render.py, 270 s at most);
#  2. GRPO at the paper's per-GPU shapes with the train-time profile (28 steps, First-Block-Cache 0.12,
#     compiled) and the baseline cache: two optimizer steps over one step's prompts, so step 2 is epoch 2 and
#     reads every baseline image from the cache; the step-time split, renders, cache hits and peak memory
#     (gpu_grpo_step.py, 200 s at most).
# Random weights at the real sizes, so no model hub is needed; quality is not measured (RESULTS §7 lists the
# published quality change of each cache setting). JSON and logs go to $OUT (the device tool's folder) or
# benchmarks/results/. The rewrite half of the earlier order (gpu_latency.py, about 4 minutes) runs as a call
# of its own: REWRITE=1 adds it here.
# The GPU machine lacks diffusers, trl and datasets, has a transformers below our floor, and no network: build
# the carry here first (python benchmarks/gpu_carry.py: .gpu/site.tar.xz, ~6.5 MiB, and the call's size against
# its 64 MiB), then make the device call with carry [".gpu"]; the script unpacks it when it is there.
#   bash benchmarks/gpu_standing_order.sh            # on the GPU machine
#   bash benchmarks/gpu_standing_order.sh --tiny     # the same code paths on CPU with the tiny models
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-benchmarks/results}"
mkdir -p "$out"
info="$out/gpu_info.txt"  # the machine: what was carried, versions, the GPU (printed only with --tiny)
[ "${1:-}" = "--tiny" ] && info=/dev/null
: > "$info"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
py="${PYTHON:-python3}"
carry="${GPU_CARRY:-.gpu/site.tar.xz}"  # GPU_CARRY=none: the environment as it is (the CPU test)
if [ -f "$carry" ]; then  # the packages the GPU image lacks (gpu_carry.py); first on the path
    "$py" benchmarks/gpu_carry.py --unpack /tmp/gpu-site --archive "$carry" | tee -a "$info" || exit 1
    export PYTHONPATH="/tmp/gpu-site:$PYTHONPATH"
fi
"$py" -c "import sys, torch, transformers, diffusers, trl, peft; print('python', sys.version.split()[0], *(
    f'{m.__name__} {m.__version__}' for m in (torch, transformers, diffusers, trl, peft)))" \
    2>&1 | tee -a "$info"
if [ "${1:-}" = "--tiny" ]; then  # CPU: tiny models; torch.compile traces only (inductor takes minutes here)
    "$py" benchmarks/gpu_render.py --tiny --compile backend=eager --repeats 1 \
        --out "$out/gpu_render_tiny.json" 2>&1 | tee "$out/gpu_render_tiny.log"
    "$py" benchmarks/gpu_grpo_step.py --scale tiny --profile --baseline-cache --workdir "$out/grpo-work" \
        --json "$out/gpu_grpo_step_tiny.json" 2>&1 | tee "$out/gpu_grpo_step_tiny.log"
    exit 0
fi
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv 2>&1 | tee -a "$info"
timeout 270 "$py" benchmarks/gpu_render.py --steps-list 50,28 --repeats 2 \
    --out "$out/gpu_render.json" 2>&1 | tee "$out/gpu_render.log"
timeout 200 "$py" benchmarks/gpu_grpo_step.py --profile --baseline-cache --steps 2 \
    --json "$out/gpu_grpo_step_profile.json" 2>&1 | tee "$out/gpu_grpo_step_profile.log"
if [ "${REWRITE:-0}" = "1" ]; then
    timeout 240 "$py" benchmarks/gpu_latency.py --variants plain,lookup,static-compile --repeats 2 --no-vllm \
        --out "$out/gpu_latency.json" 2>&1 | tee "$out/gpu_latency.log"
fi
