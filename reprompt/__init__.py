"""reprompt: reasoning-augmented prompt rewriting for text-to-image models.

Heavy modules (torch, transformers, diffusers) are imported lazily so ``import reprompt`` stays fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from reprompt._version import __version__
from reprompt.utils.lazy import lazy_exports

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


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)


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
