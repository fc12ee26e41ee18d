"""T2I-CompBench's detector-based decisions as pure functions (no models): 2D and 3D spatial, numeracy, 3-in-1.

They follow the official ``UniDet_eval/2D_spatial_eval.py``, ``3D_spatial_eval.py``, ``numeracy_eval.py`` and
``3_in_1_eval/3_in_1.py`` (Karine-Huang/T2I-CompBench, MIT) rule by rule; where we deliberately differ the
docstring says so and :data:`reprompt.eval.compbench.metrics.DEVIATIONS` lists it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reprompt.eval.compbench import nlp

Box = tuple[float, float, float, float]

PERSON_WORDS = frozenset(("girl", "boy", "man", "woman", "person", "people", "child", "kid", "lady", "guy"))
# Official renames (numeracy_eval.py) plus COCO's own names for common words.
# fmt: off
_RENAMES = {
    "ship": "boat", "telivision": "tv", "television": "tv", "goldfish": "fish", "painting": "picture",
    "sofa": "couch", "table": "dining table", "mouse": "computer mouse", "phone": "cell phone",
    "cellphone": "cell phone", "plane": "airplane", "aeroplane": "airplane", "bike": "bicycle",
    "motorbike": "motorcycle", "fridge": "refrigerator", "doughnut": "donut", "hydrant": "fire hydrant",
    "remote": "tv remote", "keyboard": "computer keyboard", "racket": "tennis racket", "plant": "potted plant",
    "teddy": "teddy bear", "puppy": "dog", "kitten": "cat", "ball": "sports ball",
}
# fmt: on


@dataclass
class Found:
    """One kept detection: class name, box in the official coordinate frame, confidence."""

    cls: str
    box: Box
    score: float


def to_class(word: str | None, vocabulary: Iterable[str] | None) -> str | None:
    """Map a prompt noun to a detector class name, or None if the detector cannot name it.

    Person words become "person" (official); then the word itself, its singular, then the renames above
    are tried against ``vocabulary`` (None: any name is accepted as is).
    """
    if not word:
        return None
    vocab = set(vocabulary) if vocabulary is not None else None
    w = word.lower()
    candidates = [w, nlp.singular(w)]
    candidates += [_RENAMES[c] for c in list(candidates) if c in _RENAMES]
    candidates = ["person" if c in PERSON_WORDS else c for c in candidates]
    if vocab is None:
        return candidates[-1]
    return next((c for c in candidates if c in vocab), None)


def official_frame(width: int, height: int) -> float:
    """Scale from image pixels to the frame UniDet's boxes live in (``Resize(479, max_size=480)``).

    The official 2D rule compares centre distances with 150 px in that frame, so boxes from any detector at
    any resolution are rescaled first.
    """
    scale = 479 / min(width, height)
    if max(width, height) * scale > 480:
        scale = 480 / max(width, height)
    return scale


def flatten_detections(
    detections: Mapping[str, Sequence[Any]], scale: float, threshold: float
) -> list[Found]:
    """All detections above ``threshold`` (UniDet's 0.5), best first, boxes in the official frame."""
    found = [
        Found(cls, tuple(float(v) * scale for v in d.box), float(d.score))  # type: ignore[arg-type]
        for cls, dets in detections.items()
        for d in dets
        if float(d.score) > threshold
    ]
    found.sort(key=lambda f: -f.score)
    return found


def box_iou(a: Box, b: Box) -> float:
    """IoU without the +1 pixel convention (the official 2D/3D rules)."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def position_score(
    relation: str | None, a: Box, b: Box, iou_threshold: float = 0.1, distance: float = 150
) -> float:
    """Official 2D rule: 1 when A holds ``relation`` to B without overlapping much, a soft score otherwise.

    "next to"/"near"/"on side of": 1 if the centres are within ``distance`` on either axis, else
    distance / max offset. Left/right/top/bottom: the offset must point the right way and dominate the
    other axis; then 1 if IoU < 0.1, else 0.1 / IoU. "on top of" is scored like "on the top of" (the
    official scorer gives it 0: no branch handles it).
    """
    if relation == "on top of":
        relation = "on the top of"
    ca = ((a[0] + a[2]) / 2, (a[1] + a[3]) / 2)
    cb = ((b[0] + b[2]) / 2, (b[1] + b[3]) / 2)
    dx, dy = cb[0] - ca[0], cb[1] - ca[1]
    iou = box_iou(a, b)
    if relation in ("next to", "on side of", "near"):
        if abs(dx) < distance or abs(dy) < distance:
            return 1.0
        return distance / max(abs(dx), abs(dy))
    checks = {
        "on the right of": (dx < 0, abs(dx) > abs(dy)),
        "on the left of": (dx > 0, abs(dx) > abs(dy)),
        "on the bottom of": (dy < 0, abs(dy) > abs(dx)),
        "on the top of": (dy > 0, abs(dy) > abs(dx)),
    }
    if relation not in checks:
        return 0.0
    direction, dominant = checks[relation]
    if not (direction and dominant):
        return 0.0
    return 1.0 if iou < iou_threshold else iou_threshold / iou


def depth_score(relation: str | None, a: Box, b: Box, depth: Any, iou_threshold: float = 0.5) -> float:
    """Official 3D rule on a relative inverse-depth map (larger = nearer, as MiDaS/DPT output).

    "in front of" needs mean depth of A > B, "behind"/"hidden" needs A < B; then 1 if the boxes overlap with
    IoU > 0.5, IoU/0.5 for a smaller non-zero overlap, 0 without overlap. Means are taken over each box as
    rows y1:y2, columns x1:x2 (the official code indexes the map [x, y], i.e. transposed).
    """
    import numpy as np

    if relation not in ("in front of", "behind", "hidden"):
        return 0.0

    def mean(box: Box) -> float:
        x1, y1, x2, y2 = (int(v) for v in box)
        region = np.asarray(depth)[max(y1, 0) : y2, max(x1, 0) : x2]
        return float(region.mean()) if region.size else float("nan")

    diff = mean(a) - mean(b)
    right_order = diff > 0 if relation == "in front of" else diff < 0  # NaN compares False: no score
    iou = box_iou(a, b)
    if iou > iou_threshold:
        return 1.0 if right_order else 0.0
    if 0 < iou < iou_threshold:
        return iou / iou_threshold if right_order else 0.0
    return 0.0


@dataclass
class PairResult:
    score: float
    obj1: str | None
    obj2: str | None
    relation: str | None
    found: tuple[bool, bool]
    position: float | None = None


def pair_score(
    found: Sequence[Found],
    obj1: str | None,
    obj2: str | None,
    relation: str | None,
    *,
    depth: Any = None,
    cut_below_half: bool = True,
) -> PairResult:
    """The official object-pair score: 0.25 x each object's confidence, + position score / 2 when both
    were detected; only one -> 0.25 x its confidence. 2D then zeroes any score below 0.5 (3D does not).

    Each object takes its best detection (official 2D: ``list.index``, i.e. the highest score).
    """
    names = [f.cls for f in found]
    i1 = names.index(obj1) if obj1 in names else None
    i2 = names.index(obj2) if obj2 in names else None
    position = None
    if i1 is not None and i2 is not None:
        a, b = found[i1], found[i2]
        if depth is None:
            position = position_score(relation, a.box, b.box)
        else:
            position = depth_score(relation, a.box, b.box, depth)
        score = 0.25 * a.score + 0.25 * b.score + position / 2
    elif i1 is not None:
        score = 0.25 * found[i1].score
    elif i2 is not None:
        score = 0.25 * found[i2].score
    else:
        score = 0.0
    if cut_below_half and score < 0.5:
        score = 0.0
    return PairResult(score, obj1, obj2, relation, (i1 is not None, i2 is not None), position)


def same_object(a: Box, b: Box) -> bool:
    """Numeracy de-duplication: IoU > 0.9 or either box 90% inside the other (+1 pixel convention)."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]) + 1)
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]) + 1)
    inter = ix * iy
    area_a = (a[2] - a[0] + 1) * (a[3] - a[1] + 1)
    area_b = (b[2] - b[0] + 1) * (b[3] - b[1] + 1)
    iou = inter / float(area_a + area_b - inter)
    return iou > 0.9 or inter / float(area_a) > 0.9 or inter / float(area_b) > 0.9


def numeracy_score(
    found: Sequence[Found], wanted: Sequence[tuple[str | None, int]]
) -> tuple[float, dict[str, int]]:
    """Official numeracy: each wanted object weighs 1/n; half for being detected, half for the exact count.

    ``wanted`` holds (detector class or None if the detector cannot name it, count). Duplicate boxes of a
    class are merged first. A wanted name contained in a detected label ("fish" in "goldfish") renames it,
    as the official scorer does. Returns the score and the per-class counts used.
    """
    labels: list[str] = []
    boxes: list[Box] = []
    for f in found:
        if not any(lab == f.cls and same_object(f.box, b) for lab, b in zip(labels, boxes, strict=True)):
            labels.append(f.cls)
            boxes.append(f.box)
    if not wanted:
        return 0.0, {}
    weight = 1.0 / len(wanted)
    score = 0.0
    counts: dict[str, int] = {}
    for name, count in wanted:
        if name is None:
            continue
        if name not in labels:
            labels = [name if name in lab else lab for lab in labels]
        n = labels.count(name)
        counts[name] = n
        if n:
            score += 0.5 * weight
            if n == count:
                score += 0.5 * weight
    return score, counts


def three_in_one(kind: str, attribute: float, spatial: float | None, action: float | None) -> float:
    """3-in-1 for one complex image: the mean of the sub-scores its sub-split calls for."""

    def needed(value: float | None, name: str) -> float:
        if value is None:
            raise ValueError(f"a 3-in-1 {kind} image needs its {name} sub-score")
        return float(value)

    if kind == "spatial":
        return (needed(spatial, "spatial") + attribute) * 0.5
    if kind == "action":
        return (needed(action, "action") + attribute) * 0.5
    return (attribute + needed(spatial, "spatial") + needed(action, "action")) / 3
