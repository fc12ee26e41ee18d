"""Argument groups shared by sub-commands: how to name a policy and a backbone on the command line.

Only argparse at import time; the builders import the heavy modules when called.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from reprompt.cli.options import add_dataclass_args, config_from_args
from reprompt.errors import RepromptError

# GenerationOptions fields whose flags have shorter names; guard_temperature has no flag.
GENERATION_FLAGS = {
    "num_candidates": "candidates",
    "seed": "policy_seed",
    "prompt_lookup_num_tokens": "prompt_lookup",
}
_NO_FLAG = ("guard_temperature",)
# PolicyLoadOptions / BackboneOptions fields whose flags say which model they are for
POLICY_LOAD_FLAGS = {"device": "policy_device", "dtype": "policy_dtype"}
BACKBONE_FLAGS = {"batch_size": "render_batch_size"}


def add_group(sub: argparse._SubParsersAction, name: str, help: str, metavar: str) -> Any:
    """``reprompt NAME`` as a group of sub-commands (``reprompt NAME`` alone prints its help); returns the
    group's sub-parsers."""
    p = sub.add_parser(name, help=help)
    p.set_defaults(func=lambda args: p.print_help() or 0)
    return p.add_subparsers(dest=f"{name}_command", metavar=metavar)


def add_policy_args(p: argparse.ArgumentParser, default: str = "smollm2") -> None:
    """``--policy`` and how to load it, then the decoding flags, generated from :class:`GenerationOptions`
    (each default and help text lives on its field)."""
    from reprompt.policy.base import GenerationOptions, PolicyLoadOptions

    g = p.add_argument_group("policy (the rewriter)")
    g.add_argument(
        "--policy",
        default=default,
        help="none | smollm2 (offline) | openai | qwen2.5-3b | a local folder | a hub id",
    )
    g.add_argument("--tags", default=None, help="tag pair: reason/prompt (default), think/answer, prompt")
    add_dataclass_args(g, GenerationOptions, renames=GENERATION_FLAGS, skip=_NO_FLAG)
    add_dataclass_args(g, PolicyLoadOptions, renames=POLICY_LOAD_FLAGS)


def add_backbone_args(p: argparse.ArgumentParser, default: str = "sketch") -> None:
    """``--backbone`` and how to load and run it, generated from :class:`BackboneOptions`."""
    from reprompt.backbones.base import BackboneOptions

    g = p.add_argument_group("backbone (the text-to-image model)")
    g.add_argument(
        "--backbone",
        default=default,
        help="sketch | sketch-b (offline simulator, two calibrations) | flux-dev | flux-schnell | sd3 | "
        "pixart-sigma | sdxl | "
        "a diffusers folder or hub id | remote:http://HOST:PORT[,...] (a render farm of OpenAI-compatible "
        "image servers: reprompt serve, vLLM-Omni, SGLang-Diffusion)",
    )
    add_dataclass_args(g, BackboneOptions, renames=BACKBONE_FLAGS)
    g.add_argument(
        "--render-profile",
        metavar="REWARD_YAML",
        default=None,
        help="render with the train-time profile of this reward config (its render: steps, size, guidance, "
        "cache, compile) instead of the backbone's full settings; the flags above still win. Run an "
        "evaluation with and without it and compare the two runs (reprompt eval compare)",
    )


def with_render_profile(backbone: str, options: Any, path: str) -> Any:
    """``options`` with the train-time render profile of the reward config at ``path`` filled in where the
    command line left a setting unset (flags win over the profile)."""
    import dataclasses

    from reprompt.rewards.config import RewardConfig

    reward = RewardConfig.load(path)
    if reward.backbone != backbone:
        raise RepromptError(
            f"--render-profile {path}: its profile is for backbone {reward.backbone!r}, but --backbone is "
            f"{backbone!r}"
        )
    profile = {k: v for k, v in dataclasses.asdict(reward.render).items() if v is not None}
    if not profile:
        raise RepromptError(
            f"--render-profile {path}: the reward config sets no render profile (render: ...)"
        )
    unset = {k: v for k, v in profile.items() if getattr(options, k) is None}
    return dataclasses.replace(options, **unset)


def generation_options(args: argparse.Namespace) -> Any:
    """The :class:`GenerationOptions` the decoding flags of :func:`add_policy_args` describe (checked)."""
    from reprompt.policy import GenerationOptions

    return config_from_args(GenerationOptions, args, GENERATION_FLAGS)


def policy_choice(args: argparse.Namespace) -> Any:
    """The :class:`~reprompt.model_spec.PolicyChoice` of the flags of :func:`add_policy_args`."""
    from reprompt.model_spec import PolicyChoice
    from reprompt.policy.base import PolicyLoadOptions

    return PolicyChoice(args.policy, config_from_args(PolicyLoadOptions, args, POLICY_LOAD_FLAGS), args.tags)


def backbone_choice(args: argparse.Namespace) -> Any:
    """The :class:`~reprompt.model_spec.BackboneChoice` of the flags of :func:`add_backbone_args`."""
    from reprompt.backbones.base import BackboneOptions
    from reprompt.model_spec import BackboneChoice

    options = config_from_args(BackboneOptions, args, BACKBONE_FLAGS)
    if getattr(args, "render_profile", None):
        options = with_render_profile(args.backbone, options, args.render_profile)
    return BackboneChoice(args.backbone, options)


def model_spec(args: argparse.Namespace) -> Any:
    """The one typed :class:`~reprompt.model_spec.ModelSpec` of a command's policy, backbone and decoding
    flags. Building it checks them all, so a command calls this before it loads any model."""
    from reprompt.model_spec import ModelSpec

    return ModelSpec(policy_choice(args), backbone_choice(args), generation_options(args))


MODEL_FIELDS = ("policy", "policy_kwargs", "generation", "backbone", "backbone_kwargs")
"""The fields of a benchmark run config that name its models: set from the policy and backbone flags."""


def add_run_args(p: argparse.ArgumentParser, config: type) -> None:
    """A benchmark run's flags: its run config's own fields (not :data:`MODEL_FIELDS`), then the backbone and
    the policy, which defaults to ``none`` (a benchmark measures the backbone unless a rewriter is named)."""
    add_dataclass_args(p, config, skip=MODEL_FIELDS)
    add_backbone_args(p)
    add_policy_args(p, default="none")


def model_fields(spec: Any) -> dict[str, Any]:
    """The :data:`MODEL_FIELDS` of a run config, from a :class:`~reprompt.model_spec.ModelSpec`."""
    return {
        "policy": spec.policy.name,
        "policy_kwargs": spec.policy.load_kwargs(),
        "generation": spec.generation,
        "backbone": spec.backbone.name,
        "backbone_kwargs": spec.backbone.load_kwargs(),
    }


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
