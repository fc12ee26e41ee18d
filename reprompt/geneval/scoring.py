"""Glue: image(s) -> detector -> GenEval rules, plus records and the summary in GenEval's own format.

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
from reprompt.geneval.vocabulary import GENEVAL_TAGS

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


def summarize(results: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """GenEval's summary of per-image records (as ``summary_scores.py``), as fractions in [0, 1].

    Returns ``overall`` (unweighted mean of the per-tag means present), ``tags`` (tag -> mean image
    correctness), ``tag_counts`` (tag -> [correct, images]), ``correct_images`` (fraction of images
    correct), ``correct_prompts`` (fraction of prompts with at least one correct image; prompts are
    grouped by their metadata), ``n_images``, ``n_prompts`` and ``missing_tags`` (GenEval tags with no
    image: then ``overall`` is not comparable with published numbers).
    """
    counts: dict[str, list[int]] = {}
    prompts: dict[str, bool] = {}
    for rec in results:
        correct = bool(rec["correct"])
        tally = counts.setdefault(rec["tag"], [0, 0])
        tally[0] += correct
        tally[1] += 1
        meta = rec["metadata"]
        key = meta if isinstance(meta, str) else json.dumps(meta)
        prompts[key] = prompts.get(key, False) or correct
    ordered = [t for t in GENEVAL_TAGS if t in counts] + sorted(t for t in counts if t not in GENEVAL_TAGS)
    tags = {t: counts[t][0] / counts[t][1] for t in ordered}
    n = len(results)
    return {
        "overall": sum(tags.values()) / len(tags) if tags else 0.0,
        "tags": tags,
        "tag_counts": {t: counts[t] for t in ordered},
        "correct_images": sum(c for c, _ in counts.values()) / n if n else 0.0,
        "correct_prompts": sum(prompts.values()) / len(prompts) if prompts else 0.0,
        "n_images": n,
        "n_prompts": len(prompts),
        "missing_tags": [t for t in GENEVAL_TAGS if t not in counts],
    }
