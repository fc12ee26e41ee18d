"""Parse a policy completion into (reasoning, prompt), never returning an empty or garbage prompt.

Well-formed: one reason block with real content (at least ``min_reason_words`` words, so an empty plan
cannot pass as reasoning), then one prompt block, nothing but whitespace around them, no tag text inside
them, and a prompt with real words. Safe lenient recovery (flagged, ``format_ok=False``):
a missing final close tag at the very end, or exactly one complete prompt block with stray text or no
reason block. Anything else (no prompt block, several prompt blocks, an empty prompt) falls back to the
user's ORIGINAL prompt with ``fallback=True`` — never a made-up "a photo".
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from reprompt.format.tags import REASON_PROMPT, TagFormat

_WS = re.compile(r"\s+")
_WORD = re.compile(r"[^\W\d_]{2,}")  # a word: two or more letters

MIN_REASON_WORDS = 3
"""Fewest words a reason block needs to count as reasoning (``<reason></reason>`` or ``<reason>.</reason>``
is not a plan). Our choice: the shortest real plan ("Objects: one cat.") has three."""
_QUOTES = "\"'`“”‘’"


@dataclass
class ParsedCompletion:
    """What the parser made of one completion."""

    reasoning: str
    prompt: str
    format_ok: bool
    fallback: bool = False
    recovered: bool = False
    issue: str | None = None
    """Why the completion was not well-formed (None when it was)."""


def render_completion(reasoning: str, prompt: str, fmt: TagFormat = REASON_PROMPT) -> str:
    """The canonical well-formed completion text (used for SFT targets)."""
    body = f"{fmt.prompt_open}{prompt.strip()}{fmt.prompt_close}"
    if fmt.reason is None:
        return body
    return f"<{fmt.reason}>{reasoning.strip()}</{fmt.reason}>\n{body}"


def _clean(text: str) -> str:
    text = _WS.sub(" ", text).strip()
    if len(text) >= 2 and text[0] in _QUOTES and text[-1] in _QUOTES:
        text = text[1:-1].strip()
    return text


def _usable(prompt: str) -> bool:
    return sum(ch.isalpha() for ch in prompt) >= 2


def _tags(fmt: TagFormat) -> re.Pattern[str]:
    names = "|".join(re.escape(t) for t in fmt.tag_names)
    return re.compile(rf"<\s*(/?)\s*({names})\s*>", re.IGNORECASE)


def tags_in(text: str, fmt: TagFormat = REASON_PROMPT) -> set[str]:
    """The format's tag names that occur in ``text``, opening or closing (``{"prompt"}``)."""
    return {m.group(2).lower() for m in _tags(fmt).finditer(text)}


def reason_words(reasoning: str) -> int:
    """Words (runs of two or more letters) in a reasoning text."""
    return len(_WORD.findall(reasoning))


def parse_completion(
    text: str,
    original: str,
    fmt: TagFormat = REASON_PROMPT,
    min_reason_words: int = MIN_REASON_WORDS,
) -> ParsedCompletion:
    """Parse ``text``; ``original`` is the user's prompt, returned as the prompt on fallback.

    A completion whose reason block has fewer than ``min_reason_words`` words is not well-formed: its
    prompt is still used (recovered), but it does not earn the format reward."""
    tokens = [(m.start(), m.end(), bool(m.group(1)), m.group(2).lower()) for m in _tags(fmt).finditer(text)]
    seq = [("/" if close else "") + name for _, _, close, name in tokens]
    p, r = fmt.prompt, fmt.reason
    expected = [r, "/" + r, p, "/" + p] if r else [p, "/" + p]

    def fallback(issue: str, reasoning: str = "") -> ParsedCompletion:
        return ParsedCompletion(reasoning, original.strip(), False, fallback=True, issue=issue)

    def reasoning_text() -> str:
        if not r or seq[:2] != [r, "/" + r]:
            return ""
        return text[tokens[0][1] : tokens[1][0]].strip()

    # 1. Well-formed.
    if seq == expected:
        outside = text[: tokens[0][0]] + "".join(
            text[tokens[i][1] : tokens[i + 1][0]] for i in range(1, len(tokens) - 1, 2)
        )
        outside += text[tokens[-1][1] :]
        prompt = _clean(text[tokens[-2][1] : tokens[-1][0]])
        if not _usable(prompt):
            return fallback("empty prompt block", reasoning_text())
        if outside.strip():
            return ParsedCompletion(
                reasoning_text(), prompt, False, recovered=True, issue="text outside the tag blocks"
            )
        if r and reason_words(reasoning_text()) < min_reason_words:
            return ParsedCompletion(
                reasoning_text(),
                prompt,
                False,
                recovered=True,
                issue=f"reason block has fewer than {min_reason_words} words",
            )
        return ParsedCompletion(reasoning_text(), prompt, True)

    n_open, n_close = seq.count(p), seq.count("/" + p)
    # 2. Missing final close tag: the prompt block is the last thing in the text.
    if n_open == 1 and n_close == 0 and seq[-1] == p:
        prompt = _clean(text[tokens[-1][1] :])
        if _usable(prompt):
            return ParsedCompletion(
                reasoning_text(), prompt, False, recovered=True, issue=f"missing </{p}> at the end"
            )
        return fallback("empty prompt block", reasoning_text())
    # 3. Exactly one complete prompt block, with something else off (no reason, stray text).
    if n_open == 1 and n_close == 1:
        i = seq.index(p)
        if i + 1 < len(seq) and seq[i + 1] == "/" + p:
            prompt = _clean(text[tokens[i][1] : tokens[i + 1][0]])
            if _usable(prompt):
                issue = "missing reason block" if r and r not in seq else "malformed reason block"
                return ParsedCompletion(reasoning_text(), prompt, False, recovered=True, issue=issue)
            return fallback("empty prompt block", reasoning_text())
    if n_open == 0:
        return fallback(f"no <{p}> block", reasoning_text())
    return fallback(f"ambiguous: {n_open} <{p}> tags and {n_close} </{p}> tags", reasoning_text())
