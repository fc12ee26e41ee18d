"""GenEval-style training prompts with metadata, so the verifiable reward can check every one of them.

The six object-centric templates of GenEval (single_object, two_object, counting, colors, position,
color_attr) are filled from an object vocabulary (COCO's 80 classes by default) and GenEval's 10 colours.
Every prompt carries GenEval's metadata (``include``/``exclude`` clauses). Generation is seeded,
deduplicated on the prompt's meaning (not just its text), and never emits a prompt whose meaning is in a
given test set, so evaluating on that set stays clean.
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reprompt.errors import ConfigError, RepromptError, did_you_mean
from reprompt.eval.geneval.classes import COCO_CLASSES, GENEVAL_COLORS, GENEVAL_TAGS

RELATIONS: tuple[str, ...] = ("left of", "right of", "above", "below")
INVERSE = {"left of": "right of", "right of": "left of", "above": "below", "below": "above"}
NUMBER_WORDS = {2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight", 9: "nine"}
WORD_NUMBERS = {w: n for n, w in NUMBER_WORDS.items()}

# Irregular English plurals of class names (last word only); GenEval's own prompts use naive plurals
# ("sheeps", "knifes"), which ``singular`` also understands.
_IRREGULAR = {
    "person": "people",
    "sheep": "sheep",
    "mouse": "mice",
    "knife": "knives",
    "skis": "skis",
    "scissors": "scissors",
    "glasses": "glasses",
    "shorts": "shorts",
    "boxers": "boxers",
}


def article(word: str) -> str:
    """'a' or 'an' as GenEval writes them (by the first letter)."""
    return "an" if word[:1].lower() in "aeiou" else "a"


def plural(name: str) -> str:
    """English plural of a (possibly multi-word) class name: 'wine glass' -> 'wine glasses'."""
    head, _, last = name.rpartition(" ")
    if last in _IRREGULAR:
        word = _IRREGULAR[last]
    elif re.search(r"(s|x|z|ch|sh)$", last):
        word = last + "es"
    elif re.search(r"[^aeiou]y$", last):
        word = last[:-1] + "ies"
    else:
        word = last + "s"
    return f"{head} {word}" if head else word


def singular(words: str, vocabulary: Iterable[str] = COCO_CLASSES) -> str:
    """Undo :func:`plural` (and GenEval's naive '+s'/'+es' plurals) using the vocabulary when it can."""
    for name in vocabulary:
        if words in (plural(name), name + "s", name + "es", name):
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
    if tag == "position" and len(inc) == 2 and "position" in inc[1]:
        rel = inc[1]["position"][0]
        a, b = inc[1]["class"], inc[0]["class"]
        if (a, rel) > (b, INVERSE.get(rel, rel)):  # canonical direction
            a, b, rel = b, a, INVERSE.get(rel, rel)
        return json.dumps(["position", a, rel, b, exc])
    clauses = sorted(json.dumps({k: v for k, v in c.items() if k != "position"}, sort_keys=True) for c in inc)
    return json.dumps([tag, clauses, exc])


def normalize_text(prompt: str) -> str:
    return re.sub(r"\s+", " ", prompt.strip().lower().rstrip("."))


# ------------------------------------------------------------------------------------------ generator


@dataclass
class PromptGenConfig:
    """What ``reprompt data prompts`` generates."""

    n_sft: int = field(default=8000, metadata={"help": "prompts for SFT (paper: 8000)"})
    n_rl: int = field(default=1000, metadata={"help": "prompts for GRPO (paper: 1000)"})
    n_heldout: int = field(
        default=0, metadata={"help": "extra held-out prompts (held-out reward, evaluation)"}
    )
    seed: int = field(default=0, metadata={"help": "random seed: same seed and inputs, same files"})
    tags: tuple[str, ...] = field(default=GENEVAL_TAGS, metadata={"help": "templates to use"})
    tag_weights: tuple[float, ...] | None = field(
        default=None,
        metadata={"help": "relative frequency per tag (default equal); an exhausted tag drops out"},
    )
    counts: tuple[int, ...] = field(
        default=(2, 3, 4), metadata={"help": "numbers for counting (GenEval: 2-4)"}
    )
    vocabulary: tuple[str, ...] = field(default=COCO_CLASSES, metadata={"help": "object class names"})
    colors: tuple[str, ...] = field(default=GENEVAL_COLORS, metadata={"help": "colour names"})

    def __post_init__(self) -> None:
        self.tags = tuple(self.tags)
        for t in self.tags:
            if t not in GENEVAL_TAGS:
                raise ConfigError(
                    f"unknown template {t!r}.{did_you_mean(t, GENEVAL_TAGS)} Use: {', '.join(GENEVAL_TAGS)}"
                )
        if self.tag_weights is not None and len(self.tag_weights) != len(self.tags):
            raise ConfigError(f"tag_weights has {len(self.tag_weights)} values for {len(self.tags)} tags")
        if min(self.n_sft, self.n_rl, self.n_heldout) < 0:
            raise ConfigError("prompt counts must be >= 0")
        self.vocabulary = tuple(dict.fromkeys(v.strip() for v in self.vocabulary if v.strip()))
        if len(self.vocabulary) < 2:
            raise ConfigError("the vocabulary needs at least two object names")
        for n in self.counts:
            if n not in NUMBER_WORDS:
                raise ConfigError(f"counts must be between 2 and 9, got {n}")
        if not self.colors:
            raise ConfigError("colors must not be empty")


def _draw(tag: str, rng: random.Random, cfg: PromptGenConfig) -> dict[str, Any]:
    vocab, cols = cfg.vocabulary, cfg.colors
    if tag == "single_object":
        return single_object(rng.choice(vocab))
    if tag == "two_object":
        return two_object(*rng.sample(vocab, 2))
    if tag == "counting":
        return counting(rng.choice(vocab), rng.choice(cfg.counts))
    if tag == "colors":
        return colors(rng.choice(vocab), rng.choice(cols))
    if tag == "position":
        a, b = rng.sample(vocab, 2)
        return position(a, rng.choice(RELATIONS), b)
    a, b = rng.sample(vocab, 2)
    return color_attr(a, rng.choice(cols), b, rng.choice(cols))


@dataclass
class GeneratedPrompts:
    records: list[dict[str, Any]]
    per_tag: dict[str, int]
    exhausted: list[str]
    excluded_hits: int
    """Draws rejected because their meaning is in the excluded (test) set."""


def generate_prompts(
    n: int,
    cfg: PromptGenConfig | None = None,
    exclude: Iterable[str] = (),
    exclude_texts: Iterable[str] = (),
    max_misses: int = 5000,
) -> GeneratedPrompts:
    """Draw ``n`` unique prompts (by :func:`meaning_key`), none of whose key is in ``exclude`` and none
    of whose normalised text is in ``exclude_texts``.

    Each draw picks a template by weight, then fills it. A template that misses ``max_misses`` times in a
    row (its space is used up, e.g. single_object once the 80 classes are taken) drops out and the others
    fill in. Raises when every template is exhausted before ``n`` prompts.
    """
    cfg = cfg or PromptGenConfig()
    rng = random.Random(cfg.seed)
    excluded = set(exclude)
    texts = {normalize_text(t) for t in exclude_texts}
    seen: set[str] = set()
    active = list(cfg.tags)
    weights = dict(zip(cfg.tags, cfg.tag_weights or [1.0] * len(cfg.tags), strict=True))
    misses = Counter[str]()
    records: list[dict[str, Any]] = []
    exhausted: list[str] = []
    excluded_hits = 0
    while len(records) < n:
        if not active:
            raise RepromptError(
                f"only {len(records)} unique prompts exist for these templates and vocabulary (asked for {n}); "
                "add object names (--vocab-file), counts or templates, or ask for fewer"
            )
        tag = rng.choices(active, weights=[weights[t] for t in active])[0]
        meta = _draw(tag, rng, cfg)
        key = meaning_key(meta)
        if key not in seen and normalize_text(meta["prompt"]) in texts:
            excluded.add(key)
        if key in seen or key in excluded:
            excluded_hits += key in excluded and key not in seen
            seen.add(key)
            misses[tag] += 1
            if misses[tag] >= max_misses:
                active.remove(tag)
                exhausted.append(tag)
            continue
        misses[tag] = 0
        seen.add(key)
        records.append(meta)
    return GeneratedPrompts(records, dict(Counter(r["tag"] for r in records)), exhausted, excluded_hits)


def split_prompts(
    cfg: PromptGenConfig, exclude: Iterable[str] = (), exclude_texts: Iterable[str] = ()
) -> tuple[dict[str, list[dict]], GeneratedPrompts]:
    """Generate ``n_sft + n_rl + n_heldout`` prompts and split them (disjoint by meaning).

    Records get ids ``sft-00000``, ``rl-00000``, ``heldout-00000`` and keep GenEval's field layout
    (``tag``, ``include``, ``exclude`` only for counting, ``prompt``)."""
    gen = generate_prompts(cfg.n_sft + cfg.n_rl + cfg.n_heldout, cfg, exclude, exclude_texts)
    splits: dict[str, list[dict]] = {}
    start = 0
    for name, size in (("sft", cfg.n_sft), ("rl", cfg.n_rl), ("heldout", cfg.n_heldout)):
        splits[name] = [
            {"id": f"{name}-{i:05d}", **rec} for i, rec in enumerate(gen.records[start : start + size])
        ]
        start += size
    return splits, gen


# ------------------------------------------------------------------------------------------ files


def load_vocabulary(path: str | Path | None = None, extend: bool = True) -> tuple[str, ...]:
    """COCO's 80 names, extended (or replaced, ``extend=False``) by a file of one name per line ('#' comments)."""
    base = COCO_CLASSES if extend or path is None else ()
    if path is None:
        return base
    p = Path(path)
    if not p.is_file():
        raise RepromptError(f"vocabulary file {p} not found")
    extra = [ln.split("#", 1)[0].strip().lower() for ln in p.read_text(encoding="utf-8").splitlines()]
    return tuple(dict.fromkeys([*base, *(e for e in extra if e)]))


def load_exclusions(paths: Sequence[str | Path]) -> tuple[set[str], set[str]]:
    """(meaning keys, normalised texts) of test prompts: GenEval metadata JSONL or plain prompt lists."""
    keys: set[str] = set()
    texts: set[str] = set()
    for rec in (r for p in paths for r in load_prompts(p)):
        texts.add(normalize_text(rec["prompt"]))
        if rec.get("tag"):
            keys.add(meaning_key(rec))
    return keys, texts


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


def load_prompts(path: str | Path, vocabulary: Iterable[str] = COCO_CLASSES) -> list[dict[str, Any]]:
    """Load prompts from JSONL (GenEval metadata or any ``{"prompt": ...}`` rows) or a plain text list.

    Every record gets an ``id`` (kept if present, else ``<file stem>-<line>``). Plain-text prompts written
    in a GenEval template get their metadata back (:func:`parse_template`); others have only ``prompt``.
    """
    from reprompt.utils.io import read_jsonl

    p = Path(path)
    if not p.is_file():
        raise RepromptError(f"prompt file {p} not found")
    out: list[dict[str, Any]] = []
    if p.suffix == ".jsonl":
        for i, rec in enumerate(read_jsonl(p)):
            if not isinstance(rec.get("prompt"), str) or not rec["prompt"].strip():
                raise RepromptError(f"{p}: row {i} has no 'prompt' string")
            out.append(
                {"id": rec.get("id", f"{p.stem}-{i:05d}"), **{k: v for k, v in rec.items() if k != "id"}}
            )
        return out
    lines = [ln.strip() for ln in p.read_text(encoding="utf-8").splitlines()]
    for i, line in enumerate(ln for ln in lines if ln and not ln.startswith("#")):
        meta = parse_template(line, vocabulary) or {"prompt": line}
        out.append({"id": f"{p.stem}-{i:05d}", **meta})
    return out
