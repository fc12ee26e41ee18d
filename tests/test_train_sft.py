"""SFT: TRL SFTTrainer on the tiny Qwen2 policy, loss on the assistant turn only, spec saved everywhere."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from reprompt.data import GroundedTeacher, PromptGenConfig, build_sft_data, split_prompts
from reprompt.errors import ConfigError
from reprompt.format import PromptSpec
from reprompt.utils.io import read_jsonl

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def sft_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sft-data") / "sft.jsonl"
    records = split_prompts(PromptGenConfig(n_sft=8, n_rl=0, seed=2))[0]["sft"]
    build_sft_data(records, GroundedTeacher(), out, progress=False)
    return out


def _args(policy: Path, data: Path, out: Path, *extra: str) -> list[str]:
    return [
        "--policy",
        str(policy),
        "--sft_data",
        str(data),
        "--output_dir",
        str(out),
        "--max_steps",
        "2",
        "--per_device_train_batch_size",
        "2",
        "--learning_rate",
        "1e-3",
        "--save_steps",
        "1",
        "--logging_steps",
        "1",
        "--report_to",
        "none",
        "--disable_tqdm",
        "true",
        "--max_length",
        "512",
        "--system_prompt",
        "Rewrite the request. Plan in <reason></reason>, answer in <prompt></prompt>.",
        *extra,
    ]


def _weights(folder: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


def test_two_sft_steps_train_every_weight_and_save_the_spec(
    tiny_model, sft_file: Path, tmp_path: Path
) -> None:
    from reprompt.policy import RePrompter
    from reprompt.train import sft

    policy = tiny_model("tiny-qwen2")
    cfg = sft.parse(_args(policy, sft_file, tmp_path / "out"))
    out = sft.train(cfg)
    before, after = _weights(policy), _weights(out)
    assert before.keys() == after.keys()
    unchanged = [k for k in before if (before[k] == after[k]).all()]
    assert not unchanged, f"weights not trained: {unchanged}"
    spec = PromptSpec.load(out)
    assert spec.system.startswith("Rewrite the request") and spec.tags == "reason/prompt"
    for ckpt in ("checkpoint-1", "checkpoint-2"):
        assert PromptSpec.load(out / ckpt) == spec
        assert (out / ckpt / "reprompt_train.json").exists()
    loaded = RePrompter.from_pretrained(str(out))
    assert loaded.spec == spec  # prompted at inference exactly as trained
    assert len(loaded.rewrite(["a photo of a cat"], max_new_tokens=4)) == 1


def test_prompt_tokens_are_masked_and_match_inference(tiny_model, sft_file: Path, tmp_path: Path) -> None:
    from reprompt.policy import RePrompter
    from reprompt.train import sft

    cfg = sft.parse(_args(tiny_model("tiny-qwen2"), sft_file, tmp_path / "out"))
    trainer, spec, _ = sft.build_trainer(cfg)
    tok = trainer.processing_class
    rows = read_jsonl(sft_file)
    policy = RePrompter(trainer.model, tok, spec=spec)
    for row, ex in zip(rows, trainer.train_dataset, strict=True):
        prompt_ids = policy.encode([spec.messages(row["prompt"])])["input_ids"][0].tolist()
        ids, labels = ex["input_ids"], ex["labels"]
        n = len(prompt_ids)
        assert ids[:n] == prompt_ids  # the very tokens inference feeds the model
        assert all(label == -100 for label in labels[:n])  # system + user turns: no loss
        assert labels[n:] == ids[n:]  # assistant turn: all of it, end-of-turn token included
        completion = tok.decode(ids[n:])
        assert completion.startswith("<reason>") and "<|im_end|>" in completion
        assert row["rewritten"] in completion


def test_lora_sft_saves_an_adapter_that_loads_with_its_spec(
    tiny_model, sft_file: Path, tmp_path: Path
) -> None:
    from reprompt.policy import RePrompter
    from reprompt.train import sft

    out = sft.train(
        sft.parse(
            _args(
                tiny_model("tiny-qwen2"),
                sft_file,
                tmp_path / "lora",
                "--use_peft",
                "true",
                "--lora_r",
                "4",
                "--lora_alpha",
                "8",
            )
        )
    )
    assert (out / "adapter_config.json").exists() and not (out / "model.safetensors").exists()
    from safetensors.torch import load_file

    adapter = load_file(str(out / "adapter_model.safetensors"))
    assert any("lora_B" in k and adapter[k].abs().sum() > 0 for k in adapter)  # B starts at 0: it trained
    loaded = RePrompter.from_pretrained(str(out))
    assert loaded.spec == PromptSpec.load(out) and loaded.spec.system.startswith("Rewrite the request")


def test_reasoning_ablation_trains_prompt_only_targets(tiny_model, sft_file: Path, tmp_path: Path) -> None:
    from reprompt.train import sft

    cfg = sft.parse(_args(tiny_model("tiny-qwen2"), sft_file, tmp_path / "out", "--tags", "prompt"))
    trainer, spec, _ = sft.build_trainer(cfg)
    assert spec.fmt.reason is None
    text = trainer.processing_class.decode(trainer.train_dataset[0]["input_ids"])
    answer = text.rsplit("<|im_start|>assistant\n", 1)[1]
    assert answer.startswith("<prompt>") and "<reason>" not in answer


def test_config_mistakes_name_the_fix(tiny_model, sft_file: Path, tmp_path: Path) -> None:
    from reprompt.cli.main import main
    from reprompt.train import sft

    policy = tiny_model("tiny-qwen2")
    with pytest.raises(ConfigError, match="set sft_data"):
        sft.parse(["--policy", str(policy), "--output_dir", str(tmp_path)])
    with pytest.raises(ConfigError, match="packing"):
        sft.parse(_args(policy, sft_file, tmp_path, "--packing", "true"))
    with pytest.raises(ConfigError, match="assistant turn only"):
        sft.parse(_args(policy, sft_file, tmp_path, "--completion_only_loss", "false"))
    with pytest.raises(ConfigError, match="tag format"):
        sft.parse(_args(policy, sft_file, tmp_path, "--tags", "bad tags"))
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"policy": str(policy), "sft_data": str(sft_file), "learning_rat": 1e-5}))
    with pytest.raises(ConfigError, match="learning_rat"):
        sft.parse(["--config", str(bad)])
    assert main(["train", "sft", "--config", str(tmp_path / "missing.yaml")]) == 2


SFT_RECIPES = sorted((REPO / "configs" / "sft").glob("*.yaml"))


def test_there_are_sft_recipes() -> None:
    names = {p.name for p in SFT_RECIPES}
    assert {
        "qwen2.5-3b.yaml",
        "cpu-smollm2-sketch.yaml",
        "cpu-smollm2-sketch-lora.yaml",
        "cpu-lab-lora.yaml",
    } <= names


@pytest.mark.parametrize("recipe", SFT_RECIPES, ids=lambda p: p.name)
def test_sft_recipes_parse_and_validate(recipe: Path, tmp_path: Path, sft_file: Path) -> None:
    """Every SFT recipe is a valid config (data paths pointed at a real file; bf16 off on CPU)."""
    from reprompt.train import sft

    data = yaml.safe_load(recipe.read_text())
    assert data["policy"] and data["sft_data"]
    data.update(sft_data=str(sft_file), output_dir=str(tmp_path))
    if data.get("bf16"):
        data["bf16"] = False  # this CPU-only machine cannot run bf16; the GPU recipe keeps it
    path = tmp_path / recipe.name
    path.write_text(yaml.safe_dump(data))
    cfg = sft.parse(["--config", str(path)])
    assert cfg.learning_rate == data["learning_rate"]
    if recipe.name == "qwen2.5-3b.yaml":  # the paper's recipe
        assert (cfg.learning_rate, cfg.num_train_epochs, cfg.lr_scheduler_type.value) == (1e-5, 1, "cosine")
        assert (cfg.warmup_steps, cfg.max_length, cfg.use_peft) == (0.1, 1024, False)
