"""diffusers' own step caches and ``torch.compile``, as options of a diffusers backbone.

``--cache first-block:0.12`` names one of diffusers' cache configs (never a cache of our own) and
``--compile default`` a ``torch.compile`` mode for the pipeline's transformer. Both are written as
``NAME[:VALUE | :KEY=VALUE,...]``: a bare value sets the method's main knob, ``KEY=VALUE`` pairs set the
fields of diffusers' config by their own names (``first-block:threshold=0.12``,
``taylorseer:cache_interval=4,disable_cache_before_step=3``; ``mode=max-autotune,fullgraph=true``).

Parsing is pure (no torch, no diffusers), so a command checks a spec before any model loads;
:class:`Acceleration` applies one to a pipeline when a render call needs it (imports diffusers then).

What each cache decides on matters for the Backbone contract (image k depends only on prompt k, seed k
and the settings): First-Block-Cache skips the rest of the transformer when the first block's output barely
changed, measured over the whole batch, so the images of one batch would decide each other's skips; a
backbone renders one image per pipeline call under it. MagCache decides from precomputed magnitude ratios
and TaylorSeer from a fixed step schedule: neither reads the batch, so they keep batching.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from reprompt.errors import RepromptError, did_you_mean

logger = logging.getLogger(__name__)

OFF = "none"
"""The spec that turns a cache (or compilation) off for one call, over a backbone's own default."""


@dataclass(frozen=True)
class CacheMethod:
    """One of diffusers' step caches, by our name."""

    config: str = field(metadata={"help": "the diffusers config class"})
    knob: str = field(metadata={"help": "the field a bare value sets (first-block:0.12)"})
    per_batch: bool = field(
        metadata={"help": "its skip decision reads the whole batch: render one image per pipeline call"}
    )
    summary: str = field(default="", metadata={"help": "one line for --help and errors"})


CACHES: dict[str, CacheMethod] = {
    "first-block": CacheMethod(
        "FirstBlockCacheConfig",
        "threshold",
        per_batch=True,
        summary="First-Block-Cache: skip the other blocks while the first block's residual changes by less "
        "than the threshold (relative mean absolute change; diffusers' default 0.05)",
    ),
    "mag": CacheMethod(
        "MagCacheConfig",
        "threshold",
        per_batch=False,
        summary="MagCache: skip the blocks while the accumulated error of precomputed magnitude ratios stays "
        "under the threshold (diffusers ships the ratios for FLUX only)",
    ),
    "taylorseer": CacheMethod(
        "TaylorSeerCacheConfig",
        "cache_interval",
        per_batch=False,
        summary="TaylorSeer: compute every cache_interval-th step, predict the attention outputs in between "
        "by a Taylor expansion",
    ),
}

COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
"""``torch.compile`` modes a bare ``--compile MODE`` names; ``backend=NAME`` picks another backend (e.g.
``eager``: capture the graphs without generating code, which checks compilation but speeds nothing up)."""
COMPILE_KEYS = ("mode", "backend", "fullgraph", "dynamic")
COMPILE = "compile"  # the name of every parsed compile spec


@dataclass(frozen=True)
class Spec:
    """A parsed ``NAME[:VALUE | :KEY=VALUE,...]``; ``text`` is its canonical spelling (a cache key)."""

    name: str
    options: tuple[tuple[str, Any], ...] = ()

    @property
    def off(self) -> bool:
        return self.name == OFF

    def kwargs(self) -> dict[str, Any]:
        return dict(self.options)

    @property
    def text(self) -> str:
        pairs = ",".join(f"{k}={_show(v)}" for k, v in self.options)
        if self.name == COMPILE:  # a compile spec: its mode alone, or its keywords
            return str(self.options[0][1]) if [k for k, _ in self.options] == ["mode"] else pairs
        return f"{self.name}:{pairs}" if pairs else self.name


def _show(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _scalar(text: str) -> Any:
    """A value as written: true/false, a whole number, a number, or text."""
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text.strip()


def _pairs(body: str, what: str) -> list[tuple[str, Any]]:
    out = []
    for item in body.split(","):
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise RepromptError(f"{what}: {item!r} must look like key=value")
        out.append((key.strip(), _scalar(value)))
    return out


def parse_cache(text: str | None) -> Spec | None:
    """``None`` (not given), the off spec (``none``), or a cache of :data:`CACHES` with its options."""
    if text is None:
        return None
    raw = str(text).strip()
    name, sep, body = raw.partition(":")
    name = name.strip().lower()
    if name in (OFF, "off", "false", ""):
        if sep:
            raise RepromptError(f"cache {raw!r}: 'none' takes no options")
        return Spec(OFF)
    if name not in CACHES:
        raise RepromptError(
            f"unknown cache {name!r}: use one of {', '.join(CACHES)} or none (diffusers' own caches)."
            f"{did_you_mean(name, list(CACHES))}"
        )
    options: list[tuple[str, Any]] = []
    if sep:
        if not body.strip():
            raise RepromptError(f"cache {raw!r}: give a value after ':' or leave the ':' out")
        if "=" in body:
            options = _pairs(body, f"cache {raw!r}")
        else:
            options = [(CACHES[name].knob, _scalar(body))]
    for key, value in options:
        if isinstance(value, str) or (isinstance(value, int | float) and value < 0):
            raise RepromptError(f"cache {raw!r}: {key} must be a number >= 0 or true/false, got {value!r}")
    keys = [k for k, _ in options]
    if len(set(keys)) != len(keys):
        raise RepromptError(f"cache {raw!r} sets a field twice")
    return Spec(name, tuple(sorted(options)))


def parse_compile(text: str | None) -> Spec | None:
    """``None`` (not given), the off spec (``none``), or ``torch.compile`` keywords."""
    if text is None:
        return None
    raw = str(text).strip()
    low = raw.lower()
    if low in (OFF, "off", "false", ""):
        return Spec(OFF)
    if low in ("true", "on"):
        return Spec(COMPILE, (("mode", "default"),))
    options = _pairs(raw, f"compile {raw!r}") if "=" in raw else [("mode", low)]
    for key, value in options:
        if key not in COMPILE_KEYS:
            raise RepromptError(
                f"compile {raw!r}: unknown key {key!r}; use {', '.join(COMPILE_KEYS)}.{did_you_mean(key, COMPILE_KEYS)}"
            )
        if key == "mode" and value not in COMPILE_MODES:
            raise RepromptError(
                f"unknown torch.compile mode {value!r}: use one of {', '.join(COMPILE_MODES)}, none, or "
                f"backend=NAME.{did_you_mean(str(value), COMPILE_MODES)}"
            )
        if key in ("fullgraph", "dynamic") and not isinstance(value, bool):
            raise RepromptError(f"compile {raw!r}: {key} must be true or false")
        if key == "backend" and not isinstance(value, str):
            raise RepromptError(f"compile {raw!r}: backend must be a name")
    return Spec(COMPILE, tuple(sorted(options)))


def canonical_cache(text: str | None) -> str | None:
    """The canonical spelling of a cache spec (``first-block:0.12`` -> ``first-block:threshold=0.12``)."""
    spec = parse_cache(text)
    return None if spec is None else spec.text


def canonical_compile(text: str | None) -> str | None:
    """The canonical spelling of a compile spec (``true`` -> ``default``, ``mode=max-autotune`` ->
    ``max-autotune``)."""
    spec = parse_compile(text)
    return None if spec is None else spec.text


def per_batch(cache: str | None) -> bool:
    """Whether the cache's skip decisions read the whole batch (then render one image per call)."""
    spec = parse_cache(cache)
    return spec is not None and not spec.off and CACHES[spec.name].per_batch


# ------------------------------------------------------------------------------------ applying them


class Acceleration:
    """The cache and compiled transformer a diffusers pipeline runs with, switched per render call.

    A cache stays enabled between calls with the same spec (diffusers resets its state at the end of
    every pipeline call), and a compiled transformer is built once per compile spec and swapped in for
    the calls that ask for it, so alternating settings never recompile more than once each. A call that
    fails takes its cache down, so the next one starts from a clean state."""

    def __init__(self, pipe: Any, name: str) -> None:
        self.pipe, self.name = pipe, name
        self._enabled: tuple[str, int | None] | None = None  # (cache spec text, steps it was built for)
        self._compiled: dict[str, Any] = {}

    @property
    def transformer(self) -> Any:
        return getattr(self.pipe, "transformer", None)

    def check(self, cache: str | None, compile: str | None) -> None:
        """Refuse, before any image, a cache or compilation this pipeline cannot run."""
        c = parse_cache(cache)
        if c is not None and not c.off:
            self._cache_config(c, steps=28)
        k = parse_compile(compile)
        if k is not None and not k.off:
            if self.transformer is None:
                raise RepromptError(
                    f"backbone {self.name!r} ({type(self.pipe).__name__}) has no transformer to compile"
                )
            if c is not None and not c.off and k.kwargs().get("fullgraph"):
                raise RepromptError(
                    f"compile fullgraph=true cannot run with cache {c.text}: diffusers' cache hooks decide "
                    "outside the graph (a graph break); drop fullgraph or the cache"
                )

    def _cache_config(self, spec: Spec, steps: int) -> Any:
        """diffusers' config object for ``spec`` (the model must support it)."""
        import diffusers
        import diffusers.hooks as hooks

        transformer = self.transformer
        pipe_name = type(self.pipe).__name__
        if transformer is None:
            raise RepromptError(
                f"cache {spec.text} needs a diffusion transformer, but {pipe_name} denoises with a "
                f"{type(getattr(self.pipe, 'unet', None)).__name__}: diffusers' caches hook transformer blocks"
            )
        if not hasattr(transformer, "enable_cache"):
            raise RepromptError(
                f"{pipe_name}'s transformer ({type(transformer).__name__}) has no diffusers cache support in "
                f"diffusers {diffusers.__version__} (no enable_cache): caches run on FLUX here; use --compile "
                "for a speed-up on this backbone, or --cache none"
            )
        method = CACHES[spec.name]
        cls = getattr(hooks, method.config)
        kwargs = spec.kwargs()
        known = set(getattr(cls, "__dataclass_fields__", {}))
        unknown = sorted(set(kwargs) - known)
        if unknown:
            raise RepromptError(
                f"cache {spec.text}: {method.config} has no field {unknown[0]!r}; it takes "
                f"{', '.join(sorted(known))}.{did_you_mean(unknown[0], sorted(known))}"
            )
        if spec.name == "mag":
            from diffusers.hooks.mag_cache import FLUX_MAG_RATIOS

            if "mag_ratios" not in kwargs:
                if "Flux" not in type(transformer).__name__:
                    raise RepromptError(
                        f"cache mag needs magnitude ratios calibrated for {type(transformer).__name__}: diffusers "
                        "ships FLUX's only (calibrate with diffusers' MagCacheConfig(calibrate=True))"
                    )
                kwargs["mag_ratios"] = FLUX_MAG_RATIOS
            kwargs["num_inference_steps"] = steps
        if spec.name == "taylorseer" and "taylor_factors_dtype" not in kwargs:
            kwargs["taylor_factors_dtype"] = transformer.dtype
        try:
            return cls(**kwargs)
        except (TypeError, ValueError) as e:
            raise RepromptError(f"cache {spec.text}: {e}") from e

    def _set_cache(self, cache: str | None, steps: int) -> None:
        spec = parse_cache(cache)
        wanted = None if spec is None or spec.off else (spec.text, steps if spec.name == "mag" else None)
        if wanted == self._enabled:
            return
        config = self._cache_config(spec, steps) if wanted is not None and spec is not None else None
        transformer = self.transformer
        if self._enabled is not None:
            transformer.disable_cache()
            self._enabled = None
        if config is not None:
            transformer.enable_cache(config)
            self._enabled = wanted

    def _compiled_transformer(self, compile: str | None) -> Any:
        spec = parse_compile(compile)
        if spec is None or spec.off:
            return None
        if spec.text not in self._compiled:
            import torch

            self._compiled[spec.text] = torch.compile(self.transformer, **spec.kwargs())
        return self._compiled[spec.text]

    @contextlib.contextmanager
    def applied(self, cache: str | None, compile: str | None, steps: int) -> Iterator[None]:
        """Run the body (pipeline calls) with ``cache`` enabled and the transformer compiled by ``compile``
        (each None or ``none``: without)."""
        self._set_cache(cache, steps)
        compiled = self._compiled_transformer(compile)
        original = self.transformer
        if compiled is not None:
            self.pipe.transformer = compiled
        try:
            yield
        except BaseException:
            if self._enabled is not None:  # a stopped denoising loop leaves the cache mid-state
                with contextlib.suppress(Exception):
                    original.disable_cache()
                self._enabled = None
            raise
        finally:
            if compiled is not None:
                self.pipe.transformer = original


__all__ = [
    "CACHES",
    "COMPILE_MODES",
    "OFF",
    "Acceleration",
    "CacheMethod",
    "Spec",
    "canonical_cache",
    "canonical_compile",
    "parse_cache",
    "parse_compile",
    "per_batch",
]
