"""Argument groups shared by sub-commands: how to name a policy and a backbone on the command line.

Only argparse at import time; the builders import the heavy modules when called.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from reprompt.cli.options import add_dataclass_args, config_from_args
from reprompt.errors import RepromptError
from reprompt.utils.dtypes import DTYPE_NAMES

# GenerationOptions fields whose flags have shorter names; guard_temperature has no flag.
GENERATION_FLAGS = {
    "num_candidates": "candidates",
    "seed": "policy_seed",
    "prompt_lookup_num_tokens": "prompt_lookup",
}
_NO_FLAG = ("guard_temperature",)


def add_policy_args(p: argparse.ArgumentParser, default: str = "smollm2") -> None:
    """``--policy`` and how to load it, then the decoding flags, generated from :class:`GenerationOptions`
    (each default and help text lives on its field)."""
    from reprompt.policy.base import GenerationOptions

    g = p.add_argument_group("policy (the rewriter)")
    g.add_argument(
        "--policy",
        default=default,
        help="none | smollm2 (offline) | openai | qwen2.5-3b | a local folder | a hub id",
    )
    g.add_argument("--tags", default=None, help="tag pair: reason/prompt (default), think/answer, prompt")
    add_dataclass_args(g, GenerationOptions, renames=GENERATION_FLAGS, skip=_NO_FLAG)
    g.add_argument("--policy-device", default="cpu")
    g.add_argument("--policy-dtype", default="auto", help=" | ".join(DTYPE_NAMES))
    g.add_argument("--api-base", default="http://127.0.0.1:8000/v1", help="OpenAI-compatible base URL")
    g.add_argument("--api-model", default=None, help="model name at the endpoint")
    g.add_argument("--api-key-env", default="OPENAI_API_KEY", help="environment variable holding the key")
    g.add_argument("--trust-remote-code", action="store_true", help="allow model repos to run their code")


def add_backbone_args(p: argparse.ArgumentParser, default: str = "sketch") -> None:
    g = p.add_argument_group("backbone (the text-to-image model)")
    g.add_argument(
        "--backbone",
        default=default,
        help="sketch | sketch-b (offline simulator, two calibrations) | flux-dev | flux-schnell | sd3 | "
        "pixart-sigma | sdxl | "
        "a diffusers folder or hub id",
    )
    g.add_argument("--model", default=None, help="local folder to load for a preset (same architecture)")
    g.add_argument("--device", default="cpu")
    g.add_argument("--dtype", default="auto", help=" | ".join(DTYPE_NAMES))
    g.add_argument("--cpu-offload", action="store_true", help="diffusers model CPU offload")
    g.add_argument("--height", type=int, default=None)
    g.add_argument("--width", type=int, default=None)
    g.add_argument("--steps", type=int, default=None, help="denoising steps")
    g.add_argument("--guidance", type=float, default=None)
    g.add_argument("--render-batch-size", type=int, default=4)


def generation_options(args: argparse.Namespace) -> Any:
    """The :class:`GenerationOptions` the decoding flags of :func:`add_policy_args` describe."""
    from reprompt.policy import GenerationOptions

    return config_from_args(GenerationOptions, args, GENERATION_FLAGS)


def policy_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """``load_policy`` keywords from the shared policy flags (JSON-able, so runs can record them)."""
    from reprompt.format import PromptSpec

    return {
        "prompt_spec": PromptSpec(tags=args.tags) if args.tags else None,
        "device": args.policy_device,
        "dtype": args.policy_dtype,
        "api_base": args.api_base,
        "api_model": args.api_model,
        "api_key_env": args.api_key_env,
        "trust_remote_code": args.trust_remote_code,
    }


def backbone_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """``load_backbone`` keywords from the shared backbone flags."""
    from reprompt.backbones import is_simulator

    if is_simulator(args.backbone):
        if args.model:
            raise RepromptError("--model is for diffusers presets; the sketch simulator has no weights")
        if args.height or args.width:
            return {"width": args.width or args.height, "height": args.height or args.width}
        return {}
    kw = {
        "model": args.model,
        "device": args.device,
        "dtype": args.dtype,
        "cpu_offload": args.cpu_offload,
        "height": args.height,
        "width": args.width,
        "steps": args.steps,
        "guidance": args.guidance,
        "batch_size": args.render_batch_size,
    }
    return {k: v for k, v in kw.items() if v is not None}


def policy_from_args(args: argparse.Namespace) -> Any:
    from reprompt.policy import load_policy

    return load_policy(args.policy, **policy_kwargs(args))


def backbone_from_args(args: argparse.Namespace) -> Any:
    from reprompt.backbones import load_backbone

    return load_backbone(args.backbone, **backbone_kwargs(args))


def read_prompts(text: str | None, file: str | None) -> list[str]:
    """Prompts from the positional argument or a file (one per line, blank lines and # comments skipped)."""
    prompts: list[str] = []
    if text is not None:
        prompts.append(text)
    if file:
        path = Path(file)
        if not path.exists():
            raise RepromptError(f"prompt file {file!r} does not exist")
        prompts += [
            ln.strip()
            for ln in path.read_text(encoding="utf-8").splitlines()
            if ln.strip() and not ln.lstrip().startswith("#")
        ]
        if not prompts:
            raise RepromptError(f"prompt file {file!r} has no prompts")
    if not prompts:
        raise RepromptError('give a prompt, e.g. reprompt rewrite "a photo of a cat", or --file prompts.txt')
    from reprompt.policy.base import check_prompt

    return [check_prompt(p) for p in prompts]
