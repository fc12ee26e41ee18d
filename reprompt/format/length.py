"""How long a rewritten prompt should be, in the target backbone's text-encoder tokens: the one home of the
length window that the length reward scores, the SFT data builder keeps, and ``reprompt data sft`` offers.

The paper rewards a prompt of 15 to 77 tokens: 77 is CLIP's context. reprompt counts in the target
backbone's own encoder, so the upper bound is that encoder's limit (CLIP 77; FLUX's and SD3's T5 branch
read more) unless one is set.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from reprompt.errors import ConfigError

FALLBACK_LIMIT = 77
"""The upper bound when the encoder reports no limit: CLIP's context, the paper's bound."""


@dataclass(frozen=True)
class LengthBounds:
    """``[min_tokens, max_tokens]`` in the target encoder's tokens; ``max_tokens=None`` is that encoder's limit."""

    min_tokens: int = field(default=15, metadata={"help": "shortest prompt, in encoder tokens (paper: 15)"})
    max_tokens: int | None = field(
        default=None,
        metadata={
            "help": "longest prompt (None: the backbone's encoder limit, CLIP's 77 being the paper's bound)"
        },
    )

    def __post_init__(self) -> None:
        if self.min_tokens < 0 or (self.max_tokens is not None and self.max_tokens < self.min_tokens):
            raise ConfigError(f"length bounds [{self.min_tokens}, {self.max_tokens}] are not a valid range")

    def upper(self, encoder_limit: int | None) -> int:
        """The longest prompt allowed for an encoder with this limit."""
        if self.max_tokens is not None:
            return self.max_tokens
        return encoder_limit if encoder_limit is not None else FALLBACK_LIMIT

    def contains(self, tokens: int, encoder_limit: int | None) -> bool:
        return self.min_tokens <= tokens <= self.upper(encoder_limit)
