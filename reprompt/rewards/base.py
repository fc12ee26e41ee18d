"""What a reward component sees and returns, and where its sub-scores are logged.

A component is a small picklable object with a stable ``name`` (its log key) called on a
:class:`RewardBatch`: N completions, each already parsed and rendered K times by the composite reward. It returns
one ``float`` or ``None`` (missing: GRPO ignores it, it is never read as 0) per completion. Components get
images, never a pipeline, so rendering happens once and every image component shares it.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, Self, runtime_checkable

from reprompt.errors import ConfigError
from reprompt.utils.fields import build_dataclass

if TYPE_CHECKING:
    from PIL import Image

    from reprompt.backbones.base import TokenCount
    from reprompt.format import ParsedCompletion
    from reprompt.geneval.scene import SceneObject

logger = logging.getLogger(__name__)

Score = float | None
Images = list["Image.Image"]
"""A flat list of rendered images (an image component's input)."""
Scenes = list["list[SceneObject] | None"]
"""Per image, the scene a simulator drew (None for a real model: use a detector)."""
Metadata = list["dict[str, Any] | str | None"]
"""Per image, its prompt's GenEval metadata (a mapping, its JSON text, or None)."""


@dataclass
class RewardBatch:
    """N completions to score. Row i: the user's ``originals[i]``, the policy's ``completions[i]``,
    what the parser made of it, the prompt that was rendered (the parsed prompt, or the original on
    fallback), its GenEval ``metadata`` (or None), and its K images/scenes/seeds."""

    originals: list[str]
    completions: list[str]
    parsed: list[ParsedCompletion]
    prompts: list[str]
    metadata: list[dict[str, Any] | str | None]
    """GenEval metadata per row (a mapping, or its JSON text as a dataset column holds it), or None."""
    seeds: list[list[int]]
    groups: list[int]
    """Row i belongs to group ``groups[i]``: rows with the same original prompt share an id (and seeds)."""
    images: list[list[Image.Image]] | None = None
    scenes: list[list[list[SceneObject] | None]] | None = None
    """What a simulator drew for each image (None per image for real models)."""
    token_counter: Callable[[str], TokenCount] | None = None
    """The target backbone's text-encoder length, for the length reward."""

    def __len__(self) -> int:
        return len(self.completions)


@runtime_checkable
class RewardComponent(Protocol):
    """``component(batch) -> one score or None per completion``. ``name`` is the stable log key.

    A component may also set ``missing_is_failure = True`` when its None means the scorer failed (a judge
    API down) rather than "not applicable" (a prompt without GenEval metadata): training then stops when
    too many of its scores go missing (see ``RepromptGRPOConfig.max_missing_fraction``)."""

    name: str
    needs_images: bool

    def __call__(self, batch: RewardBatch) -> list[Score]: ...


class Component:
    """Base of a reward component: a subclass names its default log key and its options dataclass in its class
    line, so building one from a reward config's ``options`` mapping is written once (:meth:`from_options`,
    what the registry calls)."""

    name = "component"
    needs_images = False
    options_class: ClassVar[type | None] = None

    def __init_subclass__(cls, name: str | None = None, options: type | None = None, **kwargs: Any) -> None:
        """``class FormatReward(Component, name="format", options=FormatOptions)``."""
        super().__init_subclass__(**kwargs)
        cls.name = name or cls.name
        cls.options_class = options or cls.options_class

    def __init__(self, options: Any = None, name: str | None = None) -> None:
        cls = type(self)
        self.options = options if options is not None or cls.options_class is None else cls.options_class()
        self.name = self.__name__ = name or cls.name  # TRL logs a reward function by its __name__

    @classmethod
    def from_options(cls, options: Mapping[str, Any] | None = None) -> Self:
        """The component configured by a reward config's ``options.<name>`` mapping: unknown keys refused,
        YAML scalars coerced."""
        if cls.options_class is None:
            if options:
                raise ConfigError(f"reward component {cls.name!r} takes no options, got {sorted(options)}")
            return cls()
        return cls(build_dataclass(cls.options_class, dict(options or {}), f"{cls.name} option"))


class ImageComponent(Component):
    """Base for components that judge images against the ORIGINAL prompt.

    Subclasses implement :meth:`score_images` over a flat list of images; the K images of a completion
    are averaged (missing ones skipped; all missing -> None).
    """

    name = "image"
    needs_images = True
    missing_is_failure = True
    """A model scoring an image returns None only when it failed (subclasses override when not)."""

    def score_images(
        self, originals: list[str], images: Images, scenes: Scenes, metadata: Metadata
    ) -> list[Score]:
        """One score per image (None: missing), judged against ``originals[i]``, the user's prompt."""
        raise NotImplementedError

    def __call__(self, batch: RewardBatch) -> list[Score]:
        if batch.images is None:
            raise ValueError(
                f"reward {self.name!r} needs rendered images; the composite reward rendered none"
            )
        rows: list[int] = []
        originals, images, scenes, metadata = [], [], [], []
        for i, row_images in enumerate(batch.images):
            row_scenes = batch.scenes[i] if batch.scenes is not None else [None] * len(row_images)
            for image, scene in zip(row_images, row_scenes, strict=True):
                rows.append(i)
                originals.append(batch.originals[i])
                images.append(image)
                scenes.append(scene)
                metadata.append(batch.metadata[i])
        flat = self.score_images(originals, images, scenes, metadata) if images else []
        if len(flat) != len(images):
            raise RuntimeError(f"reward {self.name!r} returned {len(flat)} scores for {len(images)} images")
        per_row: list[list[float]] = [[] for _ in range(len(batch))]
        for i, s in zip(rows, flat, strict=True):
            if s is not None and math.isfinite(s):
                per_row[i].append(float(s))
        return [sum(v) / len(v) if v else None for v in per_row]


# ------------------------------------------------------------------------------------------- results


@dataclass
class ScoredBatch:
    """Everything the composite reward computed for one batch, one entry per completion in every list.

    ``components`` are raw scores (None = missing); ``normalized`` the values actually summed: normalized as
    configured (raw under ``none``), with each missing value replaced by the mean of its group's values of
    that component (0 when the whole group is missing), so a missing score neither rewards nor penalises a
    completion against the others of its prompt; ``total = sum(weight * normalized)``. ``baseline``/``improvement``
    hold the image components' score of the ORIGINAL prompt rendered with the same seeds, and the
    completion's gain over it. ``fallback_score`` names the rule that scored the completions with no usable
    prompt block; ``assigned[i]`` is True when row i's scores were assigned by that rule (``group_worst``:
    not rendered, the worst of its group) instead of measured.
    """

    components: dict[str, list[Score]]
    normalized: dict[str, list[Score]]
    weights: dict[str, float]
    total: list[Score]
    raw_total: list[Score]
    prompts: list[str]
    seeds: list[list[int]]
    format_ok: list[bool]
    fallback: list[bool]
    assigned: list[bool] | None = None
    fallback_score: str | None = None
    render_calls: int = 0
    baseline_render_calls: int = 0
    render_cache_hits: int = 0
    baseline: dict[str, list[Score]] | None = None
    improvement: dict[str, list[Score]] | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    images: list[list[Image.Image]] | None = None

    def __len__(self) -> int:
        return len(self.prompts)

    def to_dict(self, include_images: bool = False) -> dict[str, Any]:
        """JSON-safe dict (images as base64 PNG when ``include_images``)."""
        out = {
            "components": self.components,
            "normalized": self.normalized,
            "weights": self.weights,
            "total": self.total,
            "raw_total": self.raw_total,
            "prompts": self.prompts,
            "seeds": self.seeds,
            "format_ok": self.format_ok,
            "fallback": self.fallback,
            "assigned": self.assigned,
            "fallback_score": self.fallback_score,
            "render_calls": self.render_calls,
            "baseline_render_calls": self.baseline_render_calls,
            "render_cache_hits": self.render_cache_hits,
            "baseline": self.baseline,
            "improvement": self.improvement,
            "metrics": self.metrics,
        }
        if include_images and self.images is not None:
            from reprompt.utils.images import encode_png

            out["images"] = [[encode_png(im) for im in row] for row in self.images]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ScoredBatch:
        images = None
        if data.get("images") is not None:
            from reprompt.utils.images import decode_png

            images = [[decode_png(s) for s in row] for row in data["images"]]
        fields_ = {k: data[k] for k in cls.__dataclass_fields__ if k in data and k != "images"}
        return cls(**fields_, images=images)


# ------------------------------------------------------------------------------------------- metrics

# The batch being scored collects its components' sub-scores here (one store per batch, so concurrent
# batches in the reward service never mix). This is the only place a reward's metrics go: they reach
# ScoredBatch.metrics, and in training TRL's log line through the reward functions (rewards.trl).
_batch_metrics: ContextVar[dict[str, list[float]] | None] = ContextVar(
    "reprompt_reward_metrics", default=None
)


def log_metric(name: str, value: float) -> None:
    """Record a scalar sub-score (e.g. ``vlm_judge/failures``) of the batch being scored: it lands in its
    :class:`ScoredBatch` (``metrics``, averaged per batch). Outside a batch (a component called on its own)
    there is nothing to report to, and the value is dropped."""
    current = _batch_metrics.get()
    if current is not None:
        current.setdefault(name, []).append(float(value))


@contextlib.contextmanager
def collect_metrics() -> Iterator[dict[str, list[float]]]:
    """Collect ``log_metric`` calls made in this context (the composite reward wraps each batch in one)."""
    store: dict[str, list[float]] = {}
    token = _batch_metrics.set(store)
    try:
        yield store
    finally:
        _batch_metrics.reset(token)


def mean(values: Sequence[Score]) -> float | None:
    """Mean of the non-missing values (None when all are missing)."""
    vals = [v for v in values if v is not None]
    return sum(vals) / len(vals) if vals else None
