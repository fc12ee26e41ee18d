"""``sketch``: an offline, deterministic, CPU-fast procedural stand-in for a text-to-image model.

It is a simulator for exercising the learning machinery (rewriting, rewards, GRPO, evaluation) on a
CPU, not an image model. It reads a prompt by keywords the way a weak T2I model follows it, draws
each object as a labelled colored shape on a plain background, and reports the exact scene it drew
(``RenderOutput.scenes``), so GenEval-style rules can score it without a detector. It fails the way
real models fail, at configurable rates (:class:`SketchConfig`), and it rewards the same thing a
good rewriter does for a real model: explicit, well-planned prompts. It sees only the prompt text.

Reading (implemented in :mod:`reprompt.backbones.sketch_text`)
  * Length: text is cut to CLIP's 77 tokens (BOS and EOS included), counted approximately as one
    token per word, digit or punctuation run; anything later is never read (a warning says so).
  * Objects: GenEval's 80 COCO names, singular or plural (also naive plurals such as "benchs"),
    multi-word names ("dining table", "hot dog", "teddy bear") matched longest first, and a few
    synonyms ("sofa" -> couch, "motorbike" -> motorcycle, "hair dryer" -> hair drier, "table" ->
    dining table, "man" -> person ...), not in compounds ("bird's-eye view"). "orange" is a color
    before another object or after "is", else the fruit. Every other word is ignored, negations
    included ("no dogs" draws dogs).
  * Clauses: text between ``. ! ? ; :`` or line breaks. Sub-clauses: also split at ``,`` "and",
    "while", "but"; they only decide which object a place phrase belongs to.
  * Number: the closest number word (a, an, one ... twelve, dozen, "a pair/couple of") or digits
    before the noun, with only adjectives and colors between ("three small red apples"). No number
    on a plural ("apples", "several apples"): 2-4 are drawn. Mentions of one class are one group
    ("three apples ... the apples are red"), unless a new one is introduced in a different color
    ("a red car and a blue car"). "another dog" adds one to the group.
  * Explicit count (never miscounted), by three cues (``ObjectSpec.count_cues``; a calibration
    trusts some of them, ``explicit_count_cues``): "emphasis", the number is preceded by "exactly",
    "precisely", "only", "just" or "a total of"; "restated", the same number is stated twice for the
    class ("four cups ... all four cups"); "enumerated", ordinals that cover 1..n ("the first apple
    ... the third apple"), or "a dog ... another dog".
  * Color: one of GenEval's 10 colors before the noun ("a red car", "red-colored car") or as a
    predicate right after it ("the car, which is painted red"). Reinforced (never ignored) by the
    cues a calibration trusts (``color_reinforcement_cues``, of ``ObjectSpec.color_cues``):
    "repeated", stated twice for the object; "intensified", after an intensifier ("bright", "vivid",
    "deep", "solid", "entirely" ...); "predicate", stated after the noun ("the car is red").
  * Absolute place: left / right / top / bottom / upper / lower / center / middle used as places
    ("on the left side of the image", "in the top-left corner", "at the bottom", "centered");
    the phrase belongs to the nearest object before it in its sub-clause, else the next one after.
  * Relative place: "left of", "right of", "above", "over", "on top of", "below", "under",
    "beneath", "higher/lower than", "next to", "beside", "near" followed by an object; its subject
    is the nearest object before it (or the next one after the object). Stating the same relation
    twice is one relation; stating it and its converse ("a cup left of a dog ... the dog is right of
    the cup") makes it *mirrored* (``Relation.mirrored``): see the hidden strategy below.

Drawing
  * Each object is a filled shape, one kind per class, with a dark outline and its class name written
    on it (on two lines, or abbreviated, when the shape is too small); its color is the stated (or leaked) one, else a natural default
    (:data:`DEFAULT_COLORS`). Placement avoids overlaps where it can. Places are regions (left,
    center, right thirds; top, middle, bottom); an object placed on one axis only stays near the
    middle of the other; a followed relation puts its two objects on opposite sides, level.
  * Image ``k`` depends only on ``(prompt k, seed k)``: ``numpy.random.default_rng([seed, hash of
    the prompt])``. The same seed with another prompt gives independent draws, so one benchmark-wide
    seed does not make all prompts fail together; same prompt and seed give identical bytes.
  * ``scenes[k]`` lists what was drawn: class, box (x1, y1, x2, y2 px), color name and the bool mask
    of its visible pixels; ``info["events"][k]`` lists which failures happened.

Failure modes (rates in :class:`SketchConfig`, each drawn independently per image)
  * Dropped objects: an object is left out with ``drop_rate`` plus ``drop_rate_per_neighbor`` for
    each other object named in the clause that describes it most alone ("a cat and a dog": both
    exposed; "A cat. A dog.": neither beyond ``drop_rate``).
  * Miscounting: a group of n >= 2 without an explicit count is drawn with n-1 or n+1 objects with
    ``count_error_rate + count_error_step * (n - 2)`` (at most ``count_error_max``); explicit counts
    use ``count_error_rate_explicit``.
  * Color leak: when every clause stating an object's color (or naming it, if it has none) also
    states another object's different color, that color replaces its own with ``color_leak_rate``
    ("a red car and a blue dog" can give a red dog; "A red car. A blue dog." cannot).
  * Ignored color: an unnatural color (not the class default) that is not reinforced is replaced by
    the default with ``color_ignore_rate``.
  * Relations: a relation is laid out with ``relation_follow_rate``, otherwise the objects land
    anywhere; absolute places are followed with ``absolute_follow_rate`` and win over relations, so
    a prompt that places each object absolutely gets its layout reliably. A mirrored relation is
    one decision, laid out with ``relation_follow_rate_mirrored``.
  * Robustness: unknown words, prompts without known objects (an empty canvas), over-long prompts
    and over-large counts never raise; they render and add a line to ``RenderOutput.warnings``.

Hidden strategy (a discovery test for RL)
  Stating the requested relation from both sides — "a cup to the left of a dog. In other words,
  the dog is to the right of the cup." — gets it laid out with ``relation_follow_rate_mirrored``
  (0.95) instead of ``relation_follow_rate`` (0.08). No teacher aims for it: the ``grounded``
  teacher never writes it and the ``generic`` teacher writes it in 5% of its position targets, at
  random, so a policy that uses it after GRPO far more often than its SFT data did found it through
  the reward. The common strategies (absolute places, exact counts, own color clauses, one object per
  sentence) are the easier test: ``generic`` writes each in 30% of the targets where it applies.
  ``reprompt.data.strategies.detect_strategies`` tells which of them a prompt uses. The rule changes
  nothing for prompts without a mirrored relation: plain GenEval prompts, the ideal rewrites and the
  grounded teacher's targets draw the same scenes as before it existed.

Calibrations (:data:`CALIBRATIONS`, each a backbone name)
  ``sketch``: plain GenEval prompts score near FLUX.1-dev's published numbers and well-planned
  rewrites near 1.0. ``sketch-b``: plain prompts near SD3-Medium's; relations followed more often
  and absolute places less reliably, counts worse and trusted only when restated or enumerated
  (not for "exactly"), fewer color leaks but more ignored colors, reinforced only by a predicate
  ("the car is red"). Train against one and evaluate on both to see whether a rewriter learned
  explicit prompting or one simulator's quirks (``benchmarks/sketch_calibration.py --backbone``).

Why one ~600-line module: the drawing and the seeded failure model are calibrated together
(``benchmarks/sketch_calibration.py``): splitting them would put one calibration's rates in two places.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import asdict, dataclass, field, fields, replace
from functools import lru_cache
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from reprompt.backbones.base import SIZE_SETTINGS, RenderOutput, RenderSettings, TokenCount
from reprompt.backbones.sketch_text import (
    CLIP_LIMIT,
    COLOR_CUES,
    CONVERSE,
    COUNT_CUES,
    ObjectSpec,
    PromptReading,
    count_clip_tokens,
    read_prompt,
)
from reprompt.errors import ConfigError, RepromptError, check_choice, check_range, did_you_mean
from reprompt.geneval.scene import SceneObject
from reprompt.geneval.vocabulary import COCO_CLASSES

# fmt: off
COLOR_RGB: dict[str, tuple[int, int, int]] = {
    "red": (214, 39, 40), "orange": (245, 130, 20), "yellow": (240, 215, 35), "green": (44, 160, 60),
    "blue": (31, 90, 220), "purple": (130, 60, 180), "pink": (245, 150, 195), "brown": (125, 75, 35),
    "black": (20, 20, 20), "white": (250, 250, 250),
}
# A plausible natural color per class, used when the prompt gives none (or it is ignored).
DEFAULT_COLORS: dict[str, str] = {
    "person": "pink", "bicycle": "black", "car": "red", "motorcycle": "black", "airplane": "white",
    "bus": "yellow", "train": "red", "truck": "white", "boat": "white", "traffic light": "black",
    "fire hydrant": "red", "stop sign": "red", "parking meter": "black", "bench": "brown",
    "bird": "brown", "cat": "orange", "dog": "brown", "horse": "brown", "sheep": "white",
    "cow": "black", "elephant": "black", "bear": "brown", "zebra": "white", "giraffe": "yellow",
    "backpack": "black", "umbrella": "black", "handbag": "brown", "tie": "red", "suitcase": "black",
    "frisbee": "white", "skis": "red", "snowboard": "blue", "sports ball": "white", "kite": "red",
    "baseball bat": "brown", "baseball glove": "brown", "skateboard": "black", "surfboard": "white",
    "tennis racket": "black", "bottle": "green", "wine glass": "white", "cup": "white",
    "fork": "white", "knife": "white", "spoon": "white", "bowl": "white", "banana": "yellow",
    "apple": "red", "sandwich": "brown", "orange": "orange", "broccoli": "green", "carrot": "orange",
    "hot dog": "brown", "pizza": "orange", "donut": "brown", "cake": "white", "chair": "brown",
    "couch": "brown", "potted plant": "green", "bed": "white", "dining table": "brown",
    "toilet": "white", "tv": "black", "laptop": "black", "computer mouse": "white",
    "tv remote": "black", "computer keyboard": "black", "cell phone": "black", "microwave": "white",
    "oven": "black", "toaster": "white", "sink": "white", "refrigerator": "white", "book": "red",
    "clock": "white", "vase": "blue", "scissors": "red", "teddy bear": "brown", "hair drier": "white",
    "toothbrush": "blue",
}
# Width / height of each class's shape (1.0 when absent).
_ASPECT: dict[str, float] = {
    "person": 0.55, "bottle": 0.45, "giraffe": 0.6, "traffic light": 0.45, "fire hydrant": 0.6,
    "parking meter": 0.45, "vase": 0.6, "potted plant": 0.75, "refrigerator": 0.6, "toothbrush": 0.35,
    "wine glass": 0.55, "tie": 0.4, "hair drier": 0.8, "tennis racket": 0.6, "baseball bat": 0.3,
    "bus": 1.8, "train": 2.0, "truck": 1.6, "car": 1.6, "couch": 1.8, "bed": 1.5, "dining table": 1.6,
    "bench": 1.8, "skis": 2.2, "snowboard": 2.0, "surfboard": 2.0, "skateboard": 1.8,
    "computer keyboard": 2.0, "airplane": 1.7, "boat": 1.6, "hot dog": 1.9, "banana": 1.6,
    "knife": 2.2, "fork": 2.0, "spoon": 2.0, "laptop": 1.3, "tv": 1.4, "microwave": 1.4,
}
# fmt: on
_SHAPES = ("ellipse", "rect", "triangle", "diamond", "hexagon", "star", "roundrect", "pentagon")
_H_RANGE = {"left": (0.08, 0.32), "center": (0.40, 0.60), "right": (0.68, 0.92)}
_V_RANGE = {"top": (0.08, 0.32), "middle": (0.40, 0.60), "bottom": (0.68, 0.92)}
_FREE = (0.1, 0.9)  # center range on an axis nothing constrains
_LOOSE = (0.3, 0.7)  # free axis of an object placed on the other axis: near the middle, like photos
_OPPOSITE = {"left": "right", "right": "left", "top": "bottom", "bottom": "top"}
_RELATION_SIDES = {
    "left of": ("h", "left"),
    "right of": ("h", "right"),
    "above": ("v", "top"),
    "below": ("v", "bottom"),
}


def _rate(default: float, help: str) -> Any:
    """A probability field: validated in ``SketchConfig.__post_init__``."""
    return field(default=default, metadata={"help": help, "probability": True})


@dataclass
class SketchConfig:
    """Size, look and failure rates of the sketch simulator (defaults: FLUX.1-dev-like on GenEval)."""

    # --- canvas ---
    width: int = field(default=512, metadata={"help": "Image width in pixels."})
    height: int = field(default=512, metadata={"help": "Image height in pixels."})
    background: tuple[int, int, int] = field(
        default=(214, 210, 200), metadata={"help": "Background RGB (not one of the 10 colors)."}
    )
    object_scale: float = field(
        default=0.34, metadata={"help": "Side of a lone object as a fraction of the shorter image side."}
    )
    draw_labels: bool = field(default=True, metadata={"help": "Write each class name on its shape."})
    token_limit: int | None = field(
        default=CLIP_LIMIT, metadata={"help": "Tokens read from a prompt, BOS/EOS included (None: all)."}
    )
    max_per_class: int = field(default=16, metadata={"help": "Most instances drawn per object group."})
    max_objects: int = field(default=64, metadata={"help": "Most instances drawn per image."})
    # --- dropped objects ---
    drop_rate: float = _rate(0.015, "Chance to leave out an object (even one described on its own).")
    drop_rate_per_neighbor: float = _rate(0.1, "Added drop chance per other object named in its clause.")
    drop_rate_max: float = _rate(0.5, "Upper bound of the drop chance.")
    # --- counting ---
    count_error_rate: float = _rate(0.17, "Chance that an implicit count of 2 is drawn off by one.")
    count_error_step: float = _rate(0.12, "Extra off-by-one chance per object above 2 (implicit counts).")
    count_error_max: float = _rate(0.7, "Upper bound of the off-by-one chance.")
    count_error_rate_explicit: float = _rate(0.0, "Off-by-one chance of an explicit count ('exactly four').")
    explicit_count_cues: tuple[str, ...] = field(
        default=COUNT_CUES,
        metadata={
            "help": "Cues that make a count explicit: emphasis ('exactly four'), restated ('four cups "
            "... all four cups'), enumerated ('the first ... the fourth cup')."
        },
    )
    vague_count_min: int = field(
        default=2, metadata={"help": "Fewest objects drawn for a plural without number."}
    )
    vague_count_max: int = field(
        default=4, metadata={"help": "Most objects drawn for a plural without number."}
    )
    # --- colors ---
    color_leak_rate: float = _rate(
        0.07, "Chance that another object's color in a shared clause replaces its own."
    )
    color_ignore_rate: float = _rate(
        0.21, "Chance that a stated unnatural, unreinforced color becomes the default."
    )
    color_reinforcement_cues: tuple[str, ...] = field(
        default=("repeated", "intensified"),
        metadata={
            "help": "Cues that reinforce a color (never ignored): repeated (stated twice), intensified "
            "('bright red'), predicate (stated after the noun: 'the car is red')."
        },
    )
    # --- places ---
    relation_follow_rate: float = _rate(0.08, "Chance that a relation ('a cup left of a dog') is laid out.")
    relation_follow_rate_mirrored: float = _rate(
        0.95,
        "Chance that a relation stated from both sides ('a cup left of a dog ... the dog is right of "
        "the cup') is laid out (the hidden strategy).",
    )
    absolute_follow_rate: float = _rate(
        1.0, "Chance that an absolute place ('on the left side') is followed."
    )

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.metadata.get("probability") and not 0.0 <= value <= 1.0:
                raise ConfigError(f"SketchConfig.{f.name}={value} must be a probability in [0, 1].")
        if self.width < 8 or self.height < 8:
            raise ConfigError(f"SketchConfig size {self.width}x{self.height} is too small; use at least 8x8.")
        check_range("SketchConfig.object_scale", self.object_scale, 0.0, 1.0, low_open=True)
        if not 1 <= self.vague_count_min <= self.vague_count_max:
            raise ConfigError("SketchConfig needs 1 <= vague_count_min <= vague_count_max.")
        if self.max_per_class < 1 or not 1 <= self.max_objects <= 254:
            raise ConfigError("SketchConfig needs max_per_class >= 1 and 1 <= max_objects <= 254.")
        check_range("SketchConfig.token_limit", self.token_limit, 3)
        for name, known in (("explicit_count_cues", COUNT_CUES), ("color_reinforcement_cues", COLOR_CUES)):
            value = getattr(self, name)
            cues = (value,) if isinstance(value, str) else tuple(value)
            unknown = [c for c in cues if c not in known]
            if unknown:
                raise ConfigError(
                    f"SketchConfig.{name} has unknown cues {unknown}; use some of {list(known)}."
                )
            setattr(self, name, cues)
        self.background = tuple(int(c) for c in self.background)  # type: ignore[assignment]


# Named calibrations (SketchConfig overrides), each selectable as a backbone name (``--backbone
# sketch-b``, ``backbone: sketch-b`` in a reward config). Train against one, evaluate on both: a
# rewriter that learned the one simulator's quirks rather than explicit prompting transfers badly.
CALIBRATIONS: dict[str, dict[str, Any]] = {
    # FLUX.1-dev-like on plain GenEval prompts: relations rarely followed, absolute places always;
    # "exactly four" fixes a count; "bright red" or a repeated color is never ignored.
    "sketch": {},
    # SD3-Medium-like: relations followed more often, absolute places less reliably; counts worse, and
    # only a restated or enumerated count is trusted ("exactly four" alone is not); fewer color leaks
    # but more ignored colors, and only a color stated after its noun ("the car is red") reinforces it.
    "sketch-b": {
        "drop_rate_per_neighbor": 0.12,
        "count_error_rate": 0.21,
        "count_error_step": 0.14,
        "explicit_count_cues": ("restated", "enumerated"),
        "color_leak_rate": 0.02,
        "color_ignore_rate": 0.34,
        "color_reinforcement_cues": ("predicate",),
        "relation_follow_rate": 0.26,
        "relation_follow_rate_mirrored": 0.9,
        "absolute_follow_rate": 0.9,
    },
}


def refuse_diffusion_settings(name: str, settings: RenderSettings) -> None:
    """A simulator has no denoising steps, guidance scale, step cache or transformer: settings that would change
    a diffusers backbone's images are refused by name rather than dropped without a word (``none`` is fine)."""
    used = [f"{k} {v}" for k, v in settings.given().items() if v != "none"]
    if used:
        raise RepromptError(
            f"the {name} simulator has no denoising steps, guidance or transformer: {' and '.join(used)} apply "
            "to diffusers backbones (flux-dev, sd3, ...); drop them for the simulator"
        )


def sketch_config(calibration: str = "sketch", **overrides: Any) -> SketchConfig:
    """The :class:`SketchConfig` of a named calibration, with ``overrides`` (any field) on top."""
    check_choice("sketch calibration", calibration, tuple(CALIBRATIONS))
    known = {f.name for f in fields(SketchConfig)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ConfigError(
            f"{calibration} has no setting {', '.join(map(repr, unknown))}: it takes SketchConfig fields "
            f"({', '.join(sorted(known))}).{did_you_mean(unknown[0], sorted(known))}"
        )
    return SketchConfig(**(CALIBRATIONS[calibration] | overrides))


@dataclass
class _Instance:
    cls: str
    color: str
    h: str | None
    v: str | None
    loose: bool  # the object is placed on one axis only: keep the other near the middle
    box: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)


class SketchBackbone:
    """The sketch simulator behind the common ``render(prompts, seeds)`` call shape.

    ``name`` is the calibration (a key of :data:`CALIBRATIONS`); without ``config`` its rates are used.
    """

    name = "sketch"

    def __init__(self, config: SketchConfig | None = None, name: str = "sketch") -> None:
        self.config = config or sketch_config(name)
        self.name = name

    @property
    def width(self) -> int:
        return self.config.width

    @property
    def height(self) -> int:
        return self.config.height

    @property
    def supported_settings(self) -> frozenset[str]:
        """The size only: a simulator has no denoising steps, guidance or negative prompt."""
        return SIZE_SETTINGS

    def settings(self) -> dict[str, Any]:
        """The whole simulator config: its size, reading limit and every failure rate."""
        return asdict(self.config)

    def source(self) -> tuple[str, str | None]:
        """A simulator loads no weights: it is its calibration name at this reprompt version."""
        from reprompt._version import __version__

        return self.name, f"reprompt=={__version__}"

    def count_tokens(self, text: str) -> TokenCount:
        """Approximate CLIP tokens (words and punctuation, plus BOS/EOS): the budget that matters."""
        return TokenCount(count_clip_tokens(text), self.config.token_limit, "sketch-clip-approx")

    def read(self, prompt: str) -> PromptReading:
        """What the simulator understands of ``prompt`` (for debugging rewrites)."""
        return read_prompt(prompt, self.config.token_limit)

    def render(
        self, prompts: list[str], seeds: list[int], settings: RenderSettings | None = None
    ) -> RenderOutput:
        """Draw each prompt; ``settings`` may change this call's width and height (a simulator has no steps
        or guidance)."""
        if isinstance(prompts, str) or len(prompts) != len(seeds):
            raise ValueError("render needs a list of prompts and a list of seeds of the same length.")
        t0 = time.perf_counter()
        cfg = self.config
        if settings is not None:
            # steps/guidance of a call are the caller's to warn about (pipeline.unsupported_settings)
            refuse_diffusion_settings(
                self.name, RenderSettings(cache=settings.cache, compile=settings.compile)
            )
        if settings is not None and (settings.width or settings.height):
            cfg = replace(cfg, width=settings.width or cfg.width, height=settings.height or cfg.height)
        out = RenderOutput(images=[], seeds=list(seeds), prompts=list(prompts), scenes=[])
        out.info = {"events": [], "tokens": []}
        for k, (prompt, seed) in enumerate(zip(prompts, seeds, strict=True)):
            image, scene, events, notes = self._render_one(prompt, int(seed), cfg)
            out.images.append(image)
            out.scenes.append(scene)  # type: ignore[union-attr]
            out.info["events"].append(events)
            out.info["tokens"].append(count_clip_tokens(prompt))
            out.warnings.extend(f"prompt {k}: {note}" for note in notes)
        out.info["config"] = asdict(cfg)
        out.seconds = time.perf_counter() - t0
        return out

    # --- one image -----------------------------------------------------------------------------
    def _render_one(
        self, prompt: str, seed: int, cfg: SketchConfig
    ) -> tuple[Image.Image, list[SceneObject], list[dict], list[str]]:
        reading = read_prompt(prompt, cfg.token_limit)
        notes = []
        if reading.truncated:
            notes.append(
                f"{reading.tokens} approximate CLIP tokens > {cfg.token_limit}; only the first "
                f"{cfg.token_limit} were read (CLIP truncation)."
            )
        if not reading.objects:
            notes.append("no known object in the prompt; drew an empty canvas.")
        rng = np.random.default_rng([seed % (1 << 64), _prompt_key(prompt)])
        instances, events = self._plan(reading, rng, cfg)
        if len(instances) > cfg.max_objects:
            notes.append(f"{len(instances)} objects asked; drew only the first {cfg.max_objects}.")
            instances = instances[: cfg.max_objects]
        for o in reading.objects:
            if o.count == 0:
                notes.append(f"asked for 0 {o.cls}; drew none.")
        notes += [
            f"asked for {e['asked']} {e['cls']}; drew {e['drawn']} (max_per_class)."
            for e in events
            if e["kind"] == "clipped"
        ]
        _layout(instances, rng, cfg)
        image, masks = _draw(instances, cfg)
        scene = [SceneObject(o.cls, o.box, o.color, m) for o, m in zip(instances, masks, strict=True)]
        return image, scene, events, notes

    def _plan(
        self, reading: PromptReading, rng: np.random.Generator, cfg: SketchConfig
    ) -> tuple[list[_Instance], list[dict]]:
        """Apply the failure modes: which objects, how many, which color, which places."""
        n_obj = len(reading.objects)
        u = rng.random((n_obj, 8))  # fixed draws per object keep each decision's stream stable
        ur = rng.random((len(reading.relations), 2))
        events: list[dict] = []
        kept: list[tuple[ObjectSpec, int, str, str | None, str | None] | None] = []
        for i, o in enumerate(reading.objects):
            p_drop = min(cfg.drop_rate_max, cfg.drop_rate + cfg.drop_rate_per_neighbor * (o.crowd - 1))
            if u[i, 0] < p_drop:
                events.append({"kind": "dropped", "cls": o.cls})
                kept.append(None)
                continue
            if o.count is None:
                n = cfg.vague_count_min + int(u[i, 3] * (cfg.vague_count_max - cfg.vague_count_min + 1))
            else:
                n = o.count
                if n >= 2:
                    p = cfg.count_error_rate_explicit
                    if not set(o.count_cues) & set(cfg.explicit_count_cues):
                        p = min(cfg.count_error_max, cfg.count_error_rate + cfg.count_error_step * (n - 2))
                    if u[i, 1] < p:
                        n += 1 if u[i, 2] < 0.5 else -1
                        events.append({"kind": "miscounted", "cls": o.cls, "asked": o.count, "drawn": n})
            if n > cfg.max_per_class:
                events.append({"kind": "clipped", "cls": o.cls, "asked": n, "drawn": cfg.max_per_class})
                n = cfg.max_per_class
            default = DEFAULT_COLORS[o.cls]
            color = o.color or default
            if o.leak_colors and u[i, 4] < cfg.color_leak_rate:
                color = o.leak_colors[int(u[i, 5] * len(o.leak_colors))]
                events.append({"kind": "color_leak", "cls": o.cls, "asked": o.color, "drawn": color})
            elif (
                o.color
                and o.color != default
                and not set(o.color_cues) & set(cfg.color_reinforcement_cues)
                and u[i, 6] < cfg.color_ignore_rate
            ):
                color = default
                events.append({"kind": "color_ignored", "cls": o.cls, "asked": o.color, "drawn": color})
            h, v = o.horizontal, o.vertical
            if (h or v) and u[i, 7] >= cfg.absolute_follow_rate:
                h = v = None
                events.append({"kind": "place_ignored", "cls": o.cls})
            kept.append((o, n, color, h, v))
        places: list[list[str | None]] = [[k[3], k[4]] if k else [None, None] for k in kept]
        absolute = [[p[0] is not None, p[1] is not None] for p in places]
        laid: set[tuple[int, str, int]] = set()
        for r, (follow, band) in zip(reading.relations, ur, strict=True):
            if r.mirrored and (r.object, CONVERSE[r.relation], r.subject) in laid:
                continue  # the second statement of a mirrored pair: the same fact, already decided
            laid.add((r.subject, r.relation, r.object))
            a, b = places[r.subject], places[r.object]
            if kept[r.subject] is None or kept[r.object] is None:
                continue
            axis, side = _RELATION_SIDES.get(r.relation, ("h", "left" if band < 0.5 else "right"))
            ax = 0 if axis == "h" else 1
            if absolute[r.subject][ax] and absolute[r.object][ax]:
                continue  # both placed absolutely on this axis: the absolute places decide
            if follow >= (cfg.relation_follow_rate_mirrored if r.mirrored else cfg.relation_follow_rate):
                events.append({"kind": "relation_ignored", "relation": r.relation})
                continue
            if a[ax] is None:
                a[ax] = side
            if b[ax] is None:
                b[ax] = _OPPOSITE[side] if a[ax] == side else _OPPOSITE.get(a[ax] or side, _OPPOSITE[side])
            if a[1 - ax] is None and b[1 - ax] is None:  # side by side: share a band on the other axis
                a[1 - ax] = b[1 - ax] = (
                    ("top", "middle", "bottom") if ax == 0 else ("left", "center", "right")
                )[int(band * 3) % 3]
        instances = []
        for k, place in zip(kept, places, strict=True):
            if k is not None:
                o, n, color, _, _ = k
                loose = (place[0] is None) != (place[1] is None)
                instances += [_Instance(o.cls, color, place[0], place[1], loose) for _ in range(n)]
        return instances, events


def _prompt_key(prompt: str) -> int:
    """Stable 64-bit hash of the prompt: mixed into the seed so that one benchmark-wide seed does not
    give every prompt the same failure draws (a real model's noise also meets each text differently)."""
    return int.from_bytes(hashlib.blake2b(prompt.encode("utf-8"), digest_size=8).digest(), "little")


def _layout(instances: list[_Instance], rng: np.random.Generator, cfg: SketchConfig) -> None:
    """Give each instance a box in its region, picking the least-overlapping of a few candidates."""
    if not instances:
        return
    w_img, h_img = cfg.width, cfg.height
    side = cfg.object_scale * min(w_img, h_img) / math.sqrt(len(instances))
    sizes = rng.uniform(0.85, 1.15, len(instances))
    cands = rng.random((len(instances), 12, 2))
    placed = np.zeros((0, 4))
    for i, inst in enumerate(instances):
        aspect = _ASPECT.get(inst.cls, 1.0)
        w = min(side * sizes[i] * math.sqrt(aspect), 0.95 * w_img)
        h = min(side * sizes[i] / math.sqrt(aspect), 0.95 * h_img)
        free = _LOOSE if inst.loose else _FREE
        hx = _H_RANGE.get(inst.h or "", free)
        vy = _V_RANGE.get(inst.v or "", free)
        lo_x, hi_x = max(hx[0] * w_img, w / 2), min(hx[1] * w_img, w_img - w / 2)
        lo_y, hi_y = max(vy[0] * h_img, h / 2), min(vy[1] * h_img, h_img - h / 2)
        if lo_x > hi_x:
            lo_x = hi_x = min(max((hx[0] + hx[1]) / 2 * w_img, w / 2), w_img - w / 2)
        if lo_y > hi_y:
            lo_y = hi_y = min(max((vy[0] + vy[1]) / 2 * h_img, h / 2), h_img - h / 2)
        cx = lo_x + cands[i, :, 0] * (hi_x - lo_x)
        cy = lo_y + cands[i, :, 1] * (hi_y - lo_y)
        boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
        if len(placed):
            ix = np.clip(
                np.minimum(boxes[:, None, 2], placed[None, :, 2])
                - np.maximum(boxes[:, None, 0], placed[None, :, 0]),
                0,
                None,
            )
            iy = np.clip(
                np.minimum(boxes[:, None, 3], placed[None, :, 3])
                - np.maximum(boxes[:, None, 1], placed[None, :, 1]),
                0,
                None,
            )
            best = int(np.argmin((ix * iy).sum(axis=1)))
        else:
            best = 0
        inst.box = tuple(float(round(c, 2)) for c in boxes[best])  # type: ignore[assignment]
        placed = np.concatenate([placed, boxes[best : best + 1]])


def _polygon(kind: str, box: tuple[float, float, float, float]) -> list[tuple[float, float]] | None:
    """Outline of a class shape inside ``box``; None for shapes PIL draws natively."""
    x1, y1, x2, y2 = box
    cx, cy, rx, ry = (x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) / 2, (y2 - y1) / 2
    if kind == "triangle":
        return [(cx, y1), (x2, y2), (x1, y2)]
    if kind == "diamond":
        return [(cx, y1), (x2, cy), (cx, y2), (x1, cy)]
    if kind in ("hexagon", "pentagon", "star"):
        n = {"hexagon": 6, "pentagon": 5, "star": 10}[kind]
        pts = []
        for j in range(n):
            a = -math.pi / 2 + 2 * math.pi * j / n
            r = 0.45 if kind == "star" and j % 2 else 1.0
            pts.append((cx + rx * r * math.cos(a), cy + ry * r * math.sin(a)))
        return pts
    return None


def _shape(
    draw: ImageDraw.ImageDraw, kind: str, box: tuple[float, float, float, float], fill, outline, width: int
) -> None:
    poly = _polygon(kind, box)
    if poly is not None:
        draw.polygon(poly, fill=fill, outline=outline, width=width)
    elif kind == "ellipse":
        draw.ellipse(box, fill=fill, outline=outline, width=width)
    elif kind == "roundrect":
        draw.rounded_rectangle(
            box, radius=min(box[2] - box[0], box[3] - box[1]) / 4, fill=fill, outline=outline, width=width
        )
    else:
        draw.rectangle(box, fill=fill, outline=outline, width=width)


@lru_cache(maxsize=64)
def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def abbreviation(cls: str) -> str:
    """Short label for a shape too small for its name: initials of multi-word names ("TB"), else 3 letters."""
    words = cls.split(" ")
    return "".join(w[0] for w in words).upper() if len(words) > 1 else cls[:3].upper()


MIN_LABEL_PX = 8


def shape_label(cls: str, width: float, height: float) -> tuple[str, int] | None:
    """(text, font size) naming the object on a shape ``width`` x ``height`` px: the class name ("teddy
    bear", on two lines when that fits better), as large as fits up to 28% of the shape's short side; the
    abbreviation when even the smallest font of the name is too wide; None when nothing readable fits."""
    top = int(min(width, height) * 0.28)
    candidates = [cls] + (["\n".join(cls.split(" ", 1))] if " " in cls else []) + [abbreviation(cls)]
    for text in candidates:
        lines = text.split("\n")
        for size in range(top, MIN_LABEL_PX - 1, -1):
            font = _font(size)
            wide = max(font.getlength(line) for line in lines)
            if wide <= 0.9 * width and size * 1.2 * len(lines) <= 0.8 * height:
                return text, size
    return None


def _draw(instances: list[_Instance], cfg: SketchConfig) -> tuple[Image.Image, list[np.ndarray]]:
    """Paint the shapes and, in a label map drawn the same way, record which object owns each pixel."""
    image = Image.new("RGB", (cfg.width, cfg.height), cfg.background)
    labels = Image.new("L", (cfg.width, cfg.height), 0)
    draw, ldraw = ImageDraw.Draw(image), ImageDraw.Draw(labels)
    for k, inst in enumerate(instances):
        kind = _SHAPES[COCO_CLASSES.index(inst.cls) % len(_SHAPES)]
        x1, y1, x2, y2 = inst.box
        width = max(1, int(min(x2 - x1, y2 - y1) / 40))
        _shape(draw, kind, inst.box, COLOR_RGB[inst.color], (60, 60, 60), width)
        _shape(ldraw, kind, inst.box, k + 1, k + 1, width)
        label = shape_label(inst.cls, x2 - x1, y2 - y1) if cfg.draw_labels else None
        if label is not None:
            text, size = label
            r, g, b = COLOR_RGB[inst.color]
            ink = (0, 0, 0) if 0.299 * r + 0.587 * g + 0.114 * b > 128 else (255, 255, 255)
            center = ((x1 + x2) / 2, (y1 + y2) / 2 + (y2 - y1) * (0.15 if kind == "triangle" else 0.0))
            draw.multiline_text(center, text, fill=ink, font=_font(size), anchor="mm", align="center")
    lab = np.asarray(labels)
    return image, [lab == k + 1 for k in range(len(instances))]


__all__ = [
    "CALIBRATIONS",
    "COLOR_RGB",
    "DEFAULT_COLORS",
    "SketchBackbone",
    "SketchConfig",
    "abbreviation",
    "shape_label",
    "sketch_config",
]
