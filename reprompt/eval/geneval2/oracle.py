"""The oracle judge: GenEval 2's questions answered from the scene the ``sketch`` simulator drew.

A simulator reports exactly what it drew (class, box, colour per object), so a question about those is
answered with certainty: the atom scores 1.0 when the expected answer holds, else 0.0 (Soft-TIFA's probability
of the expected answer, from a judge that is never unsure). What it answers, read from the question:

- object, "Are there any Xs in the image?": at least one X was drawn;
- count, "How many Xs are in the image?": exactly that many Xs were drawn;
- attribute, "Is the X C?" / "Are the Xs C?" with C one of GenEval's 10 colours: Xs were drawn and all of
  them are C;
- position, "... to the left of / to the right of / on top of / under the Y?": Xs and Ys were drawn and every
  X holds the relation to every Y by GenEval's position rule (box centres, dead zone 0.1 of their sizes;
  "on top of" is "above", "under" is "below": the picture is flat).

What it cannot answer is said and counted, never scored (:data:`REASONS`): a question about an object the
simulator cannot draw (it knows GenEval's 80 COCO classes and a few synonyms, as its prompt reader does:
``reprompt.backbones.sketch_text``), materials and textures (it draws flat colours), depth relations ("in
front of", "behind") and verbs ("chasing", "playing with").
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from reprompt.backbones.sketch_text import object_mentions, words
from reprompt.eval.geneval2.data import Atom
from reprompt.geneval.rules import GenEvalOptions, relative_position
from reprompt.geneval.vocabulary import GENEVAL_COLORS
from reprompt.utils.english import CARDINALS

if TYPE_CHECKING:
    from PIL import Image

    from reprompt.geneval.scene import SceneObject

MATERIALS = frozenset({"glass", "metal", "metallic", "stone", "plastic", "wooden", "wood", "paper", "golden"})
TEXTURES = frozenset({"sparkling", "checkered", "striped", "spotted", "furry", "shiny"})

REASONS: dict[str, str] = {
    "unknown object": "names an object the simulator cannot draw",
    "material": "asks for a material (the simulator draws flat colours)",
    "texture": "asks for a texture or pattern (the simulator draws flat colours)",
    "attribute": "asks for an attribute the scene does not record",
    "depth": "asks for a depth relation (in front of, behind): the scene is flat",
    "verb": "asks for an action (chasing, playing with, ...)",
    "unread": "is not in a form the oracle reads",
}
"""Why the oracle cannot answer a question (the key is what results record)."""

_RELATIONS = {
    "to the left of": "left of",
    "to the right of": "right of",
    "left of": "left of",
    "right of": "right of",
    "on top of": "above",
    "above": "above",
    "over": "above",
    "under": "below",
    "below": "below",
    "beneath": "below",
}
_DEPTH = ("in front of", "behind")
_COUNT = re.compile(r"^How many (?P<a>.+?) (?:are|is) (?:there )?in the image\?$", re.IGNORECASE)
_OBJECT = re.compile(
    r"^(?:Are there any|Is there an?|Is there any) (?P<a>.+?) in the image\?$", re.IGNORECASE
)
_ATTRIBUTE = re.compile(r"^(?:Is|Are) the (?P<a>.+) (?P<attr>[\w-]+)\?$", re.IGNORECASE)
_POSITION = re.compile(
    r"^(?:Is|Are) the (?P<a>.+?) (?P<rel>"
    + "|".join(sorted(map(re.escape, (*_RELATIONS, *_DEPTH)), key=len, reverse=True))
    + r") the (?P<b>.+?)\?$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Query:
    """A question the oracle can answer: ``kind`` presence | count | color | relation, about class ``cls``
    (``value``: the count, colour or relation; ``other``: the relation's second class)."""

    kind: str
    cls: str
    value: Any = None
    other: str | None = None


def _class_of(noun: str) -> str | None:
    """The COCO class a noun phrase names, read as the simulator reads prompts ("sheeps" -> sheep)."""
    toks = words(noun)
    found = object_mentions(toks)
    if len(found) != 1:
        return None
    cls, start, end = found[0]
    return cls if end == len(toks) else None


def read_question(atom: Atom) -> Query | str:
    """What ``atom`` asks, as a :class:`Query`, or the key of :data:`REASONS` saying why it cannot be answered."""
    q = atom.question.strip()
    if atom.skill == "verb":
        return "verb"
    if atom.skill in ("count", "object"):
        m = (_COUNT if atom.skill == "count" else _OBJECT).match(q)
        if not m:
            return "unread"
        cls = _class_of(m["a"])
        if cls is None:
            return "unknown object"
        if atom.skill == "object":
            return Query("presence", cls)
        n = CARDINALS.get(atom.answer.lower()) or (int(atom.answer) if atom.answer.isdigit() else None)
        return Query("count", cls, n) if n is not None else "unread"
    if atom.skill == "position":
        m = _POSITION.match(q)
        if not m:
            return "unread"
        a, b = _class_of(m["a"]), _class_of(m["b"])
        if a is None or b is None:
            return "unknown object"
        rel = m["rel"].lower()
        return "depth" if rel in _DEPTH else Query("relation", a, _RELATIONS[rel], b)
    if atom.skill == "attribute":
        m = _ATTRIBUTE.match(q)
        if not m:
            return "unread"
        cls, attr = _class_of(m["a"]), m["attr"].lower()
        if cls is None:
            return "unknown object"
        if attr in GENEVAL_COLORS:
            return Query("color", cls, attr)
        return "material" if attr in MATERIALS else "texture" if attr in TEXTURES else "attribute"
    return "unread"


def _holds(query: Query, scene: Sequence[SceneObject], options: GenEvalOptions) -> bool:
    drawn = [o for o in scene if o.cls == query.cls]
    if query.kind == "presence":
        return bool(drawn)
    if query.kind == "count":
        return len(drawn) == query.value
    if query.kind == "color":
        return bool(drawn) and all(o.color == query.value for o in drawn)
    targets = [o for o in scene if o.cls == query.other]
    if not drawn or not targets:
        return False
    return all(
        query.value in relative_position(o.box, t.box, options.position_threshold)
        for o in drawn
        for t in targets
    )


def expected_holds(atom: Atom, query: Query, scene: Sequence[SceneObject], options: GenEvalOptions) -> bool:
    """Whether the atom's expected answer is the true one for this scene (GenEval 2 expects "Yes" and the
    prompt's count; a "No" answer would expect the fact not to hold)."""
    holds = _holds(query, scene, options)
    return holds if query.kind == "count" or atom.answer.lower() != "no" else not holds


class OracleJudge:
    """Answers the questions a drawn scene can answer (score 1.0 or 0.0) and says why it cannot answer the
    others (score None, with the :data:`REASONS` key)."""

    name = "oracle"
    needs_scenes = True

    def __init__(self, options: GenEvalOptions | None = None) -> None:
        self.options = options or GenEvalOptions()

    def score(
        self,
        images: Sequence[Image.Image],
        atoms: Sequence[Sequence[Atom]],
        scenes: Sequence[Sequence[SceneObject]] | None,
    ) -> list[list[tuple[float | None, str | None]]]:
        if scenes is None:
            from reprompt.errors import RepromptError

            raise RepromptError(
                "the oracle judge reads the scenes a simulator backbone (sketch) draws; this run has none: "
                "use --judge local or --judge openai"
            )
        out = []
        for scene, image_atoms in zip(scenes, atoms, strict=True):
            row: list[tuple[float | None, str | None]] = []
            for atom in image_atoms:
                query = read_question(atom)
                if isinstance(query, str):
                    row.append((None, query))
                else:
                    row.append((float(expected_holds(atom, query, scene, self.options)), None))
            out.append(row)
        return out

    def info(self) -> dict[str, Any]:
        return {
            "judge": self.name,
            "model": None,
            "scoring": "exact answers from the drawn scene (1 or 0); unanswerable questions are not scored",
            "position_threshold": self.options.position_threshold,
        }


def answerable(atoms: Sequence[Atom]) -> list[bool]:
    """Which of ``atoms`` the oracle can answer (from the question text alone: no scene needed)."""
    return [not isinstance(read_question(a), str) for a in atoms]
