"""Turn one choice of a chat-completions reply into the completion text the policy parses.

Servers answer in three shapes, and all three must give the same rewrite:

- the trained format as text: ``content`` holds ``<reason>…</reason><prompt>…</prompt>`` (a plain vLLM or
  hosted model);
- a reasoning server: the plan in a ``reasoning`` field (vLLM's name since it renamed the older
  ``reasoning_content``, which DeepSeek, SGLang and older vLLM still send; both are read) and the answer
  as ``content``, plain or still in its prompt tags;
- ``reprompt serve``: the second shape, plus a ``reprompt`` block saying what the server made of each
  completion (well-formed, fallback, the issue, the raw completion). Its verdict is taken as given, so the
  rewrite is the one the server made in-process, after its own intent guard.

A plain answer with no reasoning field and no tags is not taken as a prompt: a chat model that ignored
the format falls back to the user's prompt, as before.
"""

from __future__ import annotations

from typing import Any

from reprompt.format import ParsedCompletion, TagFormat, render_completion
from reprompt.format.parse import tags_in
from reprompt.policy.base import ParsedText

REASONING_FIELDS = ("reasoning", "reasoning_content")
"""Where reasoning servers put the plan, newest name first."""

_VERDICT_KEYS = ("format_ok", "fallback", "recovered", "issue")


def reasoning_of(message: dict[str, Any]) -> str:
    """The reasoning a message carries in a field of its own ("" when none)."""
    for name in REASONING_FIELDS:
        value = message.get(name)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return ""


def completion_text(message: dict[str, Any], fmt: TagFormat) -> str:
    """The completion to parse: tagged content as sent, with the reasoning field's plan put in front in the
    format's reason tags when the content has none; a plain answer next to a plan in the format's tags."""
    content = message.get("content")
    content = content if isinstance(content, str) else ""
    reasoning = reasoning_of(message)
    if not reasoning:
        return content
    names = tags_in(content, fmt)
    if fmt.prompt in names:
        if fmt.reason is None or fmt.reason in names:
            return content
        return f"<{fmt.reason}>{reasoning}</{fmt.reason}>\n{content.strip()}"
    if names:  # stray tags, no prompt block: leave it to the parser to say what is wrong
        return content
    return render_completion(reasoning, content, fmt)


def served_verdict(details: Any, message: dict[str, Any]) -> ParsedCompletion | None:
    """The server's own parse of a choice, from ``reprompt serve``'s per-choice details (None when the
    reply has none, or they are not in the expected shape)."""
    if not isinstance(details, dict) or not all(k in details for k in _VERDICT_KEYS):
        return None
    content = message.get("content")
    if not isinstance(content, str) or not content.strip():
        return None
    flags = [details[k] for k in ("format_ok", "fallback", "recovered")]
    issue = details["issue"]
    if not all(isinstance(f, bool) for f in flags) or not (issue is None or isinstance(issue, str)):
        return None
    return ParsedCompletion(
        reasoning=reasoning_of(message),
        prompt=content.strip(),
        format_ok=flags[0],
        fallback=flags[1],
        recovered=flags[2],
        issue=issue,
    )


def choice_completions(reply: dict[str, Any], fmt: TagFormat) -> list[tuple[str, int | None]]:
    """(completion text, its tokens when the server says) for each choice, in ``index`` order.

    Texts from ``reprompt serve`` come as :class:`~reprompt.policy.base.ParsedText` carrying the server's
    verdict; the text itself is the raw completion the server parsed."""
    choices = sorted(reply.get("choices") or [], key=lambda c: c.get("index") or 0)
    block = reply.get("reprompt")
    details = block.get("choices") if isinstance(block, dict) else None
    by_index = {d.get("index"): d for d in details or [] if isinstance(d, dict)}
    out: list[tuple[str, int | None]] = []
    for choice in choices:
        message = choice.get("message") or {}
        text = completion_text(message, fmt)
        mine = by_index.get(choice.get("index"))
        verdict = served_verdict(mine, message)
        tokens = None
        if verdict is not None and isinstance(mine, dict):
            raw = mine.get("completion")
            text = ParsedText(raw if isinstance(raw, str) else text, verdict)
            n = mine.get("completion_tokens")
            tokens = n if isinstance(n, int) and not isinstance(n, bool) and n >= 0 else None
        out.append((text, tokens))
    return out
