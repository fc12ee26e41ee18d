"""T2I-CompBench (Huang et al., 2023): 8 categories, official file layout, transformers-based scorers.

``categories`` (task.yaml, prompt files, file names), ``nlp`` (prompt parsing), ``rules`` (pure decisions),
``metrics`` (BLIP-VQA, CLIP, depth, detector glue; ``DEVIATIONS``), ``generate``, ``evaluate``, ``cli``.
Names resolve lazily so importing this package never loads torch.
"""

from __future__ import annotations

from typing import Any

_LAZY = {
    "CATEGORY_NAMES": "categories",
    "load_prompts": "categories",
    "image_name": "categories",
    "DEVIATIONS": "metrics",
    "BlipVqaScorer": "metrics",
    "ClipScorer": "metrics",
    "DepthEstimator": "metrics",
    "GenerateConfig": "generate",
    "EvaluateConfig": "evaluate",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = sorted(_LAZY)
