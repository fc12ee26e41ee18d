"""The RePrompt node's work, free of ComfyUI (so it is tested without it): check that the library is reprompt,
load the policy (dropped after each run unless kept), rewrite through the one pipeline, say what happened.

The API key of an OpenAI-compatible policy URL is a server-side setting, never a workflow input: the node
sends ``$REPROMPT_COMFYUI_API_KEY`` only to the URL in ``$REPROMPT_COMFYUI_API_BASE``, both set in the
environment ComfyUI runs in. Any other URL a workflow names gets no key at all, so a shared workflow cannot
send a secret (or any other environment variable) anywhere.
"""

from __future__ import annotations

import os
import threading
from typing import Any

try:
    from reprompt.errors import RepromptError
    from reprompt.integrations.common import auto_device, free_memory, guard_modes
    from reprompt.pipeline import RePromptPipeline  # noqa: F401  (only reprompt's own library has it)
except ImportError as e:  # ComfyUI's Python lacks the library, or has the unrelated PyPI project "reprompt"
    raise ImportError(
        "the RePrompt node needs the reprompt library (reasoning prompt rewriting) in ComfyUI's Python "
        "environment: pip install -e /path/to/reprompt (a checkout). The PyPI project named 'reprompt' is "
        "a different package: pip uninstall reprompt first if it is installed."
    ) from e

API_BASE_ENV = "REPROMPT_COMFYUI_API_BASE"
API_KEY_ENV = "REPROMPT_COMFYUI_API_KEY"
MAX_SEED = 0xFFFF_FFFF_FFFF_FFFF
GUARD_MODES = guard_modes()
"""The intent guard's modes; the node offers a guard input only in builds that have the guard."""

_CACHE: dict[tuple, Any] = {}
"""Policies kept loaded (``keep_loaded``), keyed by everything that selects the model."""
_LOCK = threading.Lock()


def loaded_policies() -> list[str]:
    """Names of the policies held in memory now (for tests and for users who wonder about VRAM)."""
    return [key[0] for key in _CACHE]


def unload_all() -> None:
    """Drop every kept policy and return the accelerator's cached memory."""
    with _LOCK:
        _CACHE.clear()
        free_memory()


def key_env_for(policy: str) -> str | None:
    """The variable whose key goes with ``policy``: ``$REPROMPT_COMFYUI_API_KEY`` for the one URL configured
    in ``$REPROMPT_COMFYUI_API_BASE``; None (no key sent) for any other URL, and for local models."""
    from reprompt.policy.openai_compat import is_url

    configured = os.environ.get(API_BASE_ENV, "").strip().rstrip("/")
    if is_url(policy) and configured and policy.strip().rstrip("/") == configured:
        return API_KEY_ENV
    return None


def enhance(
    prompt: str,
    policy: str,
    enable: bool,
    candidates: int,
    seed: int,
    temperature: float,
    keep_loaded: bool,
    max_new_tokens: int = 256,
    device: str = "auto",
    api_model: str = "",
    guard: str = "off",
) -> tuple[str, str]:
    """(enhanced prompt, reasoning) for ``prompt``; disabled, the prompt passes through and nothing loads."""
    if not enable:
        return (prompt, "")
    from reprompt.pipeline import RePromptPipeline
    from reprompt.policy import load_policy
    from reprompt.policy.base import GenerationOptions

    options = GenerationOptions(
        max_new_tokens=int(max_new_tokens),
        temperature=float(temperature),
        num_candidates=int(candidates),
        seed=int(seed),
        batch_size=1,
        **({"guard": guard} if GUARD_MODES else {}),
    )
    dev = auto_device() if device == "auto" else device
    name = policy.strip()
    key_env = key_env_for(name)
    key = (name, dev, api_model.strip(), key_env)
    with _LOCK:
        rewriter = _CACHE.pop(key, None)
        try:
            if rewriter is None:
                rewriter = load_policy(name, device=dev, api_model=key[2] or None, api_key_env=key_env)
            # the text goes to ComfyUI's own model: the pipeline rewrites and chooses, nothing renders here
            rewrite = RePromptPipeline(rewriter, None).rewrite(prompt, options)[0].chosen
            if keep_loaded:
                _CACHE[key] = rewriter
        finally:
            rewriter = None  # the last reference unless kept above
            if not keep_loaded:
                free_memory()
    reasoning = rewrite.reasoning
    report = getattr(rewrite, "guard", None)
    if report is not None and not report.ok:
        reasoning = f"{reasoning}\n[intent guard: {report.summary()}]".strip()
    if rewrite.fallback:
        why = rewrite.issue or "the policy did not write the expected format"
        reasoning = f"[fallback: {why}; the original prompt is passed through]\n{reasoning}".strip()
    return (rewrite.prompt, reasoning)


__all__ = ["API_BASE_ENV", "API_KEY_ENV", "RepromptError", "enhance", "key_env_for", "unload_all"]
