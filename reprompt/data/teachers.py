"""Teachers that write SFT targets (reasoning + enhanced prompt) for user prompts.

``grounded`` works offline from a prompt's GenEval metadata: it states every object with its exact count,
gives each object its own colour clause, and places each object absolutely on the canvas in a way that
satisfies the requested relation. Any policy backend (a local model, an OpenAI-compatible endpoint) can be
a teacher too; its completions are parsed and filtered like everything else.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from reprompt.data.prompts import NUMBER_WORDS, article, plural
from reprompt.errors import RepromptError
from reprompt.format import PromptSpec, TagFormat, render_completion


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


def _rng(record: Mapping[str, Any], seed: int) -> random.Random:
    key = f"{seed}:{record.get('id', '')}:{record.get('prompt', '')}"
    return random.Random(int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big"))


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
        out = []
        for rec in records:
            try:
                reasoning, prompt = self.plan(rec)
            except _NoMetadata as e:
                out.append(TeacherOutput("", self.fmt, error=str(e)))
                continue
            out.append(TeacherOutput(render_completion(reasoning, prompt, self.fmt), self.fmt))
        return out

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
    """``grounded`` (offline, from metadata) or any policy name accepted by ``load_policy``
    (``openai`` with ``api_model=``, a local folder, a hub id, ``smollm2`` ...)."""
    if name == "grounded":
        return GroundedTeacher(fmt, seed=seed)
    if name == "none":
        raise RepromptError(
            "the 'none' policy writes no reasoning; use 'grounded' or a real policy as teacher"
        )
    from reprompt.policy import load_policy

    return PolicyTeacher(load_policy(name, **kw), options)
