"""How the ``sketch`` simulator reads a prompt: like a weak text-to-image model, by keywords.

:func:`read_prompt` turns any text (a GenEval template or a long LLM rewrite) into a
:class:`PromptReading`: the COCO objects it names, with count, color and absolute place, plus the
relations between them, and the facts the simulator's failure modes depend on (is the count
explicit, is the color reinforced, does the object share its sentence with others). The rules are
listed in the docstring of :mod:`reprompt.backbones.sketch`; this module is their single
implementation. Pure functions, no randomness, cached.

Why one ~550-line module: it is one reader (a chain of passes over the same token list); half of it
is word tables, and the passes share private state that a split would have to make public.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from reprompt.geneval.vocabulary import COCO_CLASSES, GENEVAL_COLORS
from reprompt.utils.english import CARDINALS, INVARIANT, PLURAL_ONLY, plural

CLIP_LIMIT = 77  # CLIP's context, BOS and EOS included
COUNT_CUES = ("emphasis", "restated", "enumerated")
COLOR_CUES = ("repeated", "intensified", "predicate")
# The same relation seen from the other object ("a cup left of a dog" = "the dog right of the cup").
CONVERSE = {"left of": "right of", "right of": "left of", "above": "below", "below": "above"}

# Other words a weak model maps onto a class (singular; plurals are derived).
_SYNONYMS: dict[str, tuple[str, ...]] = {
    "person": ("man", "woman", "boy", "girl", "child", "kid", "human", "lady", "guy"),
    "bicycle": ("bike",),
    "car": ("automobile",),
    "motorcycle": ("motorbike",),
    "airplane": ("aeroplane", "plane", "airliner"),
    "fire hydrant": ("hydrant",),
    "dog": ("puppy",),
    "cat": ("kitten",),
    "handbag": ("purse",),
    "tie": ("necktie",),
    "skis": ("ski",),
    "sports ball": ("ball", "soccer ball", "football", "basketball"),
    "tennis racket": ("racket", "racquet", "tennis racquet"),
    "donut": ("doughnut",),
    "couch": ("sofa",),
    "potted plant": ("plant", "houseplant", "pot plant"),
    "dining table": ("table",),
    "tv": ("television",),
    "computer mouse": ("mouse",),
    "tv remote": ("remote", "remote control"),
    "computer keyboard": ("keyboard",),
    "cell phone": ("cellphone", "smartphone", "mobile phone", "phone"),
    "refrigerator": ("fridge",),
    "hair drier": ("hair dryer", "hairdryer", "blow dryer"),
}
_INVARIANT = INVARIANT | PLURAL_ONLY  # the same word is singular and plural
_NUMBERS = {"a": 1, "an": 1, "single": 1, **CARDINALS, "dozen": 12}
# Word tables, kept one concept per line block (the formatter would put each word on a line).
# fmt: off
_ORDINALS = {
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7,
    "eighth": 8, "ninth": 9, "tenth": 10, "eleventh": 11, "twelfth": 12,
}
_EMPHASIS = {"exactly", "precisely", "only", "just"}  # "exactly four"; also "a total of four"
_INTENSIFIERS = {
    "bright", "vivid", "vibrant", "deep", "solid", "pure", "intense", "entirely", "completely",
    "fully", "totally", "uniformly", "all",
}
_VAGUE = {"several", "many", "multiple", "some", "few", "various", "numerous", "lots", "plenty"}
_DEFINITE = {
    "the", "this", "that", "these", "those", "its", "their", "his", "her", "our", "my", "your",
    "each", "every", "all", "both",
}
_FRAME = {
    "image", "frame", "picture", "photo", "photograph", "scene", "canvas", "composition", "shot",
    "view", "painting", "illustration", "drawing", "render", "artwork", "screen",
}
# Words that end the backward search for an object's number and color (function words, places).
_STOP = {
    "of", "on", "in", "at", "to", "with", "from", "by", "for", "into", "onto", "near", "next",
    "beside", "besides", "behind", "under", "over", "above", "below", "beneath", "underneath",
    "atop", "left", "right", "top", "bottom", "and", "or", "but", "while", "whereas", "is", "are",
    "was", "were", "be", "been", "being", "has", "have", "had", "there", "here", "it", "they",
    "them", "which", "who", "whose", "than", "as", "not", "no", "nor", "photo", "image", "picture",
}
# Words allowed between an object and a predicate color ("the car, which is painted bright red").
_PREDICATE = {
    ",", "-", "which", "that", "who", "is", "are", "was", "were", "appears", "appear", "looks",
    "look", "seems", "seem", "painted", "colored", "coloured", "in", "a", "an", "also", "shown",
    "rendered", "drawn", "depicted",
}
_COLOR_FILLER = {"-", ",", "colored", "coloured", "shaded", "tinted"}
_SKIP_TO_OBJECT = (
    {"a", "an", "another", "other", "exactly", "precisely", "only", "just", "-", ","}
    | _DEFINITE | _INTENSIFIERS | _COLOR_FILLER
)
_CLAUSE_END = {".", "!", "?", ";", ":", "\n"}
_SUBCLAUSE_END = {",", "and", "while", "whereas", "but", "(", ")"}
_PLACE_NEXT = {
    "side", "half", "part", "portion", "area", "edge", "corner", "third", "hand", "region",
    "section", "-", "of", "quadrant",
}
_PLACE_PREV = {
    "the", "to", "on", "at", "far", "top", "bottom", "upper", "lower", "center", "centre",
    "middle", "-", "its", "towards", "toward", "in", "very",
}
_RELATIVE_WORDS = {
    "above": "above", "over": "above", "atop": "above", "below": "below", "under": "below",
    "underneath": "below", "beneath": "below", "beside": "next to", "besides": "next to",
    "near": "next to", "alongside": "next to",
}
# fmt: on

# CLIP's pre-tokenizer (letters, single digits, punctuation runs, contractions), one word = one token.
_CLIP_RE = re.compile(r"'s|'t|'re|'ve|'m|'ll|'d|[^\W\d_]+|\d|[^\s\w]+|_+")
_WORD_RE = re.compile(r"\n|\d+(?:st|nd|rd|th)?|[^\W\d_]+|[^\s\w]|_")


@dataclass(frozen=True)
class ObjectSpec:
    """One object group the prompt asks for, as the simulator understood it."""

    cls: str
    count: int | None  # None: a plural without a number ("apples"): 2-4 are drawn
    count_explicit: bool = False  # "exactly four", restated, or enumerated: counted right
    color: str | None = None
    color_reinforced: bool = False  # stated twice or intensified ("bright red"): not ignored
    # Colors of other objects that share every clause stating this object's color (or, if it has
    # none, every clause naming it): the colors that can leak onto it. Empty: not exposed.
    leak_colors: tuple[str, ...] = ()
    horizontal: str | None = None  # "left" | "center" | "right"
    vertical: str | None = None  # "top" | "middle" | "bottom"
    crowd: int = 1  # fewest distinct objects in one clause naming this one (1 = described alone)
    # Which cues made the count explicit (count >= 2 only): "emphasis" ("exactly four"), "restated"
    # ("four cups ... all four cups"), "enumerated" ("the first ... the fourth", "a dog ... another
    # dog"). ``count_explicit`` is "any of them"; a calibration may trust only some (SketchConfig).
    count_cues: tuple[str, ...] = ()
    # How the color was stated: "repeated" (twice), "intensified" ("bright red"), "predicate" (after
    # the noun: "the car is red"). ``color_reinforced`` is "repeated or intensified".
    color_cues: tuple[str, ...] = ()


@dataclass(frozen=True)
class Relation:
    """``objects[subject]`` is ``relation`` (GenEval's words) ``objects[object]``."""

    subject: int
    relation: str  # "left of" | "right of" | "above" | "below" | "next to"
    object: int
    mirrored: bool = False  # its converse is stated too ("the cup is right of the dog"): one fact


@dataclass(frozen=True)
class PromptReading:
    objects: tuple[ObjectSpec, ...]
    relations: tuple[Relation, ...]
    tokens: int  # approximate CLIP tokens of the whole text, BOS and EOS included
    truncated: bool  # only the first ``limit`` tokens were read
    read_text: str  # the lower-cased text actually read


def count_clip_tokens(text: str) -> int:
    """Approximate CLIP token count (one per word, digit or punctuation run) plus BOS and EOS."""
    return len(_CLIP_RE.findall(text.lower())) + 2


def _build_aliases() -> dict[tuple[str, ...], tuple[str, bool]]:
    """Word tuple -> (class, is_plural); naive plurals too, since GenEval writes "benchs", "sheeps"."""
    aliases: dict[tuple[str, ...], tuple[str, bool]] = {}
    for cls in COCO_CLASSES:
        for name in (cls, *_SYNONYMS.get(cls, ())):
            *head, last = name.split(" ")
            forms = {plural(name).split(" ")[-1], last + "s", last + "es"}
            for form in forms - {last}:
                aliases[(*head, form)] = (cls, last not in _INVARIANT)
            aliases[tuple(name.split(" "))] = (cls, False)
    return aliases


_ALIASES = _build_aliases()
_ALIAS_MAX = max(len(k) for k in _ALIASES)


@dataclass
class _Mention:
    cls: str
    start: int
    end: int  # exclusive token index
    clause: int
    plural: bool
    count: int | None = None
    emphatic: bool = False
    another: bool = False
    definite: bool = False
    ordinal: int | None = None
    color: str | None = None
    color_statements: int = 0
    intensified: bool = False
    predicate: bool = False  # the color was (also) stated after the noun
    entity: int = -1


@dataclass
class _Entity:
    cls: str
    count: int | None = None
    plural: bool = False
    emphatic: bool = False
    restated: bool = False
    singles: bool = False  # built from "a dog ... another dog": enumerated
    ordinals: set[int] = field(default_factory=set)
    color: str | None = None
    color_statements: int = 0
    intensified: bool = False
    predicate: bool = False
    horizontal: str | None = None
    vertical: str | None = None
    center: bool = False


def words(text: str) -> list[str]:
    """The lower-cased words, numbers and punctuation marks the reader works on."""
    return _WORD_RE.findall(text.lower())


def object_mentions(toks: list[str]) -> list[tuple[str, int, int]]:
    """(class, start, end) of each COCO object named in ``toks`` (from :func:`words`), found as the
    simulator finds them: synonyms and plurals, longest name first, "orange" the color vs the fruit."""
    reader = _Reader(toks)
    reader.find_mentions()
    return [(m.cls, m.start, m.end) for m in reader.mentions]


def read_prompt(text: str, limit: int | None = CLIP_LIMIT) -> PromptReading:
    """Read ``text`` as the sketch simulator does; only the first ``limit`` CLIP tokens count."""
    if not isinstance(text, str):
        raise TypeError(f"prompt must be a str, got {type(text).__name__}")
    return _read(text, limit)


@lru_cache(maxsize=16384)
def _read(text: str, limit: int | None) -> PromptReading:
    lowered = text.lower()
    spans = [m.span() for m in _CLIP_RE.finditer(lowered)]
    n_tokens = len(spans) + 2
    truncated = limit is not None and n_tokens > limit
    if limit is not None and truncated:
        keep = max(limit - 2, 0)  # BOS and EOS take two of the slots
        lowered = lowered[: spans[keep - 1][1]] if keep else ""
    reader = _Reader(_WORD_RE.findall(lowered))
    objects, relations = reader.read()
    return PromptReading(objects, relations, n_tokens, truncated, lowered)


class _Reader:
    """One pass over the tokens of one prompt (kept as a class only to share the token arrays)."""

    def __init__(self, toks: list[str]) -> None:
        self.toks = toks
        self.n = len(toks)
        self.clause: list[int] = []
        self.sub: list[int] = []
        c = s = 0
        for t in toks:  # a boundary token belongs to the clause it ends
            self.clause.append(c)
            self.sub.append(s)
            if t in _CLAUSE_END:
                c += 1
                s += 1
            elif t in _SUBCLAUSE_END:
                s += 1
        self.mention_at: dict[int, int] = {}
        self.in_mention = [False] * self.n
        self.mentions: list[_Mention] = []

    def tok(self, i: int) -> str:
        return self.toks[i] if 0 <= i < self.n else ""

    # --- objects -------------------------------------------------------------------------------
    def find_mentions(self) -> None:
        i = 0
        while i < self.n:
            hit = None
            for length in range(min(_ALIAS_MAX, self.n - i), 0, -1):
                key = tuple(self.toks[i : i + length])
                if key in _ALIASES:
                    hit = (length, *_ALIASES[key])
                    break
            if hit is None or (self.toks[i] == "orange" and hit[0] == 1 and self._orange_is_color(i)):
                i += 1
                continue
            length, cls, is_plural = hit
            if self.toks[i + length : i + length + 3] == ["'", "s", "-"]:  # "bird's-eye view"
                i += length
                continue
            m = _Mention(cls, i, i + length, self.clause[i], is_plural)
            self.mention_at[i] = len(self.mentions)
            for k in range(i, i + length):
                self.in_mention[k] = True
            self.mentions.append(m)
            i += length

    def _orange_is_color(self, i: int) -> bool:
        """'orange' is a color before another object ("an orange cup") or after "is"; else a fruit."""
        if self.tok(i - 1) in _PREDICATE - {"a", "an", ",", "-"} or self.tok(i - 1) in _INTENSIFIERS:
            return True
        for k in range(i + 1, min(i + 4, self.n)):
            t = self.toks[k]
            for length in range(min(_ALIAS_MAX, self.n - k), 0, -1):
                if tuple(self.toks[k : k + length]) in _ALIASES:
                    return True
            if t in _STOP or t in _CLAUSE_END or t in _NUMBERS or (t.isdigit()):
                return False
        return False

    def bind_modifiers(self, m: _Mention) -> None:
        """Number, ordinal and color before the noun; a predicate color after it."""
        j, unknown = m.start - 1, 0
        while j >= 0 and not self.in_mention[j] and self.clause[j] == m.clause:
            t = self.toks[j]
            if t in GENEVAL_COLORS:
                if m.color is None:
                    m.color, m.color_statements = t, 1
                    m.intensified = self.tok(j - 1) in _INTENSIFIERS
            elif t in _ORDINALS or (t[:1].isdigit() and t[-2:] in ("st", "nd", "rd", "th")):
                m.ordinal = _ORDINALS.get(t) or int(t[:-2])
            elif t in _NUMBERS or t.isdigit():
                m.count = _NUMBERS.get(t) or int(t)
                m.emphatic = self._emphasis_before(j)
                break
            elif t == "of" and self.tok(j - 1) in ("pair", "couple"):
                m.count, m.emphatic = 2, self._emphasis_before(j - 2)
                break
            elif t == "another":
                m.another = True
                break
            elif t in _DEFINITE:
                m.definite = True
                break
            elif t in _VAGUE:
                break
            elif t in _COLOR_FILLER or t in _INTENSIFIERS:
                pass
            elif t in _STOP or not t.isalpha():
                break
            else:  # an adjective (or any unknown word): skipped, a few at most
                unknown += 1
                if unknown > 4:
                    break
            j -= 1
        k = m.end
        while k < min(m.end + 7, self.n) and not self.in_mention[k]:
            t = self.toks[k]
            if t in GENEVAL_COLORS:
                nxt = k + 1 + (self.tok(k + 1) in _COLOR_FILLER)
                if nxt in self.mention_at:  # "a dog in a red car": the color belongs to the car
                    break
                if m.color in (None, t):
                    m.color = t
                    m.color_statements += 1
                    m.intensified |= self.tok(k - 1) in _INTENSIFIERS
                    m.predicate = True
                break
            if t not in _PREDICATE and t not in _INTENSIFIERS:
                break
            k += 1

    def _emphasis_before(self, j: int) -> bool:
        return self.tok(j - 1) in _EMPHASIS or (self.tok(j - 1) == "of" and self.tok(j - 2) == "total")

    def merge(self) -> list[_Entity]:
        """Mentions of one class are one object group, unless a new one is introduced in a new color."""
        ents: list[_Entity] = []
        for m in self.mentions:
            cands = [k for k, e in enumerate(ents) if e.cls == m.cls]
            introduces = m.another or (m.count is not None and not m.definite)
            same_color = [k for k in cands if m.color and ents[k].color == m.color]
            if not cands or (introduces and m.color and not same_color and all(ents[k].color for k in cands)):
                ents.append(_Entity(m.cls, singles=m.count == 1 and not m.definite))
                k = len(ents) - 1
                m.another = False  # "another red car" after "a blue car" is a new group of one
            else:
                k = (same_color or cands)[-1]
            m.entity = k
            e = ents[k]
            e.plural |= m.plural
            if m.another:
                e.count = (e.count or 1) + 1
            elif m.count is not None:
                if e.count is None:
                    e.count, e.emphatic = m.count, e.emphatic or m.emphatic
                    e.singles = e.singles and m.count == 1
                elif e.count == m.count and m.count > 1:
                    e.restated, e.emphatic = True, e.emphatic or m.emphatic
            if m.ordinal:
                e.ordinals.add(m.ordinal)
            if m.color and e.color in (None, m.color):
                e.color = m.color
                e.color_statements += m.color_statements
                e.intensified |= m.intensified
                e.predicate |= m.predicate
        return ents

    # --- places --------------------------------------------------------------------------------
    def _is_place(self, i: int) -> bool:
        """Is the word at ``i`` used as a place ("on the left", "top-left") and not e.g. a verb?"""
        t, prev, nxt = self.toks[i], self.tok(i - 1), self.tok(i + 1)
        if t in ("leftmost", "rightmost", "topmost", "bottommost", "centered", "centred", "central"):
            return True
        ends = nxt == "" or nxt in _CLAUSE_END or nxt == ","
        if t in ("left", "right"):
            return nxt in _PLACE_NEXT or prev in _PLACE_PREV or ends
        if t in ("top", "bottom"):
            return nxt in _PLACE_NEXT or prev in _PLACE_PREV or ends or nxt in ("left", "right", "center")
        if t in ("upper", "lower"):
            return nxt in _PLACE_NEXT or nxt in ("left", "right") or prev == "the"
        if t in ("center", "centre", "middle"):
            return prev in _PLACE_PREV or nxt in ("-", "of", "left", "right", "top", "bottom")
        return False

    def _target(self, k: int) -> tuple[str, int | None]:
        """What follows a relation word: ("object", mention) | ("frame", None) | ("none", None)."""
        clause, unknown = self.clause[k] if k < self.n else -1, 0
        while k < self.n and self.clause[k] == clause:
            if k in self.mention_at:
                return "object", self.mention_at[k]
            t = self.toks[k]
            if t in _FRAME:
                return "frame", None
            if t in _SKIP_TO_OBJECT or t in _NUMBERS or t.isdigit() or t in GENEVAL_COLORS or t in _ORDINALS:
                k += 1
                continue
            if t in _STOP or not t.isalpha() or unknown >= 3:
                return "none", None
            unknown += 1
            k += 1
        return "none", None

    def _subject(self, i: int, after: int | None = None, exclude: int | None = None) -> int | None:
        """Mention a place word at ``i`` is about: nearest before it in its sub-clause, else first
        after it (after ``after``, the relation's object) in the sub-clause, then the same in the clause."""
        exclude_ent = self.mentions[exclude].entity if exclude is not None else None
        order = [m for m in self.mentions if m.entity != exclude_ent]
        start_after = after if after is not None else i
        for unit in (self.sub, self.clause):
            before = [m for m in order if m.end <= i and unit[m.start] == unit[i]]
            if before:
                return before[-1].entity
            later = [m for m in order if m.start > start_after and unit[m.start] == unit[i]]
            if later:
                return later[0].entity
        return None

    def places(self, ents: list[_Entity]) -> list[Relation]:
        relations: list[Relation] = []
        i = 0
        while i < self.n:
            if self.in_mention[i]:
                i += 1
                continue
            t, nxt = self.toks[i], self.tok(i + 1)
            rel: str | None = None
            target_at = 0  # where the related object is read from (set with rel)
            if t in ("left", "right") and nxt == "of":
                rel, target_at = f"{t} of", i + 2
            elif t in ("top", "bottom") and nxt == "of":
                rel, target_at = ("above" if t == "top" else "below"), i + 2
            elif t in ("higher", "lower", "upper") and nxt == "than":
                rel, target_at = ("below" if t == "lower" else "above"), i + 2
            elif t in ("next", "close", "adjacent") and nxt == "to":
                rel, target_at = "next to", i + 2
            elif t in _RELATIVE_WORDS:
                rel, target_at = _RELATIVE_WORDS[t], i + 1
            if rel is not None:
                kind, obj = self._target(target_at)
                if kind == "object" and obj is not None:
                    subj = self._subject(i, after=self.mentions[obj].start, exclude=obj)
                    if subj is not None:
                        relations.append(Relation(subj, rel, self.mentions[obj].entity))
                    i = self.mentions[obj].end
                    continue
                if t in _RELATIVE_WORDS or t in ("next", "close", "adjacent", "higher", "than"):
                    i += 1
                    continue
            if self._is_place(i):
                subj = self._subject(i)
                if subj is not None:
                    self._set_place(ents[subj], t)
            i += 1
        unique = list(dict.fromkeys(r for r in relations if r.subject != r.object))
        stated = {(r.subject, r.relation, r.object) for r in unique}
        return [
            Relation(r.subject, r.relation, r.object, mirrored=True)
            if (r.object, CONVERSE.get(r.relation), r.subject) in stated
            else r
            for r in unique
        ]

    @staticmethod
    def _set_place(e: _Entity, word: str) -> None:
        word = word.removesuffix("most")
        if word in ("left", "right"):
            e.horizontal = e.horizontal or word
        elif word in ("top", "upper", "bottom", "lower"):
            e.vertical = e.vertical or ("top" if word in ("top", "upper") else "bottom")
        else:
            e.center = True

    # --- all -----------------------------------------------------------------------------------
    def read(self) -> tuple[tuple[ObjectSpec, ...], tuple[Relation, ...]]:
        self.find_mentions()
        for m in self.mentions:
            self.bind_modifiers(m)
        ents = self.merge()
        relations = self.places(ents)
        clause_ents: dict[int, set[int]] = {}
        clause_colors: dict[int, dict[int, str]] = {}
        for m in self.mentions:
            clause_ents.setdefault(m.clause, set()).add(m.entity)
            if m.color and m.color == ents[m.entity].color:
                clause_colors.setdefault(m.clause, {})[m.entity] = m.color
        specs = []
        for k, e in enumerate(ents):
            clauses = [c for c, s in clause_ents.items() if k in s]
            if e.color:
                clauses = [c for c in clauses if k in clause_colors.get(c, {})]
            pools = [
                {col for ent, col in clause_colors.get(c, {}).items() if ent != k} - {e.color}
                for c in clauses
            ]
            leak = tuple(sorted(set().union(*pools))) if pools and all(pools) else ()
            count = e.count if e.count is not None else (None if e.plural else 1)
            count_cues: tuple[str, ...] = ()
            if count is not None and count > 1:
                # len() first: never build a huge range for "99999999999 cats"
                enumerated = e.singles or (
                    len(e.ordinals) >= count and e.ordinals >= set(range(1, count + 1))
                )
                count_cues = tuple(
                    cue
                    for cue, present in zip(COUNT_CUES, (e.emphatic, e.restated, enumerated), strict=True)
                    if present
                )
            color_cues: tuple[str, ...] = ()
            if e.color:
                color_cues = tuple(
                    cue
                    for cue, present in zip(
                        COLOR_CUES, (e.color_statements >= 2, e.intensified, e.predicate), strict=True
                    )
                    if present
                )
            specs.append(
                ObjectSpec(
                    cls=e.cls,
                    count=count,
                    count_explicit=bool(count_cues),
                    color=e.color,
                    color_reinforced=bool({"repeated", "intensified"} & set(color_cues)),
                    leak_colors=leak,
                    horizontal=e.horizontal or ("center" if e.center else None),
                    vertical=e.vertical or ("middle" if e.center else None),
                    crowd=min(len(clause_ents[c]) for c in clause_ents if k in clause_ents[c]),
                    count_cues=count_cues,
                    color_cues=color_cues,
                )
            )
        return tuple(specs), tuple(relations)
