"""``geneval``: a verifiable reward for prompts that carry GenEval metadata (include/exclude clauses).

The decision is :func:`reprompt.eval.geneval.rules.score_detections`, the same function the evaluator
uses. ``strict`` gives 1/0 (GenEval's verdict); ``partial`` the fraction of clauses satisfied, a denser
signal. The objects come from a detector backend: ``oracle`` reads the scene a simulator (sketch) drew;
``mask2former`` (+ CLIP colours) or ``mmdet`` look at pixels. Rows without metadata score None (missing).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from reprompt.errors import ConfigError, RepromptError, did_you_mean
from reprompt.rewards.base import ImageComponent, Score, log_metric
from reprompt.rewards.config import build_options

if TYPE_CHECKING:
    from PIL import Image

    from reprompt.backbones.base import SceneObject

MODES = ("strict", "partial")


@dataclass
class GenEvalRewardOptions:
    mode: str = field(
        default="partial", metadata={"help": "strict (0/1 verdict) or partial (fraction of clauses)"}
    )
    detector: str = field(default="oracle", metadata={"help": "oracle (sketch scene), mask2former or mmdet"})
    detector_options: dict[str, Any] = field(
        default_factory=dict, metadata={"help": "detector kwargs (model_id_or_path, device, ...)"}
    )
    color_model: str | None = field(
        default=None,
        metadata={
            "help": "CLIP for colour clauses with a real detector (default openai/clip-vit-large-patch14)"
        },
    )
    device: str = field(default="cpu", metadata={"help": "device of the CLIP colour classifier"})
    rules: dict[str, Any] = field(
        default_factory=dict, metadata={"help": "GenEvalOptions overrides (thresholds); default: official"}
    )

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(
                f"geneval mode must be one of {MODES}, got {self.mode!r}." + did_you_mean(self.mode, MODES)
            )


def parse_metadata(value: Any) -> dict[str, Any] | None:
    """GenEval metadata from a dict, a JSON string or None; refuses anything else with a clear error."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as e:
            raise RepromptError(f"GenEval metadata is not valid JSON: {e}") from e
    if not isinstance(value, dict):
        raise RepromptError(
            f"GenEval metadata must be a mapping with include/exclude, got {type(value).__name__}"
        )
    # `datasets` stores dict columns as structs: absent keys come back as None. Drop them.
    value = {k: v for k, v in value.items() if v is not None}
    for key in ("include", "exclude"):
        if isinstance(value.get(key), list):
            value[key] = [
                {k: v for k, v in c.items() if v is not None} if isinstance(c, dict) else c
                for c in value[key]
            ]
    if not value.get("include") and not value.get("exclude"):
        return None  # a prompt without clauses has nothing to verify
    for key in ("include", "exclude"):
        clauses = value.get(key, [])
        if not isinstance(clauses, list) or any(
            not isinstance(c, dict) or "class" not in c or "count" not in c for c in clauses
        ):
            raise RepromptError(f"GenEval metadata {key!r} must be a list of {{class, count, ...}} clauses")
    value.setdefault("tag", "")
    value.setdefault("prompt", "")
    return value


class GenEvalReward(ImageComponent):
    """GenEval rules over a detector's view of each image."""

    def __init__(self, options: GenEvalRewardOptions | None = None, name: str = "geneval") -> None:
        from reprompt.eval.geneval import GenEvalOptions, load_detector

        self.options = options or GenEvalRewardOptions()
        self.name = self.__name__ = name
        try:
            self.rules = GenEvalOptions(**self.options.rules)
        except (TypeError, ValueError) as e:
            raise ConfigError(f"invalid geneval rules options: {e}") from e
        self.detector = load_detector(self.options.detector, **self.options.detector_options)
        self._colors: Any = None

    @property
    def needs_scenes(self) -> bool:
        return self.options.detector == "oracle"

    def _color_classifier(self) -> Any:
        if self.options.detector == "oracle":
            return None  # the drawn colours are known exactly
        if self._colors is None:
            from reprompt.eval.geneval import ClipColorClassifier

            kw: dict[str, Any] = {"device": self.options.device}
            if self.options.color_model:
                kw["model_id_or_path"] = self.options.color_model
            self._colors = ClipColorClassifier(**kw)
        return self._colors

    def score_images(
        self,
        originals: list[str],
        images: list[Image.Image],
        scenes: list[list[SceneObject] | None],
        metadata: list[dict[str, Any] | None],
    ) -> list[Score]:
        from reprompt.eval.geneval import score_images
        from reprompt.eval.geneval.rules import needs_colors

        metas = [parse_metadata(m) for m in metadata]
        rows = [i for i, m in enumerate(metas) if m is not None]
        out: list[Score] = [None] * len(images)
        if not rows:
            return out
        row_scenes = None
        if self.needs_scenes:
            if any(scenes[i] is None for i in rows):
                raise RepromptError(
                    "the geneval reward's oracle detector needs a simulator backbone (sketch) that reports "
                    "what it drew; for real models set options.geneval.detector: mask2former"
                )
            row_scenes = [scenes[i] for i in rows]
        colors = self._color_classifier() if any(needs_colors(metas[i]) for i in rows) else None  # type: ignore[arg-type]
        results = score_images(
            [metas[i] for i in rows],  # type: ignore[misc]
            [images[i] for i in rows],
            row_scenes,
            detector=self.detector,
            color_classifier=colors,
            options=self.rules,
        )
        for i, res in zip(rows, results, strict=True):
            out[i] = float(res.correct) if self.options.mode == "strict" else float(res.partial)
        log_metric(f"{self.name}/strict", sum(r.correct for r in results) / len(results))
        log_metric(f"{self.name}/partial", sum(r.partial for r in results) / len(results))
        log_metric(f"{self.name}/with_metadata", len(rows) / len(images))
        return out


def build_geneval(options: dict[str, Any] | None, **_: Any) -> GenEvalReward:
    return GenEvalReward(build_options(GenEvalRewardOptions, options, "geneval"))
