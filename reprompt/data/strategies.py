"""Which prompting strategies an enhanced prompt uses: the direct view of what a rewriter learned.

:func:`detect_strategies` reads one prompt (a teacher's target, a policy's rewrite) with the metadata of
the prompt it rewrites and says, for each strategy in :data:`STRATEGIES`, whether it is used (True),
not used (False) or does not apply to that request (None: no count to make exact). The decisions are
textual, sentence by sentence; objects are found with the sketch simulator's vocabulary (names,
synonyms, plurals), so "sofa" counts as a couch. Pure functions, no randomness, no model.

Units: a *sentence* ends at ``. ! ? ; :`` or a line break; a *clause* also ends at ``,``, "and",
"while", "but", "whereas". Only requested objects count as "other objects"; extra ones are listed by
:func:`extra_objects`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from reprompt.backbones.sketch_text import object_mentions as _object_mentions
from reprompt.backbones.sketch_text import words
from reprompt.data.templates import INVERSE
from reprompt.utils.english import CARDINALS

STRATEGIES: dict[str, str] = {
    "absolute_places": "(a) every requested object is placed absolutely in the frame, in a clause naming it "
    "('a cup on the left side of the image', 'at the top'; 'left of the dog' is relative, not absolute); "
    "applies to two or more objects",
    "exact_counts": "(b) every count of two or more is explicit: 'exactly', 'precisely', 'only', 'just' or "
    "'a total of' before the number, or the number stated twice for the object; applies to counts >= 2",
    "color_clauses": "(c) every requested color is restated in a clause of its own: after its object's name, "
    "in a clause naming no other requested object ('The car is red.', 'the car is painted red'); "
    "applies to colored objects",
    "one_object_per_sentence": "(d) every requested object has a sentence naming no other requested object; "
    "applies to two or more objects without a relation",
    "mirrored_relation": "hidden: the requested relation is stated from both sides ('a cup left of a dog "
    "... the dog is right of the cup'); applies to relations",
}
HIDDEN = ("mirrored_relation",)

_SENTENCE_END = {".", "!", "?", ";", ":", "\n"}
_CLAUSE_END = {",", "and", "while", "but", "whereas"}
_EMPHASIS = {"exactly", "precisely", "only", "just"}
_NUMBERS = {**CARDINALS, "dozen": 12}
# Words that may stand between a number and its noun ("four small red cups"), besides adjectives.
_NUMBER_STOP = {"of", "on", "in", "at", "with", "and", "or", "the", "a", "an", "is", "are", "than", "to"}
# Words between a noun and its predicate color ("the car is painted bright red").
# fmt: off
_PREDICATE = {
    "is", "are", "was", "were", "appears", "looks", "painted", "colored", "coloured", "finished", "in",
    "a", "an", "entirely", "completely", "fully", "all", "over", "deep", "bright", "vivid", "rich",
    "glossy", "matte", "soft", "muted", "solid", "pure", "shade", "of", "which", "that", "-",
}
_FRAME = {
    "image", "frame", "picture", "photo", "photograph", "scene", "canvas", "composition", "shot", "view",
}
# fmt: on
_PLACE_WORDS = {"left", "right", "top", "bottom", "upper", "lower", "center", "centre", "middle"}
_ALWAYS_PLACE = {"leftmost", "rightmost", "topmost", "bottommost", "centered", "centred"}
_PLACE_PREV = {"the", "to", "on", "at", "in", "far", "very", "upper", "lower", "top", "bottom", "-", "its"}
# fmt: off
_PLACE_NEXT = {
    "side", "half", "edge", "corner", "third", "part", "portion", "area", "region", "section", "quadrant",
    "hand", "-",
}
# fmt: on
_COLORS = {"red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "black", "white"}
# Relation words -> GenEval relation; "left"/"right" need a following "of".
# fmt: off
_RELATION_WORDS = {
    "above": "above", "over": "above", "atop": "above", "below": "below", "under": "below",
    "underneath": "below", "beneath": "below",
}
# fmt: on


class _Text:
    """One prompt as words, with its sentences, clauses and requested-object mentions."""

    def __init__(self, prompt: str, requested: Iterable[str]) -> None:
        self.toks = words(prompt)
        self.sentence, self.clause = [], []
        s = c = 0
        for t in self.toks:
            self.sentence.append(s)
            self.clause.append(c)
            if t in _SENTENCE_END:
                s, c = s + 1, c + 1
            elif t in _CLAUSE_END:
                c += 1
        self.all_mentions = _object_mentions(self.toks)
        wanted = set(requested)
        self.mentions = [m for m in self.all_mentions if m[0] in wanted]

    def tok(self, i: int) -> str:
        return self.toks[i] if 0 <= i < len(self.toks) else ""

    def of(self, cls: str) -> list[tuple[str, int, int]]:
        return [m for m in self.mentions if m[0] == cls]

    def named_in(self, unit: list[int], k: int) -> set[str]:
        """Requested classes named in unit (sentence or clause) ``k``."""
        return {m[0] for m in self.mentions if unit[m[1]] == k}


def _requested(metadata: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return list(metadata.get("include") or [])


def _relation(metadata: Mapping[str, Any]) -> tuple[str, str, str] | None:
    """(subject class, relation, reference class) the metadata asks for, if any."""
    inc = _requested(metadata)
    for c in inc:
        if "position" in c:
            rel, ref = c["position"][0], int(c["position"][1])
            if rel in INVERSE and 0 <= ref < len(inc):
                return c["class"], rel, inc[ref]["class"]
    return None


def applicable(metadata: Mapping[str, Any]) -> dict[str, bool]:
    """Which strategies can apply to a request with this metadata."""
    inc = _requested(metadata)
    multi = len({c["class"] for c in inc}) > 1
    relation = _relation(metadata)
    return {
        "absolute_places": multi,
        "exact_counts": any(int(c.get("count", 1)) > 1 for c in inc),
        "color_clauses": any(c.get("color") for c in inc),
        "one_object_per_sentence": multi and relation is None,
        "mirrored_relation": relation is not None,
    }


def detect_strategies(prompt: str, metadata: Mapping[str, Any]) -> dict[str, bool | None]:
    """For each of :data:`STRATEGIES`: used (True), not used (False), or not applicable (None)."""
    inc = _requested(metadata)
    text = _Text(prompt, [c["class"] for c in inc])
    checks = {
        "absolute_places": lambda: all(_placed(text, c["class"]) for c in inc),
        "exact_counts": lambda: all(
            _exact(text, c["class"], int(c.get("count", 1))) for c in inc if int(c.get("count", 1)) > 1
        ),
        "color_clauses": lambda: all(
            _color_clause(text, c["class"], c["color"]) for c in inc if c.get("color")
        ),
        "one_object_per_sentence": lambda: all(_own_sentence(text, c["class"]) for c in inc),
        "mirrored_relation": lambda: _mirrored(text, _relation(metadata)),
    }
    return {name: (checks[name]() if ok else None) for name, ok in applicable(metadata).items()}


def named_objects(prompt: str) -> list[str]:
    """Every COCO class the prompt names, in order of first mention."""
    return list(dict.fromkeys(m[0] for m in _object_mentions(words(prompt))))


def missing_objects(prompt: str, metadata: Mapping[str, Any]) -> list[str]:
    """Requested classes the prompt never names (a rewrite should name every one)."""
    named = set(named_objects(prompt))
    return [c["class"] for c in _requested(metadata) if c["class"] not in named]


def extra_objects(prompt: str, metadata: Mapping[str, Any]) -> list[str]:
    """Classes the prompt names that were not requested ("on a wooden table")."""
    requested = {c["class"] for c in _requested(metadata)}
    return [cls for cls in named_objects(prompt) if cls not in requested]


def strategy_table(rows: Iterable[tuple[str, Mapping[str, Any]]]) -> dict[str, dict[str, float]]:
    """Over (prompt, metadata) pairs: per strategy, how many applied, how many used it, and the rate."""
    table = {name: {"applicable": 0, "used": 0, "rate": 0.0} for name in STRATEGIES}
    for prompt, metadata in rows:
        for name, used in detect_strategies(prompt, metadata).items():
            if used is not None:
                table[name]["applicable"] += 1
                table[name]["used"] += int(used)
    for row in table.values():
        row["rate"] = row["used"] / row["applicable"] if row["applicable"] else 0.0
    return table


# ------------------------------------------------------------------------------------------- checks


def _is_absolute_place(text: _Text, i: int) -> bool:
    t, prev, nxt = text.toks[i], text.tok(i - 1), text.tok(i + 1)
    if t in _ALWAYS_PLACE:
        return True
    if t not in _PLACE_WORDS:
        return False
    if nxt == "than":
        return False
    if nxt == "of":  # "top of the image" is a place, "left of the dog" a relation
        k = i + 2
        while text.tok(k) in ("the", "a", "an", "this", "whole", "entire"):
            k += 1
        return text.tok(k) in _FRAME
    if t in ("upper", "lower"):
        return nxt in _PLACE_NEXT or nxt in ("left", "right")
    if t in ("center", "centre", "middle"):
        return prev in ("the", "in", "at", "-")
    ends = nxt == "" or nxt in _SENTENCE_END or nxt in _CLAUSE_END
    return prev in _PLACE_PREV or nxt in _PLACE_NEXT or ends


def _placed(text: _Text, cls: str) -> bool:
    """Some absolute place phrase in a clause belongs to ``cls``: the nearest requested object before
    it in the clause, else the first one after it."""
    for i in range(len(text.toks)):
        if not _is_absolute_place(text, i) or any(m[1] <= i < m[2] for m in text.mentions):
            continue
        same = [m for m in text.mentions if text.clause[m[1]] == text.clause[i]]
        before = [m for m in same if m[2] <= i]
        after = [m for m in same if m[1] > i]
        owner = before[-1] if before else (after[0] if after else None)
        if owner is not None and owner[0] == cls:
            return True
    return False


def _number_before(text: _Text, start: int) -> tuple[int, int] | None:
    """(value, index) of the number attached to a noun starting at ``start`` ("four small cups")."""
    j = start - 1
    while j >= 0 and start - j <= 5 and text.sentence[j] == text.sentence[start]:
        t = text.toks[j]
        if t in _NUMBERS:
            return _NUMBERS[t], j
        if t.isdigit():
            return int(t), j
        if t in _NUMBER_STOP or t in _SENTENCE_END or t in _CLAUSE_END:
            return None
        j -= 1
    return None


def _exact(text: _Text, cls: str, count: int) -> bool:
    stated = 0
    for _, start, _ in text.of(cls):
        found = _number_before(text, start)
        if found is None or found[0] != count:
            continue
        stated += 1
        j = found[1]
        if text.tok(j - 1) in _EMPHASIS or (text.tok(j - 1) == "of" and text.tok(j - 2) == "total"):
            return True
    return stated >= 2


def _color_clause(text: _Text, cls: str, color: str) -> bool:
    for _, _, end in text.of(cls):
        clause = text.clause[end - 1]
        if text.named_in(text.clause, clause) != {cls}:
            continue
        k = end
        while k < len(text.toks) and text.clause[k] == clause and k - end <= 5:
            if text.toks[k] == color:
                return True
            if text.toks[k] not in _PREDICATE:
                break
            k += 1
    return False


def _own_sentence(text: _Text, cls: str) -> bool:
    return any(text.named_in(text.sentence, text.sentence[start]) == {cls} for _, start, _ in text.of(cls))


def _relations(text: _Text) -> set[tuple[str, str, str]]:
    """(subject, relation, object) between requested objects, stated within a sentence."""
    found = set()
    for i, t in enumerate(text.toks):
        rel, after = None, i + 1
        if t in ("left", "right") and text.tok(i + 1) == "of":
            rel, after = f"{t} of", i + 2
        elif t == "top" and text.tok(i + 1) == "of" and text.tok(i - 1) == "on":
            rel, after = "above", i + 2
        elif t in _RELATION_WORDS:
            rel = _RELATION_WORDS[t]
        if rel is None:
            continue
        sentence = text.sentence[i]
        later = [m for m in text.mentions if m[1] >= after and text.sentence[m[1]] == sentence]
        if not later or later[0][1] - after > 3:
            continue
        obj = later[0][0]
        before = [m for m in text.mentions if m[2] <= i and text.sentence[m[1]] == sentence and m[0] != obj]
        if before:
            found.add((before[-1][0], rel, obj))
    return found


def _mirrored(text: _Text, relation: tuple[str, str, str] | None) -> bool:
    if relation is None:
        return False
    subject, rel, reference = relation
    stated = _relations(text)
    return (subject, rel, reference) in stated and (reference, INVERSE[rel], subject) in stated


__all__ = [
    "HIDDEN",
    "STRATEGIES",
    "applicable",
    "detect_strategies",
    "extra_objects",
    "missing_objects",
    "named_objects",
    "strategy_table",
]
