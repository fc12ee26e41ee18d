"""Network services: ``reprompt serve`` (images, chat completions, rewrites), the reward service
(render + score over HTTP) and its client.

Names resolve lazily so importing this package loads neither FastAPI nor torch.
"""

from __future__ import annotations

from reprompt.utils.lazy import lazy_exports

_LAZY = {
    "RewardClient": "reprompt.serving.reward_client",
    "create_app": "reprompt.serving.reward_service",
    "serve": "reprompt.serving.reward_service",
    "BackgroundServer": "reprompt.serving.http",
    "ServeConfig": "reprompt.serving.config",
    "ModelWorker": "reprompt.serving.batching",
    "encode_png": "reprompt.utils.images",
    "decode_png": "reprompt.utils.images",
}


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)


__all__ = list(_LAZY)
