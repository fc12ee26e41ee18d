"""``RewardConfig``: which components, how they combine, what renders, and how the service runs.

Loaded from YAML (``configs/rewards/*.yaml``); every field has a help text. Component-specific settings
live under ``options: {name: {...}}`` and are checked by that component's own config dataclass.
:meth:`RewardConfig.load` is the one reader (a YAML path, a mapping, or a config): it coerces YAML scalars to
each field's type (``"false"`` is false) and names the key it cannot read; training parses the reward once,
into this typed config, and passes it on as it is.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reprompt.backbones.base import RenderSettings
from reprompt.errors import ConfigError, check_choice, check_range, did_you_mean
from reprompt.utils.endpoints import LOCALHOST, REWARD_TOKEN_ENV, check_port
from reprompt.utils.fields import build_dataclass
from reprompt.utils.hub import check_local_model
from reprompt.utils.io import read_yaml_mapping

NORMALIZATIONS = ("none", "group", "batch")
FALLBACK_SCORES = ("group_worst", "render_original", "render_a_photo")
"""How a completion with no usable prompt block is scored (see ``RewardConfig.fallback_score``)."""
SEED_SCHEDULES = ("per_step", "per_prompt")
"""Which render seeds a prompt gets each time training meets it (see ``RewardConfig.seed_schedule``)."""
A_PHOTO = "a photo"
"""What the reference code renders for a completion without an answer block (``render_a_photo``)."""
PER_COMPONENT = ("weights", "options", "std_floor")
"""The fields keyed by component name: each names only components of ``components``."""


@dataclass
class ServiceConfig:
    """The reward service (``reprompt serve-rewards``)."""

    host: str = field(default=LOCALHOST, metadata={"help": "bind address (0.0.0.0 exposes it: set a token)"})
    port: int = field(default=8765, metadata={"help": "TCP port"})
    token_env: str = field(
        default=REWARD_TOKEN_ENV,
        metadata={"help": "env var holding the bearer token; unset or empty = no auth (localhost only)"},
    )
    max_batch: int = field(default=512, metadata={"help": "most completions per request (413 beyond)"})
    max_request_bytes: int = field(
        default=4 * 1024 * 1024, metadata={"help": "largest request body in bytes (413 beyond)"}
    )
    max_completion_chars: int = field(
        default=20000, metadata={"help": "longest completion or prompt accepted, in characters (422 beyond)"}
    )
    max_queue: int = field(
        default=64, metadata={"help": "requests that may wait while one is scored (429 beyond)"}
    )

    def __post_init__(self) -> None:
        check_port("service.port", self.port)
        for name in ("max_batch", "max_completion_chars", "max_queue"):
            check_range(f"service.{name}", getattr(self, name), 1)
        check_range("service.max_request_bytes", self.max_request_bytes, 1024)


@dataclass
class RewardConfig:
    """The reward: ``R_total = sum_c weight_c * normalize(component_c)``."""

    # --- what renders ---
    backbone: str = field(
        default="sketch", metadata={"help": "backbone name (sketch, flux-dev, sd3, ...) or diffusers folder"}
    )
    backbone_model: str | None = field(
        default=None, metadata={"help": "local folder with the preset's architecture (e.g. a tiny model)"}
    )
    backbone_options: dict[str, Any] = field(
        default_factory=dict,
        metadata={
            "help": "extra load_backbone kwargs (device, steps, width, cache, compile, ...): the backbone as "
            "evaluation renders it (the held-out guard shares it, without a cache)"
        },
    )
    render: RenderSettings = field(
        default_factory=RenderSettings,
        metadata={
            "help": "the train-time render profile: settings of this reward's own renders (steps, width, "
            "height, guidance, cache, compile) over the backbone's; unset fields keep the backbone's full "
            "settings, which evaluation and the held-out guard keep. Fewer steps or a step cache change the "
            "images the reward scores: accept a profile after a paired same-seed check (README, Rewards)"
        },
    )
    # --- which components ---
    components: list[str] = field(
        default_factory=lambda: ["format", "length", "geneval"],
        metadata={"help": "registered component names (reprompt.rewards.component_names())"},
    )
    weights: dict[str, float] = field(
        default_factory=dict, metadata={"help": "weight per component (missing: 1.0)"}
    )
    options: dict[str, dict[str, Any]] = field(
        default_factory=dict, metadata={"help": "per-component settings, e.g. {geneval: {mode: partial}}"}
    )
    tags: str = field(default="reason/prompt", metadata={"help": "completion tag format"})
    # --- composition ---
    normalization: str = field(
        default="group",
        metadata={
            "help": "scale each component to unit variance before summing, with statistics over the "
            "completions of one prompt (group), the whole batch (batch), or not at all (none)"
        },
    )
    std_floor: dict[str, float] = field(
        default_factory=dict,
        metadata={
            "help": "per component, the smallest standard deviation used when normalizing, in the "
            "component's own units (e.g. {geneval: 0.1}): a group whose scores differ by noise, like "
            "[0.50, 0.51, 0.50, 0.50], then gets small advantages instead of +-1.7. Missing: 0 (no floor)"
        },
    )
    min_reason_words: int = field(
        default=3,
        metadata={
            "help": "a reason block with fewer words is not well-formed (format reward -1), so the "
            "reasoning cannot collapse to an empty block for free"
        },
    )
    fallback_score: str = field(
        default="group_worst",
        metadata={
            "help": "how a completion that writes no usable prompt block is scored. group_worst (training: "
            "no safe harbour): it is not rendered and every component gives it the worst score of its "
            "group's completions that wrote a prompt, so falling back never outscores writing a prompt; "
            "render_original: render the user's prompt, as inference does (what a user gets; the held-out "
            "reward uses it; in training a harbour: the original often beats a poor rewrite); "
            "render_a_photo: render 'a photo' (the reference code's rule)"
        },
    )
    images_per_completion: int = field(default=1, metadata={"help": "renders per completion (seeds)"})
    seed: int = field(
        default=0,
        metadata={
            "help": "base seed; a prompt's seeds derive from (seed, prompt) and the round (seed_schedule)"
        },
    )
    seed_schedule: str = field(
        default="per_step",
        metadata={
            "help": "per_step: a prompt's render seeds derive from (seed, training step, prompt), so each "
            "epoch scores it under new noise; per_prompt: from (seed, prompt) only, so a prompt meets the same "
            "seeds every epoch and its paired baseline is the same image, rendered once (baseline_cache). "
            "Within a group the seeds are shared either way; per_prompt gives up fresh noise across epochs"
        },
    )
    paired_baseline: bool = field(
        default=False,
        metadata={"help": "also render the ORIGINAL prompt with the same seeds and log each gain over it"},
    )
    dedupe_renders: bool = field(
        default=True,
        metadata={"help": "render identical (prompt, seed) pairs once (e.g. fallbacks equal the baseline)"},
    )
    baseline_cache: int = field(
        default=1024,
        metadata={
            "help": "keep up to this many baseline images (original prompt, seed) to serve again instead of "
            "rendering; a completion that writes the original prompt again is served too. Hits need "
            "seed_schedule: per_prompt (or the same step twice) and a size of at least prompts x "
            "images_per_completion; one cache per process. 0: off"
        },
    )
    # --- service ---
    service: ServiceConfig = field(
        default_factory=ServiceConfig, metadata={"help": "reward service settings"}
    )

    def __post_init__(self) -> None:
        # the backbone given as a folder path is there before a trainer loads its policy
        check_local_model("diffusers pipeline", self.backbone)
        check_local_model("diffusers pipeline", self.backbone_model)
        if isinstance(self.service, dict):
            self.service = build_dataclass(ServiceConfig, self.service, "reward config", prefix="service.")
        if isinstance(self.components, str):
            self.components = [c.strip() for c in self.components.split(",") if c.strip()]
        if not self.components:
            raise ConfigError("the reward needs at least one component (e.g. components: [format, length])")
        if len(set(self.components)) != len(self.components):
            raise ConfigError(f"duplicate reward components in {self.components}")
        check_choice("normalization", self.normalization, NORMALIZATIONS)
        check_range("images_per_completion", self.images_per_completion, 1)
        if isinstance(self.render, Mapping):
            self.render = build_dataclass(RenderSettings, self.render, "reward config", prefix="render.")
        check_choice("seed_schedule", self.seed_schedule, SEED_SCHEDULES)
        check_range("baseline_cache", self.baseline_cache, 0)  # 0: off
        check_choice("fallback_score", self.fallback_score, FALLBACK_SCORES)
        for key in PER_COMPONENT:
            for name in getattr(self, key):
                if name not in self.components:
                    raise ConfigError(
                        f"{key} names {name!r}, which is not in components {self.components}."
                        + did_you_mean(name, self.components)
                    )
        for name, w in self.weights.items():
            try:
                self.weights[name] = float(w)
            except (TypeError, ValueError):
                raise ConfigError(f"weight of {name!r} must be a number, got {w!r}") from None
        for name, floor in list(self.std_floor.items()):
            try:
                self.std_floor[name] = float(floor)
            except (TypeError, ValueError):
                raise ConfigError(f"std_floor of {name!r} must be a number, got {floor!r}") from None
            check_range(f"std_floor of {name!r}", self.std_floor[name], 0)
        check_range("min_reason_words", self.min_reason_words, 0)
        for name, opts in self.options.items():
            if not isinstance(opts, dict):
                raise ConfigError(f"options.{name} must be a mapping, got {type(opts).__name__}")

    def weight(self, name: str) -> float:
        return self.weights.get(name, 1.0)

    # --- io ---
    @classmethod
    def load(cls, source: RewardConfig | Mapping[str, Any] | str | Path) -> RewardConfig:
        """The reward config in ``source``: a config (returned as it is), a mapping, or a YAML path."""
        if isinstance(source, RewardConfig):
            return source
        return cls.from_dict(read_mapping(source))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RewardConfig:
        return build_dataclass(cls, data, "reward config")

    @classmethod
    def from_yaml(cls, path: str | Path) -> RewardConfig:
        return cls.from_dict(read_mapping(path))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def keep_components(data: Mapping[str, Any], components: list[str]) -> dict[str, Any]:
    """A reward config mapping narrowed to ``components`` (e.g. ``reprompt score --rewards``, or a run without
    the judge): each PER_COMPONENT field keeps only their entries, so a floor or weight of a dropped component
    does not make the config invalid."""
    out = dict(data, components=list(components))
    for key in PER_COMPONENT:
        out[key] = {k: v for k, v in (data.get(key) or {}).items() if k in components}
    return out


def read_mapping(source: Mapping[str, Any] | str | Path) -> dict[str, Any]:
    """The reward settings in a mapping or a YAML file, as a plain mapping (a top-level ``reward:`` section
    is allowed in a file); nothing is checked yet (:meth:`RewardConfig.from_dict` does that)."""
    if isinstance(source, Mapping):
        return dict(source)
    data = read_yaml_mapping(source, "reward config")
    return dict(data.get("reward", data))
