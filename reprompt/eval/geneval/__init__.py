"""GenEval (Ghosh et al., 2023): the official scoring rules, detectors and colour classifier.

``rules`` is the single implementation of the GenEval decision (used by the RL reward and the
evaluator); ``detectors`` and ``colors`` turn images into its inputs; ``scoring`` glues them together.
Names resolve lazily so importing this package never loads torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

_LAZY = {
    "COCO_CLASSES": "classes",
    "GENEVAL_COLORS": "classes",
    "GENEVAL_TAGS": "classes",
    "Detection": "rules",
    "GenEvalOptions": "rules",
    "GenEvalResult": "rules",
    "score_detections": "rules",
    "detections_from_boxes": "rules",
    "relative_position": "rules",
    "ClipColorClassifier": "colors",
    "DETECTORS": "detectors",
    "load_detector": "detectors",
    "score_image": "scoring",
    "score_images": "scoring",
    "make_record": "scoring",
    "summarize": "scoring",
}

if TYPE_CHECKING:  # pragma: no cover
    from reprompt.eval.geneval.classes import COCO_CLASSES, GENEVAL_COLORS, GENEVAL_TAGS
    from reprompt.eval.geneval.colors import ClipColorClassifier
    from reprompt.eval.geneval.detectors import DETECTORS, load_detector
    from reprompt.eval.geneval.rules import (
        Detection,
        GenEvalOptions,
        GenEvalResult,
        detections_from_boxes,
        relative_position,
        score_detections,
    )
    from reprompt.eval.geneval.scoring import make_record, score_image, score_images, summarize


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "COCO_CLASSES",
    "DETECTORS",
    "GENEVAL_COLORS",
    "GENEVAL_TAGS",
    "ClipColorClassifier",
    "Detection",
    "GenEvalOptions",
    "GenEvalResult",
    "detections_from_boxes",
    "load_detector",
    "make_record",
    "relative_position",
    "score_detections",
    "score_image",
    "score_images",
    "summarize",
]
assert sorted(__all__) == sorted(_LAZY)
