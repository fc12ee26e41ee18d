"""GenEval's vocabulary: the 80 COCO class names, the 10 colors and the 6 task tags (plus the tags of
reprompt's inference family, each scored by one of GenEval's six templates).

Embedded as constants (copied from GenEval's ``object_names.txt``, MIT) so package code never reads the
benchmark folder at run time. ``COCO_CLASSES`` is in detector index order: index ``i`` of a COCO
detector's per-class output is ``COCO_CLASSES[i]``.
"""

from __future__ import annotations

# fmt: off
COCO_CLASSES: tuple[str, ...] = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog",
    "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag",
    "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball", "kite", "baseball bat",
    "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle", "wine glass", "cup", "fork",
    "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange", "broccoli", "carrot", "hot dog",
    "pizza", "donut", "cake", "chair", "couch", "potted plant", "bed", "dining table", "toilet", "tv",
    "laptop", "computer mouse", "tv remote", "computer keyboard", "cell phone", "microwave", "oven",
    "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors", "teddy bear", "hair drier",
    "toothbrush",
)

GENEVAL_COLORS: tuple[str, ...] = (
    "red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "black", "white",
)

# fmt: on

GENEVAL_TAGS: tuple[str, ...] = (
    "single_object",
    "two_object",
    "counting",
    "colors",
    "position",
    "color_attr",
)

FAMILY_TAGS: dict[str, tuple[str, str]] = {
    **{t: ("geneval", t) for t in GENEVAL_TAGS},
    # reprompt's inference family (reprompt.data.inference): the object, count, color or relation is given
    # by a clue that must be resolved; the metadata is that of the GenEval template on the right
    "infer_object": ("inference", "two_object"),
    "infer_count": ("inference", "counting"),
    "infer_color": ("inference", "colors"),
    "infer_position": ("inference", "position"),
}
"""Every prompt tag -> (its family, the GenEval template its metadata follows and is scored as)."""


def template_of(tag: str) -> str:
    """The GenEval template a tag's metadata is scored as (an unknown tag is its own template)."""
    return FAMILY_TAGS.get(tag, ("", tag))[1]
