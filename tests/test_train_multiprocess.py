"""SFT and GRPO on two processes (``accelerate launch --num_processes 2 --cpu``, gloo), through the recipes'
code path with the tiny zoo (``configs/accelerate/2cpu.yaml``): every process scores whole groups, a group's seeds are the same on every
process, the held-out guard (sharded over the processes) does not deadlock, and a run resumes from its
checkpoint. DeepSpeed is not covered here: it needs a GPU (or Intel's oneCCL CPU backend) to run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
LAUNCHER = REPO / "tests" / "scripts" / "launch_train.py"
ACCELERATE = REPO / "configs" / "accelerate" / "2cpu.yaml"
PROMPTS = [
    "a photo of a cat",
    "a photo of two dogs",
    "a photo of a red car",
    "a photo of a cup left of a bowl",
]


def _launch(stage: str, config: dict, tmp: Path, name: str, record: Path | None = None) -> None:
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    from reprompt.serving.http import free_port

    cmd = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--config_file",
        str(ACCELERATE),
        "--num_processes",
        "2",
        "--main_process_port",
        str(free_port()),
        str(LAUNCHER),
        stage,
        str(path),
        str(record or tmp),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    proc = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]


@pytest.fixture(scope="module")
def prompts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from reprompt.data.templates import parse_template

    path = tmp_path_factory.mktemp("mp") / "prompts.jsonl"
    path.write_text(
        "".join(json.dumps({"id": f"p{i}", **parse_template(p)}) + "\n" for i, p in enumerate(PROMPTS))
    )
    return path


def _assert_process_group_ended(record: Path) -> None:
    """Training tears its process group down before returning on every rank (left to interpreter exit, a
    finished rank could abort with SIGABRT: "terminate called without an active exception")."""
    for rank in (0, 1):
        assert json.loads((record / f"end-rank{rank}.json").read_text()) == {"process_group_alive": False}


def test_sft_on_two_processes(tiny_model, tmp_path: Path) -> None:
    data = tmp_path / "sft.jsonl"
    data.write_text(
        "".join(
            json.dumps({"prompt": p, "reasoning": f"Plan for {p}.", "rewritten": p.capitalize()}) + "\n"
            for p in PROMPTS
        )
    )
    out = tmp_path / "sft"
    cfg = {
        "policy": str(tiny_model("tiny-qwen2")),
        "sft_data": str(data),
        "output_dir": str(out),
        "max_steps": 2,
        "per_device_train_batch_size": 1,
        "learning_rate": 1e-3,
        "save_steps": 1,
        "logging_steps": 1,
        "report_to": "none",
        "disable_tqdm": True,
        "few_shot": False,
        "system_prompt": "Rewrite.",
        "use_cpu": True,
    }
    _launch("sft", cfg, tmp_path, "sft")
    assert (out / "model.safetensors").exists() and (out / "reprompt_format.json").exists()
    _assert_process_group_ended(tmp_path)
    state = json.loads((out / "checkpoint-2" / "trainer_state.json").read_text())
    assert state["global_step"] == 2
    assert {p.name for p in (out / "checkpoint-2").glob("rng_state_*.pth")} == {
        "rng_state_0.pth",
        "rng_state_1.pth",
    }
    history = json.loads((out / "log_history.json").read_text())
    assert any("loss" in h for h in history)


def test_grpo_on_two_processes_whole_groups_shared_seeds_heldout_and_resume(
    tiny_model, prompts: Path, tmp_path: Path
) -> None:
    out, record = tmp_path / "grpo", tmp_path / "record"
    record.mkdir()
    cfg = {
        "policy": str(tiny_model("tiny-qwen2")),
        "prompts": str(prompts),
        "output_dir": str(out),
        "rewards": {
            "backbone": "sketch",
            "backbone_options": {"width": 64, "height": 64},
            "components": ["geneval", "format", "length"],
            "options": {"geneval": {"mode": "partial"}},
        },
        "num_generations": 2,
        "per_device_train_batch_size": 2,
        "gradient_accumulation_steps": 1,
        "max_completion_length": 12,
        "temperature": 1.0,
        "learning_rate": 1e-3,
        "beta": 0.04,
        "max_steps": 2,
        "save_steps": 1,
        "logging_steps": 1,
        "report_to": "none",
        "disable_tqdm": True,
        "heldout_prompts": str(prompts),
        "heldout_every": 1,
        "heldout_max": 3,
        "samples_every": 0,
        "seed": 0,
        "few_shot": False,
        "system_prompt": "Rewrite.",
        "use_cpu": True,
    }
    _launch("grpo", cfg, tmp_path, "grpo", record)
    rows = {
        r: [json.loads(line) for line in (record / f"rank{r}.jsonl").read_text().splitlines()] for r in (0, 1)
    }
    assert all(len(rows[r]) == 2 for r in (0, 1))  # one scored batch per step on each process
    seeds: dict[tuple[int, str], list] = {}
    for r in (0, 1):
        for batch in rows[r]:
            counts = Counter(batch["originals"])
            assert all(c == 2 for c in counts.values()), f"rank {r} holds a partial group: {counts}"
            for original, s in zip(batch["originals"], batch["seeds"], strict=True):
                assert seeds.setdefault((batch["round"], original), s) == s  # same seeds everywhere
    # the held-out guard ran at steps 0, 1, 2 over all 3 prompts (sharded 2 + 1), written once by rank 0
    heldout = [json.loads(line) for line in (out / "heldout.jsonl").read_text().splitlines()]
    assert [h["step"] for h in heldout] == [0, 1, 2]
    assert len(json.loads((out / "heldout" / "step-000002.json").read_text())) == 3
    _assert_process_group_ended(record)
    # resume: the same command with more steps continues from checkpoint-2
    cfg["max_steps"] = 3
    _launch("grpo", cfg, tmp_path, "grpo", record)
    state = json.loads((out / "checkpoint-3" / "trainer_state.json").read_text())
    assert state["global_step"] == 3
    assert len((record / "rank0.jsonl").read_text().splitlines()) == 3  # only step 3 was trained again
    assert [json.loads(line)["step"] for line in (out / "heldout.jsonl").read_text().splitlines()] == [
        0,
        1,
        2,
        3,
    ]
