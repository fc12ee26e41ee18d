"""Test stand-in for ComfyUI's ``comfy_api.latest``: ``io`` and ``ComfyExtension`` (see ../../README.md)."""

from __future__ import annotations

from abc import ABC, abstractmethod

from . import _io as io


class ComfyExtension(ABC):
    async def on_load(self) -> None:  # noqa: B027 (ComfyUI's optional hook)
        """Called when an extension is loaded."""

    @abstractmethod
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        """The nodes this extension provides."""


__all__ = ["ComfyExtension", "io"]
