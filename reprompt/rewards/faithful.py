"""``faithful``: does the enhanced prompt keep what the ORIGINAL prompt asked for? (text only)

The intent guard (:mod:`reprompt.guard`) lists the original's objects, explicit counts, colors, quoted texts
and capitalised names; the score is the share of them the rendered prompt keeps, mapped linearly onto
``[low, high]``. Against reward hacking in GRPO: an image reward can be raised by drawing something easier
than what was asked (a rewrite that drops the three cats), which this component penalises without
rendering anything. A completion that fell back to the original prompt has no rewrite to judge: it scores
``on_fallback`` (default None = missing; the format reward already penalises it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from reprompt.errors import ConfigError
from reprompt.guard import KINDS, check_rewrite
from reprompt.rewards.base import Component, RewardBatch, Score, log_metric


@dataclass
class FaithfulOptions:
    high: float = field(default=1.0, metadata={"help": "score of a rewrite that keeps every requirement"})
    low: float = field(default=0.0, metadata={"help": "score of a rewrite that keeps none"})
    on_fallback: float | None = field(
        default=None, metadata={"help": "score when the completion fell back to the original (None: missing)"}
    )

    def __post_init__(self) -> None:
        if self.high < self.low:
            raise ConfigError(f"faithful: high ({self.high}) must be >= low ({self.low})")


class FaithfulReward(Component, name="faithful", options=FaithfulOptions):
    """Share of the original prompt's objects, counts, colors, quoted texts and names kept by the rewrite."""

    options: FaithfulOptions

    def __call__(self, batch: RewardBatch) -> list[Score]:
        o = self.options
        out: list[Score] = []
        kinds = dict.fromkeys(KINDS, 0)
        judged = 0
        for original, prompt, parsed in zip(batch.originals, batch.prompts, batch.parsed, strict=True):
            if parsed.fallback:
                out.append(o.on_fallback)
                continue
            report = check_rewrite(original, prompt)
            judged += 1
            for finding in report.findings:
                kinds[finding.kind] += 1
            out.append(o.low + (o.high - o.low) * report.score)
        if judged:
            scores = [s for s, p in zip(out, batch.parsed, strict=True) if not p.fallback]
            log_metric("faithful/violation_rate", sum(s < o.high for s in scores) / judged)  # type: ignore[operator]
            for kind, n in kinds.items():
                log_metric(f"faithful/{kind}_findings", n / judged)
        return out
