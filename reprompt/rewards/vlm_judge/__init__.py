"""``vlm_judge``: a vision-language model rates how well the image matches the ORIGINAL prompt (0-10).

Counts, attributes and relations come first, realism second. The 0-10 score maps linearly to [-1, 1].
Backends (``options.vlm_judge.backend``): ``openai`` (:mod:`.remote`, any OpenAI-compatible endpoint) and
``local`` (:mod:`.local`, a transformers VLM); both ask :data:`~.options.JUDGE_PROMPT` and read the reply
with :func:`~.parsing.parse_score`. A judgement that still fails after its retries is MISSING (None), which
GRPO ignores; failures are counted (``vlm_judge/failures``) and logged, never turned into 0 (the reference
code's defect).
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

from reprompt.rewards.base import ImageComponent, Images, Metadata, Scenes, Score, log_metric
from reprompt.rewards.vlm_judge.options import VLMJudgeOptions
from reprompt.rewards.vlm_judge.parsing import to_reward

logger = logging.getLogger(__name__)


class VLMJudge(ImageComponent, name="vlm_judge", options=VLMJudgeOptions):
    options: VLMJudgeOptions

    def __init__(self, options: VLMJudgeOptions | None = None, name: str | None = None) -> None:
        super().__init__(options, name)
        self.backend: Any
        if self.options.backend == "openai":
            from reprompt.rewards.vlm_judge.remote import OpenAIJudge

            self.backend = OpenAIJudge(self.options)
        else:
            from reprompt.rewards.vlm_judge.local import LocalJudge

            self.backend = LocalJudge(self.options)
        self.failures: Counter[str] = Counter()
        """Failed judgements since creation, by reason."""

    def score_images(
        self, originals: list[str], images: Images, scenes: Scenes, metadata: Metadata
    ) -> list[Score]:
        results = self.backend.judge(originals, images)
        failed = Counter(reason or "unknown" for score, reason in results if score is None)
        self.failures.update(failed)
        n_failed = sum(failed.values())
        log_metric(f"{self.name}/failures", n_failed)
        log_metric(f"{self.name}/failure_rate", n_failed / max(len(results), 1))
        if n_failed:
            logger.warning(
                "%s: %d of %d judgements failed and are missing (not 0): %s",
                self.name,
                n_failed,
                len(results),
                dict(failed),
            )
        scores = [s for s, _ in results if s is not None]
        if scores:
            log_metric(f"{self.name}/raw_score", sum(scores) / len(scores))
        return [to_reward(s) for s, _ in results]
