"""benchmarks/rl_ablation.py end to end on a tiny policy: data for both families, both SFT variants, GRPO
from SFT, GRPO alone and the loss pair, two training seeds, every evaluation on both families (two stages at a
time), the seeded statistics, strategy and resolution tables, adapters and plots; then a rerun does nothing,
and a fresh root filled from the archive (another machine, a later session) trains nothing either. Seconds of training each; the real run is the same command with SmolLM2 (RESULTS.md §8)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# rl_ablation.SPEED_RUNS: the lab-speed cuts, each on the one before, for the two slowest rows
SPEED_RUNS = [
    "grpo-reason-bf16w",
    "alone-reason-bf16w",
    "grpo-reason-shared",
    "alone-reason-shared",
    "grpo-reason-merged",
    "alone-reason-merged",
]


def _load_module(monkeypatch):
    import importlib.util

    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))  # the script imports its sibling training_runs
    spec = importlib.util.spec_from_file_location("rl_ablation", REPO / "benchmarks" / "rl_ablation.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "rl_ablation", module)  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_rl_ablation_runs_end_to_end_with_seeds_and_resumes(
    tiny_model, shared_benchmarks: Path, tmp_path: Path
):
    out = tmp_path / "results" / "rl_ablation.json"
    grpo_args = (
        "--max_steps 1 --per_device_train_batch_size 4 --max_completion_length 12 --heldout_max 2 "
        "--heldout_batch_size 2 --save_strategy no --logging_steps 1 --bf16 false"
    )
    sft_args = "--max_steps 1 --save_strategy no --max_length 256 --logging_steps 1 --bf16 false"
    cmd = [
        sys.executable, str(REPO / "benchmarks" / "rl_ablation.py"), "--root", str(tmp_path / "run"),
        "--base-policy", str(tiny_model("tiny-qwen2")), "--seeds", "0,1", "--per-tag", "1", "--n-sft", "9",
        "--n-rl", "9", "--n-heldout", "9", "--max-new-tokens", "12", "--grpo-args", grpo_args,
        "--sft-args", sft_args, "--adapters", str(tmp_path / "adapters"), "--out", str(out), "--jobs", "2",
        "--archive", str(tmp_path / "archive"),
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=1500)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = json.loads(out.read_text())
    for family in ("geneval", "inference"):
        rows = results["rows"][family]
        assert set(rows) == {
            "none", "base-reason", "base-noreason", "sft-reason", "sft-noreason", "alone-reason",
            "alone-noreason", "grpo-reason", "grpo-noreason",
        }  # fmt: skip
        assert len(rows["grpo-reason"]["per_seed"]) == 2 and len(rows["none"]["per_seed"]) == 1
        c = results["comparisons"][family]["grpo-reason vs sft-reason"]
        assert c["paired_seeds"] and c["overall"]["ci_low"] <= c["overall"]["diff"] <= c["overall"]["ci_high"]
        assert "grpo-reason vs grpo-noreason" in results["comparisons"][family]
        loss = results["loss_pair"][family]
        assert loss["n_prompts"] == (6 if family == "geneval" else 4)
        assert loss["paired_seeds"] and len(loss["runs_b"]) == 2  # the loss pair is seeded like the rows
        assert set(results["speed_pairs"][family]) == {
            f"{name}-s0 vs {name.rsplit('-', 1)[0]}-s0" for name in SPEED_RUNS
        }
    assert set(results["resolved"]["sft-reason"]) == {
        "infer_object",
        "infer_count",
        "infer_color",
        "infer_position",
    }
    assert "exact_counts" in results["strategies"]["sft-reason"]
    # 2 seeds x (6 trained rows + the loss row), 2 rows x 3 speed cuts
    assert len(results["weights_sha256"]) == 2 * 7 + 6
    adapters = tmp_path / "adapters"
    assert sorted(p.name for p in adapters.iterdir()) == sorted(
        ["sft-reason", "sft-noreason", "alone-reason", "alone-noreason", "grpo-reason", "grpo-noreason"]
    )
    config = json.loads((adapters / "grpo-reason" / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == "smollm2"
    assert (out.with_suffix("") / "rows.png").exists() and (
        out.with_suffix("") / "training_curves.png"
    ).exists()
    again = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and "start " not in again.stdout, again.stdout[-2000:]
    assert json.loads(out.read_text())["rows"] == results["rows"]
    assert len(list((tmp_path / "archive" / "train").glob("*.json.gz"))) == 2 * 7 + 6
    fresh = [*cmd[:3], str(tmp_path / "run2"), *cmd[4:]]  # only the archive carries over
    later = subprocess.run(fresh, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert later.returncode == 0 and "start " not in later.stdout, later.stdout[-2000:] + later.stderr[-2000:]
    rerun = json.loads(out.read_text())
    assert rerun["rows"] == results["rows"] and rerun["weights_sha256"] == results["weights_sha256"]
    assert rerun["training"] == results["training"] and rerun["adapters"] == results["adapters"]


def _stages(module, root: Path) -> dict:
    stage = module.Stage
    return {
        "data": stage("data"),
        "sft-reason-s1": stage("sft-reason-s1", needs=["data"]),
        "grpo-reason-s1": stage("grpo-reason-s1", needs=["sft-reason-s1"]),
        "eval:sft-reason-s1": stage("eval:sft-reason-s1", needs=["sft-reason-s1"], output=root / "eval" / "sft-reason-s1"),
        "eval:grpo-reason-s1": stage("eval:grpo-reason-s1", needs=["grpo-reason-s1"], output=root / "eval" / "grpo-reason-s1"),
    }  # fmt: skip


def test_an_archived_run_is_trained_again_only_when_a_stage_to_run_starts_from_it(monkeypatch, tmp_path):
    module = _load_module(monkeypatch)
    root, archive = tmp_path / "root", tmp_path / "archive"
    (root / "data").mkdir(parents=True)
    (root / "data" / "sft-noreason.jsonl").write_text("{}\n")
    (archive / "train").mkdir(parents=True)
    module._gz_json(archive / "train" / "sft-reason-s1.json.gz", {"weights_sha256": "0" * 64})
    for family in module.FAMILIES:
        (root / "eval" / "sft-reason-s1" / family).mkdir(parents=True)
        (root / "eval" / "sft-reason-s1" / family / "summary.json").write_text("{}")
    stages = _stages(module, root)
    # GRPO from it is still to run: the SFT run must be trained again for its weights
    assert module.usable_records(stages, root, archive) == set()
    module._gz_json(archive / "train" / "grpo-reason-s1.json.gz", {"weights_sha256": "1" * 64})
    for family in module.FAMILIES:
        (root / "eval" / "grpo-reason-s1" / family).mkdir(parents=True)
        (root / "eval" / "grpo-reason-s1" / family / "summary.json").write_text("{}")
    # both archived and both evaluated: nothing to train
    assert module.usable_records(stages, root, archive) == {"sft-reason-s1", "grpo-reason-s1"}
    shutil.rmtree(root / "eval" / "grpo-reason-s1")
    # GRPO's evaluation was lost before it was archived: GRPO trains again, from a retrained SFT
    assert module.usable_records(stages, root, archive) == set()


def test_restore_refuses_data_that_differs_from_the_archived_runs(monkeypatch, tmp_path):
    module = _load_module(monkeypatch)
    root, archive = tmp_path / "root", tmp_path / "archive"
    (root / "data").mkdir(parents=True)
    (root / "data" / "sft.jsonl").write_text('{"prompt": "a"}\n')
    archive.mkdir()
    (archive / "data.json").write_text(json.dumps({"sft.jsonl": "0" * 64}))
    timings = module.Timings(root / "timings.json")
    with pytest.raises(SystemExit, match=r"differs from the archived runs' \(sft.jsonl\)"):
        module.restore(archive, root, timings)


def test_resolved_reads_whether_a_rewrite_names_the_answer(monkeypatch):
    module = _load_module(monkeypatch)
    count = {
        "tag": "infer_count",
        "include": [{"class": "cup", "count": 3}],
        "exclude": [{"class": "cup", "count": 4}],
    }
    assert module.resolved("A photo of exactly three cups on a table.", count)
    assert not module.resolved("A photo of as many cups as a tricycle has wheels.", count)
    pos = {"tag": "infer_position", "include": [{"class": "cup", "count": 1}, {"class": "dog", "count": 1, "position": ["left of", 0]}]}  # fmt: skip
    assert module.resolved("A dog on the left side of the image and a cup on the right.", pos)
    assert not module.resolved("A dog on the port side of a cup.", pos)


def test_stages_selects_the_named_stages_and_what_they_need(monkeypatch, tmp_path):
    module = _load_module(monkeypatch)
    stages = _stages(module, tmp_path)
    assert list(module.select(stages, "eval:grpo-reason-s1")) == [
        "data", "sft-reason-s1", "grpo-reason-s1", "eval:grpo-reason-s1"
    ]  # fmt: skip
    assert list(module.select(stages, "sft-reason-s1")) == ["data", "sft-reason-s1"]
    assert module.select(stages, None) is stages
    with pytest.raises(SystemExit, match="unknown stage"):
        module.select(stages, "grpo-reason-s9")


def test_paired_comparisons_pair_runs_by_training_seed(monkeypatch, tmp_path):
    """SFT + GRPO vs its SFT is paired by seed: with SFT at seeds 0, 2 and GRPO at 0, 1 only seed 0 pairs (by
    position, GRPO seed 1 would be paired with SFT seed 2)."""
    module = _load_module(monkeypatch)
    for run in ("sft-noreason-s0", "sft-noreason-s2", "grpo-noreason-s0", "grpo-noreason-s1"):
        (tmp_path / "eval" / run / "geneval").mkdir(parents=True)
        (tmp_path / "eval" / run / "geneval" / "summary.json").write_text("{}")
    runs_a, runs_b = module.paired_runs("sft-noreason", "grpo-noreason", tmp_path, "geneval", [0, 1, 2])
    assert [r.parent.name for r in runs_a] == ["sft-noreason-s0"]
    assert [r.parent.name for r in runs_b] == ["grpo-noreason-s0"]
    runs_a, runs_b = module.paired_runs("none", "sft-noreason", tmp_path, "geneval", [0, 1, 2])
    assert runs_a == [] and len(runs_b) == 2  # "none" has no such runs here; an unpaired row keeps its own


def test_the_carried_comparisons_name_run_folders_relative_to_the_root():
    """The report copies runs/carried.json into rl_ablation.json as it is: an absolute path there (the machine
    it was run on) would make the report depend on where ``--root`` is."""
    carried = Path(__file__).resolve().parents[1] / "benchmarks/results/rl_ablation/runs/carried.json"
    text = carried.read_text()
    assert '"eval/' in text
    assert '"/' not in text


def _adapter(folder: Path, weights: bytes, base: str = "smollm2") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "adapter_model.safetensors").write_bytes(weights)
    (folder / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": base}))
    (folder / "reprompt_format.json").write_text("{}")


def test_a_fresh_root_starts_from_the_evaluated_seed_0_adapters_never_a_retraining(monkeypatch, tmp_path):
    """sft-reason-s0 trained with today's code gives other weights than the run that was evaluated (and that
    grpo-reason-s0 started from): the committed adapter is put back instead, and a retrained run never
    replaces the committed adapter."""
    import hashlib

    module = _load_module(monkeypatch)
    root, archive, adapters = tmp_path / "root", tmp_path / "archive", tmp_path / "adapters"
    (archive / "train").mkdir(parents=True)
    evaluated = b"evaluated weights"
    sha = hashlib.sha256(evaluated).hexdigest()
    module._gz_json(archive / "train" / "sft-reason-s0.json.gz", {"weights_sha256": sha})
    module._gz_json(archive / "train" / "sft-noreason-s0.json.gz", {"weights_sha256": sha})
    _adapter(adapters / "sft-reason", evaluated)
    _adapter(adapters / "sft-noreason", b"not what was evaluated")
    restored = module.restore_adapters(adapters, archive, root, 0, "tiny-base")
    assert restored == ["sft-reason-s0"]  # sft-noreason's committed file does not hash as its record
    run = root / "sft-reason-s0"
    assert module.finished(run) and (run / "adapter_model.safetensors").read_bytes() == evaluated
    assert json.loads((run / "adapter_config.json").read_text())["base_model_name_or_path"] == "tiny-base"
    assert module.restore_adapters(adapters, archive, root, 0, "tiny-base") == []  # already there

    (run / "adapter_model.safetensors").write_bytes(b"retrained to other weights")
    records = module.train_records(archive)
    copied = module.copy_adapters(root, 0, adapters, records)
    assert (adapters / "sft-reason" / "adapter_model.safetensors").read_bytes() == evaluated
    assert copied["sft-reason"]["sha256"] == sha


def test_an_evaluation_names_its_weights_and_the_evaluated_run_is_the_one_archived(monkeypatch, tmp_path):
    """A run trained again whose first evaluation was never archived (grpo-reason-grpoloss-s0: its 2026-12-04
    evaluation predates the archive) is evaluated anew: the archive must then describe the new run, not keep
    the first run's curves beside the new run's scores."""
    import hashlib

    module = _load_module(monkeypatch)
    root, archive = tmp_path / "root", tmp_path / "archive"
    run = root / "grpo-reason-grpoloss-s0"
    _adapter(run, b"second run")
    module._gz_json(
        archive / "train" / f"{run.name}.json.gz", {"weights_sha256": "0" * 64, "heldout": ["first"]}
    )
    for family in module.FAMILIES:
        (root / "eval" / run.name / family).mkdir(parents=True)
        (root / "eval" / run.name / family / "summary.json").write_text("{}")
    timings = module.Timings(root / "timings.json")
    module.archive(root, archive, timings)
    new = hashlib.sha256(b"second run").hexdigest()
    assert module.evaluated_weights(archive, run.name) == {new}
    record = module.train_records(archive)[run.name]
    assert record["weights_sha256"] == new and record["replaced_sha256"] == ["0" * 64]
    # a retraining that was not evaluated (a stage started from it) leaves the evaluated run's record
    _adapter(run, b"third run")
    module.archive(root, archive, timings)
    record = module.train_records(archive)[run.name]
    assert record["weights_sha256"] == new and record["retrained_sha256"] == [
        hashlib.sha256(b"third run").hexdigest()
    ]
