"""What a simulator drew, in GenEval's vocabulary, and its one JSON encoding.

A :class:`SceneObject` is an object a backbone actually drew (only simulators know this, so it is an exact
oracle for the GenEval rules). Benchmark runs store scenes next to their images so the ``oracle`` detector
can score them later; every run writes them with :func:`scene_to_json` (a sidecar file per image: size,
seed and objects) or :func:`objects_to_json` (just the objects, inline in a record), and reads them back
with the matching ``*_from_json``. An object is ``{"cls", "box", "color", "score", "mask"}`` with the box in
pixels (x1, y1, x2, y2) and the mask as COCO-style uncompressed RLE ``{"size": [h, w], "counts": [...]}``
(column-major, runs start with background), or null when masks are not kept.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

SCENE_FORMAT = "reprompt-scene/1"
SCENE_MODES = ("rle", "boxes", "none")  # masks as RLE, boxes only (mask null), or no scenes at all


@dataclass
class SceneObject:
    """One object a backbone actually drew.

    ``box`` is (x1, y1, x2, y2) in pixels of the rendered image; ``mask`` a bool HxW array.
    ``cls`` is a GenEval/COCO class name (e.g. "dining table"), ``color`` one of GenEval's 10 colors.
    """

    cls: str
    box: tuple[float, float, float, float]
    color: str | None = None
    mask: np.ndarray | None = None
    score: float = 1.0


def rle_encode(mask: np.ndarray) -> dict[str, Any]:
    """COCO-style uncompressed RLE (column-major; the first run counts background pixels)."""
    import numpy as np

    mask = np.asarray(mask, dtype=bool)
    flat = mask.ravel(order="F")
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    counts = np.diff(np.concatenate([[0], change, [flat.size]])).tolist()
    if flat.size and flat[0]:
        counts = [0, *counts]
    return {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": [int(c) for c in counts]}


def rle_decode(rle: dict[str, Any]) -> np.ndarray:
    import numpy as np

    h, w = (int(v) for v in rle["size"])
    counts = np.asarray(rle["counts"], dtype=np.int64)
    if counts.sum() != h * w:
        raise ValueError(f"RLE counts sum to {int(counts.sum())}, expected {h * w}")
    flat = np.repeat(np.arange(len(counts)) % 2 == 1, counts)
    return flat.reshape((h, w), order="F")


def objects_to_json(scene: list[SceneObject], masks: bool = True) -> list[dict[str, Any]]:
    """The objects of one scene as JSON values (masks as RLE, or null with ``masks=False``)."""
    objects = []
    for obj in scene:
        item: dict[str, Any] = {}
        for f in dataclasses.fields(obj):
            if f.name != "mask":
                item[f.name] = _plain(getattr(obj, f.name))
        item["box"] = [float(v) for v in obj.box]
        item["score"] = float(obj.score)
        item["mask"] = rle_encode(obj.mask) if masks and obj.mask is not None else None
        objects.append(item)
    return objects


def objects_from_json(data: list[dict[str, Any]]) -> list[SceneObject]:
    known = {f.name for f in dataclasses.fields(SceneObject)}
    scene = []
    for item in data:
        kw = {k: v for k, v in item.items() if k in known and k != "mask"}
        kw["box"] = tuple(float(v) for v in item["box"])
        kw["mask"] = rle_decode(item["mask"]) if item.get("mask") else None
        scene.append(SceneObject(**kw))
    return scene


def scene_to_json(
    scene: list[SceneObject], width: int, height: int, seed: int | None, masks: bool = True
) -> dict[str, Any]:
    """A scene sidecar: ``{"format", "width", "height", "seed", "objects"}``."""
    return {
        "format": SCENE_FORMAT,
        "width": width,
        "height": height,
        "seed": seed,
        "objects": objects_to_json(scene, masks),
    }


def scene_from_json(data: dict[str, Any]) -> list[SceneObject]:
    return objects_from_json(data.get("objects", []))


def _plain(value: Any) -> Any:
    """numpy scalars to Python values (JSON cannot hold them)."""
    return value.item() if hasattr(value, "item") and callable(value.item) else value
