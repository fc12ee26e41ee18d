"""The README's training commands run in order, as written, on tiny models.

The commands are read from the README itself. The data commands run verbatim; the two training commands
run the same recipes with overrides that swap what needs a hub or a GPU for tiny local models (the policy,
FLUX, ImageReward, the detector and CLIP; the VLM judge is a local OpenAI-compatible server) and cut them to
one step. Everything else -- the file paths from one command to the next, the SFT output the GRPO recipe
starts from, the held-out set, the reward config -- is the recipes' own."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import yaml

from tests.fake_openai import FakeOpenAI

REPO = Path(__file__).resolve().parents[1]


def readme_training_commands() -> list[list[str]]:
    text = (REPO / "README.md").read_text()
    section = text[text.index("## Training\n") :]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    joined = re.sub(r"\\\n\s*", " ", block)
    commands = []
    for line in joined.splitlines():
        line = line.split("  #")[0].strip()
        if line and not line.startswith("#"):
            commands.append(shlex.split(line))
    return commands


def test_the_readme_lists_data_sft_and_grpo_in_that_order() -> None:
    kinds = [" ".join(c[:3]) if c[0] == "reprompt" else c[-1] for c in readme_training_commands()]
    assert kinds == [
        "reprompt data prompts",
        "reprompt data prompts",
        "reprompt data sft",
        "configs/sft/qwen2.5-3b.yaml",
        "configs/grpo/qwen2.5-3b_flux-dev.yaml",
    ]


def test_readme_training_commands_run_in_order(tiny_model, shared_benchmarks: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "configs").symlink_to(REPO / "configs")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    tiny = {
        name: str(tiny_model(name))
        for name in ("tiny-qwen2", "tiny-flux", "tiny-imagereward", "tiny-mask2former", "tiny-clip")
    }
    small = [
        "--bf16",
        "false",
        "--use_cpu",
        "true",
        "--activation_checkpointing",
        "false",
        "--max_steps",
        "1",
        "--gradient_accumulation_steps",
        "1",
        "--save_strategy",
        "no",
        "--report_to",
        "none",
        "--disable_tqdm",
        "true",
    ]
    with FakeOpenAI("Counts and colors are right.\nFinal score: 7") as judge:
        paper = yaml.safe_load((REPO / "configs" / "rewards" / "paper.yaml").read_text())
        paper.update(
            backbone_model=tiny["tiny-flux"],
            backbone_options={"device": "cpu", "dtype": "float32", "steps": 2, "height": 32, "width": 32},
        )
        paper["options"]["imagereward"] = {"model": tiny["tiny-imagereward"], "device": "cpu"}
        paper["options"]["vlm_judge"].update(base_url=judge.base_url, api_key_env=None, model="fake-model")
        (tmp_path / "rewards.yaml").write_text(yaml.safe_dump(paper))
        heldout = {
            "components": ["geneval"],
            "normalization": "none",
            "options": {
                "geneval": {
                    "mode": "strict",
                    "detector": "mask2former",
                    "device": "cpu",
                    "detector_model": tiny["tiny-mask2former"],
                    "clip_model": tiny["tiny-clip"],
                }
            },
        }
        overrides = {
            "configs/sft/qwen2.5-3b.yaml": [
                "--policy",
                tiny["tiny-qwen2"],
                "--max_examples",
                "4",
                "--per_device_train_batch_size",
                "2",
                *small,
            ],
            "configs/grpo/qwen2.5-3b_flux-dev.yaml": [
                "--rewards",
                str(tmp_path / "rewards.yaml"),
                "--heldout_rewards",
                json.dumps(heldout),
                "--max_prompts",
                "2",
                "--heldout_max",
                "2",
                "--per_device_train_batch_size",
                "4",
                "--max_completion_length",
                "12",
                "--samples_every",
                "0",
                *small,
            ],
        }
        for cmd in readme_training_commands():
            cmd = [
                a.replace("$REPROMPT_BENCHMARKS", str(shared_benchmarks)) for a in cmd
            ]  # as the shell would
            if cmd[0] == "reprompt":
                cmd = [sys.executable, "-m", "reprompt.cli.main", *cmd[1:]]
            else:  # accelerate launch --config_file ... -m MODULE --config RECIPE: one process here
                assert cmd[:2] == ["accelerate", "launch"] and (REPO / cmd[3]).is_file()
                module, recipe = cmd[cmd.index("-m") + 1], cmd[-1]
                cmd = [sys.executable, "-m", module, "--config", recipe, *overrides[recipe]]
            proc = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=600)
            assert proc.returncode == 0, f"{shlex.join(cmd)}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    # the chain: SFT output -> GRPO policy, with the held-out guard on the COCO held-out set
    assert (work / "runs" / "sft-qwen2.5-3b" / "model.safetensors").exists()
    grpo = work / "runs" / "grpo-qwen2.5-3b_flux-dev"
    assert (grpo / "model.safetensors").exists() and (grpo / "heldout.jsonl").exists()
    assert judge.requests, "the VLM judge was never asked"
