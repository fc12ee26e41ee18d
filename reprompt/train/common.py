"""What SFT and GRPO share: resolving the policy and its PromptSpec, LoRA, resuming, saving the spec."""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields, is_dataclass
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from reprompt.errors import ConfigError, ModelNotFoundError, RepromptError, did_you_mean
from reprompt.format import ONE_SHOT, SPEC_FILE, PromptSpec
from reprompt.utils.dtypes import resolve_dtype
from reprompt.utils.hub import from_pretrained
from reprompt.utils.io import read_yaml_mapping

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
        # TRL reads the file itself; read it first so a missing file, broken YAML or a misspelt key is one
        # clear line before any other check (TRL names unknown keys only after every field was validated)
        recipe = read_yaml_mapping(args[i + 1], "recipe (see configs/sft and configs/grpo)")
        known = {f.name for dc in parser.dataclass_types for f in fields(dc) if f.init}
        known.add("env")  # TRL's own key: environment variables to set
        unknown = sorted(set(recipe) - known)
        if unknown:
            raise ConfigError(
                f"recipe {args[i + 1]}: unknown key(s) {', '.join(map(repr, unknown))}."
                f"{did_you_mean(unknown[0], sorted(known))} Every flag of the command is a key (--help lists them)."
            )
    try:
        (cfg,) = parser.parse_args_and_config(args)
    except ValueError as e:  # unknown keys, bad YAML mapping, TRL's own checks
        raise ConfigError(str(e).splitlines()[0]) from e
    return cfg


@dataclass
class TrainPolicy:
    """What a trainer starts from. ``model`` is a folder or hub id, or a ``PeftModel`` that continues an
    adapter (an adapter-only SFT output trained on with ``use_peft``); ``tokenizer`` is where to load the
    tokenizer; ``spec`` how it is prompted; ``path`` the folder or id recorded with the run."""

    model: Any
    tokenizer: str
    spec: PromptSpec
    path: str
    continues_adapter: bool = False


def prepare_policy(cfg: Any) -> TrainPolicy:
    """Resolve ``cfg.policy`` with the same resolver inference uses (``smollm2``, ``smollm2-sketch``, an
    alias, a model or adapter folder, a hub id) and make it trainable:

    - a full model: trained as is (full fine-tune, or a new LoRA with ``use_peft``);
    - an adapter folder (a LoRA SFT output, ``smollm2-sketch``) with ``use_peft``: the adapter itself keeps
      training and TRL's KL reference is a frozen copy of it, i.e. the SFT model;
    - an adapter folder without ``use_peft``: merged into its base once (``<output_dir>/merged-init``, by
      the main process) and fully fine-tuned from there; the reference is the merged SFT model.
    """
    from reprompt.policy import resolve_policy_source

    if cfg.policy in ("none", "openai"):
        raise ConfigError(
            f"policy {cfg.policy!r} has no weights to train: use smollm2, smollm2-sketch, an alias, a folder "
            "or a hub id"
        )
    try:
        source = resolve_policy_source(cfg.policy)
    except ModelNotFoundError:
        raise
    except RepromptError as e:
        raise ConfigError(str(e)) from e
    spec = resolve_spec(cfg, source)
    if source.adapter is None:
        return TrainPolicy(source.model, source.model, spec, source.model)
    adapter = Path(source.adapter)
    tokenizer = str(adapter) if (adapter / "tokenizer_config.json").exists() else source.model
    if cfg.use_peft:
        return TrainPolicy(_load_adapter(cfg, source), tokenizer, spec, str(adapter), continues_adapter=True)
    merged = _merged_folder(cfg, source)
    return TrainPolicy(str(merged), str(merged), spec, str(merged))


def _load_adapter(cfg: Any, source: Any) -> Any:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    kw = policy_init_kwargs(cfg)
    base = from_pretrained(
        AutoModelForCausalLM, source.model, kind="adapter's base model", errors=(OSError, ValueError), **kw
    )
    return PeftModel.from_pretrained(base, source.adapter, is_trainable=True)


def _merged_folder(cfg: Any, source: Any) -> Path:
    """The adapter merged into its base, saved once under the run's output folder (main process first;
    the others wait and load it)."""
    from accelerate import PartialState

    folder = Path(cfg.output_dir) / "merged-init"
    marker = folder / "merged_from.json"
    wanted = {"base": source.model, "adapter": str(Path(source.adapter).resolve())}
    with PartialState().main_process_first():
        done = marker.exists() and json.loads(marker.read_text()) == wanted
        if not done and PartialState().is_main_process:
            from peft import PeftModel
            from transformers import AutoModelForCausalLM, AutoTokenizer

            from reprompt.utils.io import atomic_write_json

            logger.warning("merging the adapter %s into %s -> %s", source.adapter, source.model, folder)
            base = AutoModelForCausalLM.from_pretrained(source.model, **policy_init_kwargs(cfg))
            merged = PeftModel.from_pretrained(base, source.adapter).merge_and_unload()
            merged.save_pretrained(folder, safe_serialization=True)
            adapter = Path(source.adapter)
            tok_src = str(adapter) if (adapter / "tokenizer_config.json").exists() else source.model
            AutoTokenizer.from_pretrained(tok_src, trust_remote_code=False).save_pretrained(folder)
            spec = PromptSpec.load(adapter)
            if spec is not None:
                spec.save(folder)
            atomic_write_json(marker, wanted)  # last: marks the folder complete
    return folder


def resolve_policy(name: str) -> str:
    """A local folder or hub id for a policy name (kept for callers that need only the path)."""
    from reprompt.policy import resolve_policy_source

    source = resolve_policy_source(name)
    return source.adapter or source.model


def resolve_spec(cfg: Any, source: Any) -> PromptSpec:
    """The PromptSpec to train with: the one saved with the policy (an SFT output, an adapter) or the one
    its name implies (the worked example for the untrained ``smollm2``, as ``load_policy`` does) or
    reprompt's default, then the config's ``tags`` / ``system_prompt`` / ``few_shot`` where set.
    ``source``: a :class:`reprompt.policy.PolicySource` or a folder path."""
    from reprompt.policy import PolicySource

    if not isinstance(source, PolicySource):
        source = PolicySource(str(source))
    folder = source.adapter or source.model
    saved = PromptSpec.load(folder) if Path(folder).is_dir() else None
    spec = saved or source.spec or PromptSpec()
    data = asdict(spec)
    if cfg.tags is not None and cfg.tags != spec.tags:
        data["tags"] = cfg.tags
        if spec.examples and cfg.few_shot is None:  # the worked example is written in the old tags
            data["examples"] = []
    if cfg.system_prompt is not None:
        data["system"] = cfg.system_prompt
    if cfg.few_shot is not None:
        data["examples"] = worked_examples(data["tags"]) if cfg.few_shot else []
    return PromptSpec(**data)


def worked_examples(tags: str) -> list[tuple[str, str]]:
    """reprompt's worked example, rewritten in ``tags``."""
    from reprompt.format import get_tag_format, parse_completion, render_completion

    fmt = get_tag_format(tags)
    out = []
    for user, completion in ONE_SHOT:
        parsed = parse_completion(completion, user)
        out.append((user, render_completion(parsed.reasoning, parsed.prompt, fmt)))
    return out


def policy_init_kwargs(cfg: Any) -> dict[str, Any]:
    """``from_pretrained`` kwargs for the policy TRL loads: the configured dtype, safetensors only, no remote
    code (the user's own ``model_init_kwargs`` are kept, the safety settings win)."""
    kw = {
        **(cfg.model_init_kwargs or {}),
        "dtype": resolve_dtype(cfg.dtype),  # auto: bfloat16 when CUDA is available
        "use_safetensors": True,
        "trust_remote_code": False,
    }
    if getattr(cfg, "attn_implementation", None):
        kw["attn_implementation"] = cfg.attn_implementation
    return kw


def peft_config(cfg: Any, policy: TrainPolicy | None = None) -> Any:
    """TRL's LoRA config for ``cfg`` (its :class:`trl.ModelConfig` fields, through ``get_peft_config``): a new
    adapter when ``use_peft``; None without it, or when the policy already is an adapter that keeps training."""
    if policy is not None and policy.continues_adapter:
        return None
    from trl import get_peft_config

    return get_peft_config(cfg)


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


class EpochSeededData(TrainerCallback):
    """Makes a resumed GRPO run see the data in the same order as an uninterrupted one.

    TRL's ``RepeatSampler`` seeds one generator at construction and draws a fresh permutation per epoch, so
    epoch k's order depends on how many epochs this process has iterated; a run resumed in epoch k >= 1
    draws epoch 0's order again (measured: weights up to 8e-4 apart after 4 tiny steps). Before each epoch
    this reseeds that generator with ``seed + epoch``: every epoch's order is then a pure function of the
    seed and the epoch number. Public hooks only (a callback on the dataloader the trainer hands it)."""

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def on_epoch_begin(self, args, state, control, train_dataloader=None, **kwargs):  # noqa: ANN001
        sampler = _repeat_sampler(train_dataloader)
        if sampler is not None:
            epoch = int(math.floor((state.epoch or 0.0) + 1e-6))
            sampler.generator.manual_seed(self.seed + epoch)
        return control


def _repeat_sampler(loader: Any, depth: int = 0) -> Any:
    """The sampler with a ``generator`` and a ``shuffle`` flag inside accelerate's loader wrappers."""
    if loader is None or depth > 4:
        return None
    if hasattr(loader, "generator") and hasattr(loader, "shuffle") and hasattr(loader, "mini_repeat_count"):
        return loader if getattr(loader, "shuffle", False) else None
    for name in ("sampler", "batch_sampler", "base_dataloader"):
        found = _repeat_sampler(getattr(loader, name, None), depth + 1)
        if found is not None:
            return found
    return None


def save_spec(folder: str | Path, spec: PromptSpec, record: dict[str, Any]) -> None:
    from reprompt.utils.io import atomic_write_json

    atomic_write_json(Path(folder) / RUN_FILE, record)
    atomic_write_json(Path(folder) / SPEC_FILE, asdict(spec))  # last: marks a complete checkpoint


def run_lock(cfg: Any) -> Any:
    """Held by the main process while a run writes ``output_dir``: a second identical run (same folder) stops
    at once with a message naming the first, instead of both writing the same checkpoints."""
    import contextlib

    from accelerate import PartialState

    from reprompt.utils.lock import folder_lock

    if not PartialState().is_main_process:
        return contextlib.nullcontext()
    return folder_lock(cfg.output_dir, "train", "this training run's checkpoints")


def train_stage(cfg: Any, build_trainer: Any) -> Path:
    """One training stage under the run lock: ``build_trainer(cfg)`` -> (trainer, spec, record), then
    :func:`train_and_save`. Shared by SFT and GRPO."""
    with run_lock(cfg):
        trainer, spec, record = build_trainer(cfg)
        return train_and_save(trainer, cfg, spec, record)


def stage_main(stage: str, parse: Any, train: Any, argv: Sequence[str] | None = None) -> int:
    """A stage's ``main``: parse the recipe and flags, train, and say where the policy went."""
    out = train(parse(argv))
    print(f"saved the {stage} policy to {out} (load it with RePrompter.from_pretrained({str(out)!r}))")
    return 0


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
    trainer.accelerator.wait_for_everyone()
    # tear the process group down now (a no-op in one process): left to interpreter exit, gloo's threads can
    # outlive it and a rank of a finished run aborts ("terminate called without an active exception", exit -6;
    # seen in the two-process GRPO test)
    trainer.accelerator.end_training()
    return Path(cfg.output_dir)
