"""reprompt: reasoning-augmented prompt rewriting for text-to-image models.

Heavy modules (torch, transformers, diffusers) are imported lazily so ``import reprompt`` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_LAZY = {
    "RePrompter": "reprompt.policy",
    "Rewrite": "reprompt.policy",
    "load_policy": "reprompt.policy",
    "load_backbone": "reprompt.backbones",
    "RenderOutput": "reprompt.backbones.base",
    "TagFormat": "reprompt.format",
    "parse_completion": "reprompt.format",
    "build_messages": "reprompt.format",
    "RepromptError": "reprompt.errors",
    "RePromptPipeline": "reprompt.pipeline",
}

if TYPE_CHECKING:  # pragma: no cover
    from reprompt.backbones import load_backbone
    from reprompt.backbones.base import RenderOutput
    from reprompt.errors import RepromptError
    from reprompt.format import TagFormat, build_messages, parse_completion
    from reprompt.pipeline import RePromptPipeline
    from reprompt.policy import RePrompter, Rewrite, load_policy


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'reprompt' has no attribute {name!r}")


__all__ = [
    "RePromptPipeline",
    "RePrompter",
    "RenderOutput",
    "RepromptError",
    "Rewrite",
    "TagFormat",
    "__version__",
    "build_messages",
    "load_backbone",
    "load_policy",
    "parse_completion",
]
