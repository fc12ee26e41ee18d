"""Policies (rewriters): a transformers LM, an OpenAI-compatible endpoint, or none."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reprompt.errors import RepromptError, did_you_mean
from reprompt.format import ONE_SHOT, PromptSpec
from reprompt.policy.base import GenerationOptions, IdentityRewriter, Rewrite, Rewriter, check_prompt

# Named policies. Anything else is a local folder or a hub id.
POLICY_ALIASES = {
    "qwen2.5-3b": "Qwen/Qwen2.5-3B-Instruct",
    "qwen2.5-7b": "Qwen/Qwen2.5-7B-Instruct",
    "qwen2.5-1.5b": "Qwen/Qwen2.5-1.5B-Instruct",
}
SPECIAL = ("none", "smollm2", "smollm2-sketch", "openai")
ASSETS = Path(__file__).resolve().parents[1] / "assets"
SMOLLM2_SKETCH_ADAPTER = ASSETS / "smollm2-sketch-lora"
"""LoRA adapter for SmolLM2-135M trained on CPU (configs/cpu-smollm2-sketch-sft-lora.yaml): a smoke-test
model of the training machinery that makes the offline demo write real plans and prompts."""


def __getattr__(name: str) -> Any:  # lazy: importing transformers costs seconds
    if name in ("RePrompter", "DEFAULT_POLICY"):
        from reprompt.policy import hf

        return getattr(hf, name)
    if name == "OpenAIRewriter":
        from reprompt.policy.openai_compat import OpenAIRewriter

        return OpenAIRewriter
    raise AttributeError(name)


def load_policy(spec: str, *, prompt_spec: PromptSpec | None = None, **kw: Any) -> Rewriter:
    """Build a rewriter from a name: ``none``, ``smollm2``, ``openai`` (needs ``api_model=``, optional
    ``api_base=``/``api_key_env=``), an alias like ``qwen2.5-3b``, a local folder or a hub id.

    ``prompt_spec`` overrides the spec saved with a checkpoint (tags, system prompt, few-shot examples).
    The untrained ``smollm2`` preset uses one worked example: a 135M model cannot follow the format
    from the system prompt alone.
    """
    if spec == "none":
        return IdentityRewriter()
    if spec == "openai":
        from reprompt.policy.openai_compat import OpenAIRewriter

        return OpenAIRewriter(
            model=kw.pop("api_model", None) or "",
            base_url=kw.pop("api_base", None) or "http://127.0.0.1:8000/v1",
            api_key_env=kw.pop("api_key_env", "OPENAI_API_KEY"),
            spec=prompt_spec,
            **{k: v for k, v in kw.items() if k in ("timeout", "retries", "backoff")},
        )
    kw = {k: v for k, v in kw.items() if k in ("device", "dtype", "base_model", "trust_remote_code")}
    from reprompt.policy.hf import RePrompter

    if spec in ("smollm2", "smollm2-sketch"):
        from reprompt.policy.smollm2 import smollm2_folder

        if spec == "smollm2-sketch":
            if not (SMOLLM2_SKETCH_ADAPTER / "adapter_config.json").exists():
                raise RepromptError(f"the smollm2-sketch adapter is missing from {SMOLLM2_SKETCH_ADAPTER}")
            kw["base_model"] = str(smollm2_folder())
            return RePrompter.from_pretrained(str(SMOLLM2_SKETCH_ADAPTER), spec=prompt_spec, **kw)
        prompt_spec = prompt_spec or PromptSpec(examples=list(ONE_SHOT))
        return RePrompter.from_pretrained(str(smollm2_folder()), spec=prompt_spec, **kw)
    target = POLICY_ALIASES.get(spec, spec)
    looks_local = Path(target).expanduser().exists() or target.startswith((".", "/", "~"))
    if not looks_local and "/" not in target:
        raise RepromptError(
            f"unknown policy {spec!r}: use one of {', '.join(SPECIAL + tuple(POLICY_ALIASES))}, a local "
            f"folder or a hub id.{did_you_mean(spec, list(SPECIAL) + list(POLICY_ALIASES))}"
        )
    path = str(Path(target).expanduser()) if looks_local else target
    return RePrompter.from_pretrained(path, spec=prompt_spec, **kw)


__all__ = [
    "GenerationOptions",
    "IdentityRewriter",
    "OpenAIRewriter",
    "RePrompter",
    "Rewrite",
    "Rewriter",
    "check_prompt",
    "load_policy",
]
