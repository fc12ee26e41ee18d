"""GenEval (Ghosh et al., 2023) as definitions: its vocabulary, metadata checks, decision rules and scorer.

``rules.score_detections`` is the single implementation of the GenEval decision; the ``sketch`` simulator
and the synthetic data speak its ``vocabulary``; ``metadata`` checks a prompt's clauses; ``scene`` is what a
simulator drew; ``detectors`` and ``colors`` turn images into the rules' inputs; ``scorer`` builds the one
scorer (detector + colour classifier + options) that the reward, the evaluator and the benchmarks share.
Running the benchmark (generating a run folder, scoring it) is :mod:`reprompt.eval.geneval`.

Names resolve lazily so importing this package never loads torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from reprompt.utils.lazy import lazy_exports

_LAZY = {
    "COCO_CLASSES": ".vocabulary",
    "GENEVAL_COLORS": ".vocabulary",
    "GENEVAL_TAGS": ".vocabulary",
    "Detection": ".rules",
    "GenEvalOptions": ".rules",
    "GenEvalResult": ".rules",
    "RELATIONS": ".rules",
    "score_detections": ".rules",
    "detections_from_boxes": ".rules",
    "relative_position": ".rules",
    "MetadataError": ".metadata",
    "validate_metadata": ".metadata",
    "read_metadata_file": ".metadata",
    "SceneObject": ".scene",
    "ClipColorClassifier": ".colors",
    "DETECTORS": ".detectors",
    "load_detector": ".detectors",
    "score_image": ".scoring",
    "score_images": ".scoring",
    "make_record": ".scoring",
    "ScorerConfig": ".scorer",
    "GenEvalScorer": ".scorer",
    "build_scorer": ".scorer",
}

if TYPE_CHECKING:  # pragma: no cover
    from reprompt.geneval.colors import ClipColorClassifier
    from reprompt.geneval.detectors import DETECTORS, load_detector
    from reprompt.geneval.metadata import MetadataError, read_metadata_file, validate_metadata
    from reprompt.geneval.rules import (
        RELATIONS,
        Detection,
        GenEvalOptions,
        GenEvalResult,
        detections_from_boxes,
        relative_position,
        score_detections,
    )
    from reprompt.geneval.scene import SceneObject
    from reprompt.geneval.scorer import GenEvalScorer, ScorerConfig, build_scorer
    from reprompt.geneval.scoring import make_record, score_image, score_images
    from reprompt.geneval.vocabulary import COCO_CLASSES, GENEVAL_COLORS, GENEVAL_TAGS

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)

__all__ = [
    "COCO_CLASSES",
    "ClipColorClassifier",
    "DETECTORS",
    "Detection",
    "GENEVAL_COLORS",
    "GENEVAL_TAGS",
    "GenEvalOptions",
    "GenEvalResult",
    "GenEvalScorer",
    "MetadataError",
    "RELATIONS",
    "SceneObject",
    "ScorerConfig",
    "build_scorer",
    "detections_from_boxes",
    "load_detector",
    "make_record",
    "read_metadata_file",
    "relative_position",
    "score_detections",
    "score_image",
    "score_images",
    "validate_metadata",
]
