"""The RePrompt node in ComfyUI's V3 schema (``comfy_api.latest``): a prompt STRING in, the enhanced prompt
and the policy's reasoning out.

The policy is a registered name (``smollm2-sketch``, ``qwen2.5-3b``), a local model folder, or the base
URL of any OpenAI-compatible server (``http://127.0.0.1:8000/v1``: vLLM, ``reprompt serve``, a hosted
model). Its API key is no input: see :mod:`core` (``$REPROMPT_COMFYUI_API_BASE`` / ``_API_KEY``). After each
run the model is dropped and the accelerator's cached memory returned, so the diffusion model gets the VRAM
back; ``keep_loaded`` keeps it for the next run instead.
"""

from __future__ import annotations

from comfy_api.latest import ComfyExtension, io

from .core import GUARD_MODES, MAX_SEED, enhance

GUARD_TOOLTIP = (
    "intent guard: keep the prompt's objects, counts, colors, quoted text and names (warn: report in "
    "reasoning; retry: other candidates, then the original; fallback: the original)"
)


class RePrompt(io.ComfyNode):
    """Rewrite a text-to-image prompt with a small reasoning LLM before it reaches the text encoder."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        inputs = [
            io.String.Input("prompt", multiline=True, default="", tooltip="what you want to see"),
            io.String.Input(
                "policy",
                default="smollm2-sketch",
                tooltip="smollm2-sketch, qwen2.5-3b, a model folder, or an OpenAI-compatible base URL "
                "(http://127.0.0.1:8000/v1); an API key is sent only to $REPROMPT_COMFYUI_API_BASE",
            ),
            io.Boolean.Input("enable", default=True, label_on="rewrite", label_off="pass through"),
            io.Int.Input(
                "candidates",
                default=1,
                min=1,
                max=16,
                tooltip="sample N; use the first well-formed one (that the guard passes)",
            ),
            io.Int.Input("seed", default=0, min=0, max=MAX_SEED, tooltip="sampling seed"),
            io.Float.Input("temperature", default=0.0, min=0.0, max=2.0, step=0.05, tooltip="0 = greedy"),
            io.Boolean.Input(
                "keep_loaded", default=False, tooltip="keep the policy in memory between runs (uses VRAM)"
            ),
            io.Int.Input("max_new_tokens", default=256, min=16, max=4096, optional=True),
            io.Combo.Input("device", options=["auto", "cuda", "cpu", "mps"], default="auto", optional=True),
            io.String.Input(
                "api_model",
                default="",
                optional=True,
                tooltip="model name at a URL (default: the first listed)",
            ),
        ]
        if GUARD_MODES:
            inputs.append(
                io.Combo.Input(
                    "guard", options=list(GUARD_MODES), default="off", optional=True, tooltip=GUARD_TOOLTIP
                )
            )
        return io.Schema(
            node_id="RePrompt",
            display_name="RePrompt (reasoning prompt rewriter)",
            category="conditioning/reprompt",
            description="Rewrite a prompt with a reasoning policy: plans objects, counts, colors and layout, "
            "then writes an explicit prompt. Outputs the enhanced prompt and the reasoning.",
            inputs=inputs,
            outputs=[
                io.String.Output(
                    "enhanced_prompt",
                    display_name="enhanced_prompt",
                    tooltip="the prompt to encode (the original when disabled or on fallback)",
                ),
                io.String.Output("reasoning", display_name="reasoning", tooltip="the policy's plan"),
            ],
        )

    @classmethod
    def execute(
        cls,
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
    ) -> io.NodeOutput:
        enhanced, reasoning = enhance(
            prompt,
            policy,
            enable,
            candidates,
            seed,
            temperature,
            keep_loaded,
            max_new_tokens=max_new_tokens,
            device=device,
            api_model=api_model,
            guard=guard,
        )
        return io.NodeOutput(enhanced, reasoning)


class RePromptExtension(ComfyExtension):
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return [RePrompt]


async def comfy_entrypoint() -> RePromptExtension:
    """What ComfyUI calls to load this package (V3 extensions)."""
    return RePromptExtension()
