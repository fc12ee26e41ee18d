"""GenEval-style training prompts with metadata, so the verifiable reward can check every one of them.

The six object-centric templates of GenEval (single_object, two_object, counting, colors, position,
color_attr) are filled from an object vocabulary (COCO's 80 classes by default, or COCO + LVIS names) and
GenEval's 10 colours; so are the four templates of the inference family (infer_object, infer_count,
infer_color, infer_position: :mod:`reprompt.data.inference`), whose clues must be resolved before they can
be drawn. Every prompt carries GenEval's metadata (``include``/``exclude`` clauses).
Generation is seeded, stratified (an explicit quota per split and tag, reported as asked vs produced),
unique by the prompt's meaning (not just its text), and never emits a prompt whose meaning is in a given
test set, so evaluating on that set stays clean. Each template's space of meanings is counted exactly,
so a quota that cannot be met fails with a message instead of quietly shrinking a split.

Why ~430 lines: the split planner (quotas, shortfalls, exclusions and the report) is one algorithm;
the templates and their meaning space are :mod:`reprompt.data.templates` and :mod:`reprompt.data.space`.
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from reprompt.data.inference import InferenceSpace
from reprompt.data.space import TemplateSpace, TemplateSupply, _key_meaning
from reprompt.data.templates import (
    NUMBER_WORDS,
    load_vocabulary,
    meaning_key,
    normalize_text,
    parse_template,
)
from reprompt.errors import ConfigError, RepromptError, check_range, did_you_mean
from reprompt.geneval.vocabulary import COCO_CLASSES, FAMILY_TAGS, GENEVAL_COLORS, GENEVAL_TAGS

logger = logging.getLogger(__name__)

# ------------------------------------------------------------------------------------------ generator


@dataclass
class PromptGenConfig:
    """What ``reprompt data prompts`` generates."""

    n_sft: int = field(
        default=8000, metadata={"help": "prompts for SFT (the paper's count; its prompts are not public)"}
    )
    n_rl: int = field(
        default=1000, metadata={"help": "prompts for GRPO (the paper's count; 0 when the RL split is a file)"}
    )
    n_heldout: int = field(
        default=0, metadata={"help": "extra held-out prompts (held-out reward, evaluation)"}
    )
    seed: int = field(default=0, metadata={"help": "random seed: same seed and inputs, same files"})
    tags: tuple[str, ...] = field(
        default=GENEVAL_TAGS,
        metadata={
            "help": "templates to use: GenEval's six (the default) and/or the inference family's "
            "infer_object, infer_count, infer_color, infer_position"
        },
    )
    tag_weights: tuple[float, ...] | None = field(
        default=None,
        metadata={
            "help": "share of every split per tag (default equal); each split's quota per tag is "
            "n * weight / sum(weights), rounded by largest remainder. 0 leaves a tag out"
        },
    )
    allow_short: bool = field(
        default=False,
        metadata={
            "help": "when a tag has fewer unused meanings than its quotas, warn and write short splits "
            "(RL filled first, then held-out, then SFT) instead of failing"
        },
    )
    counts: tuple[int, ...] = field(
        default=(2, 3, 4), metadata={"help": "numbers for counting (GenEval: 2-4)"}
    )
    vocabulary: tuple[str, ...] = field(default=COCO_CLASSES, metadata={"help": "object class names"})
    colors: tuple[str, ...] = field(default=GENEVAL_COLORS, metadata={"help": "colour names"})

    def __post_init__(self) -> None:
        self.tags = tuple(self.tags)
        for t in self.tags:
            if t not in FAMILY_TAGS:
                raise ConfigError(
                    f"unknown template {t!r}.{did_you_mean(t, tuple(FAMILY_TAGS))} Use: {', '.join(FAMILY_TAGS)}"
                )
        if len(set(self.tags)) != len(self.tags) or not self.tags:
            raise ConfigError(f"tags must be distinct and not empty, got {self.tags}")
        if self.tag_weights is not None:
            self.tag_weights = tuple(float(w) for w in self.tag_weights)
            if len(self.tag_weights) != len(self.tags):
                raise ConfigError(f"tag_weights has {len(self.tag_weights)} values for {len(self.tags)} tags")
            if min(self.tag_weights) < 0 or not sum(self.tag_weights) > 0:
                raise ConfigError(f"tag_weights must be >= 0 with a positive sum, got {self.tag_weights}")
        for name in ("n_sft", "n_rl", "n_heldout"):
            check_range(name, getattr(self, name), 0)
        self.vocabulary = tuple(dict.fromkeys(v.strip() for v in self.vocabulary if v.strip()))
        if len(self.vocabulary) < 2:
            raise ConfigError("the vocabulary needs at least two object names")
        self.counts = tuple(dict.fromkeys(self.counts))
        for n in self.counts:
            if n not in NUMBER_WORDS:
                raise ConfigError(f"counts must be between 2 and 9, got {n}")
        self.colors = tuple(dict.fromkeys(self.colors))
        if not self.colors:
            raise ConfigError("colors must not be empty")

    def quotas(self, n: int) -> dict[str, int]:
        """Prompts per tag for a split of ``n``: shares of :attr:`tag_weights`, largest remainder."""
        weights = self.tag_weights or (1.0,) * len(self.tags)
        exact = [n * w / sum(weights) for w in weights]
        out = [int(x) for x in exact]
        by_remainder = sorted(range(len(exact)), key=lambda i: (-(exact[i] - out[i]), i))
        for i in by_remainder[: n - sum(out)]:
            out[i] += 1
        return dict(zip(self.tags, out, strict=True))


@dataclass
class PromptReport:
    """Per split and tag, what was asked and what was produced, and each template's supply."""

    asked: dict[str, dict[str, int]]
    produced: dict[str, dict[str, int]]
    supply: dict[str, TemplateSupply]
    short: list[str] = field(default_factory=list)
    """One line per tag that could not fill its quotas."""
    fixed: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Splits read from a file: source, rows kept, rows dropped and why."""

    @property
    def per_tag(self) -> dict[str, int]:
        """Prompts produced per tag over all splits (tags with none left out)."""
        total = Counter[str]()
        for counts in self.produced.values():
            total.update(counts)
        return {t: n for t, n in total.items() if n}

    def to_dict(self) -> dict[str, Any]:
        return {
            "asked": self.asked,
            "produced": self.produced,
            "templates": {
                t: {
                    "space": s.space,
                    "excluded": s.excluded,
                    "reserved": s.reserved,
                    "available": s.available,
                }
                for t, s in self.supply.items()
            },
            "short": self.short,
            "fixed_splits": self.fixed,
        }

    def table(self) -> str:
        """A plain-text table: one row per tag, 'produced/asked' per split, and the tag's supply."""
        splits = list(self.asked)
        tags = list(dict.fromkeys([*self.supply, *(t for s in self.produced.values() for t in s)]))
        head = ["template", *(f"{s} made/asked" for s in splits), "available/space"]
        rows = []
        for t in tags:
            cells = []
            for s in splits:
                made, asked = self.produced[s].get(t, 0), self.asked[s].get(t)
                cells.append(
                    f"{made}/{'file' if s in self.fixed else asked}" if asked is not None or made else "-"
                )
            sup = self.supply.get(t)
            rows.append([t, *cells, f"{sup.available}/{sup.space}" if sup else "-"])
        totals = [
            f"{sum(self.produced[s].values())}/{'file' if s in self.fixed else sum(self.asked[s].values())}"
            for s in splits
        ]
        rows.append(["total", *totals, ""])
        widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
        fmt = "  ".join(f"{{:<{w}}}" if i == 0 else f"{{:>{w}}}" for i, w in enumerate(widths))
        return "\n".join(fmt.format(*r).rstrip() for r in [head, *rows])


# Fill order when a tag runs short: the RL split is small and every template should be in it.
FILL_ORDER = ("rl", "heldout", "sft")


def _shortfall_fixes(tags: Sequence[str], cfg: PromptGenConfig) -> str:
    bigger = (
        "--vocab-file"
        if set(load_vocabulary(base="lvis")) <= set(cfg.vocabulary)
        else "--vocab lvis or --vocab-file"
    )
    counts = "more counts for counting (--counts 2,3,4,5,6), " if "counting" in tags else ""
    zero = ",".join(f"{t}=0" for t in tags)
    return (
        f"Fixes: a larger vocabulary ({bigger}), {counts}fewer prompts, smaller shares for these templates "
        f"(--tag-weights {zero} leaves them out), or --allow-short to write short splits (RL filled first)."
    )


def space_for(tag: str, cfg: PromptGenConfig) -> TemplateSpace | InferenceSpace:
    """The meaning space of one template: GenEval's own or the inference family's."""
    return InferenceSpace(tag, cfg) if FAMILY_TAGS[tag][0] == "inference" else TemplateSpace(tag, cfg)


def _draw_tag(
    space: TemplateSpace | InferenceSpace,
    quota: int,
    excluded: set[int],
    reserved: set[int],
    texts: set[str],
    rng: random.Random,
) -> tuple[list[dict[str, Any]], TemplateSupply]:
    """Up to ``quota`` prompts of one template, uniformly at random among its meanings that are neither
    excluded, reserved nor worded as an excluded text; the supply is exact."""
    blocked = excluded | reserved
    n = min(space.size, quota + len(blocked) + len(texts))  # enough numbers to cover every rejection
    order = rng.sample(range(space.size), n)
    supply = TemplateSupply(space.size, excluded=len(excluded), reserved=len(reserved - excluded))
    out: list[dict[str, Any]] = []
    for i in order:
        if i in blocked:
            continue
        if texts and space.wordings(i) & texts:  # a test text the key did not catch (an odd vocabulary)
            supply.excluded += 1
            continue
        if len(out) < quota:
            out.append(space.meta(i, flip=rng.random() < 0.5))
        elif n < space.size:
            break
    return out, supply


def split_prompts(
    cfg: PromptGenConfig,
    exclude: Iterable[str] = (),
    exclude_texts: Iterable[str] = (),
    fixed: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
) -> tuple[dict[str, list[dict]], PromptReport]:
    """The SFT / RL / held-out splits: per tag, ``cfg.quotas(n)`` prompts in each split, all unique and
    disjoint by meaning, none in ``exclude`` (meaning keys) or worded as one of ``exclude_texts``.

    ``fixed`` gives splits read from a file (e.g. ``{"rl": load_prompts(reference_rl_file)}``; their
    ``n_*`` must be 0): their rows that are test prompts or repeats are dropped and reported, and the
    generated splits avoid their meanings. Raises, naming each short tag and the fixes, when a template
    cannot fill its quotas, unless ``cfg.allow_short`` (then it logs a warning and the splits are short).
    Records get ids ``sft-00000``, ``rl-00000``, ``heldout-00000`` and keep GenEval's field layout
    (``tag``, ``include``, ``exclude`` only for counting, ``prompt``)."""
    sizes = {"sft": cfg.n_sft, "rl": cfg.n_rl, "heldout": cfg.n_heldout}
    excluded_keys, texts = set(exclude), {normalize_text(t) for t in exclude_texts}
    fixed_rows, fixed_info, reserved_keys = _fixed_splits(fixed or {}, sizes, excluded_keys, texts)
    spaces = {t: space_for(t, cfg) for t in cfg.tags}

    def indices(keys: Iterable[str], tag: str) -> set[int]:
        found = (spaces[tag].index_of(*_key_meaning(k)) for k in keys)
        return {i for i in found if i is not None}

    text_keys = {meaning_key(m) for m in (parse_template(t, cfg.vocabulary) for t in texts) if m}
    asked = {s: cfg.quotas(n) for s, n in sizes.items() if s not in fixed_rows}
    produced: dict[str, dict[str, int]] = {s: {} for s in sizes}
    drawn: dict[str, list[dict[str, Any]]] = {s: [] for s in sizes}
    supply: dict[str, TemplateSupply] = {}
    short: list[str] = []
    for tag in cfg.tags:
        want = {s: asked[s][tag] for s in FILL_ORDER if s in asked}
        rng = random.Random(f"{cfg.seed}:{tag}")
        rows, supply[tag] = _draw_tag(
            spaces[tag],
            sum(want.values()),
            indices(excluded_keys | text_keys, tag),
            indices(reserved_keys, tag),
            texts,
            rng,
        )
        start = 0
        for s, q in want.items():
            drawn[s] += rows[start : start + q]
            produced[s][tag] = len(rows[start : start + q])
            start += q
        if len(rows) < sum(want.values()):
            sup = supply[tag]
            asked_txt = ", ".join(f"{s} {q}" for s, q in want.items() if q)
            if sup.excluded == sup.space:
                why = f"all {sup.space} of its meanings are test prompts"
            elif sup.available == sup.space:
                why = f"it has only {sup.space} meanings"
            else:
                why = (
                    f"only {sup.available} of its {sup.space} meanings are left after excluding "
                    + " and ".join(
                        x
                        for x in (
                            f"{sup.excluded} test prompts" if sup.excluded else "",
                            f"{sup.reserved} taken by a split file" if sup.reserved else "",
                        )
                        if x
                    )
                )
            short.append(
                f"{tag}: asked for {sum(want.values())} ({asked_txt}), but {why} "
                f"({len(cfg.vocabulary)} object names)"
            )
    for s, rows in fixed_rows.items():
        produced[s] = dict(Counter(r.get("tag") or "untagged" for r in rows))
        asked[s] = {}
    asked = {s: asked[s] for s in sizes}
    report = PromptReport(asked, {s: produced[s] for s in sizes}, supply, short, fixed_info)
    if short:
        if not cfg.allow_short:
            fixes = _shortfall_fixes([line.split(":", 1)[0] for line in short], cfg)
            raise RepromptError(
                "cannot fill the prompt quotas:\n  " + "\n  ".join(short) + f"\n{fixes}\n\n" + report.table()
            )
        for line in short:
            logger.warning("short split (--allow-short): %s", line)
    splits: dict[str, list[dict]] = {}
    for s in sizes:
        rows = fixed_rows[s] if s in fixed_rows else drawn[s]
        if s not in fixed_rows:
            random.Random(f"{cfg.seed}:{s}").shuffle(rows)  # tags interleaved: a prefix is a fair sample
        splits[s] = [
            {"id": f"{s}-{i:05d}", **{k: v for k, v in r.items() if k != "id"}} for i, r in enumerate(rows)
        ]
    return splits, report


def _fixed_splits(
    fixed: Mapping[str, Sequence[Mapping[str, Any]]],
    sizes: Mapping[str, int],
    excluded_keys: set[str],
    texts: set[str],
) -> tuple[dict[str, list[dict[str, Any]]], dict[str, dict[str, Any]], set[str]]:
    """Rows of splits read from files, less test prompts and repeats; what was dropped; their keys."""
    rows_out: dict[str, list[dict[str, Any]]] = {}
    info: dict[str, dict[str, Any]] = {}
    reserved: set[str] = set()
    seen_texts: set[str] = set()
    for name, records in fixed.items():
        if name not in sizes:
            raise ConfigError(f"unknown split {name!r}; use {', '.join(sizes)}")
        if sizes[name]:
            raise ConfigError(f"n_{name} must be 0 when the {name} split comes from a file")
        kept, as_test, repeats = [], [], []
        for rec in records:
            key = meaning_key(rec) if rec.get("tag") else None
            text = normalize_text(rec["prompt"])
            if (key is not None and key in excluded_keys) or text in texts:
                as_test.append(rec["prompt"])
            elif (key is not None and key in reserved) or text in seen_texts:
                repeats.append(rec["prompt"])
            else:
                kept.append({**rec, "source_id": rec.get("id")} if rec.get("id") else dict(rec))
                seen_texts.add(text)
                if key is not None:
                    reserved.add(key)
        rows_out[name] = kept
        info[name] = {
            "rows_read": len(records),
            "rows_kept": len(kept),
            "dropped_as_test_prompts": as_test,
            "dropped_as_repeats": repeats,
            "untagged": sum(1 for r in kept if not r.get("tag")),
        }
    return rows_out, info, reserved


@dataclass
class GeneratedPrompts:
    records: list[dict[str, Any]]
    report: PromptReport

    @property
    def per_tag(self) -> dict[str, int]:
        return self.report.per_tag


def generate_prompts(
    n: int,
    cfg: PromptGenConfig | None = None,
    exclude: Iterable[str] = (),
    exclude_texts: Iterable[str] = (),
) -> GeneratedPrompts:
    """``n`` unique prompts in one pool (``cfg.quotas(n)`` per tag), none of whose meaning is in
    ``exclude`` and none worded as one of ``exclude_texts``; see :func:`split_prompts`."""
    cfg = replace(cfg or PromptGenConfig(), n_sft=n, n_rl=0, n_heldout=0)
    splits, report = split_prompts(cfg, exclude, exclude_texts)
    return GeneratedPrompts(splits["sft"], report)


# ------------------------------------------------------------------------------------------ files


def load_exclusions(
    paths: Sequence[str | Path], vocabulary: Iterable[str] = COCO_CLASSES
) -> tuple[set[str], set[str]]:
    """(meaning keys, normalised texts) of test prompts: GenEval metadata JSONL or plain prompt lists
    (``vocabulary`` turns their plurals back into class names)."""
    keys: set[str] = set()
    texts: set[str] = set()
    vocabulary = tuple(vocabulary)
    for rec in (r for p in paths for r in load_prompts(p, vocabulary)):
        texts.add(normalize_text(rec["prompt"]))
        if rec.get("tag"):
            keys.add(meaning_key(rec))
    return keys, texts


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
