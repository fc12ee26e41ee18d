"""The GenEval benchmark run: ``generate`` writes the official folder layout (resumable, shardable) and
``evaluate`` scores a run folder. GenEval's definitions and scorer (vocabulary, rules, detectors, colour
classifier) live in :mod:`reprompt.geneval`; the names below are re-exported from there for old imports.
"""

from __future__ import annotations

from reprompt.utils.lazy import lazy_exports

_LAZY = {
    name: "reprompt.geneval"
    for name in (
        "COCO_CLASSES",
        "GENEVAL_COLORS",
        "GENEVAL_TAGS",
        "Detection",
        "GenEvalOptions",
        "GenEvalResult",
        "score_detections",
        "detections_from_boxes",
        "relative_position",
        "ClipColorClassifier",
        "DETECTORS",
        "load_detector",
        "score_image",
        "score_images",
        "make_record",
        "summarize",
    )
}

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)

__all__ = sorted(_LAZY)
