"""Rewards: named components, the render-once composite reward that combines them, and TRL adapters.

Names turn into components here only (:data:`COMPONENTS`, loaded lazily so importing this package never
imports torch). ``build_rewards(config)`` returns a :class:`CompositeReward`; its ``score(originals,
completions, metadata, seeds, round)`` is what GRPO, evaluation, the CLI and the reward service call.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reprompt.errors import ConfigError, did_you_mean
from reprompt.utils.lazy import lazy_exports

if TYPE_CHECKING:
    from reprompt.backbones.base import Backbone
    from reprompt.rewards.base import RewardComponent
    from reprompt.rewards.composite import CompositeReward
    from reprompt.rewards.config import RewardConfig

# name -> "module:builder"; a builder takes (options: dict | None) and returns a component (the built-in
# components: their class's ``from_options``).
COMPONENTS: dict[str, str | Callable[..., Any]] = {
    "format": "reprompt.rewards.format_length:FormatReward.from_options",
    "length": "reprompt.rewards.format_length:LengthReward.from_options",
    "geneval": "reprompt.rewards.geneval_reward:GenEvalReward.from_options",
    "imagereward": "reprompt.rewards.imagereward:ImageRewardScorer.from_options",
    "clipscore": "reprompt.rewards.clipscore:ClipScore.from_options",
    "vlm_judge": "reprompt.rewards.vlm_judge:VLMJudge.from_options",
    "faithful": "reprompt.rewards.faithful:FaithfulReward.from_options",
}

# One-line descriptions for --help and `reprompt score --list`.
DESCRIPTIONS = {
    "format": "+1 well-formed <reason>…</reason><prompt>…</prompt>, -1 otherwise (paper's structure reward)",
    "length": "+1 if the prompt's backbone-encoder token count is in [15, limit], -1 otherwise",
    "geneval": "GenEval rules on a detector's view (oracle scene for sketch): strict 0/1 or partial",
    "imagereward": "ImageReward-v1.0 (BLIP + MLP) human-preference score",
    "clipscore": "CLIP image-text cosine similarity",
    "vlm_judge": "a VLM rates image vs. original prompt 0-10, mapped to [-1, 1] (OpenAI API or local)",
    "faithful": "share of the original's objects, counts, colors, quoted text and names the rewrite keeps",
}


def component_names() -> list[str]:
    return list(COMPONENTS)


def register_component(name: str, builder: str | Callable[..., Any]) -> None:
    """Add a component: ``builder(options) -> component`` (or a "module:function" path)."""
    COMPONENTS[name] = builder


def build_component(name: str, options: dict[str, Any] | None = None) -> RewardComponent:
    """One component by name, configured by its ``options`` mapping."""
    if name not in COMPONENTS:
        raise ConfigError(
            f"unknown reward component {name!r}.{did_you_mean(name, component_names())} "
            f"Available: {', '.join(component_names())}"
        )
    builder: Any = COMPONENTS[name]
    if isinstance(builder, str):
        module, path = builder.split(":")
        builder = functools.reduce(getattr, path.split("."), importlib.import_module(module))
    return builder(options)


def build_rewards(
    config: RewardConfig | dict[str, Any] | str | Path, backbone: Backbone | None = None
) -> CompositeReward:
    """The composite reward for a config (object, mapping or YAML path); ``backbone`` overrides its own."""
    from reprompt.rewards.composite import CompositeReward
    from reprompt.rewards.config import RewardConfig

    return CompositeReward.from_config(RewardConfig.load(config), backbone=backbone)


_LAZY = {
    "RewardConfig": "reprompt.rewards.config",
    "ServiceConfig": "reprompt.rewards.config",
    "CompositeReward": "reprompt.rewards.composite",
    "derive_seeds": "reprompt.rewards.composite",
    "normalize": "reprompt.rewards.composite",
    "RewardBatch": "reprompt.rewards.base",
    "ScoredBatch": "reprompt.rewards.base",
    "RewardComponent": "reprompt.rewards.base",
    "ImageComponent": "reprompt.rewards.base",
    "log_metric": "reprompt.rewards.base",
    "make_trl_reward_funcs": "reprompt.rewards.trl",
}


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)


__all__ = [
    "COMPONENTS",
    "DESCRIPTIONS",
    "build_component",
    "build_rewards",
    "component_names",
    "register_component",
    *_LAZY,
]
