"""Each GenEval template's space of meanings, counted exactly: how many distinct prompts a template can make
from a vocabulary (after exclusions), and drawing from that space without repeats. This is what lets
:func:`reprompt.data.prompts.split_prompts` refuse a quota that cannot be met instead of quietly shrinking it."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from reprompt.data.templates import (
    INVERSE,
    color_attr,
    colors,
    counting,
    normalize_text,
    position,
    single_object,
    two_object,
)
from reprompt.geneval.rules import RELATIONS
from reprompt.geneval.vocabulary import template_of


class SpaceConfig(Protocol):
    """What a prompt space is counted over (a :class:`~reprompt.data.prompts.PromptGenConfig` has it)."""

    @property
    def vocabulary(self) -> Sequence[str]: ...
    @property
    def colors(self) -> Sequence[str]: ...
    @property
    def counts(self) -> Sequence[int]: ...
    @property
    def seed(self) -> int: ...


def _unpair(p: int) -> tuple[int, int]:
    """The ``p``-th pair ``i < j`` in the order (0,1), (0,2), (1,2), (0,3), ...: ``p = j(j-1)/2 + i``."""
    j = (1 + math.isqrt(1 + 8 * p)) // 2
    return p - j * (j - 1) // 2, j


def _pair(i: int, j: int) -> int:
    lo, hi = min(i, j), max(i, j)
    return hi * (hi - 1) // 2 + lo


class TemplateSpace:
    """Every distinct meaning one template can express with a vocabulary, colours and counts, numbered
    ``0 .. size-1`` (one number per meaning: 'a cat and a dog' and 'a dog and a cat' share one, as do
    'A left of B' and 'B right of A'). Sampling numbers without replacement gives unique prompts with no
    rejection loop, and the size says exactly when a quota cannot be met."""

    def __init__(self, tag: str, cfg: SpaceConfig) -> None:
        self.tag, self.vocab, self.colors, self.counts = tag, cfg.vocabulary, cfg.colors, cfg.counts
        self._vocab_ix = {v: i for i, v in enumerate(self.vocab)}
        v, c, pairs = len(self.vocab), len(self.colors), len(self.vocab) * (len(self.vocab) - 1) // 2
        self.size = {
            "single_object": v,
            "two_object": pairs,
            "counting": v * len(self.counts),
            "colors": v * c,
            "position": pairs * len(RELATIONS),
            "color_attr": pairs * c * c,
        }[tag]

    def meta(self, i: int, flip: bool = False) -> dict[str, Any]:
        """The prompt numbered ``i``; ``flip`` picks the other wording of two-object meanings."""
        v, tag = self.vocab, self.tag
        if tag == "single_object":
            return single_object(v[i])
        if tag == "counting":
            return counting(v[i // len(self.counts)], self.counts[i % len(self.counts)])
        if tag == "colors":
            return colors(v[i // len(self.colors)], self.colors[i % len(self.colors)])
        if tag == "two_object":
            lo, hi = _unpair(i)
            return two_object(v[hi], v[lo]) if flip else two_object(v[lo], v[hi])
        if tag == "position":
            p, r = divmod(i, len(RELATIONS))
            lo, hi = _unpair(p)
            rel = RELATIONS[r]
            return position(v[hi], INVERSE[rel], v[lo]) if flip else position(v[lo], rel, v[hi])
        p, cc = divmod(i, len(self.colors) ** 2)
        (lo, hi), (c_lo, c_hi) = _unpair(p), divmod(cc, len(self.colors))
        a, b = (v[lo], self.colors[c_lo]), (v[hi], self.colors[c_hi])
        return color_attr(*b, *a) if flip else color_attr(*a, *b)

    def wordings(self, i: int) -> set[str]:
        """Normalised texts of every wording of meaning ``i``."""
        return {normalize_text(self.meta(i, flip)["prompt"]) for flip in (False, True)}

    def index_of(self, tag: str | None, include: Sequence[Mapping[str, Any]]) -> int | None:
        """The number of a meaning (GenEval ``tag`` + ``include`` clauses), or None if it is not in this
        space (another template, an object/colour/count outside the configuration)."""
        if tag != self.tag:
            return None
        try:
            cls = [self._vocab_ix[c["class"]] for c in include]
            col = [self.colors.index(c["color"]) if "color" in c else None for c in include]
            cnt = [int(c.get("count", 1)) for c in include]
        except (KeyError, ValueError, TypeError):
            return None
        one_each = all(n == 1 for n in cnt)
        if tag in ("single_object", "counting", "colors"):
            if len(cls) != 1:
                return None
            if tag == "single_object":
                return cls[0] if one_each and col == [None] else None
            if tag == "colors":
                return cls[0] * len(self.colors) + col[0] if one_each and col[0] is not None else None
            if col != [None] or cnt[0] not in self.counts:
                return None
            return cls[0] * len(self.counts) + self.counts.index(cnt[0])
        if len(cls) != 2 or cls[0] == cls[1] or not one_each:
            return None
        pair = _pair(*cls)
        if tag == "two_object":
            return pair if col == [None, None] else None
        if tag == "color_attr":
            c_lo, c_hi = (col[0], col[1]) if cls[0] < cls[1] else (col[1], col[0])
            if c_lo is None or c_hi is None:
                return None
            return (pair * len(self.colors) + c_lo) * len(self.colors) + c_hi
        rel_clause = include[1].get("position")  # position: include = [reference B, A with [rel, 0]]
        if not rel_clause or rel_clause[0] not in RELATIONS or col != [None, None]:
            return None
        a, b, rel = cls[1], cls[0], rel_clause[0]
        rel = rel if a < b else INVERSE[rel]  # the space numbers "lower-index object REL higher-index object"
        return pair * len(RELATIONS) + RELATIONS.index(rel)


def _key_meaning(key: str) -> tuple[str | None, list[dict[str, Any]]]:
    """(tag, include clauses) back from a :func:`meaning_key`."""
    parts = json.loads(key)
    if template_of(parts[0]) == "position" and len(parts) == 5:
        tag, a, rel, b, _ = parts
        return tag, position(a, rel, b)["include"]
    return parts[0], [json.loads(c) for c in parts[1]]


@dataclass
class TemplateSupply:
    """How many prompts one template can give: its whole space, less test-set and reserved meanings."""

    space: int
    excluded: int = 0
    """Meanings in the space that are in the excluded (test) sets."""
    reserved: int = 0
    """Meanings in the space already taken by a split read from a file (``--rl-from``)."""

    @property
    def available(self) -> int:
        return self.space - self.excluded - self.reserved
