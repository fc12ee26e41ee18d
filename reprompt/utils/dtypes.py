"""Torch dtype names, parsed in one place so ``auto`` means the same thing for every model reprompt loads.

``auto`` is bfloat16 on a CUDA device and float32 elsewhere (CPU kernels for bfloat16 are slow or missing).
When no device is given (training, where accelerate picks it), the device is CUDA if one is available.
"""

from __future__ import annotations

from typing import Any

from reprompt.errors import RepromptError

DTYPE_NAMES: tuple[str, ...] = ("auto", "float32", "bfloat16", "float16")
_ALIASES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}


def resolve_dtype(dtype: str | Any | None, device: str | None = None) -> Any:
    """A ``torch.dtype`` from ``auto``/None, a name (``float32``, ``bf16``, ...) or a dtype (returned as is)."""
    import torch

    if dtype is None or dtype == "auto":
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        return torch.bfloat16 if str(device).startswith("cuda") else torch.float32
    if isinstance(dtype, str):
        name = _ALIASES.get(dtype, dtype)
        if name not in DTYPE_NAMES:
            raise RepromptError(f"unknown dtype {dtype!r}: use {', '.join(DTYPE_NAMES)}")
        return getattr(torch, name)
    return dtype
