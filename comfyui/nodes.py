"""The RePrompt node: a prompt STRING in, the enhanced prompt and the policy's reasoning out.

The policy is a registered name (``smollm2-sketch``, ``qwen2.5-3b``), a local model folder, or the base
URL of any OpenAI-compatible server (``http://127.0.0.1:8000/v1``: vLLM, ``reprompt serve``, a hosted
model). After each run the model is dropped and the accelerator's cached memory returned, so the
diffusion model gets the VRAM back; ``keep_loaded`` keeps it for the next run instead.
"""

from __future__ import annotations

import threading
from typing import Any

try:
    from reprompt.errors import RepromptError
    from reprompt.integrations.common import auto_device, free_memory, guard_modes
except ImportError as e:  # ComfyUI's Python lacks the library
    raise ImportError(
        "the RePrompt node needs the reprompt package in ComfyUI's Python environment: "
        "pip install -e /path/to/reprompt (see comfyui/README.md)"
    ) from e

_CACHE: dict[tuple, Any] = {}
"""Policies kept loaded (``keep_loaded``), keyed by everything that selects the model."""
_LOCK = threading.Lock()
MAX_SEED = 0xFFFF_FFFF_FFFF_FFFF
GUARD_MODES = guard_modes()
"""The intent guard's modes; the node offers a guard input only in builds that have the guard."""


def loaded_policies() -> list[str]:
    """Names of the policies held in memory now (for tests and for users who wonder about VRAM)."""
    return [key[0] for key in _CACHE]


def unload_all() -> None:
    """Drop every kept policy and return the accelerator's cached memory."""
    with _LOCK:
        _CACHE.clear()
        free_memory()


class RePrompt:
    """Rewrite a text-to-image prompt with a small reasoning LLM before it reaches the text encoder."""

    CATEGORY = "conditioning/reprompt"
    DESCRIPTION = (
        "Rewrite a prompt with a reasoning policy: plans objects, counts, colors and layout, then writes "
        "an explicit prompt. Outputs the enhanced prompt and the reasoning."
    )
    RETURN_TYPES = ("STRING", "STRING")
    RETURN_NAMES = ("enhanced_prompt", "reasoning")
    OUTPUT_TOOLTIPS = (
        "the prompt to encode (the original when disabled or on fallback)",
        "the policy's plan",
    )
    FUNCTION = "enhance"

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, dict[str, tuple]]:  # noqa: N802 (ComfyUI's name)
        return {
            "required": {
                "prompt": ("STRING", {"multiline": True, "default": "", "tooltip": "what you want to see"}),
                "policy": (
                    "STRING",
                    {
                        "default": "smollm2-sketch",
                        "tooltip": "smollm2-sketch, qwen2.5-3b, a model folder, or an OpenAI-compatible "
                        "base URL (http://127.0.0.1:8000/v1)",
                    },
                ),
                "enable": ("BOOLEAN", {"default": True, "label_on": "rewrite", "label_off": "pass through"}),
                "candidates": (
                    "INT",
                    {
                        "default": 1,
                        "min": 1,
                        "max": 16,
                        "tooltip": "sample N; use the first well-formed one (that the guard passes)",
                    },
                ),
                "seed": ("INT", {"default": 0, "min": 0, "max": MAX_SEED, "tooltip": "sampling seed"}),
                "temperature": (
                    "FLOAT",
                    {"default": 0.0, "min": 0.0, "max": 2.0, "step": 0.05, "tooltip": "0 = greedy"},
                ),
                "keep_loaded": (
                    "BOOLEAN",
                    {"default": False, "tooltip": "keep the policy in memory between runs (uses VRAM)"},
                ),
            },
            "optional": {
                "max_new_tokens": ("INT", {"default": 256, "min": 16, "max": 4096}),
                "device": (["auto", "cuda", "cpu", "mps"], {"default": "auto"}),
                "api_model": (
                    "STRING",
                    {"default": "", "tooltip": "model name at a URL (default: the first listed)"},
                ),
                "api_key_env": (
                    "STRING",
                    {"default": "OPENAI_API_KEY", "tooltip": "environment variable holding the API key"},
                ),
            }
            | (
                {
                    "guard": (
                        list(GUARD_MODES),
                        {
                            "default": "off",
                            "tooltip": "intent guard: keep the prompt's objects, counts, colors, quoted text "
                            "and names (warn: report in reasoning; retry: other candidates, then the "
                            "original; fallback: the original)",
                        },
                    )
                }
                if GUARD_MODES
                else {}
            ),
        }

    def enhance(
        self,
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
        api_key_env: str = "OPENAI_API_KEY",
        guard: str = "off",
    ) -> tuple[str, str]:
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
        key = (policy.strip(), dev, api_model.strip(), api_key_env.strip())
        with _LOCK:
            rewriter = _CACHE.pop(key, None)
            try:
                if rewriter is None:
                    rewriter = load_policy(
                        key[0], device=dev, api_model=key[2] or None, api_key_env=key[3] or None
                    )
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
            note = f"[fallback: {rewrite.issue or 'the policy did not write the expected format'}; the original prompt is passed through]"
            reasoning = f"{note}\n{reasoning}".strip()
        return (rewrite.prompt, reasoning)


NODE_CLASS_MAPPINGS = {"RePrompt": RePrompt}
NODE_DISPLAY_NAME_MAPPINGS = {"RePrompt": "RePrompt (reasoning prompt rewriter)"}

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "RePrompt", "RepromptError", "unload_all"]
