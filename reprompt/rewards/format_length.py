"""The paper's structural rewards: ``format`` (+1 well-formed, -1 otherwise) and ``length``.

``length`` counts the rendered prompt in the TARGET backbone's text-encoder tokens (the reference code
counted whitespace words, which is not what the model reads), +1 inside the length window
(:class:`reprompt.format.length.LengthBounds`: ``[15, the encoder's limit]`` by default, the window the SFT
data builder keeps too), -1 outside.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from reprompt.errors import ConfigError
from reprompt.format.length import LengthBounds
from reprompt.rewards.base import Component, RewardBatch, Score, log_metric


@dataclass
class FormatOptions:
    well_formed: float = field(default=1.0, metadata={"help": "reward of a well-formed completion"})
    malformed: float = field(
        default=-1.0, metadata={"help": "reward of anything else (recovered or fallback completions)"}
    )


class FormatReward(Component, name="format", options=FormatOptions):
    """+1 when the completion is exactly ``<reason>…</reason><prompt>…</prompt>``, else -1."""

    options: FormatOptions

    def __call__(self, batch: RewardBatch) -> list[Score]:
        o = self.options
        ok = [p.format_ok for p in batch.parsed]
        if ok:
            log_metric("format/ok_rate", sum(ok) / len(ok))
            log_metric("format/fallback_rate", sum(p.fallback for p in batch.parsed) / len(ok))
        return [o.well_formed if good else o.malformed for good in ok]


@dataclass(frozen=True)
class LengthOptions(LengthBounds):
    """The length window (:class:`LengthBounds`, its one home) and the reward inside and outside it."""

    inside: float = field(default=1.0, metadata={"help": "reward inside the bounds"})
    outside: float = field(default=-1.0, metadata={"help": "reward outside the bounds"})


class LengthReward(Component, name="length", options=LengthOptions):
    """+1 when the rendered prompt's length in the backbone's text-encoder tokens is in bounds, else -1.

    A fallback (no usable prompt block: the ORIGINAL prompt was rendered) scores None: the policy wrote no
    prompt to measure, and the format reward alone penalises the fallback. Measuring the original instead
    would penalise it twice (GenEval prompts are 7-14 tokens, below the lower bound), and None is neutral
    within its group (see ``reprompt.rewards.composite.impute_missing``).
    """

    options: LengthOptions

    def __call__(self, batch: RewardBatch) -> list[Score]:
        if batch.token_counter is None:
            raise ConfigError("the length reward needs a backbone to count prompt tokens with")
        o = self.options
        out: list[Score] = []
        cache: dict[str, tuple[int, int]] = {}
        for prompt, parsed in zip(batch.prompts, batch.parsed, strict=True):
            if parsed.fallback:
                out.append(None)
                continue
            if prompt not in cache:
                tc = batch.token_counter(prompt)
                cache[prompt] = (tc.tokens, o.contains(tc.tokens, tc.limit))
            inside = cache[prompt][1]
            out.append(o.inside if inside else o.outside)
        measured = [p for p, parsed in zip(batch.prompts, batch.parsed, strict=True) if not parsed.fallback]
        if measured:
            log_metric("length/tokens_mean", sum(cache[p][0] for p in measured) / len(measured))
            log_metric("length/in_range_rate", sum(v == o.inside for v in out) / len(measured))
        return out
