"""What SFT and GRPO share: resolving the policy and its PromptSpec, LoRA, resuming, saving the spec."""

from __future__ import annotations

import json
import logging
import re
from dataclasses import asdict, fields, is_dataclass
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from reprompt.errors import ConfigError, ModelNotFoundError
from reprompt.format import ONE_SHOT, SPEC_FILE, PromptSpec

logger = logging.getLogger(__name__)

RUN_FILE = "reprompt_train.json"


def parse_config(parser: Any, argv: list[str] | None) -> Any:
    """Parse ``--config recipe.yaml`` plus overrides with a TrlParser; config mistakes become ConfigError."""
    import sys

    args = list(sys.argv[1:] if argv is None else argv)
    if "--config" in args:
        i = args.index("--config")
        if i + 1 >= len(args):
            raise ConfigError("--config needs a YAML recipe path")
        if not Path(args[i + 1]).is_file():
            raise ConfigError(f"recipe {args[i + 1]!r} not found (see configs/sft and configs/grpo)")
    try:
        (cfg,) = parser.parse_args_and_config(args)
    except ValueError as e:  # unknown keys, bad YAML mapping, TRL's own checks
        raise ConfigError(str(e).splitlines()[0]) from e
    return cfg


def resolve_policy(name: str) -> str:
    """A local folder or hub id for a policy name (``smollm2``, an alias, a folder, a hub id)."""
    from reprompt.policy import POLICY_ALIASES

    if name == "smollm2":
        from reprompt.policy.smollm2 import smollm2_folder

        return str(smollm2_folder())
    if name in ("none", "openai"):
        raise ConfigError(
            f"policy {name!r} has no weights to train: use smollm2, an alias, a folder or a hub id"
        )
    target = POLICY_ALIASES.get(name, name)
    path = Path(target).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ModelNotFoundError(f"policy {name!r} is a file; pass the model folder")
        return str(path)
    if target.startswith((".", "/", "~")) or "/" not in target:
        raise ModelNotFoundError(f"policy folder {name!r} not found")
    return target


def resolve_spec(cfg: Any, policy_path: str) -> PromptSpec:
    """The PromptSpec to train with: the one saved with the policy (an SFT output) or reprompt's default
    (with the worked example for the untrained ``smollm2`` preset, as ``load_policy`` does), then the
    config's ``tags`` / ``system_prompt`` / ``few_shot`` where set."""
    saved = PromptSpec.load(policy_path) if Path(policy_path).is_dir() else None
    if saved is not None:
        spec = saved
    elif cfg.policy == "smollm2":
        spec = PromptSpec(examples=list(ONE_SHOT))
    else:
        spec = PromptSpec()
    data = asdict(spec)
    if cfg.tags is not None and cfg.tags != spec.tags:
        data["tags"] = cfg.tags
        if spec.examples and cfg.few_shot is None:  # the worked example is written in the old tags
            data["examples"] = []
    if cfg.system_prompt is not None:
        data["system"] = cfg.system_prompt
    if cfg.few_shot is not None:
        data["examples"] = _examples(data["tags"]) if cfg.few_shot else []
    return PromptSpec(**data)


def _examples(tags: str) -> list[tuple[str, str]]:
    """reprompt's worked example, rewritten in ``tags``."""
    from reprompt.format import get_tag_format, parse_completion, render_completion

    fmt = get_tag_format(tags)
    out = []
    for user, completion in ONE_SHOT:
        parsed = parse_completion(completion, user)
        out.append((user, render_completion(parsed.reasoning, parsed.prompt, fmt)))
    return out


def torch_dtype(name: str) -> Any:
    import torch

    if name == "auto":
        return torch.bfloat16 if torch.cuda.is_available() else torch.float32
    return getattr(torch, name)


def policy_init_kwargs(cfg: Any) -> dict[str, Any]:
    """``from_pretrained`` kwargs for the policy TRL loads: the configured dtype, safetensors only, no remote
    code (the user's own ``model_init_kwargs`` are kept, the safety settings win)."""
    return {
        **(cfg.model_init_kwargs or {}),
        "dtype": torch_dtype(cfg.policy_dtype),
        "use_safetensors": True,
        "trust_remote_code": False,
    }


def peft_config(cfg: Any) -> Any:
    """A LoRA config when ``use_peft``, else None."""
    if not cfg.use_peft:
        return None
    from peft import LoraConfig

    return LoraConfig(
        r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules=cfg.lora_target_modules or "all-linear",
        task_type="CAUSAL_LM",
    )


_CKPT = re.compile(r"^checkpoint-(\d+)$")


def last_complete_checkpoint(output_dir: str | Path) -> str | None:
    """The newest ``checkpoint-N`` whose save finished (trainer state and our spec written last)."""
    root = Path(output_dir)
    if not root.is_dir():
        return None
    found = []
    for p in root.iterdir():
        m = _CKPT.match(p.name)
        if m and p.is_dir() and (p / "trainer_state.json").exists() and (p / SPEC_FILE).exists():
            found.append((int(m.group(1)), p))
    return str(max(found)[1]) if found else None


def resume_point(cfg: Any) -> str | None:
    """Where ``trainer.train(resume_from_checkpoint=...)`` starts, from ``resume`` (auto / never / a folder)."""
    if cfg.resume == "never":
        return None
    if cfg.resume == "auto":
        last = last_complete_checkpoint(cfg.output_dir)
        if last:
            logger.warning("resuming from %s", last)
        return last
    return cfg.resume


def run_record(cfg: Any, spec: PromptSpec, policy_path: str) -> dict[str, Any]:
    """JSON-safe record of the run's config, saved next to the model."""
    values = {}
    for f in fields(cfg) if is_dataclass(cfg) else ():
        v = getattr(cfg, f.name)
        if isinstance(v, str | int | float | bool | list | dict | type(None)):
            try:
                json.dumps(v)
            except TypeError:
                continue
            values[f.name] = v
    return {"config": values, "prompt_spec": asdict(spec), "policy_path": policy_path}


class SaveSpecCallback(TrainerCallback):
    """Writes ``reprompt_format.json`` (and the run record) into every checkpoint, after it is saved,
    so any checkpoint loads with ``RePrompter.from_pretrained`` and is prompted exactly as trained."""

    def __init__(self, spec: PromptSpec, record: dict[str, Any]) -> None:
        self.spec, self.record = spec, record

    def on_save(self, args, state, control, **kwargs):  # noqa: ANN001
        if state.is_world_process_zero:
            folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            if folder.is_dir():
                save_spec(folder, self.spec, self.record)
        return control


def save_spec(folder: str | Path, spec: PromptSpec, record: dict[str, Any]) -> None:
    from reprompt.utils.io import atomic_write_json

    atomic_write_json(Path(folder) / RUN_FILE, record)
    atomic_write_json(Path(folder) / SPEC_FILE, asdict(spec))  # last: marks a complete checkpoint


def train_and_save(trainer: Any, cfg: Any, spec: PromptSpec, record: dict[str, Any]) -> Path:
    """Train (resuming as ``cfg.resume`` says), then save the final model, its tokenizer, the log history and
    the PromptSpec (written last: it marks the folder complete). Shared by SFT and GRPO."""
    from reprompt.utils.io import atomic_write_json

    trainer.train(resume_from_checkpoint=resume_point(cfg))
    trainer.save_model(cfg.output_dir)
    if trainer.accelerator.is_main_process:
        trainer.processing_class.save_pretrained(cfg.output_dir)
        history = [h for h in trainer.state.log_history if "step" in h]
        atomic_write_json(Path(cfg.output_dir) / "log_history.json", history)
        save_spec(cfg.output_dir, spec, record)
    return Path(cfg.output_dir)
