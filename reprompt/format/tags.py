"""Tag pairs. Ours is ``reason``/``prompt``; the reference code's ``think``/``answer`` loads too."""

from __future__ import annotations

from dataclasses import dataclass

from reprompt.errors import ConfigError, did_you_mean


@dataclass(frozen=True)
class TagFormat:
    """Names of the reasoning and prompt tags. ``reason=None`` means a prompt-only format
    (the paper's no-reasoning ablation)."""

    reason: str | None = "reason"
    prompt: str = "prompt"

    def __post_init__(self) -> None:
        for t in (self.reason, self.prompt):
            if t is not None and (not t.isidentifier() or t.lower() != t):
                raise ConfigError(f"tag names must be lowercase identifiers, got {t!r}")
        if self.reason == self.prompt:
            raise ConfigError("the reason and prompt tags must differ")

    @property
    def name(self) -> str:
        return f"{self.reason}/{self.prompt}" if self.reason else self.prompt

    @property
    def tag_names(self) -> tuple[str, ...]:
        return (self.reason, self.prompt) if self.reason else (self.prompt,)

    @property
    def prompt_open(self) -> str:
        return f"<{self.prompt}>"

    @property
    def prompt_close(self) -> str:
        """``</prompt>``: where a completion ends. Inference and GRPO sampling both stop here (their stop
        strings), and nothing after it is used."""
        return f"</{self.prompt}>"


REASON_PROMPT = TagFormat("reason", "prompt")
THINK_ANSWER = TagFormat("think", "answer")
PROMPT_ONLY = TagFormat(None, "prompt")

TAG_FORMATS = {"reason/prompt": REASON_PROMPT, "think/answer": THINK_ANSWER, "prompt": PROMPT_ONLY}


def get_tag_format(name: str | TagFormat) -> TagFormat:
    """Look up a tag format by name ('reason/prompt', 'think/answer', 'prompt') or 'a/b'."""
    if isinstance(name, TagFormat):
        return name
    if name in TAG_FORMATS:
        return TAG_FORMATS[name]
    if "/" in name:
        reason, prompt = name.split("/", 1)
        return TagFormat(reason or None, prompt)
    raise ConfigError(f"unknown tag format {name!r}.{did_you_mean(name, list(TAG_FORMATS))}")
