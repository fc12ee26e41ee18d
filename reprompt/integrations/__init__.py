"""reprompt where users already work: a diffusers pipeline wrapper (and, in the repository's ``comfyui/``
folder, a ComfyUI node built on :mod:`reprompt.integrations.common`).

Lazy: importing this package does not import diffusers.
"""

from __future__ import annotations

from reprompt.utils.lazy import lazy_exports

_LAZY = {
    "RePromptDiffusionPipeline": "reprompt.integrations.diffusers_wrapper",
    "RePromptDiffusionOutput": "reprompt.integrations.diffusers_wrapper",
    "wrap": "reprompt.integrations.diffusers_wrapper",
    "free_memory": "reprompt.integrations.common",
}


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)


__all__ = list(_LAZY)
