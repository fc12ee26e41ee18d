"""benchmarks/rl_evidence.py end to end on a tiny policy: data (generic teacher), both SFT stages, the three
GRPO stages, the nine evaluation rows on sketch and sketch-b, the paired comparisons, the strategy tables and
the plots. Seconds of training each; the real run is the same command with SmolLM2 (RESULTS.md §8)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_rl_evidence_script_runs_end_to_end_and_resumes(
    tiny_model, shared_benchmarks: Path, tmp_path: Path
) -> None:
    out = tmp_path / "results" / "rl_evidence.json"
    grpo_args = (
        "--max_steps 1 --per_device_train_batch_size 4 --gradient_accumulation_steps 1 --num_iterations 1 "
        "--max_completion_length 12 --heldout_max 2 --save_strategy no --logging_steps 1"
    )
    sft_args = "--max_steps 1 --save_strategy no --max_length 256 --logging_steps 1"
    cmd = [
        sys.executable,
        str(REPO / "benchmarks" / "rl_evidence.py"),
        "--root",
        str(tmp_path / "run"),
        "--base-policy",
        str(tiny_model("tiny-qwen2")),
        "--per-tag",
        "1",
        "--n-sft",
        "8",
        "--n-rl",
        "4",
        "--n-heldout",
        "2",
        "--max-new-tokens",
        "12",
        "--grpo-args",
        grpo_args,
        "--sft-args",
        sft_args,
        "--out",
        str(out),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = json.loads(out.read_text())
    assert set(results["rows"]) == {
        "none",
        "sft",
        "sft_grpo",
        "grpo_alone",
        "sft_noreason",
        "sft_grpo_noreason",
        "none@sketch-b",
        "sft@sketch-b",
        "sft_grpo@sketch-b",
    }
    assert {"sft_grpo vs sft", "sft_grpo vs none", "sft_grpo@sketch-b vs sft@sketch-b"} <= set(
        results["comparisons"]
    )
    c = results["comparisons"]["sft_grpo vs sft"]
    assert c["ci_low"] <= c["diff"] <= c["ci_high"]
    assert set(results["strategies"]["sft"]) >= {"absolute_places", "exact_counts", "mirrored_relation"}
    assert set(results["training"]) == {"grpo", "grpo-noreason", "grpo-alone"}
    assert results["training"]["grpo"]["train_curve"] and results["training"]["grpo"]["heldout_curve"]
    assert (out.with_suffix("") / "training_curves.png").exists()
    # a second run redoes nothing: every stage is finished
    again = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "$ " not in again.stdout, again.stdout[-2000:]
    assert json.loads(out.read_text())["rows"] == results["rows"]


def test_strategy_rates_read_the_rewrite_each_run_folder_stores(tmp_path: Path, monkeypatch) -> None:
    """The strategy table must read the rendered rewrite (``rewritten_prompt`` in GenEval's metadata.jsonl),
    not the original prompt: a first version read a key that does not exist and reported 0 everywhere."""
    import importlib.util

    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))  # the script imports its sibling training_runs
    spec = importlib.util.spec_from_file_location("rl_evidence", REPO / "benchmarks" / "rl_evidence.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    meta = {"tag": "counting", "prompt": "a photo of four cups", "include": [{"class": "cup", "count": 4}],
            "exclude": [{"class": "cup", "count": 5}], "rewritten_prompt": "Exactly four cups on a table."}  # fmt: skip
    (tmp_path / "00000").mkdir()
    (tmp_path / "00000" / "metadata.jsonl").write_text(json.dumps(meta) + "\n")
    table = module.strategy_rates(module.rewrites(tmp_path))
    assert table["exact_counts"]["used"] == 1 and table["exact_counts"]["applicable"] == 1
