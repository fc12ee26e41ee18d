"""Glue: image(s) -> detector -> GenEval rules, and the per-image records in GenEval's own format. The summary
of a run (per-tag scores, overall, ...) is computed by the task's registered metrics
(:func:`reprompt.eval.geneval.evaluate.summarize`).

Per-image records follow the official ``results.jsonl`` schema (``evaluate_images.py``), so
GenEval's ``summary_scores.py`` can read our files and we can read theirs:

- ``filename`` (str): image path; ``tag`` (str); ``prompt`` (str); ``correct`` (bool);
- ``reason`` (str): failed checks joined by newlines, "" when correct;
- ``metadata`` (str): the prompt's metadata as a JSON string (prompts are grouped by this string);
- ``details`` (str): JSON ``{class: [[x1, y1, x2, y2, score], ...]}`` of the kept detections.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from reprompt.geneval.rules import (
    ClassifyColors,
    GenEvalOptions,
    GenEvalResult,
    needs_colors,
    score_detections,
)

if TYPE_CHECKING:
    from PIL import Image

    from reprompt.geneval.detectors import Detector


def _classify_fn(
    image: Image.Image, scene: Any, detector: Detector, color_classifier: Any
) -> ClassifyColors | None:
    """Colour source: an explicit classifier (``for_image`` object or plain callable), else the oracle's."""
    if color_classifier is not None:
        for_image: Callable[[Image.Image], ClassifyColors] | None = getattr(
            color_classifier, "for_image", None
        )
        return for_image(image) if for_image is not None else color_classifier
    colors_for = getattr(detector, "colors_for", None)
    if colors_for is not None and scene is not None:
        return colors_for(scene)
    return None


def score_images(
    metadatas: Sequence[Mapping[str, Any]],
    images: Sequence[Image.Image],
    scenes: Sequence[Any] | None = None,
    *,
    detector: Detector,
    color_classifier: Any = None,
    options: GenEvalOptions | None = None,
) -> list[GenEvalResult]:
    """Score a batch of images (one metadata per image); detection runs batched.

    ``color_classifier``: a ``ClipColorClassifier`` (anything with ``for_image``), a plain
    ``classify_colors`` callable, or None to use the detector's own colours (oracle) when it has them.
    """
    if len(metadatas) != len(images) or (scenes is not None and len(scenes) != len(images)):
        raise ValueError("metadatas, images (and scenes) must have the same length")
    all_detections = detector.detect(list(images), None if scenes is None else list(scenes))
    results = []
    for k, (metadata, image, detections) in enumerate(zip(metadatas, images, all_detections, strict=True)):
        scene = None if scenes is None else scenes[k]
        classify = _classify_fn(image, scene, detector, color_classifier) if needs_colors(metadata) else None
        results.append(score_detections(metadata, detections, classify, options))
    return results


def score_image(
    metadata: Mapping[str, Any],
    image: Image.Image,
    scene: Any = None,
    *,
    detector: Detector,
    color_classifier: Any = None,
    options: GenEvalOptions | None = None,
) -> GenEvalResult:
    """Score one image against one GenEval prompt (see ``score_images``)."""
    scenes = None if scene is None else [scene]
    return score_images(
        [metadata], [image], scenes, detector=detector, color_classifier=color_classifier, options=options
    )[0]


def make_record(filename: str, metadata: Mapping[str, Any], result: GenEvalResult) -> dict[str, Any]:
    """One ``results.jsonl`` row in the official schema (see the module docstring)."""
    return {
        "filename": filename,
        "tag": metadata["tag"],
        "prompt": metadata["prompt"],
        "correct": bool(result.correct),
        "reason": result.reason,
        "metadata": json.dumps(metadata),
        "details": json.dumps(result.details),
    }
