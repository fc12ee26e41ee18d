"""Where the benchmark files are (GenEval's metadata, T2I-CompBench's prompt lists, the reference RL prompts):
one root for every script, test and example, ``$REPROMPT_BENCHMARKS``, by default ``shared/benchmarks``
beside the repository (``../shared/benchmarks`` from its root). The files are not part of the package: their
licences are the benchmarks' own."""

from __future__ import annotations

import os
from pathlib import Path

BENCHMARKS_ENV = "REPROMPT_BENCHMARKS"
DEFAULT_ROOT = Path(__file__).resolve().parents[3] / "shared" / "benchmarks"
"""``shared/benchmarks`` beside the repository that holds this package."""


def benchmarks_root() -> Path:
    """``$REPROMPT_BENCHMARKS`` when set, else :data:`DEFAULT_ROOT`."""
    value = os.environ.get(BENCHMARKS_ENV, "").strip()
    return Path(value).expanduser() if value else DEFAULT_ROOT


def benchmark_path(*parts: str) -> Path:
    """A file or folder under the benchmark root, e.g. ``benchmark_path("geneval", "evaluation_metadata.jsonl")``."""
    return benchmarks_root().joinpath(*parts)


GENEVAL_METADATA = ("geneval", "evaluation_metadata.jsonl")
"""GenEval's 553 prompts with their metadata, under the root."""

GENEVAL2_DATA = ("geneval2", "geneval2_data.jsonl")
"""GenEval 2's 800 prompts with their per-atom VQA lists (CC BY-NC 4.0: read from here, never copied)."""
