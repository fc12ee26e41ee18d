"""TRL adapters: each reward component as a GRPO reward function, all sharing ONE render per batch.

``funcs, weights = make_trl_reward_funcs(pipeline_or_client)``; pass ``reward_funcs=funcs`` and
``GRPOConfig(reward_weights=weights)``. Each function has ``__name__`` = the component name, so TRL logs
``rewards/<name>/mean``. The first function called on a batch scores the whole batch (one render of every
completion, every component) and the others read the cached result. Each returns the component's
NORMALIZED values (as configured in the composite reward; raw when normalization is ``none``) so that TRL's
weighted sum equals the composite reward's ``total``. A missing score reaches TRL as its group's mean of that
component (neutral for the completion's advantage), never as None, because TRL's weighted ``nansum``
would read None as a raw 0.

Dataset columns the functions read (TRL passes every column as a keyword argument):

- ``original`` (str, optional): the user's prompt, exactly. Without it the prompt is recovered from the
  last user message of the conversational ``prompts`` (sanitized tag text, if any, stays sanitized).
- ``metadata`` (dict, JSON string or None, optional): GenEval include/exclude clauses for the
  ``geneval`` reward; rows without it score None for that component.

From TRL itself they use ``trainer_state.global_step`` (seeds vary per step, identical within a group and
across processes) and ``log_metric`` (baseline, improvement, render calls, judge failures, ...).

With several processes TRL scores each process's slice of the batch, so every process must hold whole
groups for ``group`` normalization and the neutral imputation to see the whole group:
``RepromptGRPOConfig`` refuses settings where a group could straddle two processes.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any, Protocol

from reprompt.errors import ConfigError, RepromptError, RewardOutageError
from reprompt.rewards.base import ScoredBatch

NOT_RENDERED = "(not rendered: no prompt block; scored the worst of its group)"
"""What the completions table shows for a fallback that the ``group_worst`` rule scored without rendering."""

EXPECTED_COLUMNS = {
    "original": "the user's prompt (str); else the last user message of the conversational prompt",
    "metadata": "GenEval clauses (dict, JSON string or None) for the geneval reward",
}


class Scorer(Protocol):
    """What the adapters need: a local :class:`CompositeReward` or a remote ``RewardClient``."""

    component_names: list[str]
    weights: dict[str, float]

    def score(self, originals: Sequence[str], completions: Sequence[str], **kw: Any) -> ScoredBatch:
        """``CompositeReward.score``'s call: the same rows, then ``metadata``, ``seeds``, ``round``,
        ``keep_images``."""
        ...


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


class OutageGuard:
    """Stops training when a component whose missing score means a failure (a judge API, a reward model)
    misses more than ``max_fraction`` of a batch for ``max_batches`` scored batches in a row: an outage
    must not silently turn the reward into format + length."""

    def __init__(self, components: Sequence[str], max_fraction: float = 0.5, max_batches: int = 3) -> None:
        if not 0 <= max_fraction <= 1 or max_batches < 1:
            raise ConfigError(
                "the outage guard needs 0 <= max_missing_fraction <= 1 and max_missing_steps >= 1"
            )
        self.components, self.max_fraction, self.max_batches = list(components), max_fraction, max_batches
        self.streak = dict.fromkeys(self.components, 0)

    def check(self, result: ScoredBatch) -> None:
        # rows whose scores the fallback rule assigned were never sent to the scorer: not failures
        scored = [i for i in range(len(result)) if not (result.assigned and result.assigned[i])]
        n = len(scored)
        for name in self.components:
            col = result.components.get(name)
            if col is None or not n:
                continue
            missing = sum(col[i] is None for i in scored) / n
            self.streak[name] = self.streak[name] + 1 if missing > self.max_fraction else 0
            if self.streak[name] >= self.max_batches:
                raise RewardOutageError(
                    f"reward {name!r} failed for {missing:.0%} of the last batch and for more than "
                    f"{self.max_fraction:.0%} of each of the last {self.streak[name]} batches: its scorer "
                    "looks down (API unreachable, rate-limited, out of credit?). Training stopped so the run "
                    "does not go on optimising the other components alone. Fix the scorer and rerun the "
                    "same command to resume from the last checkpoint (or raise max_missing_fraction / "
                    "max_missing_steps)."
                )


class SharedBatchScorer:
    """Scores a batch once and serves every component's column from the cached result."""

    def __init__(self, scorer: Scorer, guard: OutageGuard | None = None) -> None:
        self.scorer = scorer
        self.guard = guard
        self._lock = threading.Lock()
        self._key: Any = None
        self._result: ScoredBatch | None = None
        self.batches_scored = 0

    def __getstate__(self) -> dict[str, Any]:
        return {"scorer": self.scorer, "guard": self.guard, "batches_scored": self.batches_scored}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["scorer"], state.get("guard"))  # type: ignore[misc]
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
            if self.guard is not None:
                self.guard.check(result)
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
                    elif metric.startswith("completions/"):  # how the policy wrote (format, length)
                        log(metric, value)
                    elif metric != "completions":
                        log(f"reward/{metric}", value)
            log_extra = kwargs.get("log_extra")
            if callable(log_extra):
                assigned = result.assigned or [False] * len(result)
                log_extra(
                    "rendered_prompt",
                    [NOT_RENDERED if a else p for p, a in zip(result.prompts, assigned, strict=True)],
                )
        return list(result.normalized[self.name])

    def __repr__(self) -> str:
        return f"TRLRewardFunc({self.name!r})"


def failure_components(scorer: Any) -> list[str]:
    """The components whose missing scores mean a failure: from the composite reward, or the service's /info."""
    names = getattr(scorer, "failure_components", None)
    if names is None and hasattr(scorer, "info"):
        names = (scorer.info() or {}).get("failure_components")
    return list(names or [])


def make_trl_reward_funcs(
    scorer: Scorer, guard: OutageGuard | None = None
) -> tuple[list[TRLRewardFunc], list[float]]:
    """One TRL reward function per component (sharing one scoring per batch) and their weights.
    ``guard`` stops training when a failing component goes missing for too long."""
    shared = SharedBatchScorer(scorer, guard)
    names = list(scorer.component_names)
    return [TRLRewardFunc(shared, n) for n in names], [float(scorer.weights[n]) for n in names]
