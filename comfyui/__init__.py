"""ComfyUI custom-node package for reprompt (V3 schema): copy this folder into ``ComfyUI/custom_nodes/`` (or
``pip install`` it and add a one-line loader; see README.md). ComfyUI calls ``comfy_entrypoint``."""

from .nodes import comfy_entrypoint

__all__ = ["comfy_entrypoint"]
