"""Policies (rewriters): a transformers LM, an OpenAI-compatible endpoint, a plain-text rewriter's recipe, or none."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reprompt.errors import ModelNotFoundError, RemoteServiceError, RepromptError, did_you_mean
from reprompt.format import ONE_SHOT, PromptSpec
from reprompt.policy.base import (
    GenerationOptions,
    IdentityRewriter,
    PolicyLoadOptions,
    Rewrite,
    Rewriter,
    check_prompt,
)
from reprompt.utils.lazy import lazy_exports

# Named policies. Anything else is a local folder or a hub id.
POLICY_ALIASES = {
    "qwen2.5-3b": "Qwen/Qwen2.5-3B-Instruct",
    "qwen2.5-7b": "Qwen/Qwen2.5-7B-Instruct",
    "qwen2.5-1.5b": "Qwen/Qwen2.5-1.5B-Instruct",
}
SPECIAL = ("none", "smollm2", "smollm2-sketch", "openai")
ASSETS = Path(__file__).resolve().parents[1] / "assets"
SMOLLM2_SKETCH_ADAPTER = ASSETS / "smollm2-sketch-lora"
"""LoRA adapter for SmolLM2-135M trained on CPU (configs/sft/cpu-smollm2-sketch-lora.yaml): a smoke-test
model of the training machinery that makes the offline demo write real plans and prompts."""


# lazy: importing transformers costs seconds
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "RePrompter": ".hf",
        "DEFAULT_POLICY": ".hf",
        "OpenAIRewriter": ".openai_compat",
        "PlainRecipe": ".plain",
        "PlainRewriter": ".plain",
    },
)


@dataclass(frozen=True)
class PolicySource:
    """Where a named policy's weights live. ``model`` is a model folder or hub id; with ``adapter`` set it is
    the base the PEFT adapter folder ``adapter`` goes on. ``spec``: the prompting the name implies when the
    folder saves none (the worked example for the untrained ``smollm2``)."""

    model: str
    adapter: str | None = None
    spec: PromptSpec | None = None


def resolve_policy_source(name: str, base_model: str | None = None) -> PolicySource:
    """The one place a policy name becomes weights, for inference and training alike: ``smollm2``,
    ``smollm2-sketch``, an alias (``qwen2.5-3b``), a local model or adapter folder, or a hub id.
    ``none``/``openai`` have no weights: callers handle them first."""
    if name in ("none", "openai"):
        raise RepromptError(f"policy {name!r} has no weights")
    if name in ("smollm2", "smollm2-sketch"):
        from reprompt.policy.smollm2 import smollm2_folder

        if name == "smollm2":
            return PolicySource(str(smollm2_folder()), spec=PromptSpec(examples=list(ONE_SHOT)))
        if not (SMOLLM2_SKETCH_ADAPTER / "adapter_config.json").exists():
            raise RepromptError(f"the smollm2-sketch adapter is missing from {SMOLLM2_SKETCH_ADAPTER}")
        return PolicySource(str(smollm2_folder()), adapter=str(SMOLLM2_SKETCH_ADAPTER))
    target = POLICY_ALIASES.get(name, name)
    path = Path(target).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ModelNotFoundError(f"policy {name!r} is a file; pass the model folder")
        if (path / "adapter_config.json").exists():
            base = base_model or _adapter_base(path)
            return PolicySource(base, adapter=str(path))
        return PolicySource(str(path))
    if target.startswith((".", "/", "~")):
        raise ModelNotFoundError(f"no model folder at {name!r} (policy not found)")
    if "/" not in target:
        raise RepromptError(
            f"unknown policy {name!r}: use one of {', '.join(SPECIAL + tuple(POLICY_ALIASES))}, a local "
            f"folder or a hub id.{did_you_mean(name, list(SPECIAL) + list(POLICY_ALIASES))}"
        )
    return PolicySource(target)


def _adapter_base(folder: Path) -> str:
    """The base model an adapter folder names (``smollm2`` resolves to the offline SmolLM2 folder)."""
    import json

    base = json.loads((folder / "adapter_config.json").read_text()).get("base_model_name_or_path")
    if not base:
        raise RepromptError(f"adapter {str(folder)!r} names no base model: pass base_model=")
    if base in ("smollm2", "smollm2-sketch") or base in POLICY_ALIASES:
        return resolve_policy_source(base).model
    return base


def load_policy(name: str, *, prompt_spec: PromptSpec | None = None, **kw: Any) -> Rewriter:
    """Build a rewriter from a name: ``none``, ``smollm2``, ``smollm2-sketch``, ``openai`` (needs
    ``api_model=``, optional ``api_base=``/``api_key_env=``), the base URL of an OpenAI-compatible server
    (``http://127.0.0.1:8000/v1``: its first listed model unless ``api_model=``), an alias like
    ``qwen2.5-3b``, a local folder, a hub id, or a plain-text rewriter's YAML recipe (``….yaml``:
    :mod:`reprompt.policy.plain`).

    ``prompt_spec`` overrides the spec saved with a checkpoint (tags, system prompt, few-shot examples).
    The untrained ``smollm2`` preset uses one worked example: a 135M model cannot follow the format
    from the system prompt alone.
    """
    name = (name or "").strip()
    if not name:
        raise RepromptError("name a policy: none, smollm2-sketch, a model folder, or an http(s) URL")
    if name == "none":
        return IdentityRewriter()
    from reprompt.policy.plain import is_recipe

    if is_recipe(name):  # a rewriter that answers in plain text, described by a YAML recipe
        from reprompt.policy.plain import load_plain_policy

        return load_plain_policy(name, **kw)
    from reprompt.policy.openai_compat import is_url

    if is_url(name):
        from reprompt.policy.openai_compat import served_models

        kw["api_base"] = name
        if not kw.get("api_model"):
            models = served_models(name, kw.get("api_key_env", PolicyLoadOptions.api_key_env))
            if not models:
                raise RemoteServiceError(f"{name} lists no models; name one with api_model")
            kw["api_model"] = models[0]
        name = "openai"
    if name == "openai":
        from reprompt.policy.openai_compat import OpenAIRewriter

        return OpenAIRewriter(
            model=kw.pop("api_model", None) or "",
            base_url=kw.pop("api_base", None) or PolicyLoadOptions.api_base,
            api_key_env=kw.pop("api_key_env", PolicyLoadOptions.api_key_env),
            spec=prompt_spec,
            **{k: v for k, v in kw.items() if k in ("timeout", "retries", "backoff")},
        )
    kw = {
        k: v
        for k, v in kw.items()
        if k in ("device", "dtype", "base_model", "trust_remote_code", "subfolder")
    }
    from reprompt.policy.hf import RePrompter

    source = resolve_policy_source(name, base_model=kw.pop("base_model", None))
    if source.adapter is not None:
        kw["base_model"] = source.model
    return RePrompter.from_pretrained(source.adapter or source.model, spec=prompt_spec or source.spec, **kw)


__all__ = [
    "GenerationOptions",
    "IdentityRewriter",
    "OpenAIRewriter",
    "PlainRecipe",
    "PlainRewriter",
    "PolicyLoadOptions",
    "PolicySource",
    "RePrompter",
    "Rewrite",
    "Rewriter",
    "check_prompt",
    "load_policy",
    "resolve_policy_source",
]
