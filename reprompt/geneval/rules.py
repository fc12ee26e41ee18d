"""The GenEval decision, as one pure function shared by the RL reward and the evaluator.

``score_detections`` takes a prompt's metadata and a detector's raw per-class detections and decides
exactly as GenEval's official ``evaluation/evaluate_images.py`` (djghosh13/geneval, MIT) does:

1. Per class: sort by score (descending), keep scores ``> threshold`` (0.9 for the ``counting`` tag,
   else 0.3), keep at most ``max_objects`` (16), then greedy NMS by IoU (off at ``max_overlap`` 1.0).
2. Include clauses (AND, in order). Clause ``{class, count}`` takes the top ``count`` kept objects and
   fails if there are fewer. With ``color``: the colour of each of those ``count`` objects is classified
   and the clause fails if fewer than ``count`` have the target colour (so all of them must). With
   ``position: [rel, j]``: only checked if the clause matched so far; fails if include clause ``j`` did
   not match ("no target"), else every found object must hold ``rel`` to every object of group ``j``.
3. Exclude clauses (OR): ``{class, count}`` fails if ``count`` or more objects were kept.

No torch here: detectors and colour classifiers live in ``detectors.py`` and ``colors.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from reprompt.errors import check_range
from reprompt.geneval.vocabulary import GENEVAL_COLORS, template_of

if TYPE_CHECKING:
    import numpy as np

RELATIONS: tuple[str, ...] = ("left of", "right of", "above", "below")


@dataclass
class Detection:
    """One detected object: pixel box (x1, y1, x2, y2), confidence, optional bool HxW mask."""

    box: tuple[float, float, float, float]
    score: float
    mask: np.ndarray | None = None


MAX_OBJECTS = 16
"""Detections kept per class (GenEval's official ``max_objects``): no image can show more of a class."""

# classify_colors(class_name, objects) -> one GenEval colour name per object, in the same order.
ClassifyColors = Callable[[str, list[Detection]], list[str]]


@dataclass
class GenEvalOptions:
    """Scorer knobs; the defaults are the official ones (``--options`` of ``evaluate_images.py``)."""

    threshold: float = field(
        default=0.3,
        metadata={"help": "Keep detections with score strictly above this (all tags but counting)."},
    )
    counting_threshold: float = field(
        default=0.9,
        metadata={"help": "Score threshold for the 'counting' tag (stricter, so counts are exact)."},
    )
    max_objects: int = field(
        default=MAX_OBJECTS, metadata={"help": "Keep at most this many detections per class."}
    )
    max_overlap: float = field(
        default=1.0,
        metadata={"help": "NMS: drop a detection whose IoU with a better one is >= this; 1.0 disables NMS."},
    )
    position_threshold: float = field(
        default=0.1,
        metadata={"help": "Dead zone for relations, as a fraction of the two objects' summed width/height."},
    )

    def __post_init__(self) -> None:
        for name in ("threshold", "counting_threshold", "max_overlap", "position_threshold"):
            value = getattr(self, name)
            check_range(f"GenEvalOptions.{name}", value, 0.0, 1.0)
        check_range("GenEvalOptions.max_objects", self.max_objects, 1)

    def threshold_for(self, tag: str) -> float:
        return self.counting_threshold if template_of(tag) == "counting" else self.threshold


@dataclass
class GenEvalResult:
    """Verdict for one image.

    ``clauses_total`` is the number of include plus exclude clauses of the prompt; ``clauses_passed``
    counts include clauses that fully matched (count, colour and position all held) plus exclude clauses
    that held. ``correct`` is the official verdict and equals ``clauses_passed == clauses_total``.
    ``details`` holds the kept detections per class as ``[x1, y1, x2, y2, score]`` lists, like the
    official results' ``details`` field.
    """

    correct: bool
    reason: str
    clauses_total: int
    clauses_passed: int
    details: dict[str, list[list[float]]] = field(default_factory=dict)

    @property
    def partial(self) -> float:
        """Fraction of clauses satisfied: a denser reward than ``correct`` (1.0 iff correct)."""
        if self.clauses_total == 0:
            return float(self.correct)
        return self.clauses_passed / self.clauses_total


def box_iou(box_a: Sequence[float], box_b: Sequence[float]) -> float:
    """IoU with the official scorer's inclusive-pixel (+1) convention; only used by the optional NMS."""

    def area(b: Sequence[float]) -> float:
        return max(b[2] - b[0] + 1, 0) * max(b[3] - b[1] + 1, 0)

    inter = area(
        (max(box_a[0], box_b[0]), max(box_a[1], box_b[1]), min(box_a[2], box_b[2]), min(box_a[3], box_b[3]))
    )
    union = area(box_a) + area(box_b) - inter
    return inter / union if union else 0.0


def filter_detections(
    detections: Mapping[str, Sequence[Detection]], tag: str, options: GenEvalOptions | None = None
) -> dict[str, list[Detection]]:
    """Sort, threshold, cap and (optionally) NMS each class; classes left empty are dropped."""
    options = options or GenEvalOptions()
    threshold = options.threshold_for(tag)
    kept: dict[str, list[Detection]] = {}
    for classname, dets in detections.items():
        order = sorted((d for d in dets if d.score > threshold), key=lambda d: d.score, reverse=True)
        order = order[: options.max_objects]
        chosen: list[Detection] = []
        while order:
            best = order.pop(0)
            chosen.append(best)
            if options.max_overlap < 1.0:
                order = [d for d in order if box_iou(best.box, d.box) < options.max_overlap]
        if chosen:
            kept[classname] = chosen
    return kept


def relative_position(box_a: Sequence[float], box_b: Sequence[float], threshold: float = 0.1) -> set[str]:
    """Relations of box A to box B ("left of", ...), after a dead zone of ``threshold`` x summed sizes.

    Each axis offset between centres shrinks towards 0 by ``threshold * (dim_a + dim_b)``; what is left,
    divided by the full centre distance, must exceed 0.5 on an axis for that relation to hold. Image y
    grows downwards, so "above" means a smaller centre y.
    """
    ax1, ay1, ax2, ay2 = (float(v) for v in box_a[:4])
    bx1, by1, bx2, by2 = (float(v) for v in box_b[:4])
    offset = ((ax1 + ax2) / 2 - (bx1 + bx2) / 2, (ay1 + ay2) / 2 - (by1 + by2) / 2)
    dims = (abs(ax2 - ax1) + abs(bx2 - bx1), abs(ay2 - ay1) + abs(by2 - by1))
    revised = [max(abs(o) - threshold * d, 0.0) * _sign(o) for o, d in zip(offset, dims, strict=True)]
    if all(abs(r) < 1e-3 for r in revised):
        return set()
    norm = (offset[0] ** 2 + offset[1] ** 2) ** 0.5
    dx, dy = revised[0] / norm, revised[1] / norm
    relations = set()
    if dx < -0.5:
        relations.add("left of")
    if dx > 0.5:
        relations.add("right of")
    if dy < -0.5:
        relations.add("above")
    if dy > 0.5:
        relations.add("below")
    return relations


def _sign(x: float) -> int:
    return (x > 0) - (x < 0)


def needs_colors(metadata: Mapping[str, Any]) -> bool:
    """Whether scoring this prompt calls a colour classifier (so callers can skip loading CLIP)."""
    return any("color" in req for req in metadata.get("include", []))


def score_detections(
    metadata: Mapping[str, Any],
    detections: Mapping[str, Sequence[Detection]],
    classify_colors: ClassifyColors | None = None,
    options: GenEvalOptions | None = None,
) -> GenEvalResult:
    """Decide one image as the official GenEval scorer does (see the module docstring).

    ``detections`` maps class names to raw detections (any order, not thresholded); classes absent
    from the mapping count as not detected. ``classify_colors`` is required when a clause has a colour.
    """
    options = options or GenEvalOptions()
    if classify_colors is None and needs_colors(metadata):
        raise ValueError(
            f"prompt {metadata.get('prompt')!r} has a colour clause: pass classify_colors "
            "(e.g. ClipColorClassifier(...).for_image(image), or the oracle detector's colours)"
        )
    objects = filter_detections(detections, metadata["tag"], options)
    reasons: list[str] = []
    matched_groups: list[list[Detection] | None] = []
    includes = metadata.get("include", [])
    excludes = metadata.get("exclude", [])
    passed = 0

    for req in includes:
        classname, count = req["class"], int(req["count"])
        found = objects.get(classname, [])[:count]
        matched = True
        if len(found) < count:
            matched = False
            reasons.append(f"expected {classname}>={count}, found {len(found)}")
        else:
            if "color" in req:
                matched = _check_color(req, found, classify_colors, reasons)  # type: ignore[arg-type]
            if "position" in req and matched:
                matched = _check_position(req, found, matched_groups, options, reasons)
        matched_groups.append(found if matched else None)
        passed += matched

    for req in excludes:
        classname, count = req["class"], int(req["count"])
        n = len(objects.get(classname, []))
        if n >= count:
            reasons.append(f"expected {classname}<{count}, found {n}")
        else:
            passed += 1

    total = len(includes) + len(excludes)
    details = {name: [[*map(float, d.box), float(d.score)] for d in dets] for name, dets in objects.items()}
    return GenEvalResult(
        correct=passed == total,
        reason="\n".join(reasons),
        clauses_total=total,
        clauses_passed=passed,
        details=details,
    )


def _check_color(
    req: Mapping[str, Any], found: list[Detection], classify_colors: ClassifyColors, reasons: list[str]
) -> bool:
    classname, count, target = req["class"], int(req["count"]), req["color"]
    colors = list(classify_colors(classname, found))
    if len(colors) != len(found):
        raise ValueError(f"classify_colors returned {len(colors)} colours for {len(found)} objects")
    hits = colors.count(target)
    if hits >= count:
        return True
    breakdown = ", ".join(f"{colors.count(c)} {c}" for c in GENEVAL_COLORS if c in colors)
    reasons.append(f"expected {target} {classname}>={count}, found {hits} {target}; and {breakdown}")
    return False


def _check_position(
    req: Mapping[str, Any],
    found: list[Detection],
    matched_groups: list[list[Detection] | None],
    options: GenEvalOptions,
    reasons: list[str],
) -> bool:
    classname = req["class"]
    expected, group = req["position"]
    if expected not in RELATIONS:
        raise ValueError(f"unknown GenEval relation {expected!r}; expected one of {RELATIONS}")
    if not 0 <= group < len(matched_groups):
        raise ValueError(
            f"position of {classname!r} refers to include clause {group}, which must come before it"
        )
    targets = matched_groups[group]
    if targets is None:
        reasons.append(f"no target for {classname} to be {expected}")
        return False
    for obj in found:
        for target in targets:
            relations = relative_position(obj.box, target.box, options.position_threshold)
            if expected not in relations:
                # Official message joins a set (arbitrary order); we use RELATIONS order to be deterministic.
                got = " and ".join(r for r in RELATIONS if r in relations)
                reasons.append(f"expected {classname} {expected} target, found {got} target")
                return False
    return True


def detections_from_boxes(
    boxes: Mapping[str, Sequence[Sequence[float]]], score: float = 1.0
) -> dict[str, list[Detection]]:
    """Build detections from ``{class: [(x1, y1, x2, y2[, score]), ...]}``: handy in tests and examples."""
    out: dict[str, list[Detection]] = {}
    for classname, items in boxes.items():
        out[classname] = [
            Detection(box=tuple(float(v) for v in b[:4]), score=float(b[4]) if len(b) > 4 else score)  # type: ignore[arg-type]
            for b in items
        ]
    return out
