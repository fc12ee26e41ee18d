"""Teachers that write SFT targets (reasoning + enhanced prompt) for user prompts.

``grounded`` works offline from a prompt's GenEval metadata: it states every object with its exact count,
gives each object its own colour clause, and places each object absolutely on the canvas in a way that
satisfies the requested relation — the upper bound: everything the ``sketch`` simulator rewards.
``generic`` writes what a general-purpose LLM teacher writes (a short plan, then an embellished prompt);
the helpful strategies appear only in a random fraction of its targets, so RL has something to find.
Any policy backend (a local model, an OpenAI-compatible endpoint) can be a teacher too; its completions
are parsed and filtered like everything else.

No teacher here reads a simulator, a reward or the simulator's rules: they see the prompt and its
metadata only (``tests/test_teachers.py`` checks the imports).

Why one ~700-line module: ``tests/test_teachers.py`` proves, by reading this file's imports, that no
teacher sees the simulator, a reward or GenEval's rules; one file keeps that check whole. Most of its
length is the generic teacher's phrase tables.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Protocol

from reprompt.data.templates import INVERSE, NUMBER_WORDS, article
from reprompt.errors import ConfigError, RepromptError, check_range
from reprompt.format import PromptSpec, TagFormat, render_completion
from reprompt.utils.english import plural


@dataclass
class TeacherOutput:
    """One teacher answer: the raw completion, in the teacher's own tag format."""

    completion: str
    fmt: TagFormat
    error: str | None = None
    """Why the teacher produced nothing usable for this record (then ``completion`` is "")."""


class Teacher(Protocol):
    name: str

    def write(self, records: Sequence[Mapping[str, Any]]) -> list[TeacherOutput]: ...


# ------------------------------------------------------------------------------------------ grounded

# Absolute places: (horizontal phrase, vertical phrase) per slot.
_PLACE = {
    "left": ("on the left side of the image", "on the left"),
    "right": ("on the right side of the image", "on the right"),
    "top": ("at the top of the image", "at the top"),
    "bottom": ("at the bottom of the image", "at the bottom"),
    "center": ("in the center of the image", "in the center"),
}
# Where the subject and the reference object go so that "subject <relation> reference" holds.
_LAYOUT = {
    "left of": ("left", "right"),
    "right of": ("right", "left"),
    "above": ("top", "bottom"),
    "below": ("bottom", "top"),
}
_STYLE = (
    "Plain light background, sharp focus, realistic photo.",
    "Simple uncluttered background, natural light, high detail.",
    "Clean studio background, soft even lighting, photorealistic.",
)
_INTENSE = ("bright", "vivid", "solid")


def _rng(record: Mapping[str, Any], seed: int, stream: str = "") -> random.Random:
    """A generator per (seed, record, stream): a target never depends on which other records are written."""
    key = f"{seed}:{record.get('id', '')}:{record.get('prompt', '')}" + (f":{stream}" if stream else "")
    return random.Random(int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big"))


def _write_planned(
    plan: Callable[[Mapping[str, Any]], tuple[str, str]], fmt: TagFormat, records: Sequence[Mapping[str, Any]]
) -> list[TeacherOutput]:
    """Completions from a metadata teacher's ``plan``; records it cannot handle get an error, not a target."""
    out = []
    for rec in records:
        try:
            reasoning, prompt = plan(rec)
        except _NoMetadata as e:
            out.append(TeacherOutput("", fmt, error=str(e)))
            continue
        out.append(TeacherOutput(render_completion(_resolved(rec) + reasoning, prompt, fmt), fmt))
    return out


def _resolved(rec: Mapping[str, Any]) -> str:
    """What a reasoner states first for a prompt of the inference family (reprompt.data.inference): the
    fact behind each clue ("A tricycle has three wheels, so three apples."); nothing for other prompts. The
    prompt itself is written from the resolved metadata, like any other, so without a reason block the
    same target still carries the answer (the reasoning ablation's matched start)."""
    facts = [str(c["fact"]).rstrip(".") + "." for c in rec.get("inference") or [] if c.get("fact")]
    return " ".join(facts) + " " if facts else ""


def _a(word: str) -> str:
    return f"{article(word)} {word}"


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


class GroundedTeacher:
    """Writes the reasoning and the prompt from GenEval metadata; no model, deterministic per record.

    The prompt describes each object in a sentence of its own (so colours do not leak between objects
    and none is dropped for sharing a clause), states counts with "exactly" and restates them, repeats
    and intensifies each colour, and puts each object at an absolute place consistent with the relation
    the user asked for. Phrasing varies with ``seed`` and the record, so SFT does not learn one string.
    """

    name = "grounded"

    def __init__(self, fmt: TagFormat | str = "reason/prompt", seed: int = 0) -> None:
        self.fmt = PromptSpec(tags=fmt).fmt if isinstance(fmt, str) else fmt
        self.seed = seed

    def write(self, records: Sequence[Mapping[str, Any]]) -> list[TeacherOutput]:
        return _write_planned(self.plan, self.fmt, records)

    def plan(self, rec: Mapping[str, Any]) -> tuple[str, str]:
        """(reasoning, prompt) for one record with GenEval metadata."""
        tag, inc = rec.get("tag"), rec.get("include") or []
        if not tag or not inc:
            raise _NoMetadata("no GenEval metadata (tag/include): the grounded teacher needs it")
        rng = _rng(rec, self.seed)
        if tag == "counting" or (len(inc) == 1 and int(inc[0]["count"]) > 1):
            return self._counting(inc[0], rng)
        if len(inc) == 1:
            return self._single(inc[0], rng)
        if len(inc) == 2 and "position" in inc[1]:
            rel = inc[1]["position"][0]
            if rel not in _LAYOUT:
                raise _NoMetadata(f"unknown relation {rel!r}")
            subject, reference = inc[1], inc[0]
            places = _LAYOUT[rel]
            objs = [(subject, places[0]), (reference, places[1])]
            relation = f"the {subject['class']} must be {rel} the {reference['class']}"
            return self._several(objs, rng, relation)
        if all(int(c["count"]) == 1 for c in inc) and len(inc) <= 3:
            slots = ("left", "right") if len(inc) == 2 else ("left", "center", "right")
            return self._several(list(zip(inc, slots, strict=False)), rng, None)
        raise _NoMetadata(f"the grounded teacher does not handle this metadata ({tag}, {len(inc)} objects)")

    # --- one object -----------------------------------------------------------------------------
    def _single(self, c: Mapping[str, Any], rng: random.Random) -> tuple[str, str]:
        cls, color = c["class"], c.get("color")
        style = rng.choice(_STYLE)
        if color:
            intense = rng.choice(_INTENSE)
            reasoning = (
                f"Objects: exactly one {cls}. Color: the {cls} must be {color}, all of it, so I state the "
                f"color twice. Layout: the {cls} stands alone in the center of the image, fully visible. "
                "Nothing else is added."
            )
            prompt = (
                f"A photo of a single {intense} {color} {cls} {_PLACE['center'][0]}. "
                f"The {cls} is entirely {color}. {style}"
            )
        else:
            reasoning = (
                f"Objects: exactly one {cls}, nothing else. No color is asked for, so the {cls} keeps its "
                f"natural color. Layout: the {cls} goes in the center of the image, large and fully visible."
            )
            prompt = f"A photo of a single {cls} {_PLACE['center'][0]}, large and fully visible. {style}"
        return reasoning, prompt

    # --- one group of n ---------------------------------------------------------------------------
    def _counting(self, c: Mapping[str, Any], rng: random.Random) -> tuple[str, str]:
        cls, n = c["class"], int(c["count"])
        word = NUMBER_WORDS.get(n, str(n))
        many = plural(cls)
        color = c.get("color")
        colored = f"{color} {many}" if color else many
        reasoning = (
            f"Objects: exactly {word} {many}, no more and no fewer. "
            + (f"Color: every {cls} is {color}. " if color else "No color is asked for; natural colors. ")
            + f"Layout: the {word} {many} stand apart in one row so each one is clearly visible and "
            "easy to count. Nothing else is added."
        )
        every = "Both" if n == 2 else f"All {word}"
        tail = rng.choice(
            (
                f"{every} {many} are fully visible and clearly separated.",
                f"There are {word} {many} in total, evenly spaced and not overlapping.",
            )
        )
        prompt = f"A photo of exactly {word} {colored} in a single row. {tail} {rng.choice(_STYLE)}"
        return reasoning, prompt

    # --- several single objects, each placed ---------------------------------------------------------
    def _several(
        self, objs: list[tuple[Mapping[str, Any], str]], rng: random.Random, relation: str | None
    ) -> tuple[str, str]:
        names = [c["class"] for c, _ in objs]
        listed = " and ".join(f"one {n}" for n in names)
        colors = [f"the {c['class']} is {c['color']}" for c, _ in objs if c.get("color")]
        color_line = (
            f"Colors: {' and '.join(colors)}; each color gets its own sentence so it stays on its object."
            if colors
            else "No colors are asked for; natural colors."
        )
        places = ", ".join(f"the {c['class']} {_PLACE[slot][1]}" for c, slot in objs)
        why = f" because {relation}" if relation else " so they do not overlap"
        reasoning = f"Objects: {listed}, nothing else. {color_line} Layout: {places}{why}."
        sentences = []
        for c, slot in objs:
            cls, color = c["class"], c.get("color")
            noun = f"{rng.choice(_INTENSE)} {color} {cls}" if color else cls
            sentence = f"{_cap(_a(noun))} {_PLACE[slot][0]}."
            if color:
                sentence += f" The {cls} is entirely {color}."
            sentences.append(sentence)
        head = f"A photo of {' and '.join(_a(n) for n in names)}"
        if relation:
            rel = objs[0][0].get("position", ["", 0])[0]
            head = f"A photo of {_a(names[0])} {rel} {_a(names[1])}"
        prompt = f"{head}. {' '.join(sentences)} {rng.choice(_STYLE)}"
        return reasoning, prompt


class _NoMetadata(RepromptError):
    pass


# ------------------------------------------------------------------------------------------ generic

# Names of the strategies the generic teacher writes at a chosen rate (the same names and definitions
# as reprompt.data.strategies, which detects them in any prompt; tests keep the two in step).
GENERIC_STRATEGIES = (
    "absolute_places",
    "exact_counts",
    "color_clauses",
    "one_object_per_sentence",
    "mirrored_relation",
)


def _fraction(default: float | None, help: str) -> Any:
    return field(default=default, metadata={"help": help, "probability": True})


@dataclass
class GenericTeacherConfig:
    """How often the ``generic`` teacher happens to write each helpful strategy, chosen at random per
    target (seeded), among the targets where the strategy applies (see reprompt.data.strategies)."""

    strategy_fraction: float = _fraction(
        0.3, "Share of targets using each of the four common strategies (a)-(d), unless set one by one."
    )
    absolute_places: float | None = _fraction(
        None, "(a) each object placed absolutely; None: strategy_fraction."
    )
    exact_counts: float | None = _fraction(
        None, "(b) counts made exact ('exactly four'); None: strategy_fraction."
    )
    color_clauses: float | None = _fraction(
        None, "(c) each color restated in a clause of its own; None: strategy_fraction."
    )
    one_object_per_sentence: float | None = _fraction(
        None, "(d) each object in a sentence of its own; None: strategy_fraction."
    )
    mirrored_relation: float = _fraction(
        0.05, "The relation also stated from the other object's side (rare: a test of discovery by RL)."
    )
    props: float = _fraction(
        0.2, "Mistake: the setting names an extra everyday object ('on a wooden table')."
    )
    synonyms: float = _fraction(0.25, "A common synonym for a single object's name ('sofa' for couch).")
    max_tokens: int = field(
        default=70, metadata={"help": "Own length budget (words and punctuation; CLIP reads 77 tokens)."}
    )

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.metadata.get("probability") and value is not None and not 0.0 <= value <= 1.0:
                raise ConfigError(f"GenericTeacherConfig.{f.name}={value} must be a probability in [0, 1].")
        for name in GENERIC_STRATEGIES[:4]:
            if getattr(self, name) is None:
                setattr(self, name, self.strategy_fraction)
        check_range("GenericTeacherConfig.max_tokens", self.max_tokens, 30)

    def fractions(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in GENERIC_STRATEGIES}


# fmt: off
_G_OPENERS = (
    "A photo of", "A high-resolution photograph of", "A realistic photo of", "A detailed photograph of",
    "A candid shot of", "A well-composed photo of", "A cinematic photograph of", "An editorial-style photo of",
)
_G_ADJECTIVES = (
    "small", "large", "classic", "modern", "charming", "sturdy", "lovely", "striking", "simple", "elegant",
)
# fmt: on
# Shade words a writer puts before a color ("a glossy red car"): finishes, never intensifiers such as
# "bright": those reinforce a color like restating it, and would add an uncontrolled strategy.
_G_FINISHES = ("glossy", "matte", "rich", "soft", "muted", "smooth")
# Backgrounds that name no COCO object (extra objects come only from props, at their own rate), as
# (phrase in the prompt, words in the plan).
# fmt: off
_G_SETTINGS = (
    ("in a sunlit park", "a sunlit park"), ("on a quiet city street", "a quiet street"),
    ("in a cozy living room", "a cozy interior"), ("against a soft gray backdrop", "a soft gray backdrop"),
    ("in a minimalist studio", "a minimalist studio"), ("by a calm lake", "a lakeside setting"),
    ("in a bright modern kitchen", "a modern kitchen"), ("on a sandy beach", "a beach setting"),
    ("in a snowy landscape", "a snowy landscape"), ("inside a spacious loft", "a spacious loft"),
    ("in a quiet garden", "a garden setting"), ("on a rustic wooden floor", "a rustic interior"),
)
# fmt: on
# Mistake: a background that names an extra everyday object, as (its class, phrase, words in the plan).
_G_PROPS = (
    ("dining table", "on a wooden table", "a wooden table"),
    ("potted plant", "beside a potted plant", "a potted plant"),
    ("book", "next to a few old books", "a few old books"),
    ("bench", "near a park bench", "a park bench"),
    ("chair", "by an empty chair", "an empty chair"),
    ("vase", "beside a small vase", "a small vase"),
    ("clock", "under a wall clock", "a wall clock"),
)
# fmt: off
_G_LIGHTING = (
    "soft natural light", "warm golden-hour light", "gentle morning light", "dramatic side lighting",
    "diffused overcast light", "crisp studio lighting", "moody evening light", "soft window light",
)
_G_STYLE = (
    "photorealistic", "shallow depth of field", "sharp focus", "35mm film look", "ultra-detailed",
    "high dynamic range", "cinematic composition", "natural colors", "award-winning photography",
)
# fmt: on
_G_MOOD = ("a calm, inviting atmosphere", "a cheerful mood", "a serene feel", "a nostalgic feel")
_G_ARRANGEMENTS = ("arranged in a loose group", "lined up neatly", "grouped together", "spread out casually")
# Common English synonyms a writer uses for a single object's name.
# fmt: off
_G_SYNONYMS = {
    "couch": ("sofa",), "motorcycle": ("motorbike",), "cell phone": ("smartphone", "mobile phone"),
    "tv": ("television",), "donut": ("doughnut",), "bicycle": ("bike",), "hair drier": ("hair dryer",),
    "dining table": ("table",), "sports ball": ("ball",), "tv remote": ("remote control",),
    "computer keyboard": ("keyboard",), "potted plant": ("houseplant",), "airplane": ("plane",),
}
# fmt: on
_G_RELATIONS = {
    "left of": ("to the left of", "left of", "positioned to the left of", "just left of"),
    "right of": ("to the right of", "right of", "positioned to the right of", "just right of"),
    "above": ("above", "directly above", "positioned above", "placed above"),
    "below": ("below", "beneath", "underneath", "directly below"),
}
# Absolute places, one family per target so a prompt reads consistently.
# fmt: off
_G_PLACES = (
    {"left": "on the left side of the image", "right": "on the right side of the image",
     "top": "at the top of the image", "bottom": "at the bottom of the image",
     "center": "in the center of the image"},
    {"left": "on the left side of the frame", "right": "on the right side of the frame",
     "top": "in the upper part of the frame", "bottom": "in the lower part of the frame",
     "center": "in the middle of the frame"},
    {"left": "in the left half of the picture", "right": "in the right half of the picture",
     "top": "in the top half of the picture", "bottom": "in the bottom half of the picture",
     "center": "in the center of the picture"},
    {"left": "on the left", "right": "on the right", "top": "at the top", "bottom": "at the bottom",
     "center": "in the center"},
)
# fmt: on
_TOKEN_RE = re.compile(r"[^\W\d_]+|\d|[^\s\w]+")


def _rough_tokens(text: str) -> int:
    """The writer's own length estimate: words, digits and punctuation runs, plus BOS/EOS."""
    return len(_TOKEN_RE.findall(text)) + 2


@dataclass
class _Obj:
    cls: str
    count: int
    color: str | None
    name: str  # as written: the class, a synonym, or the plural
    np: str = ""  # the noun phrase that introduces it ("exactly four small cups")
    place: str | None = None  # absolute place phrase, when (a) is used
    restate: bool = False  # (b) by restating the number in a sentence of its own

    @property
    def the(self) -> str:
        return f"the {self.name}"

    @property
    def verb(self) -> str:
        return "is" if self.count == 1 else "are"


def _objects(
    rec: Mapping[str, Any], teacher: str
) -> tuple[list[Mapping[str, Any]], tuple[int, str, int] | None]:
    """The include clauses and the relation (subject index, relation, reference index), if any."""
    inc = rec.get("include") or []
    if not rec.get("tag") or not inc:
        raise _NoMetadata(f"no GenEval metadata (tag/include): the {teacher} teacher needs it")
    relation = None
    for i, c in enumerate(inc):
        if "position" in c:
            rel, ref = c["position"][0], int(c["position"][1])
            if rel not in _G_RELATIONS or not 0 <= ref < len(inc) or ref == i:
                raise _NoMetadata(f"unknown relation {c['position']!r}")
            relation = (i, rel, ref)
    return inc, relation


class GenericTeacher:
    """A general-purpose LLM teacher, written out. It reads no simulator, rule or reward (it imports none of
    them), but it is not a blind teacher: its helpful strategies are the very cues the ``sketch`` simulator
    rewards, written at chosen rates. A known-answer test: it tells whether RL finds which of the
    teacher's habits pay, not how a teacher that knows nothing of the renderer would do.

    It reads what any LLM understands of the prompt (the GenEval metadata: objects, counts, colors,
    relation) and writes a short plan in <reason>, then an enriched prompt: varied openers, optional
    adjectives and color finishes, a background, lighting, a photographic style and sometimes a mood,
    within its own ~70-token budget (CLIP reads 77). Every requested object is always named, with its
    count, color and relation.

    Each helpful strategy appears only in a random, seeded fraction of the targets where it applies
    (:class:`GenericTeacherConfig`, default 0.3; definitions in reprompt.data.strategies):
    (a) every object placed absolutely ("on the left side of the image", consistent with the relation);
    (b) exact counts ("exactly four", "a total of four", or the number restated: "All four cups ...");
    (c) each color restated in a clause of its own ("The car is painted red.");
    (d) each object in a sentence of its own (two or more objects, no relation).
    The relation stated from both sides ("... In other words, the dog is to the right of the cup.")
    appears in only 5% of position targets: no teacher aims for it.

    Otherwise it makes the mistakes such teachers make, each keeping the request recognisable:
    relations kept only relative ("a cup to the left of a dog"); all objects merged into one clause
    ("a red car and a blue dog in a park"); counts stated once, plainly ("four cups"); colors stated
    once, before the noun, sometimes with a finish ("a glossy red car"; never an intensifier such as
    "bright red", which would be a fifth, uncontrolled strategy); and, in ``props`` of the targets, a
    background that names an extra object ("on a wooden table"). It never writes vague counts
    ("several cups"): that would lose the request, not just phrase it badly.

    Its choices come from seeded coins (:meth:`decide`), never from a simulator, a reward or the
    simulator's rules (it imports none of them; ``tests/test_teachers.py`` checks).
    """

    name = "generic"

    def __init__(
        self,
        fmt: TagFormat | str = "reason/prompt",
        seed: int = 0,
        config: GenericTeacherConfig | None = None,
    ) -> None:
        self.fmt = PromptSpec(tags=fmt).fmt if isinstance(fmt, str) else fmt
        self.seed = seed
        self.config = config or GenericTeacherConfig()

    def write(self, records: Sequence[Mapping[str, Any]]) -> list[TeacherOutput]:
        return _write_planned(self.plan, self.fmt, records)

    def decide(self, rec: Mapping[str, Any]) -> dict[str, bool]:
        """The random choices for one record: which strategies (and the props mistake) it would use.

        Drawn for every record in a fixed order from their own stream, so each is an independent coin
        with its configured rate and the phrasing draws never shift them; a strategy that does not apply
        to the record (no count to make exact) is simply not written."""
        rng = _rng(rec, self.seed, "decide")
        rates = self.config.fractions() | {"props": self.config.props}
        return {name: rng.random() < rate for name, rate in rates.items()}

    def plan(self, rec: Mapping[str, Any]) -> tuple[str, str]:
        """(reasoning, prompt) for one record with GenEval metadata."""
        inc, relation = _objects(rec, "generic")
        if len(inc) > 3:
            raise _NoMetadata(f"the generic teacher writes prompts with 1-3 objects, got {len(inc)}")
        use = self.decide(rec)
        rng = _rng(rec, self.seed, "phrasing")
        cfg = self.config
        multi = len(inc) > 1
        a = use["absolute_places"] and multi
        b = use["exact_counts"] and any(int(c["count"]) > 1 for c in inc)
        c_ = use["color_clauses"] and any(c.get("color") for c in inc)
        d = use["one_object_per_sentence"] and multi and relation is None
        mirrored = use["mirrored_relation"] and relation is not None

        objs = [self._object(c, b, rng, merged=multi and not d) for c in inc]
        places = _G_PLACES[rng.randrange(len(_G_PLACES))]
        if a:
            if relation is not None:
                subj, rel, ref = relation
                objs[subj].place, objs[ref].place = (places[s] for s in _LAYOUT[rel])
            else:
                slots = ["left", "right"] if rng.random() < 0.7 else ["top", "bottom"]
                if len(objs) == 3:
                    slots = ["left", "center", "right"]
                rng.shuffle(slots)
                for o, slot in zip(objs, slots, strict=True):
                    o.place = places[slot]
        setting, setting_words = _G_SETTINGS[rng.randrange(len(_G_SETTINGS))]
        props = [p for p in _G_PROPS if p[0] not in {c["class"] for c in inc}]
        prop = props[rng.randrange(len(props))] if use["props"] else None
        if prop is not None:
            setting, setting_words = prop[1], prop[2]
        opener = rng.choice(_G_OPENERS)

        sentences: list[str] = []
        if relation is not None:
            subj, rel, ref = relation
            s_o, r_o = objs[subj], objs[ref]
            main = f"{opener} {s_o.np} {rng.choice(_G_RELATIONS[rel])} {r_o.np}"
            if a and rng.random() < 0.5:
                sentences.append(f"{main}, with {s_o.the} {s_o.place} and {r_o.the} {r_o.place}, {setting}.")
            else:
                sentences.append(f"{main}, {setting}.")
                if a:
                    sentences.append(
                        f"{_cap(s_o.the)} {s_o.verb} {s_o.place}, and {r_o.the} {r_o.verb} {r_o.place}."
                    )
            if mirrored:
                lead = rng.choice(("In other words, ", "Seen the other way, ", ""))
                conv = rng.choice(_G_RELATIONS[INVERSE[rel]])
                sentences.append(f"{_cap(lead + r_o.the)} {r_o.verb} {conv} {s_o.the}.")
        elif d:
            first, *rest = objs
            sentences.append(f"{opener} {first.np}{_sp(first.place)}, {setting}.")
            for o in rest:
                lead = rng.choice(("Beside it, ", "Nearby, ", ""))
                ending = (
                    ""
                    if lead
                    else " " + rng.choice(("completes the scene", "is also in view", "sits close by"))
                )
                sentences.append(f"{_cap(lead + o.np)}{_sp(o.place)}{ending}.")
        else:
            nps = [f"{o.np}{_sp(o.place)}" for o in objs]
            joined = (
                nps[0]
                if len(nps) == 1
                else ", ".join(nps[:-1]) + rng.choice((" and ", " together with ")) + nps[-1]
            )
            arrange = f" {rng.choice(_G_ARRANGEMENTS)}" if len(objs) == 1 and objs[0].count > 1 else ""
            sentences.append(f"{opener} {joined}{arrange}, {setting}.")
        for o in objs:
            if o.restate:
                sentences.append(
                    rng.choice(
                        (
                            f"All {NUMBER_WORDS[o.count]} {o.name} are clearly visible.",
                            f"The {NUMBER_WORDS[o.count]} {o.name} are evenly spaced.",
                        )
                    )
                )
        if c_:
            clauses = [
                f"{o.the} {o.verb} {rng.choice(('', 'painted ', 'colored '))}{o.color}"
                for o in objs
                if o.color
            ]
            if d:  # each color clause right after its object's own sentence
                colored = [i for i, o in enumerate(objs) if o.color]
                for i, clause in reversed(list(zip(colored, clauses, strict=True))):
                    sentences.insert(i + 1, f"{_cap(clause)}.")
            else:
                sentences.append(_cap(rng.choice((", and ", ", while ")).join(clauses)) + ".")
        prompt = " ".join(sentences)
        extras = [rng.choice(_G_LIGHTING), rng.choice(_G_STYLE)]
        if rng.random() < 0.5:
            extras.append(rng.choice(_G_STYLE))
        if rng.random() < 0.4:
            extras.append(rng.choice(_G_MOOD))
        tail: list[str] = []
        for extra in dict.fromkeys(extras):
            if _rough_tokens(f"{prompt} {', '.join([*tail, extra])}.") > cfg.max_tokens:
                break
            tail.append(extra)
        if tail:
            prompt += f" {_cap(', '.join(tail))}."
        return self._reasoning(
            objs, relation, inc, a, b, c_, d, mirrored, prop, setting_words, tail, rng
        ), prompt

    def _object(self, c: Mapping[str, Any], exact: bool, rng: random.Random, merged: bool) -> _Obj:
        cls, n, color = c["class"], int(c["count"]), c.get("color")
        name = cls
        if n == 1 and cls in _G_SYNONYMS and rng.random() < self.config.synonyms:
            name = rng.choice(_G_SYNONYMS[cls])
        o = _Obj(cls, n, color, plural(name) if n > 1 else name)
        words = []
        if rng.random() < 0.4:
            words.append(rng.choice(_G_ADJECTIVES))
        if color:
            if rng.random() < 0.35:
                words.append(rng.choice(_G_FINISHES))
            words.append(color)
        words.append(o.name)
        body = " ".join(words)
        if n == 1:
            o.np = _a(body)
        elif exact and (merged or rng.random() < 0.5):
            o.np = f"{rng.choice(('exactly', 'precisely', 'a total of'))} {NUMBER_WORDS[n]} {body}"
        else:
            o.np = f"{NUMBER_WORDS[n]} {body}"
            o.restate = exact
        return o

    @staticmethod
    def _reasoning(
        objs: list[_Obj],
        relation: tuple[int, str, int] | None,
        inc: list[Mapping[str, Any]],
        a: bool,
        b: bool,
        c_: bool,
        d: bool,
        mirrored: bool,
        prop: tuple[str, str, str] | None,
        setting_words: str,
        tail: list[str],
        rng: random.Random,
    ) -> str:
        def asked(o: _Obj) -> str:
            head = NUMBER_WORDS[o.count] if o.count > 1 else article(o.color or o.cls)
            return " ".join(x for x in (head, o.color, plural(o.cls) if o.count > 1 else o.cls) if x)

        if relation is not None:
            subj, rel, ref = relation
            summary = f"{asked(objs[subj])} {rel} {asked(objs[ref])}"
        else:
            summary = " and ".join(asked(o) for o in objs)
        notes = [rng.choice((f"The user wants {summary}.", f"The request: {summary}.", f"Goal: {summary}."))]
        if relation is not None:
            s_o, r_o = objs[relation[0]], objs[relation[2]]
            if a:
                notes.append(
                    f"I will put {s_o.the} {s_o.place} and {r_o.the} {r_o.place} so the layout is clear."
                )
            else:
                notes.append("I will keep the spatial relation as the user phrased it.")
            if mirrored:
                notes.append(f"I will also describe the arrangement from the {r_o.name}'s side.")
        elif len(objs) > 1:
            if a:
                notes.append("I will give each object its own side of the frame.")
            notes.append(
                "Each object gets its own sentence."
                if d
                else "I will describe the objects together in one flowing sentence."
            )
        if any(o.count > 1 for o in objs):
            notes.append(
                "I will state the number explicitly so the count is clear."
                if b
                else "I will mention the number naturally."
            )
        if any(o.color for o in objs):
            notes.append(
                "I will restate each color in a short clause of its own."
                if c_
                else "The colors stay as requested."
            )
        extra = f"{setting_words}" + (f", {tail[0]}" if tail else "")
        if prop is not None:
            notes.append(f"Some context helps: {extra}.")
        else:
            notes.append(rng.choice((f"To make it richer I will add {extra}.", f"For atmosphere: {extra}.")))
        return " ".join(notes)


def _sp(place: str | None) -> str:
    return f" {place}" if place else ""


# ------------------------------------------------------------------------------------------ policies


class PolicyTeacher:
    """Any rewriter from :func:`reprompt.policy.load_policy` as a teacher (local model or endpoint)."""

    def __init__(self, rewriter: Any, options: Any = None) -> None:
        from reprompt.policy import GenerationOptions

        self.rewriter = rewriter
        self.options = options or GenerationOptions()
        self.name = f"policy:{getattr(rewriter, 'name', 'policy')}"

    def write(self, records: Sequence[Mapping[str, Any]]) -> list[TeacherOutput]:
        rewrites = self.rewriter.rewrite([r["prompt"] for r in records], options=self.options)
        per = self.options.num_candidates
        return [TeacherOutput(rw.completion, self.rewriter.fmt) for rw in rewrites[::per]]


def load_teacher(
    name: str, *, fmt: str = "reason/prompt", seed: int = 0, options: Any = None, **kw: Any
) -> Teacher:
    """``grounded`` or ``generic`` (offline, from metadata; ``generic`` takes a ``config=``
    :class:`GenericTeacherConfig`) or any policy name accepted by ``load_policy`` (``openai`` with
    ``api_model=``, a local folder, a hub id, ``smollm2`` ...)."""
    if name == "grounded":
        return GroundedTeacher(fmt, seed=seed)
    if name == "generic":
        return GenericTeacher(fmt, seed=seed, config=kw.pop("config", None))
    if name == "none":
        raise RepromptError(
            "the 'none' policy writes no reasoning; use 'grounded', 'generic' or a real policy as teacher"
        )
    from reprompt.policy import load_policy

    return PolicyTeacher(load_policy(name, **kw), options)
