"""T2I-CompBench (Huang et al., 2023): 8 categories, official file layout, transformers-based scorers.

``categories`` (task.yaml, prompt files, file names), ``nlp`` (prompt parsing), ``rules`` (pure decisions),
``metrics`` (BLIP-VQA, CLIP, depth, detector glue; ``DEVIATIONS``), ``generate`` (its runner layout) and
``evaluate``; the command line is :mod:`reprompt.cli.compbench`.
Names resolve lazily so importing this package never loads torch.
"""

from __future__ import annotations

from reprompt.utils.lazy import lazy_exports

_LAZY = {
    "CATEGORY_NAMES": "categories",
    "load_prompts": "categories",
    "image_name": "categories",
    "DEVIATIONS": "metrics",
    "BlipVqaScorer": "metrics",
    "ClipScorer": "metrics",
    "DepthEstimator": "metrics",
    "CompBenchRunConfig": "generate",
    "EvaluateConfig": "evaluate",
}


__getattr__, __dir__ = lazy_exports(__name__, {name: f".{module}" for name, module in _LAZY.items()})


__all__ = sorted(_LAZY)
