"""What the UI, the ComfyUI node and the diffusers wrapper share besides :class:`~reprompt.pipeline.RePromptPipeline`
(which rewrites, chooses the candidate and renders for all of them): which guard modes exist, which device
to use, and giving memory back after use (peers' most common complaint is an enhancer that keeps the GPU
full).

Only the standard library at import time; torch is touched only if something already imported it.
"""

from __future__ import annotations

import gc
import sys


def guard_modes() -> tuple[str, ...]:
    """The intent guard's modes (``off``, ``warn``, ``retry``, ``fallback``), or ``()`` in a build
    without :mod:`reprompt.guard`; front ends show a guard control only when there is one."""
    try:
        from reprompt.guard import GUARD_MODES
    except ImportError:
        return ()
    return tuple(GUARD_MODES)


def auto_device() -> str:
    """``cuda`` when a GPU is visible, else ``mps`` on Apple silicon, else ``cpu``."""
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def free_memory() -> None:
    """Collect garbage and return cached accelerator memory to the driver.

    Call it after dropping the last reference to a model: the weights are freed by the collector, and
    the CUDA caching allocator keeps the blocks until ``empty_cache``.
    """
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is None:
        return
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    mps = getattr(torch, "mps", None)
    if (
        mps is not None
        and getattr(torch.backends, "mps", None) is not None
        and torch.backends.mps.is_available()
    ):
        mps.empty_cache()
