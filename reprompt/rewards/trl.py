"""TRL adapters: each reward component as a GRPO reward function, all sharing ONE render per batch.

``funcs, weights = make_trl_reward_funcs(pipeline_or_client)``; pass ``reward_funcs=funcs`` and
``GRPOConfig(reward_weights=weights)``. Each function has ``__name__`` = the component name, so TRL logs
``rewards/<name>/mean``. The first function called on a batch scores the whole batch (one render of every
completion, every component) and the others read the cached result. Each returns the component's
NORMALIZED values (as configured in the pipeline; raw when normalization is ``none``) so that TRL's
weighted sum equals the pipeline's ``total``; ``None`` means missing (TRL ignores it).

Dataset columns the functions read (TRL passes every column as a keyword argument):

- ``original`` (str, optional): the user's prompt, exactly. Without it the prompt is recovered from the
  last user message of the conversational ``prompts`` (sanitized tag text, if any, stays sanitized).
- ``metadata`` (dict, JSON string or None, optional): GenEval include/exclude clauses for the
  ``geneval`` reward; rows without it score None for that component.

From TRL itself they use ``trainer_state.global_step`` (seeds vary per step, identical within a group and
across processes) and ``log_metric`` (baseline, improvement, render calls, judge failures, ...).

With several processes TRL scores each process's slice of the batch; ``group`` normalization then uses the
completions of a group that landed on the same process (TRL normalizes the summed reward over the full
group afterwards either way).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any, Protocol

from reprompt.errors import RepromptError
from reprompt.rewards.base import ScoredBatch

EXPECTED_COLUMNS = {
    "original": "the user's prompt (str); else the last user message of the conversational prompt",
    "metadata": "GenEval clauses (dict, JSON string or None) for the geneval reward",
}


class Scorer(Protocol):
    """What the adapters need: a local :class:`RewardPipeline` or a remote ``RewardClient``."""

    component_names: list[str]
    weights: dict[str, float]

    def score(
        self,
        originals: Sequence[str],
        completions: Sequence[str],
        metadata: Sequence[Any] | None = None,
        seeds: Sequence[Sequence[int]] | None = None,
        round: int = 0,
        keep_images: bool = False,
    ) -> ScoredBatch: ...


def message_text(message: Any) -> str:
    """Text of a chat message whose content is a string or a list of typed parts."""
    content = message.get("content", "") if isinstance(message, dict) else message
    if isinstance(content, list):
        return "".join(
            p.get("text", "") for p in content if isinstance(p, dict) and p.get("type", "text") == "text"
        )
    return str(content)


def original_prompt(prompt: Any) -> str:
    """The user's prompt from a TRL prompt: a plain string, or the last user message of a conversation."""
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, list):
        for message in reversed(prompt):
            if isinstance(message, dict) and message.get("role") == "user":
                return message_text(message).strip()
    raise RepromptError(f"cannot find the user prompt in {type(prompt).__name__} {str(prompt)[:80]!r}")


def completion_text(completion: Any) -> str:
    """The assistant text of a TRL completion (string, or a list of messages)."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list):
        return "".join(
            message_text(m)
            for m in completion
            if not isinstance(m, dict) or m.get("role", "assistant") == "assistant"
        )
    raise RepromptError(f"unexpected completion type {type(completion).__name__}")


class SharedBatchScorer:
    """Scores a batch once and serves every component's column from the cached result."""

    def __init__(self, scorer: Scorer) -> None:
        self.scorer = scorer
        self._lock = threading.Lock()
        self._key: Any = None
        self._result: ScoredBatch | None = None
        self.batches_scored = 0

    def __getstate__(self) -> dict[str, Any]:
        return {"scorer": self.scorer, "batches_scored": self.batches_scored}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["scorer"])  # type: ignore[misc]
        self.batches_scored = state["batches_scored"]

    def get(
        self, prompts: list[Any], completions: list[Any], kwargs: dict[str, Any]
    ) -> tuple[ScoredBatch, bool]:
        """(result, fresh): fresh is True for the call that actually scored the batch."""
        originals_col = kwargs.get("original")
        originals = (
            [str(o) for o in originals_col]
            if originals_col is not None
            else [original_prompt(p) for p in prompts]
        )
        texts = [completion_text(c) for c in completions]
        metadata = kwargs.get("metadata")
        state = kwargs.get("trainer_state")
        round_ = int(getattr(state, "global_step", 0) or 0)
        key = (tuple(originals), tuple(texts), round_, _freeze(metadata))
        with self._lock:
            if key == self._key and self._result is not None:
                return self._result, False
            result = self.scorer.score(originals, texts, metadata=metadata, round=round_)
            self._key, self._result = key, result
            self.batches_scored += 1
            return result, True


def _freeze(value: Any) -> Any:
    if isinstance(value, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return tuple(_freeze(v) for v in value)
    return value


class TRLRewardFunc:
    """One component as a TRL reward function (picklable; ``__name__`` is the component name)."""

    def __init__(self, shared: SharedBatchScorer, name: str) -> None:
        self.shared = shared
        self.name = self.__name__ = name

    def __call__(
        self, prompts: list[Any], completions: list[Any], completion_ids: Any = None, **kwargs: Any
    ) -> list[float | None]:
        result, fresh = self.shared.get(prompts, completions, kwargs)
        if fresh:
            log = kwargs.get("log_metric")
            if callable(log):
                for metric, value in result.metrics.items():
                    if metric.startswith("seconds/"):  # the step-time split: render_s, <component>_s
                        if metric != "seconds/batch":
                            log(f"timing/{metric.removeprefix('seconds/')}_s", value)
                    elif not metric.startswith("completions"):
                        log(f"reward/{metric}", value)
            log_extra = kwargs.get("log_extra")
            if callable(log_extra):
                log_extra("rendered_prompt", list(result.prompts))
        return list(result.normalized[self.name])

    def __repr__(self) -> str:
        return f"TRLRewardFunc({self.name!r})"


def make_trl_reward_funcs(scorer: Scorer) -> tuple[list[TRLRewardFunc], list[float]]:
    """One TRL reward function per component (sharing one scoring per batch) and their weights."""
    shared = SharedBatchScorer(scorer)
    names = list(scorer.component_names)
    return [TRLRewardFunc(shared, n) for n in names], [float(scorer.weights[n]) for n in names]
