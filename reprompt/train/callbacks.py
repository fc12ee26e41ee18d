"""What GRPO logs beyond TRL: format-OK and fallback rates, prompt length in backbone tokens, the step
time split, a samples table with images every N steps, and a held-out reward on a fixed prompt set (the
reward-hacking guard).

TRL already logs each reward function's mean/std (``rewards/<name>/mean``), the total and its std, and the
KL. Where each of our metrics comes from:

- **Inside a reward call** (per batch, averaged across processes by TRL): the composite reward's own metrics
  (``completions/format_ok``, ``completions/prompt_tokens``, component sub-scores, render time), which the
  reward functions of :mod:`reprompt.rewards.trl` pass to TRL's public ``log_metric`` hook. No metric here
  parses a completion again: the reward already did (only the samples table parses its few rows, to show
  their reasoning).
- **Outside a reward call** (callbacks: the step-time split, the held-out reward): TRL has no public hook for
  callbacks, so they put their values in the :class:`MetricsSink` that the trainer's ``log`` merges into the
  same log line.

:class:`RewardObserver` (wrapped around the first reward function by :func:`observe`) times the reward call
for the step timer and writes the samples table; it logs nothing itself.
"""

from __future__ import annotations

import inspect
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from reprompt.format import PromptSpec, TagFormat, parse_completion
from reprompt.rewards.trl import completion_text
from reprompt.utils.io import append_jsonl, atomic_save_image, atomic_write_json

logger = logging.getLogger(__name__)


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


class MetricsSink:
    """Thread-safe bag of scalars that the trainer's ``log`` merges into the next log line (the mean of
    the values put since the previous log)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, list[float]] = {}

    def put(self, metrics: Mapping[str, float]) -> None:
        with self._lock:
            for k, v in metrics.items():
                self._values.setdefault(k, []).append(float(v))

    def drain(self) -> dict[str, float]:
        with self._lock:
            out, self._values = self._values, {}
        return {k: _mean(v) for k, v in out.items()}


class SamplesWriter:
    """Every ``every`` steps: re-scores a few rows with images and writes ``samples/step-N.json`` plus PNGs.

    The rows are rendered and scored again by ``scorer`` (the composite reward or the service client) with
    ``keep_images=True``, so the table shows the image each enhanced prompt gives and its component scores.
    """

    def __init__(self, scorer: Any, out_dir: str | Path, every: int, rows: int, fmt: TagFormat) -> None:
        self.scorer, self.out_dir, self.every, self.rows, self.fmt = scorer, Path(out_dir), every, rows, fmt
        self._last_step = -1

    def maybe_write(self, step: int, originals: list[str], texts: list[str], metadata: list[Any]) -> None:
        if self.every <= 0 or step % self.every or step == self._last_step:
            return
        self._last_step = step
        n = len(texts)
        stride = max(n // max(self.rows, 1), 1)
        idx = list(range(0, n, stride))[: self.rows]
        sel = ([originals[i] for i in idx], [texts[i] for i in idx], [metadata[i] for i in idx])
        try:
            scored = self.scorer.score(*sel, round=step, keep_images=True)
        except Exception as e:  # a failing table must not stop training
            logger.warning("samples table at step %d failed: %s", step, e)
            return
        folder = self.out_dir / f"step-{step:06d}"
        table = []
        for j, (orig, text) in enumerate(zip(sel[0], sel[1], strict=True)):
            parsed = parse_completion(text, orig, self.fmt)
            images = []
            for k, image in enumerate((scored.images or [[]] * len(idx))[j]):
                path = folder / f"{j:03d}-{k}.png"
                atomic_save_image(path, image)
                images.append(str(path))
            table.append(
                {
                    "step": step,
                    "original": orig,
                    "reasoning": parsed.reasoning,
                    "enhanced_prompt": parsed.prompt,
                    "format_ok": parsed.format_ok,
                    "fallback": parsed.fallback,
                    "images": images,
                    "scores": {name: col[j] for name, col in scored.components.items()},
                    "total": scored.total[j],
                    "completion": text,
                }
            )
        atomic_write_json(self.out_dir / f"step-{step:06d}.json", table)


def _sync() -> None:
    """Wait for queued GPU work, so wall-clock splits are not shifted by asynchronous kernels."""
    import torch

    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


class StepTimer(TrainerCallback):
    """Splits each optimizer step's wall time, logged as ``timing/*_s``:

    - ``generation``: step start -> first reward call. TRL samples the completions there (``sampling``,
      timed around the policy's ``generate`` by :func:`~reprompt.train.grpo.stop_at_prompt_close`) and then runs the
      old-policy and reference log-prob passes (``logprobs`` = generation - sampling);
    - ``reward``: time inside the reward functions: rendering (``timing/render_s``, from the reward
      pipeline) and scoring (``timing/<component>_s`` for each component);
    - ``train``: the rest: policy forward/backward and the optimizer (``optimizer``: clipping and
      ``optimizer.step`` alone).

    On a GPU the timer synchronizes at its boundaries. With ``steps_per_generation`` larger than the
    gradient accumulation, generation happens only on some steps and shows there."""

    def __init__(self, sink: MetricsSink) -> None:
        self.sink = sink
        self._t0: float | None = None
        self._first_reward: float | None = None
        self._reward = self._sampling = self._optimizer = 0.0
        self._opt_t0: float | None = None

    def on_step_begin(self, args, state, control, **kwargs):  # noqa: ANN001
        _sync()
        self._t0, self._first_reward = time.perf_counter(), None
        self._reward = self._sampling = self._optimizer = 0.0

    def reward_call(self, start: float, seconds: float) -> None:
        if self._first_reward is None:
            self._first_reward = start
        self._reward += seconds

    def sampling_call(self, seconds: float) -> None:
        self._sampling += seconds

    def on_pre_optimizer_step(self, args, state, control, **kwargs):  # noqa: ANN001
        _sync()
        self._opt_t0 = time.perf_counter()

    def on_optimizer_step(self, args, state, control, **kwargs):  # noqa: ANN001
        if self._opt_t0 is not None:
            _sync()
            self._optimizer += time.perf_counter() - self._opt_t0
            self._opt_t0 = None

    def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001
        if self._t0 is None:
            return
        _sync()
        total = time.perf_counter() - self._t0
        gen = (self._first_reward - self._t0) if self._first_reward is not None else 0.0
        metrics = {
            "timing/step_s": total,
            "timing/generation_s": gen,
            "timing/reward_s": self._reward,
            "timing/train_s": total - gen - self._reward,
            "timing/optimizer_s": self._optimizer,
        }
        if self._sampling:
            metrics["timing/sampling_s"] = self._sampling
            metrics["timing/logprobs_s"] = max(gen - self._sampling, 0.0)
        self.sink.put(metrics)
        self._t0 = None


class RewardObserver:
    """Sees each reward call: times it (for :class:`StepTimer`) and every N steps writes the samples table."""

    def __init__(self, samples: SamplesWriter | None = None, timer: StepTimer | None = None) -> None:
        self.samples, self.timer = samples, timer

    def after(self, start: float, completions: list, kwargs: dict[str, Any]) -> None:
        """Called once the wrapped reward returned: record its time, maybe write a samples table."""
        if self.timer is not None:
            self.timer.reward_call(start, time.perf_counter() - start)
        state = kwargs.get("trainer_state")
        if self.samples is not None and state is not None and state.is_world_process_zero:
            texts = [completion_text(c) for c in completions]
            originals = list(kwargs.get("original") or [""] * len(texts))
            metadata = list(kwargs.get("metadata") or [None] * len(texts))
            self.samples.maybe_write(state.global_step, originals, texts, metadata)


def observe(func: Callable, observer: RewardObserver) -> Callable:
    """Wrap a TRL reward function so ``observer`` sees each batch; its name (the log key) and its
    sync/async nature are kept."""
    name = getattr(func, "__name__", type(func).__name__)
    if inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(type(func).__call__):

        class _AsyncObserved:
            __name__ = name

            async def __call__(self, prompts, completions, **kwargs):  # noqa: ANN001
                start = time.perf_counter()
                out = await func(prompts=prompts, completions=completions, **kwargs)
                observer.after(start, completions, kwargs)
                return out

        return _AsyncObserved()

    class _Observed:
        __name__ = name

        def __call__(self, prompts, completions, **kwargs):  # noqa: ANN001
            start = time.perf_counter()
            out = func(prompts=prompts, completions=completions, **kwargs)
            observer.after(start, completions, kwargs)
            return out

    return _Observed()


def _rank_world() -> tuple[int, int]:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class HeldoutRewardCallback(TrainerCallback):
    """Every ``every`` steps (and before and after training), rewrite a fixed held-out prompt set greedily
    with the current policy -- through :class:`reprompt.policy.RePrompter`, the inference path -- and score
    it with a separate reward (e.g. strict GenEval) on fixed seeds. Logged as ``heldout/*`` beside the
    training reward, and appended to ``<output_dir>/heldout.jsonl``: a training reward that climbs while
    the held-out one falls is reward hacking.

    With several processes every process rewrites and scores its own share of the prompts (so none waits
    for rank 0 to do it all), the rows are gathered, and the main process writes the metrics. Whether a
    step is evaluated is decided by the main process and broadcast, so all processes always agree."""

    def __init__(
        self,
        records: Sequence[Mapping[str, Any]],
        spec: PromptSpec,
        scorer: Any,
        sink: MetricsSink,
        every: int,
        max_new_tokens: int,
        batch_size: int = 16,
    ) -> None:
        self.records, self.spec, self.scorer, self.sink = list(records), spec, scorer, sink
        self.every, self.max_new_tokens, self.batch_size = every, max_new_tokens, batch_size
        self._done: set[int] = set()

    def on_train_begin(self, args, state, control, **kwargs):  # noqa: ANN001
        path = Path(args.output_dir) / "heldout.jsonl"
        if state.is_world_process_zero and path.exists():
            if state.global_step > 0:  # resumed: the steps the killed run already evaluated stay as they are
                self._done.update(
                    int(json.loads(line)["step"]) for line in path.read_text().splitlines() if line
                )
            else:  # a fresh start: lines left by a run killed before its first checkpoint belong to no run
                path.unlink()
        self._run(args, state, kwargs)

    def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001
        if self.every and state.global_step % self.every == 0:
            self._run(args, state, kwargs)

    def on_train_end(self, args, state, control, **kwargs):  # noqa: ANN001
        self._run(args, state, kwargs)

    def _run(self, args, state, kwargs: dict[str, Any]) -> None:  # noqa: ANN001
        rank, world = _rank_world()
        todo = bool(self.records) and state.global_step not in self._done
        if world > 1:  # the main process's view of what was done decides, for everyone
            from accelerate.utils import broadcast_object_list

            todo = bool(broadcast_object_list([todo], from_process=0)[0])
        if not todo:
            return
        self._done.add(state.global_step)
        share = list(range(rank, len(self.records), world))
        rows = self.evaluate_rows(kwargs["model"], kwargs["processing_class"], share)
        if world > 1:
            from accelerate.utils import gather_object

            rows = gather_object(rows)
        if not state.is_world_process_zero:
            return
        rows = sorted(rows, key=lambda r: r["index"])
        metrics = self.summarize(rows)
        self.sink.put(metrics)
        out = Path(args.output_dir)
        append_jsonl(out / "heldout.jsonl", {"step": state.global_step, **metrics})
        atomic_write_json(out / "heldout" / f"step-{state.global_step:06d}.json", rows)
        logger.warning(
            "held-out reward at step %d: %s",
            state.global_step,
            ", ".join(f"{k}={v:.3f}" for k, v in metrics.items()),
        )

    def evaluate(self, model: Any, tokenizer: Any, step: int) -> tuple[dict[str, float], list[dict]]:
        """Metrics and rows over the whole held-out set in this process."""
        rows = self.evaluate_rows(model, tokenizer, list(range(len(self.records))))
        return self.summarize(rows), rows

    def evaluate_rows(self, model: Any, tokenizer: Any, indices: list[int]) -> list[dict[str, Any]]:
        """Rewrite and score the held-out prompts at ``indices``: one row each, with its scores."""
        from reprompt.policy import GenerationOptions, RePrompter

        if not indices:
            return []
        t0 = time.perf_counter()
        records = [self.records[i] for i in indices]
        was_training, side = model.training, tokenizer.padding_side
        try:
            policy = RePrompter(model, tokenizer, spec=self.spec)
            options = GenerationOptions(
                max_new_tokens=self.max_new_tokens, temperature=0.0, batch_size=self.batch_size
            )
            rewrites = policy.rewrite([r["prompt"] for r in records], options=options)
        finally:
            model.train(was_training)
            tokenizer.padding_side = side
        scored = self.scorer.score(
            [r["prompt"] for r in records],
            [rw.completion for rw in rewrites],
            [_metadata(r) for r in records],
            round=0,
        )
        seconds = (time.perf_counter() - t0) / len(records)
        return [
            {
                "index": i,
                "id": r.get("id"),
                "original": rw.original,
                "reasoning": rw.reasoning,
                "enhanced_prompt": rw.prompt,
                "format_ok": rw.format_ok,
                "fallback": rw.fallback,
                "scores": {n: c[j] for n, c in scored.components.items()},
                "total": scored.raw_total[j],
                "seconds": seconds,
            }
            for j, (i, r, rw) in enumerate(zip(indices, records, rewrites, strict=True))
        ]

    @staticmethod
    def summarize(rows: list[dict[str, Any]]) -> dict[str, float]:
        names = list(rows[0]["scores"]) if rows else []
        metrics = {
            f"heldout/{name}": _mean([r["scores"][name] for r in rows if r["scores"][name] is not None])
            for name in names
        }
        metrics["heldout/total"] = _mean([r["total"] for r in rows if r["total"] is not None])
        metrics["heldout/format_ok"] = _mean([r["format_ok"] for r in rows])
        metrics["heldout/fallback"] = _mean([r["fallback"] for r in rows])
        metrics["heldout/seconds"] = sum(r["seconds"] for r in rows)
        return metrics


def _metadata(record: Mapping[str, Any]) -> str | None:
    if not record.get("include") and not record.get("exclude"):
        return None
    return json.dumps({k: record[k] for k in ("tag", "include", "exclude", "prompt") if k in record})
