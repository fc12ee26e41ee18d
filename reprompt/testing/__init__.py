"""Test models: tiny random-weight models of the real architectures (the "tiny zoo"), built locally.

Not a runtime layer: no reprompt module imports this package (the ``reprompt models`` listing aside); tests,
benchmarks and the GPU timing scripts do.

Tests and examples need real ``from_pretrained`` folders but this project cannot rely on a model hub. Each
entry of :data:`TINY_MODELS` builds a few-kB-to-MB model of the real class (Qwen2, Llama, Hunyuan-dense, FLUX, SD3,
PixArt-Sigma, SDXL, CLIP, Mask2Former, BLIP-VQA, Qwen2.5-VL, Qwen3-VL, ImageReward) with a tokenizer trained in Python, and saves it
with ``save_pretrained`` (safetensors), so code under test loads it exactly as it loads the real weights.

Importing this module does not import torch; the builders import what they need when they run.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from reprompt.errors import RepromptError, did_you_mean
from reprompt.testing import diffusion, text, vision

__all__ = ["MARKER", "TINY_MODELS", "ZOO_VERSION", "build_tiny", "default_cache_dir", "list_tiny"]

# Bump when any builder changes what it writes: cached folders with another version are rebuilt.
ZOO_VERSION = 2
MARKER = "reprompt_tiny.json"

TINY_MODELS: dict[str, Callable[[Path, int], None]] = {
    "tiny-qwen2": text.build_qwen2,
    "tiny-llama": text.build_llama,
    "tiny-flux": diffusion.build_flux,
    "tiny-sd3": diffusion.build_sd3,
    "tiny-pixart-sigma": diffusion.build_pixart_sigma,
    "tiny-sdxl": diffusion.build_sdxl,
    "tiny-clip": vision.build_clip,
    "tiny-mask2former": vision.build_mask2former,
    "tiny-blip-vqa": vision.build_blip_vqa,
    "tiny-qwen2-vl": vision.build_qwen2_vl,
    "tiny-qwen3-vl": vision.build_qwen3_vl,
    "tiny-imagereward": lambda folder, seed: _build_imagereward(folder, seed),
    "tiny-hunyuan-dense": text.build_hunyuan_dense,
}


def _build_imagereward(folder: Path, seed: int) -> None:
    # The ImageReward architecture imports torch at the top: load it only when building.
    from reprompt.testing.imagereward import build_tiny_imagereward

    build_tiny_imagereward(folder, seed)


def list_tiny() -> list[str]:
    """Names accepted by :func:`build_tiny`, in priority order (policies, renderers, scorers)."""
    return list(TINY_MODELS)


def default_cache_dir() -> Path:
    """``$REPROMPT_CACHE/tiny`` (``REPROMPT_CACHE`` defaults to ``~/.cache/reprompt``)."""
    from reprompt.utils.cache import cache_dir

    return cache_dir("tiny")


def _marker_matches(folder: Path, name: str, seed: int) -> bool:
    try:
        meta = json.loads((folder / MARKER).read_text())
    except (OSError, ValueError):
        return False
    return meta.get("name") == name and meta.get("seed") == seed and meta.get("zoo_version") == ZOO_VERSION


def build_tiny(name: str, folder: str | Path | None = None, seed: int = 0) -> Path:
    """Build tiny model ``name`` into ``folder`` (default ``$REPROMPT_CACHE/tiny/<name>``) and return it.

    Idempotent: the marker file ``reprompt_tiny.json`` is written last, and a folder whose marker matches
    (name, seed, zoo version) is returned untouched. The model is built in a temporary sibling folder and
    renamed into place, so an interrupted or concurrent build never leaves a half-written model behind.
    The same seed gives identical weights; the global torch RNG state of the caller is left unchanged.
    """
    if name not in TINY_MODELS:
        raise RepromptError(
            f"Unknown tiny model {name!r}.{did_you_mean(name, list_tiny())} Available: {', '.join(list_tiny())}."
        )
    folder = Path(folder).expanduser() if folder is not None else default_cache_dir() / name
    if _marker_matches(folder, name, seed):
        return folder
    if folder.exists() and not (folder / MARKER).exists() and any(folder.iterdir()):
        raise RepromptError(
            f"{folder} exists and is not a reprompt tiny model; refusing to overwrite it. "
            "Remove it or pass another folder."
        )
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.build-", dir=folder.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; the cache is meant to be readable like any model folder
    try:
        import torch

        start = time.perf_counter()
        with torch.random.fork_rng(devices=[]):
            TINY_MODELS[name](tmp, seed)
        meta = {
            "name": name,
            "seed": seed,
            "zoo_version": ZOO_VERSION,
            "build_seconds": round(time.perf_counter() - start, 3),
        }
        (tmp / MARKER).write_text(json.dumps(meta, indent=2) + "\n")
        _replace(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if not _marker_matches(folder, name, seed):  # lost a race against a build with other settings
        raise RepromptError(f"{folder} was replaced by a concurrent build of another model or seed; retry.")
    return folder


def _replace(tmp: Path, folder: Path) -> None:
    """Move ``tmp`` to ``folder``, replacing an outdated tiny model; a concurrent finished build wins."""
    old = None
    if folder.exists():
        old = folder.with_name(f".{folder.name}.old-{os.getpid()}-{time.monotonic_ns()}")
        try:
            folder.rename(old)
        except FileNotFoundError:  # another process moved it away first
            old = None
    try:
        tmp.rename(folder)
    except OSError:  # another process renamed its build into place between our two renames
        if old is not None and not folder.exists():
            old.rename(folder)
            old = None
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
