"""``geneval``: a verifiable reward for prompts that carry GenEval metadata (include/exclude clauses).

The scorer is built by :func:`reprompt.geneval.scorer.build_scorer` from the same :class:`ScorerConfig`
(same fields, same defaults) as ``reprompt eval geneval``, so a reward and an evaluation with the same
settings judge an image identically. ``strict`` gives 1/0 (GenEval's verdict); ``partial`` the fraction of
clauses satisfied, a denser signal. The objects come from a detector backend: ``oracle`` reads the scene a simulator (sketch) drew;
``mask2former`` (+ CLIP colours) or ``mmdet`` look at pixels. Rows without metadata score None (missing).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from reprompt.errors import RepromptError, check_choice
from reprompt.geneval.scorer import GenEvalScorer, ScorerConfig, build_scorer
from reprompt.rewards.base import ImageComponent, Images, Metadata, RewardBatch, Scenes, Score, log_metric

if TYPE_CHECKING:
    pass

MODES = ("strict", "partial")


@dataclass
class GenEvalRewardOptions(ScorerConfig):
    """The evaluator's scorer settings (:class:`~reprompt.geneval.scorer.ScorerConfig`: detector, colours,
    official thresholds, same defaults) plus how a verdict becomes a reward."""

    mode: str = field(
        default="partial", metadata={"help": "strict (0/1 verdict) or partial (fraction of clauses)"}
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice("geneval mode", self.mode, MODES)


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
    from reprompt.geneval.metadata import validate_metadata

    value = validate_metadata(value)  # refuses clauses that cannot be scored, naming the field
    value.setdefault("tag", "")
    value.setdefault("prompt", "")
    return value


class GenEvalReward(ImageComponent, name="geneval", options=GenEvalRewardOptions):
    """GenEval rules over a detector's view of each image, scored by the evaluator's scorer factory."""

    missing_is_failure = False  # None means "this prompt has no metadata", not a failure

    options: GenEvalRewardOptions

    def __init__(self, options: GenEvalRewardOptions | None = None, name: str | None = None) -> None:
        super().__init__(options, name)
        self._scorers: dict[bool, GenEvalScorer] = {}  # by "the images came with scenes"

    def __call__(self, batch: RewardBatch) -> list[Score]:
        for m in batch.metadata:  # bad metadata is the caller's error even on a row that was not rendered
            parse_metadata(m)
        return super().__call__(batch)

    def scorer(self, has_scenes: bool) -> GenEvalScorer:
        if has_scenes not in self._scorers:
            self._scorers[has_scenes] = build_scorer(self.options, has_scenes=has_scenes)
        return self._scorers[has_scenes]

    def score_images(
        self, originals: list[str], images: Images, scenes: Scenes, metadata: Metadata
    ) -> list[Score]:
        metas = [parse_metadata(m) for m in metadata]
        rows = [i for i, m in enumerate(metas) if m is not None]
        out: list[Score] = [None] * len(images)
        if not rows:
            return out
        has_scenes = all(scenes[i] is not None for i in rows)
        results = self.scorer(has_scenes).score(
            [metas[i] for i in rows],  # type: ignore[misc]
            [images[i] for i in rows],
            [scenes[i] for i in rows],
        )
        for i, res in zip(rows, results, strict=True):
            out[i] = float(res.correct) if self.options.mode == "strict" else float(res.partial)
        log_metric(f"{self.name}/strict", sum(r.correct for r in results) / len(results))
        log_metric(f"{self.name}/partial", sum(r.partial for r in results) / len(results))
        log_metric(f"{self.name}/with_metadata", len(rows) / len(images))
        return out
