"""The one call shape every text-to-image backbone has: ``render(prompts, seeds) -> RenderOutput``.

Rewards and evaluation receive images (and, for the sketch simulator, the scene it drew), never a
pipeline, so anything that renders can be plugged in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from reprompt.geneval.scene import SceneObject

if TYPE_CHECKING:
    from PIL import Image


@dataclass
class TokenCount:
    """Length of a prompt in a backbone's text-encoder tokens (what the backbone really sees)."""

    tokens: int
    limit: int | None
    encoder: str

    @property
    def truncated(self) -> bool:
        return self.limit is not None and self.tokens > self.limit


@dataclass
class RenderOutput:
    images: list[Image.Image]
    seeds: list[int]
    prompts: list[str]
    # Per image: the objects actually drawn. None for real models (use a detector instead).
    scenes: list[list[SceneObject]] | None = None
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Backbone(Protocol):
    """A frozen text-to-image model. Image k is fully determined by (prompt k, seed k) and :meth:`settings`.

    ``width``/``height`` are the size of the images it renders; :meth:`settings` the values that decide its
    images (recorded with every benchmark run, so two runs pair up only if they match) and :meth:`source`
    what was loaded (resolved name or path, and a revision: hub commit, folder fingerprint or package
    version). Callers rely on these instead of probing attributes.
    """

    name: str

    @property
    def width(self) -> int: ...

    @property
    def height(self) -> int: ...

    def settings(self) -> dict[str, Any]:
        """The settings that decide the images (size, steps, guidance, a simulator's rates ...)."""
        ...

    def source(self) -> tuple[str, str | None]:
        """(what was loaded: a folder, a hub id or a simulator name; its revision or None)."""
        ...

    def render(self, prompts: list[str], seeds: list[int]) -> RenderOutput: ...

    def count_tokens(self, text: str) -> TokenCount:
        """Length of ``text`` in the encoder whose limit matters most (CLIP 77 for SD/FLUX)."""
        ...


__all__ = ["Backbone", "RenderOutput", "SceneObject", "TokenCount"]
