"""Rewriters that answer in plain text (not RePrompt's tags): their messages and how to get the prompt out.

A plain rewriter (PromptEnhancer, a chat LLM given its own instruction, an API model) is asked with its own
system instruction and user turn, and its answer is read by an :class:`Extraction`, in this order:

1. ``drop``: blocks such as ``<think>…</think>`` are removed (an unclosed one at the end takes the rest of the
   text); their text becomes the rewrite's reasoning;
2. ``tag``: the first ``<tag>…</tag>`` block, when there is one, is the prompt;
3. ``pattern``: else the first match of a regular expression (its first group, or the whole match);
4. else, with ``fallback_to_text`` (default), the remaining text: leading ``labels`` removed ("Enhanced
   prompt:"), optionally only its first paragraph, surrounding quotes removed;
5. ``requote`` then rewrites single quotes as double quotes (PromptEnhancer's own post-processing).

Whatever was extracted by these rules is well formed (``format_ok``): each rule is part of the recipe. An
answer with no usable text falls back to the user's ORIGINAL prompt (``fallback``), with the reason, as a
RePrompt completion without a prompt block does. Pure functions, no heavy imports.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from reprompt.errors import ConfigError
from reprompt.format.parse import ParsedCompletion

_QUOTES = "\"'`“”‘’"


@dataclass
class Extraction:
    """How the prompt is read out of a plain-text answer."""

    tag: str | None = field(default=None, metadata={"help": "take the first <tag>…</tag> block when present"})
    pattern: str | None = field(
        default=None, metadata={"help": "else a regular expression: its first group (or match) is the prompt"}
    )
    drop: list[str] = field(
        default_factory=list,
        metadata={"help": "blocks removed first (e.g. think): their text is the reasoning"},
    )
    labels: list[str] = field(
        default_factory=list,
        metadata={"help": "leading labels removed from the text (e.g. 'Enhanced prompt:')"},
    )
    first_paragraph: bool = field(default=False, metadata={"help": "keep only the text's first paragraph"})
    fallback_to_text: bool = field(
        default=True, metadata={"help": "without a tag block or pattern match, use the remaining text"}
    )
    requote: bool = field(
        default=False,
        metadata={"help": "write single quotes as double quotes (PromptEnhancer's post-processing)"},
    )

    def __post_init__(self) -> None:
        for name in [*self.drop, *([self.tag] if self.tag else [])]:
            if not re.fullmatch(r"[A-Za-z][\w-]*", name):
                raise ConfigError(f"extract: {name!r} is not a tag name (write think, not <think>)")
        if self.pattern is not None:
            try:
                re.compile(self.pattern)
            except re.error as e:
                raise ConfigError(f"extract.pattern {self.pattern!r} is not a regular expression: {e}") from e


def _block(name: str) -> re.Pattern[str]:
    return re.compile(rf"<\s*{re.escape(name)}\s*>(.*?)(?:<\s*/\s*{re.escape(name)}\s*>|\Z)", re.S | re.I)


def _unquote(text: str) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    if len(text) >= 2 and text[0] in _QUOTES and text[-1] in _QUOTES:
        text = text[1:-1].strip()
    return text


def requote(text: str) -> str:
    """Single-quoted spans ('x' between non-word boundaries) as "x", and curly single quotes as curly double."""
    text = re.sub(r"\B'([^']*)'\B", r'"\1"', text)
    return text.replace("‘", "“").replace("’", "”")


def _usable(text: str) -> bool:
    return sum(ch.isalpha() for ch in text) >= 2


def extract_prompt(text: str, original: str, how: Extraction | None = None) -> ParsedCompletion:
    """The prompt in a plain-text answer ``text`` (see the module's rules); ``original`` on fallback."""
    how = how or Extraction()
    reasoning: list[str] = []
    rest = text
    for name in how.drop:
        pattern = _block(name)
        reasoning += [m.group(1).strip() for m in pattern.finditer(rest) if m.group(1).strip()]
        rest = pattern.sub(" ", rest)
    prompt, where = None, ""
    if how.tag:
        m = _block(how.tag).search(rest)
        if m:
            prompt, where = m.group(1), f"<{how.tag}>"
            outside = " ".join((rest[: m.start()] + " " + rest[m.end() :]).split())
            if outside:
                reasoning.append(outside)
    if prompt is None and how.pattern:
        m = re.search(how.pattern, rest, re.S)
        if m:
            prompt, where = (m.group(1) if m.groups() else m.group(0)), "pattern"
    if prompt is None and how.fallback_to_text:
        body = rest.strip()
        changed = True
        while changed:  # labels may be stacked ("**Enhanced prompt:** Prompt: ...")
            changed = False
            stripped = body.lstrip("*#>-_ \t\n")
            for label in how.labels:
                if stripped.lower().startswith(label.lower()):
                    body, changed = stripped[len(label) :].lstrip("*: \t\n"), True
        if how.first_paragraph:
            body = next((p for p in re.split(r"\n\s*\n", body) if p.strip()), "")
        prompt, where = body, "text"
    reasons = "\n\n".join(r for r in reasoning if r)
    if prompt is None:
        wanted = f"<{how.tag}> block" if how.tag else "match of the pattern"
        return ParsedCompletion(reasons, original.strip(), False, fallback=True, issue=f"no {wanted}")
    prompt = _unquote(prompt)
    if how.requote:
        prompt = requote(prompt)
    if not _usable(prompt):
        return ParsedCompletion(
            reasons, original.strip(), False, fallback=True, issue=f"empty prompt ({where})"
        )
    return ParsedCompletion(reasons, prompt, True)
