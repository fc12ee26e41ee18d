"""GenEval's six prompt templates, written and read back: the words they use, the metadata each carries,
a prompt's meaning (so "a cat and a dog" = "a dog and a cat"), and the object vocabularies they are filled
from. Used by the prompt generator (:mod:`reprompt.data.prompts`) and the SFT teachers."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from reprompt.errors import ConfigError, RepromptError, did_you_mean
from reprompt.geneval.rules import RELATIONS
from reprompt.geneval.vocabulary import COCO_CLASSES, GENEVAL_COLORS, template_of
from reprompt.utils.english import CARDINALS, plural

INVERSE = {"left of": "right of", "right of": "left of", "above": "below", "below": "above"}
NUMBER_WORDS = {n: w for w, n in CARDINALS.items() if 2 <= n <= 9}  # the counts GenEval's templates write
WORD_NUMBERS = {w: n for n, w in NUMBER_WORDS.items()}


def article(word: str) -> str:
    """'a' or 'an' as GenEval writes them (by the first letter)."""
    return "an" if word[:1].lower() in "aeiou" else "a"


@functools.lru_cache(maxsize=8)
def _plural_forms(vocabulary: tuple[str, ...]) -> dict[str, str]:
    """Every name, its plural and GenEval's naive '+s'/'+es' plurals -> the name. A real plural or name
    wins over a naive form ('capes' is cape, not cap+es); otherwise the first name in the vocabulary."""
    forms: dict[str, str] = {}
    for name in vocabulary:
        forms.setdefault(name, name)
        forms.setdefault(plural(name), name)
    for name in vocabulary:
        forms.setdefault(name + "s", name)
        forms.setdefault(name + "es", name)
    return forms


def singular(words: str, vocabulary: Iterable[str] = COCO_CLASSES) -> str:
    """Undo :func:`plural` (and GenEval's naive '+s'/'+es' plurals) using the vocabulary when it can."""
    name = _plural_forms(tuple(vocabulary)).get(words)
    if name is not None:
        return name
    for suffix, repl in (
        ("ies", "y"),
        ("ches", "ch"),
        ("shes", "sh"),
        ("sses", "ss"),
        ("xes", "x"),
        ("s", ""),
    ):
        if words.endswith(suffix) and len(words) > len(suffix) + 1:
            return words[: -len(suffix)] + repl
    return words


# ------------------------------------------------------------------------------------------ templates


def single_object(cls: str) -> dict[str, Any]:
    return {
        "tag": "single_object",
        "include": [{"class": cls, "count": 1}],
        "prompt": f"a photo of {article(cls)} {cls}",
    }


def two_object(a: str, b: str) -> dict[str, Any]:
    return {
        "tag": "two_object",
        "include": [{"class": a, "count": 1}, {"class": b, "count": 1}],
        "prompt": f"a photo of {article(a)} {a} and {article(b)} {b}",
    }


def counting(cls: str, n: int) -> dict[str, Any]:
    if n not in NUMBER_WORDS:
        raise ConfigError(f"counts must be between 2 and 9, got {n}")
    return {
        "tag": "counting",
        "include": [{"class": cls, "count": n}],
        "exclude": [{"class": cls, "count": n + 1}],
        "prompt": f"a photo of {NUMBER_WORDS[n]} {plural(cls)}",
    }


def colors(cls: str, color: str) -> dict[str, Any]:
    return {
        "tag": "colors",
        "include": [{"class": cls, "count": 1, "color": color}],
        "prompt": f"a photo of {article(color)} {color} {cls}",
    }


def position(a: str, relation: str, b: str) -> dict[str, Any]:
    """'a photo of a {a} {relation} a {b}': GenEval puts the reference object ``b`` first."""
    return {
        "tag": "position",
        "include": [{"class": b, "count": 1}, {"class": a, "count": 1, "position": [relation, 0]}],
        "prompt": f"a photo of {article(a)} {a} {relation} {article(b)} {b}",
    }


def color_attr(a: str, color_a: str, b: str, color_b: str) -> dict[str, Any]:
    return {
        "tag": "color_attr",
        "include": [{"class": a, "count": 1, "color": color_a}, {"class": b, "count": 1, "color": color_b}],
        "prompt": f"a photo of {article(color_a)} {color_a} {a} and {article(color_b)} {color_b} {b}",
    }


def meaning_key(meta: Mapping[str, Any]) -> str:
    """A key equal for prompts that ask for the same thing (two_object in either order, 'A left of B' and
    'B right of A'), so dedup and test-set exclusion work on meaning, not wording."""
    tag = meta.get("tag")
    inc = [dict(c) for c in meta.get("include", [])]
    exc = sorted(json.dumps(c, sort_keys=True) for c in meta.get("exclude", []))
    if template_of(str(tag)) == "position" and len(inc) == 2 and "position" in inc[1]:
        rel = inc[1]["position"][0]
        a, b = inc[1]["class"], inc[0]["class"]
        if (a, rel) > (b, INVERSE.get(rel, rel)):  # canonical direction
            a, b, rel = b, a, INVERSE.get(rel, rel)
        return json.dumps([tag, a, rel, b, exc])
    clauses = sorted(json.dumps({k: v for k, v in c.items() if k != "position"}, sort_keys=True) for c in inc)
    return json.dumps([tag, clauses, exc])


def normalize_text(prompt: str) -> str:
    return re.sub(r"\s+", " ", prompt.strip().lower().rstrip("."))


# ------------------------------------------------------------------------------------------ vocabularies

_VOCAB_DIR = Path(__file__).resolve().parent.parent / "assets" / "vocab"
VOCABULARIES: dict[str, str] = {
    "coco": "COCO's 80 classes, GenEval's own: every object can be verified by a COCO detector or the "
    "sketch oracle (the GenEval reward)",
    "lvis": "COCO's 80 + 783 LVIS v1 object names (CC BY 4.0, reprompt/assets/vocab/lvis.txt): far more "
    "prompts, but non-COCO objects cannot be verified by a COCO detector or the sketch oracle (use judge "
    "or preference rewards)",
}


def _read_names(path: Path) -> list[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [n for n in (ln.split("#", 1)[0].strip().lower() for ln in lines) if n]


def load_vocabulary(
    path: str | Path | None = None, extend: bool = True, base: str = "coco"
) -> tuple[str, ...]:
    """Object names: the named ``base`` vocabulary (:data:`VOCABULARIES`), extended by a file of one name
    per line ('#' comments), or replaced by it (``extend=False``)."""
    if base not in VOCABULARIES:
        raise ConfigError(
            f"unknown vocabulary {base!r}.{did_you_mean(base, tuple(VOCABULARIES))} "
            f"Use: {', '.join(VOCABULARIES)}"
        )
    names: list[str] = []
    if extend or path is None:
        names = [*COCO_CLASSES, *(_read_names(_VOCAB_DIR / f"{base}.txt") if base != "coco" else [])]
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise RepromptError(f"vocabulary file {p} not found")
        names += _read_names(p)
    return tuple(dict.fromkeys(names))


# ------------------------------------------------------------------------------------------ reading back


_COLOR_RE = "|".join(GENEVAL_COLORS)
_NUM_RE = "|".join(WORD_NUMBERS)
_REL_RE = "|".join(RELATIONS)
_PATTERNS = (
    ("color_attr", re.compile(rf"^a photo of an? ({_COLOR_RE}) (.+?) and an? ({_COLOR_RE}) (.+)$")),
    ("position", re.compile(rf"^a photo of an? (.+?) ({_REL_RE}) an? (.+)$")),
    ("two_object", re.compile(r"^a photo of an? (.+?) and an? (.+)$")),
    ("counting", re.compile(rf"^a photo of ({_NUM_RE}) (.+)$")),
    ("colors", re.compile(rf"^a photo of an? ({_COLOR_RE}) (.+)$")),
    ("single_object", re.compile(r"^a photo of an? (.+)$")),
)


def parse_template(prompt: str, vocabulary: Iterable[str] = COCO_CLASSES) -> dict[str, Any] | None:
    """GenEval metadata for a prompt written in one of the six templates, else None.

    Recovers the metadata of plain prompt lists such as the paper's RL prompts (whose vocabulary goes
    beyond COCO, so their classes may be unknown to a COCO detector)."""
    text = normalize_text(prompt)
    vocabulary = tuple(vocabulary)
    for tag, pattern in _PATTERNS:
        m = pattern.match(text)
        if not m:
            continue
        g = m.groups()
        if tag == "color_attr":
            meta = color_attr(g[1], g[0], g[3], g[2])
        elif tag == "position":
            meta = position(g[0], g[1], g[2])
        elif tag == "two_object":
            meta = two_object(g[0], g[1])
        elif tag == "counting":
            meta = counting(singular(g[1], vocabulary), WORD_NUMBERS[g[0]])
        elif tag == "colors":
            meta = colors(g[1], g[0])
        else:
            meta = single_object(g[0])
        meta["prompt"] = prompt.strip()
        return meta
    return None
