"""Shared test setup: offline, single-threaded, and tiny models built once per session.

Environment variables are set at import, before any test imports torch or transformers: with two threads and
a busy second core, tiny-model steps run ~100x slower, and tests must never reach a model hub.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
for _var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE", "HF_HUB_DISABLE_TELEMETRY"):
    os.environ.setdefault(_var, "1")

REPO_ROOT = Path(__file__).resolve().parents[1]


def _single_thread_torch() -> None:
    import torch

    torch.set_num_threads(1)


if "torch" in sys.modules:  # a plugin imported torch before OMP_NUM_THREADS was set
    _single_thread_torch()


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """Return ``get(name, seed=0) -> Path``, building each tiny model once per session.

    Models go to ``$REPROMPT_TEST_CACHE`` when set (reused across sessions; the zoo rebuilds stale ones),
    else to a session temporary folder.
    """
    _single_thread_torch()
    from reprompt.testing import build_tiny

    cache = os.environ.get("REPROMPT_TEST_CACHE")
    root = Path(cache).expanduser() if cache else tmp_path_factory.mktemp("tiny-zoo")

    def get(name: str, seed: int = 0) -> Path:
        return build_tiny(name, root / (name if seed == 0 else f"{name}-seed{seed}"), seed=seed)

    return get


@pytest.fixture(scope="session")
def shared_benchmarks() -> Path:
    """The benchmark files (GenEval, T2I-CompBench, RL prompts) under ``$REPROMPT_BENCHMARKS``, by default
    ``../shared/benchmarks`` beside the repository (:mod:`reprompt.utils.benchmarks`); skips if absent."""
    from reprompt.utils.benchmarks import benchmarks_root

    path = benchmarks_root()
    if not path.is_dir():
        pytest.skip(f"benchmark data not found at {path} (set REPROMPT_BENCHMARKS)")
    return path
