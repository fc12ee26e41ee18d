#!/usr/bin/env bash
# A fixed, tiny GenEval + T2I-CompBench + `reprompt generate` run (~1 min on 2 CPU cores), for checking that a
# refactor changed no output: run it on the commit before and on the commit after, then compare the folders
#
#     PY=.venv/bin/python bash benchmarks/refactor_run.sh /tmp/before      # on the old commit
#     PY=.venv/bin/python bash benchmarks/refactor_run.sh /tmp/after       # on the new one
#     python benchmarks/compare_run_folders.py /tmp/before /tmp/after
#
# Offline: the sketch simulator, its oracle detector and the shipped smollm2-sketch adapter. The benchmark
# files come from $REPROMPT_BENCHMARKS (default: ../shared/benchmarks next to the repository).
set -euo pipefail
OUT=${1:?usage: refactor_run.sh OUT_FOLDER}
REPO=$(cd "$(dirname "$0")/.." && pwd)
PY=${PY:-python}
B=${REPROMPT_BENCHMARKS:-$REPO/../shared/benchmarks}
export OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
rm -rf "$OUT"
mkdir -p "$OUT"
R() { "$PY" -m reprompt.cli.main "$@"; }
M=$B/geneval/evaluation_metadata.jsonl
R eval geneval --metadata "$M" --per-tag 1 --images 2 --backbone sketch --detector oracle --policy none \
    --out "$OUT/geneval-none" --no-progress >"$OUT/geneval-none.txt"
R eval geneval --metadata "$M" --per-tag 1 --images 2 --backbone sketch --detector oracle --policy smollm2-sketch \
    --out "$OUT/geneval-sketch" --no-progress >"$OUT/geneval-sketch.txt"
R eval compare "$OUT/geneval-none" "$OUT/geneval-sketch" >"$OUT/compare.txt"
R eval compbench generate --data-dir "$B/t2i-compbench" --categories spatial,numeracy --limit 2 --images 2 \
    --backbone sketch --policy smollm2-sketch --out "$OUT/compbench" --no-progress >"$OUT/compbench-generate.txt"
R eval compbench score "$OUT/compbench" --data-dir "$B/t2i-compbench" --categories spatial,numeracy \
    --no-progress >"$OUT/compbench-score.txt"
R generate "two red apples and a green pear" --policy smollm2-sketch --backbone sketch --candidates 2 \
    --temperature 0.9 --policy-seed 3 --guard retry --seed 5 --images 2 --out "$OUT/generate" >"$OUT/generate.txt"
