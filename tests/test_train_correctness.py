"""Training you can trust: sampling in GRPO stops where inference stops, whole groups per process, the std
floor cannot be undone by TRL, a reward outage stops the run, adapters (LoRA SFT outputs, smollm2-sketch)
are valid starting points, and one policy-name resolver serves inference and training."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from reprompt.errors import ConfigError, RewardOutageError
from reprompt.format import PromptSpec

TAIL = " Have fun with it!"
PROMPT = "a photo of a cat"
COMPLETION = "<reason>One cat in the center of the image.</reason>\n<prompt>A photo of one gray cat.</prompt>"
SPEC = PromptSpec(system="Rewrite.", examples=[])


@pytest.fixture(scope="module")
def chatty(tiny_model, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny policy that has memorised one completion followed by trailing text after ``</prompt>``
    (what sampled policies do): what inference and GRPO do with that tail is the test."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    src = tiny_model("tiny-qwen2")
    tok = AutoTokenizer.from_pretrained(src)
    model = AutoModelForCausalLM.from_pretrained(src, dtype=torch.float32)
    text = tok.apply_chat_template(
        SPEC.messages(PROMPT) + [{"role": "assistant", "content": COMPLETION + TAIL}], tokenize=False
    )
    ids = tok(text, return_tensors="pt", add_special_tokens=False)["input_ids"]
    torch.manual_seed(0)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(200):
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
    assert loss.item() < 0.05, loss.item()
    out = tmp_path_factory.mktemp("chatty") / "policy"
    model.save_pretrained(out, safe_serialization=True)
    tok.save_pretrained(out)
    SPEC.save(out)
    return out


class Recording:
    """A real reward pipeline that also records every batch GRPO asks it to score."""

    def __init__(self, pipeline) -> None:  # noqa: ANN001
        self.inner, self.batches = pipeline, []
        self.backbone = pipeline.backbone

    component_names = property(lambda self: self.inner.component_names)
    weights = property(lambda self: self.inner.weights)
    failure_components = property(lambda self: self.inner.failure_components)

    def info(self):  # noqa: ANN201
        return self.inner.info()

    def score(self, originals, completions, metadata=None, seeds=None, round=0, keep_images=False):  # noqa: ANN001, ANN201, A002
        self.batches.append((list(originals), list(completions), round))
        return self.inner.score(originals, completions, metadata, seeds, round, keep_images)


def _grpo_cfg(policy: Path, tmp: Path, **over) -> object:
    from reprompt.train import grpo

    prompts = tmp / "prompts.txt"
    prompts.write_text(PROMPT + "\n")
    cfg = {
        "policy": str(policy),
        "prompts": str(prompts),
        "output_dir": str(tmp / "out"),
        "rewards": {
            "backbone": "sketch",
            "backbone_options": {"width": 64, "height": 64},
            "components": ["format", "length"],
        },
        "max_steps": 1,
        "per_device_train_batch_size": 2,
        "gradient_accumulation_steps": 1,
        "num_generations": 2,
        "max_completion_length": 64,
        "temperature": 0.05,
        "learning_rate": 1e-4,
        "save_strategy": "no",
        "logging_steps": 1,
        "report_to": "none",
        "disable_tqdm": True,
        "seed": 0,
        "heldout_every": 0,
        "samples_every": 0,
    }
    cfg.update(over)
    path = tmp / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return grpo.parse(["--config", str(path)])


def test_grpo_samples_stop_at_the_prompt_close_like_inference(chatty: Path, tmp_path: Path) -> None:
    """Inference stops at ``</prompt>``; GRPO sampling must too, or training penalises text (``TAIL``) that
    can never reach a user. The completions GRPO scores equal the inference completion, token for token."""
    from reprompt.policy import GenerationOptions, load_policy
    from reprompt.train import grpo

    inference = load_policy(str(chatty)).rewrite([PROMPT], options=GenerationOptions(max_new_tokens=64))[0]
    assert inference.completion.endswith("</prompt>") and TAIL.strip() not in inference.completion
    cfg = _grpo_cfg(chatty, tmp_path)
    scorer = Recording(grpo.build_scorer(cfg, SPEC))
    trainer, _, _ = grpo.build_trainer(cfg, scorer=scorer)
    trainer.train()
    (_, completions, _), *_ = scorer.batches
    assert completions == [inference.completion] * 2


def test_every_process_holds_whole_groups() -> None:
    from reprompt.train.config import RepromptGRPOConfig

    class TwoProcesses(RepromptGRPOConfig):
        world_size = 2  # what accelerate reports under `--num_processes 2`

    base = dict(prompts=__file__, rewards={"components": ["format"]}, output_dir="/tmp/x", report_to="none")
    # 2 processes x 3 completions = 6 per generation batch: divisible by G=2 globally (TRL is happy), but
    # a process holds 3 completions, so one group of 2 would straddle the two processes.
    with pytest.raises(ConfigError, match="split across processes"):
        TwoProcesses(**base, per_device_train_batch_size=3, num_generations=2, gradient_accumulation_steps=1)
    TwoProcesses(**base, per_device_train_batch_size=4, num_generations=2, gradient_accumulation_steps=1)


def test_the_std_floor_cannot_be_undone_by_trl_group_scaling() -> None:
    from reprompt.train.config import RepromptGRPOConfig

    rewards = {"components": ["format", "length"], "std_floor": {"format": 0.5}}
    base = dict(prompts=__file__, rewards=rewards, output_dir="/tmp/x", report_to="none")
    with pytest.raises(ConfigError, match="scale_rewards"):
        RepromptGRPOConfig(**base, scale_rewards="group")
    RepromptGRPOConfig(**base, scale_rewards="batch")


def test_a_judge_outage_stops_training(chatty: Path, tmp_path: Path) -> None:
    """A VLM judge whose endpoint is down returns missing scores; after ``max_missing_steps`` batches with
    more than ``max_missing_fraction`` missing, training stops with a clear error instead of optimising
    format + length alone."""
    import socket

    from reprompt.train import grpo

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    judge = {
        "backend": "openai",
        "model": "judge",
        "base_url": f"http://127.0.0.1:{port}/v1",
        "api_key_env": None,
        "retries": 0,
        "timeout": 2,
    }
    cfg = _grpo_cfg(
        chatty,
        tmp_path,
        max_steps=4,
        max_missing_steps=2,
        temperature=1.0,
        rewards={
            "backbone": "sketch",
            "backbone_options": {"width": 64, "height": 64},
            "components": ["vlm_judge", "format"],
            "options": {"vlm_judge": judge},
        },
    )
    trainer, _, _ = grpo.build_trainer(cfg)
    with pytest.raises(RewardOutageError, match="vlm_judge") as err:
        trainer.train()
    assert "resume" in str(err.value)
    assert trainer.state.global_step == 1  # the second failing batch stopped it


def test_training_knows_every_policy_name_inference_knows(tmp_path: Path) -> None:
    """``smollm2-sketch`` (an adapter on SmolLM2) and an adapter folder resolve the same way in training
    and inference: one resolver."""
    from reprompt.policy import SMOLLM2_SKETCH_ADAPTER, resolve_policy_source
    from reprompt.policy.smollm2 import smollm2_folder
    from reprompt.train.common import resolve_policy, resolve_spec
    from reprompt.train.config import RepromptGRPOConfig

    src = resolve_policy_source("smollm2-sketch")
    assert src.adapter == str(SMOLLM2_SKETCH_ADAPTER) and src.model == str(smollm2_folder())
    assert resolve_policy("smollm2-sketch") == str(SMOLLM2_SKETCH_ADAPTER)
    cfg = RepromptGRPOConfig(
        policy="smollm2-sketch",
        prompts=__file__,
        rewards={"components": ["format"]},
        output_dir=str(tmp_path),
    )
    assert resolve_spec(cfg, src) == PromptSpec.load(SMOLLM2_SKETCH_ADAPTER)
    # the untrained smollm2 keeps its worked example, as load_policy gives it
    cfg.policy = "smollm2"
    assert resolve_spec(cfg, resolve_policy_source("smollm2")).examples


def _sft_lora(tiny: Path, tmp: Path) -> Path:
    from reprompt.train import sft

    data = tmp / "sft.jsonl"
    data.write_text(
        json.dumps({"prompt": PROMPT, "reasoning": "One cat in the center.", "rewritten": "A gray cat."})
        + "\n"
    )
    args = [
        "--policy",
        str(tiny),
        "--sft_data",
        str(data),
        "--output_dir",
        str(tmp / "sft-lora"),
        "--use_peft",
        "true",
        "--lora_r",
        "4",
        "--lora_alpha",
        "8",
        "--max_steps",
        "2",
        "--per_device_train_batch_size",
        "1",
        "--learning_rate",
        "1e-2",
        "--save_strategy",
        "no",
        "--report_to",
        "none",
        "--disable_tqdm",
        "true",
        "--system_prompt",
        "Rewrite.",
        "--few_shot",
        "false",
    ]
    out = sft.train(sft.parse(args))
    assert (out / "adapter_config.json").exists() and not (out / "model.safetensors").exists()
    return out


@pytest.mark.parametrize("use_peft", [True, False])
def test_a_lora_sft_output_is_a_grpo_starting_point(tiny_model, tmp_path: Path, use_peft: bool) -> None:
    """The 1-GPU LoRA chain: SFT with LoRA saves an adapter-only folder; GRPO must start from it. With
    use_peft the SFT adapter keeps training (TRL's KL reference: a frozen copy of it, the SFT model);
    without, it is merged into its base once and fully fine-tuned."""
    from safetensors.torch import load_file

    from reprompt.cli.main import main

    adapter = _sft_lora(tiny_model("tiny-qwen2"), tmp_path)
    cfg = {
        "policy": str(adapter),
        "prompts": str(tmp_path / "p.txt"),
        "output_dir": str(tmp_path / "grpo"),
        "rewards": {
            "backbone": "sketch",
            "backbone_options": {"width": 64, "height": 64},
            "components": ["format", "length"],
        },
        "use_peft": use_peft,
        "max_steps": 1,
        "per_device_train_batch_size": 2,
        "num_generations": 2,
        "gradient_accumulation_steps": 1,
        "max_completion_length": 16,
        "temperature": 1.0,
        "beta": 0.04,
        "learning_rate": 1e-2,
        "save_strategy": "no",
        "report_to": "none",
        "disable_tqdm": True,
        "heldout_every": 0,
        "samples_every": 0,
    }
    (tmp_path / "p.txt").write_text(PROMPT + "\n")
    (tmp_path / "grpo.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["train", "grpo", "--config", str(tmp_path / "grpo.yaml")]) == 0
    out = tmp_path / "grpo"
    if use_peft:
        before = load_file(str(adapter / "adapter_model.safetensors"))
        after = load_file(str(out / "adapter_model.safetensors"))
        assert set(before) == set(after)  # the same adapter, trained further
        assert any((before[k] != after[k]).any() for k in before)
        assert not any(".ref." in k for k in after)  # TRL's frozen reference copy is not saved
    else:
        assert (out / "merged-init" / "merged_from.json").exists()
        assert (out / "model.safetensors").exists()
    assert PromptSpec.load(out) == PromptSpec.load(adapter)


def test_two_identical_runs_on_one_output_folder_refuse_the_second(chatty: Path, tmp_path: Path) -> None:
    """The first run holds the folder (a lock the kernel drops however it ends); the second stops at once
    with a message naming the first, instead of both writing the same checkpoints."""
    from reprompt.errors import RepromptError
    from reprompt.train import grpo
    from reprompt.train.common import run_lock

    cfg = _grpo_cfg(chatty, tmp_path)
    with run_lock(cfg), pytest.raises(RepromptError, match="is in use"):
        grpo.train(cfg)


def test_a_fresh_start_does_not_keep_held_out_lines_of_a_run_killed_before_its_first_checkpoint(
    chatty: Path, tmp_path: Path
) -> None:
    """Before: a run killed after its step-0 held-out evaluation but before any checkpoint left that line,
    and the restarted run appended its own step 0: two step-0 rows in heldout.jsonl."""
    from reprompt.train import grpo

    heldout = tmp_path / "heldout.txt"
    heldout.write_text(PROMPT + "\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / "heldout.jsonl").write_text(json.dumps({"step": 0, "heldout/format_ok": 0.0}) + "\n")
    cfg = _grpo_cfg(chatty, tmp_path, heldout_prompts=str(heldout), heldout_every=1, heldout_max=1,
                    heldout_rewards={"components": ["format"], "normalization": "none"})  # fmt: skip
    grpo.train(cfg)
    steps = [json.loads(line)["step"] for line in (out / "heldout.jsonl").read_text().splitlines()]
    assert steps == [0, 1]


@pytest.mark.parametrize("module", ["reprompt.train.sft", "reprompt.train.grpo"])
def test_training_modules_report_user_errors_without_a_traceback(module, tmp_path):
    """`accelerate launch -m reprompt.train.grpo --config ...` (the README's multi-GPU command) runs the module
    itself, not the CLI: a bad recipe must still end in one line and exit 2, not a traceback."""
    import subprocess
    import sys

    missing = str(tmp_path / "missing.jsonl")
    flag = "--sft_data" if module.endswith("sft") else "--prompts"
    proc = subprocess.run(
        [sys.executable, "-m", module, flag, missing, "--output_dir", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert "reprompt: error:" in proc.stderr and "missing.jsonl" in proc.stderr
