"""Text-to-image backbones: a registry of named diffusers presets, the ``sketch`` simulator, and any
diffusers pipeline id or folder. Names turn into objects here only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reprompt.backbones.base import Backbone, BackboneOptions, RenderOutput, RenderSettings, TokenCount
from reprompt.errors import RepromptError, did_you_mean

# Calibrations of the sketch simulator (reprompt.backbones.sketch.CALIBRATIONS), one name each.
SIMULATORS = ("sketch", "sketch-b")


def is_simulator(name: str) -> bool:
    """True for the offline simulators: no weights, no device; they draw the scene they report."""
    return name in SIMULATORS


def backbone_names() -> list[str]:
    from reprompt.backbones.diffusers_backbone import PRESETS

    return list(SIMULATORS) + list(PRESETS)


def load_backbone(name: str, *, model: str | None = None, **kw: Any) -> Backbone:
    """Build a backbone by name.

    ``sketch`` and ``sketch-b`` are two calibrations of the offline simulator (``kw`` are
    :class:`SketchConfig` fields overriding the calibration's). A preset name
    (``flux-dev``, ``sd3``, ...) loads its hub id, or ``model`` (a local folder with the same
    architecture) with the preset's settings. ``remote:URL[,URL...]`` renders through OpenAI-compatible image
    servers (a render farm: :mod:`reprompt.backbones.remote`; ``kw`` are its request defaults and options).
    Anything else is a diffusers folder or hub id.
    """
    from reprompt.backbones.remote import RemoteBackbone, is_remote

    if is_remote(name):
        if model:
            raise RepromptError("--model is for diffusers presets; a render farm's servers load the model")
        return RemoteBackbone.from_name(name, **kw)
    if is_simulator(name):
        from reprompt.backbones.base import RenderSettings
        from reprompt.backbones.sketch import SketchBackbone, refuse_diffusion_settings, sketch_config

        diffusion = {k: kw.pop(k, None) for k in ("steps", "guidance", "cache", "compile")}
        refuse_diffusion_settings(name, RenderSettings(**diffusion))
        return SketchBackbone(sketch_config(name, **kw), name=name)
    from reprompt.backbones.diffusers_backbone import PRESETS, DiffusersBackbone

    if name in PRESETS:
        preset = PRESETS[name]
        return DiffusersBackbone.from_pretrained(model or preset.model, preset=preset, name=name, **kw)
    if Path(name).expanduser().exists() or "/" in name:
        return DiffusersBackbone.from_pretrained(
            str(Path(name).expanduser()) if Path(name).expanduser().exists() else name, **kw
        )
    raise RepromptError(
        f"unknown backbone {name!r}: use one of {', '.join(backbone_names())}, a diffusers folder, a hub "
        f"id or remote:http://host:port[,...] (image servers).{did_you_mean(name, backbone_names())}"
    )


__all__ = [
    "Backbone",
    "BackboneOptions",
    "RenderOutput",
    "RenderSettings",
    "TokenCount",
    "backbone_names",
    "is_simulator",
    "load_backbone",
]
