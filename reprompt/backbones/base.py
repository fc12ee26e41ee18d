"""The one call shape every text-to-image backbone has: ``render(prompts, seeds) -> RenderOutput``.

Rewards and evaluation receive images (and, for the sketch simulator, the scene it drew), never a
pipeline, so anything that renders can be plugged in.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from reprompt.errors import ConfigError, check_range
from reprompt.geneval.scene import SceneObject
from reprompt.utils.dtypes import Placement

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


@dataclass
class BackboneOptions(Placement):
    """How a diffusers backbone is loaded and run (the simulator takes only ``width``/``height`` and refuses
    steps, guidance, cache and compile). ``None`` keeps the preset's value (FLUX.1-dev: 1024², 50 steps,
    guidance 3.5, ...). The one home of these defaults: the loaders and the command-line flags read them here."""

    model: str | None = field(
        default=None, metadata={"help": "local folder to load for a preset (same architecture)"}
    )
    cpu_offload: bool = field(default=False, metadata={"help": "diffusers model CPU offload"})
    height: int | None = field(default=None, metadata={"help": "image height (default: the preset's)"})
    width: int | None = field(default=None, metadata={"help": "image width (default: the preset's)"})
    steps: int | None = field(default=None, metadata={"help": "denoising steps (default: the preset's)"})
    guidance: float | None = field(default=None, metadata={"help": "guidance scale (default: the preset's)"})
    batch_size: int = field(default=4, metadata={"help": "images per pipeline call"})
    cache: str | None = field(
        default=None,
        metadata={
            "help": "one of diffusers' step caches: first-block[:THRESHOLD], mag[:THRESHOLD], "
            "taylorseer[:INTERVAL], or KEY=VALUE fields of its diffusers config (first-block:threshold=0.12); "
            "changes the images, so check a setting with a paired same-seed run (README, Rewards)"
        },
    )
    compile: str | None = field(
        default=None,
        metadata={
            "help": "torch.compile the transformer: default, max-autotune, reduce-overhead, "
            "max-autotune-no-cudagraphs, or mode=/backend=/fullgraph= keywords (first call compiles)"
        },
    )


@dataclass(frozen=True)
class RenderSettings:
    """Settings for one render call; ``None`` keeps the backbone's own value. A backbone applies them to
    that call only and is never changed by them, so one backbone serves callers with different settings."""

    width: int | None = field(default=None, metadata={"help": "image width in pixels"})
    height: int | None = field(default=None, metadata={"help": "image height in pixels"})
    steps: int | None = field(default=None, metadata={"help": "denoising steps (diffusers backbones)"})
    guidance: float | None = field(default=None, metadata={"help": "guidance scale (diffusers backbones)"})
    negative_prompt: str | None = field(
        default=None,
        metadata={"help": "what the image should not show (pipelines with classifier-free guidance)"},
    )
    cache: str | None = field(
        default=None,
        metadata={
            "help": "diffusers step cache for this call (first-block:0.12, mag, taylorseer:4), or none"
        },
    )
    compile: str | None = field(
        default=None,
        metadata={
            "help": "torch.compile the transformer for this call (default, max-autotune, ...), or none"
        },
    )

    def __post_init__(self) -> None:
        from reprompt.backbones.acceleration import canonical_cache, canonical_compile

        # one spelling per setting, so equal settings are equal values (and cache keys)
        object.__setattr__(self, "cache", canonical_cache(self.cache))
        object.__setattr__(self, "compile", canonical_compile(self.compile))
        check_range("width", self.width, 16, 4096)
        check_range("height", self.height, 16, 4096)
        check_range("steps", self.steps, 1, 500)
        check_range("guidance", self.guidance, 0, 100)

    def given(self) -> dict[str, Any]:
        """The fields this call sets (the others keep the backbone's own value)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}


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

    @property
    def supported_settings(self) -> frozenset[str]:
        """The :class:`RenderSettings` fields a render call applies (the size always; steps, guidance and a
        negative prompt where the model has them). Callers refuse the others instead of ignoring them."""
        ...

    def settings(self) -> dict[str, Any]:
        """The settings that decide the images (size, steps, guidance, a simulator's rates ...)."""
        ...

    def source(self) -> tuple[str, str | None]:
        """(what was loaded: a folder, a hub id or a simulator name; its revision or None)."""
        ...

    def render(
        self, prompts: list[str], seeds: list[int], settings: RenderSettings | None = None
    ) -> RenderOutput:
        """Image k from (prompts[k], seeds[k]); ``settings`` change this call's size, steps or guidance."""
        ...

    def count_tokens(self, text: str) -> TokenCount:
        """Length of ``text`` in the encoder whose limit matters most (CLIP 77 for SD/FLUX)."""
        ...


SIZE_STEP = 16
"""Diffusers backbones render widths and heights in multiples of 16: FLUX packs 2x2 latent patches of an 8x VAE
and SD3 has 2x2 transformer patches (16), SDXL and PixArt need 8. Given another size, FLUX rounded it down
without a word (100 -> 96, recorded as 100) and the others raised deep in the pipeline."""


def check_size_step(width: int | None, height: int | None, what: str = "a diffusers backbone") -> None:
    """Refuse a width or height that is not a multiple of :data:`SIZE_STEP` (``None``: the backbone's own)."""
    for name, value in (("width", width), ("height", height)):
        if value is not None and value % SIZE_STEP:
            lower = value - value % SIZE_STEP
            raise ConfigError(
                f"{name} {value} is not a multiple of {SIZE_STEP}, which {what} needs: use {lower} or "
                f"{lower + SIZE_STEP}"
            )


SIZE_SETTINGS = frozenset({"width", "height"})
"""What every backbone applies: the image size."""
ACCELERATION_SETTINGS = frozenset({"cache", "compile"})
"""A step cache and torch.compile: diffusers backbones apply them (``none`` asks for nothing, so any backbone
takes it)."""


def unsupported_settings(backbone: Backbone, settings: RenderSettings | None) -> list[str]:
    """The fields ``settings`` sets that ``backbone`` does not apply (they would be ignored without a word)."""
    if settings is None:
        return []
    return [
        name
        for name, value in settings.given().items()
        if name not in backbone.supported_settings and not (name in ACCELERATION_SETTINGS and value == "none")
    ]


def applied_settings(backbone: Backbone, settings: RenderSettings | None = None) -> dict[str, Any]:
    """What one render call uses: ``settings`` over the backbone's own size, steps and guidance (the values
    recorded with every saved image)."""
    own = backbone.settings()
    out: dict[str, Any] = {"width": backbone.width, "height": backbone.height}
    for name in ("steps", "guidance"):
        if own.get(name) is not None and name in backbone.supported_settings:
            out[name] = own[name]
    return out | (settings.given() if settings is not None else {})


__all__ = [
    "ACCELERATION_SETTINGS",
    "SIZE_SETTINGS",
    "SIZE_STEP",
    "Backbone",
    "BackboneOptions",
    "RenderOutput",
    "RenderSettings",
    "TokenCount",
    "applied_settings",
    "check_size_step",
    "unsupported_settings",
]
