"""Does a rewrite keep what the user asked for? Compare the original's :class:`Intent` with the rewrite.

Each object, explicit count, color, quoted text and name of the original is one requirement. A rewrite
keeps an object when it names it (any plural, a synonym, or a more specific word: "person" -> "woman"); a
count when some mention of the object states the same number; a color when some mention of the object
carries it (or it stands free and not on another object); quoted text when it appears verbatim; a name
when its words appear in order (any case). Adding objects, details or style is never a violation.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from reprompt.guard import lexicon as lx
from reprompt.guard.intent import Intent, Mention, ObjectIntent, Reading, extract_intent, read

KINDS = ("object", "count", "color", "quoted", "name")


@dataclass
class Finding:
    """One requirement of the original that the rewrite does not keep."""

    kind: str  # one of KINDS
    item: str  # what the original asked for: "3 cats", "red couch", '"OPEN"', "Einstein"
    problem: str  # "dropped" | "changed"
    detail: str = ""  # "3 -> 1", "red -> blue", ...

    def __str__(self) -> str:
        return f"{self.kind} {self.item!r} {self.problem}" + (f" ({self.detail})" if self.detail else "")


@dataclass
class Rejected:
    """A candidate the guard turned down, and why."""

    prompt: str
    findings: list[Finding]


@dataclass
class GuardReport:
    """The guard's verdict on one rewrite: ``ok``, ``findings`` and ``score`` judge the policy's rewrite;
    ``action`` says what the rewriting path did about it. After ``retried`` or ``fallback`` the prompt
    finally used keeps every requirement; ``rejected`` lists the candidates turned down on the way."""

    ok: bool
    findings: list[Finding] = field(default_factory=list)
    checked: int = 0
    """Requirements found in the original (objects, counts, colors, quoted texts, names)."""
    failed: int = 0
    """Requirements not kept (a dropped object also fails its count and colors)."""
    action: str = "none"
    """none (nothing to do) | warned | retried (a later candidate passed) | fallback (the original is used)"""
    attempts: int = 1
    rejected: list[Rejected] = field(default_factory=list)

    @property
    def score(self) -> float:
        """Share of the requirements kept (1.0 when the original states none)."""
        return 1.0 if self.checked == 0 else 1.0 - self.failed / self.checked

    def summary(self) -> str:
        """One line for people: what was dropped or changed, and what was done about it."""
        if self.ok:
            return f"ok ({self.checked} checks)"
        text = "; ".join(str(f) for f in self.findings)
        return {
            "retried": f"{text} -> candidate {self.attempts} kept",
            "fallback": f"{text} -> the original prompt is used",
        }.get(self.action, text)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _matches(m: Mention, forms: frozenset[str]) -> bool:
    return bool(lx.noun_forms(m.word) & forms)


def _check_object(
    obj: ObjectIntent, others: frozenset[str], rw: Reading, findings: list[Finding]
) -> tuple[int, int]:
    """(requirements, failed) for one object: its presence, its count and each of its colors.
    ``others``: forms of the original's other objects (a color moved onto one of them is a change)."""
    needs = 1 + (obj.count is not None or obj.singular) + len(obj.colors)
    forms = lx.accepted_forms(obj.word)
    mentions = [m for m in rw.mentions if _matches(m, forms)]
    if not mentions and not any(lx.noun_forms(w) & forms for w in rw.words):
        findings.append(Finding("object", obj.text, "dropped"))
        return needs, needs
    failed = 0
    heads = [m for m in mentions if m.head]
    counts = sorted({m.count for m in heads if m.count is not None})
    if obj.count == 1 and any(m.singular for m in heads):
        pass  # "a single sailboat" kept as "a sailboat"
    elif obj.count is not None and obj.count not in counts:
        failed += 1
        if counts:
            findings.append(Finding("count", obj.text, "changed", f"{obj.count} -> {counts[0]}"))
        else:
            findings.append(Finding("count", obj.text, "dropped", f"{obj.count} is not stated"))
    elif obj.singular and counts and all(c > 1 for c in counts) and not any(m.singular for m in heads):
        failed += 1
        findings.append(Finding("count", obj.text, "changed", f"1 -> {counts[0]}"))
    colors = {c for m in heads for c in m.colors}
    elsewhere = {c for m in rw.mentions if m.head and _matches(m, others - forms) for c in m.colors}
    anywhere = set(rw.free_colors) | {c for m in rw.mentions for c in m.colors}
    for color in obj.colors:
        if color in colors or (not colors and color in anywhere and color not in elsewhere):
            continue  # on the object, or free / on a new object ("a woman in a red dress")
        failed += 1
        if colors:
            other = ", ".join(sorted(colors))
            findings.append(Finding("color", f"{color} {obj.word}", "changed", f"{color} -> {other}"))
        elif color in elsewhere:
            findings.append(
                Finding("color", f"{color} {obj.word}", "changed", f"{color} is on another object")
            )
        else:
            findings.append(Finding("color", f"{color} {obj.word}", "dropped"))
    return needs, failed


def _contains(words: list[str], seq: tuple[str, ...]) -> bool:
    n = len(seq)
    return any(tuple(words[i : i + n]) == seq for i in range(len(words) - n + 1))


def check_intent(intent: Intent, rewrite: str) -> GuardReport:
    """Check ``rewrite`` against an already extracted ``intent`` (reuse it across candidates)."""
    rw = read(rewrite)
    findings: list[Finding] = []
    checked = failed = 0
    for obj in intent.objects:
        others = frozenset().union(*(lx.accepted_forms(o.word) for o in intent.objects if o is not obj))
        n, f = _check_object(obj, others, rw, findings)
        checked, failed = checked + n, failed + f
    colors_anywhere = set(rw.free_colors) | {c for m in rw.mentions for c in m.colors}
    for color in intent.colors:
        checked += 1
        if color not in colors_anywhere:
            failed += 1
            findings.append(Finding("color", color, "dropped"))
    flat = " ".join(rewrite.split()).replace("“", '"').replace("”", '"')
    for text in intent.quoted:
        checked += 1
        if text in flat:
            continue
        failed += 1
        if text.lower() in flat.lower():
            findings.append(Finding("quoted", f'"{text}"', "changed", "letter case differs"))
        else:
            findings.append(Finding("quoted", f'"{text}"', "dropped"))
    words = [w.removesuffix("'s").removesuffix("’s") for w in rw.words]
    for name in intent.names:
        checked += 1
        if not _contains(words, tuple(name.split())):
            failed += 1
            findings.append(Finding("name", name, "dropped"))
    return GuardReport(ok=not findings, findings=findings, checked=checked, failed=failed)


def check_rewrite(original: str, rewrite: str) -> GuardReport:
    """Check that ``rewrite`` keeps the objects, counts, colors, quoted text and names of ``original``."""
    return check_intent(extract_intent(original), rewrite)
