"""ComfyUI custom-node package for reprompt: copy this folder into ``ComfyUI/custom_nodes/`` (or
``pip install`` it and add a one-line loader; see README.md). ComfyUI reads the two mappings below."""

from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
