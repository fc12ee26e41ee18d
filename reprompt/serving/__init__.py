"""Network services: the reward service (render + score over HTTP) and its client.

Names resolve lazily so importing this package loads neither FastAPI nor torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "RewardClient": "reprompt.serving.reward_client",
    "create_app": "reprompt.serving.reward_service",
    "serve": "reprompt.serving.reward_service",
    "BackgroundServer": "reprompt.serving.reward_service",
    "encode_png": "reprompt.serving.codec",
    "decode_png": "reprompt.serving.codec",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = list(_LAZY)
