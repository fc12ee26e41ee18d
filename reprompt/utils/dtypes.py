"""Torch dtype names, parsed in one place so ``auto`` means the same thing for every model reprompt loads.

``auto`` is bfloat16 on a CUDA device and float32 elsewhere (CPU kernels for bfloat16 are slow or missing).
When no device is given (training, where accelerate picks it), the device is CUDA if one is available.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from reprompt.errors import check_choice

DTYPE_NAMES: tuple[str, ...] = ("auto", "float32", "bfloat16", "float16")
_ALIASES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}
DTYPE_HELP = "auto (bfloat16 on CUDA, float32 elsewhere), float32, bfloat16 or float16"


def check_dtype(dtype: str | None, what: str = "dtype") -> None:
    """Raise a :class:`ConfigError` naming ``what`` unless ``dtype`` is a name :func:`resolve_dtype` knows."""
    if dtype is not None:
        check_choice(what, dtype, (*DTYPE_NAMES, *_ALIASES))


@dataclass
class Placement:
    """Where a loaded model runs and in which precision: the option pair of every component that loads a
    model (policy, backbone, reward models). One help text and one check, made when the options are built,
    so a misspelt dtype fails before any model loads. Subclasses that add ``__post_init__`` call super's."""

    device: str = field(default="cpu", metadata={"help": "torch device: cpu, cuda, cuda:1, mps"})
    dtype: str = field(default="auto", metadata={"help": f"{DTYPE_HELP} (or fp32, bf16, fp16)"})

    def __post_init__(self) -> None:
        check_dtype(self.dtype, f"{type(self).__name__}.dtype")


def resolve_dtype(dtype: str | Any | None, device: str | None = None) -> Any:
    """A ``torch.dtype`` from ``auto``/None, a name (``float32``, ``bf16``, ...) or a dtype (returned as is)."""
    import torch

    if dtype is None or dtype == "auto":
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        return torch.bfloat16 if str(device).startswith("cuda") else torch.float32
    if isinstance(dtype, str):
        check_dtype(dtype)
        return getattr(torch, _ALIASES.get(dtype, dtype))
    return dtype
