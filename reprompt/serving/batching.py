"""One model worker per server: a bounded queue in front of the policy and backbone, with micro-batching.

The policy and the text-to-image pipeline hold the accelerator and are not thread-safe, so every model
call of ``reprompt serve`` (chat completions, rewrites, image generations) goes through ONE worker thread.
Rewrite jobs that arrive together are merged into one batched ``generate`` call: the worker takes the
first job, then waits at most ``max_wait`` seconds for more jobs with the same generation options, up
to ``max_batch`` prompts. Greedy outputs are the same as one at a time (left padding); under load the
wait costs nothing, because jobs pile up while a batch runs and the next batch takes them at once.

The queue is bounded: ``submit_*`` raises :class:`QueueFull` (the services answer 429) rather than
letting waits grow without limit, and a job cancelled before it starts (its client went away) is skipped.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from reprompt.errors import check_range
from reprompt.policy.base import GenerationOptions, Rewrite, Rewriter, TokenCounter

logger = logging.getLogger(__name__)


class QueueFull(Exception):
    """The worker's queue is at its bound; the client should retry later."""


@dataclass
class WorkerStats:
    """Counters for /health and the load benchmark."""

    jobs: int = 0
    batches: int = 0
    prompts: int = 0
    largest_batch: int = 0
    skipped_cancelled: int = 0
    refused_full: int = 0


@dataclass
class RewriteResult:
    """A rewrite job's answer: ``num_candidates`` rewrites per prompt, grouped by prompt, and each
    prompt's length in the policy's input tokens (None when the policy has no local tokenizer)."""

    rewrites: list[Rewrite]
    input_tokens: list[int | None]


@dataclass
class _Job:
    future: concurrent.futures.Future
    prompts: list[str] = field(default_factory=list)
    options: GenerationOptions | None = None
    call: Callable[[], Any] | None = None


class ModelWorker:
    """A single thread that runs model calls in order, micro-batching rewrite jobs.

    ``max_queue``: jobs allowed to wait (not counting the batch running); ``max_batch``: most prompts in
    one merged generate call; ``max_wait``: seconds an idle worker waits for more jobs to join a batch;
    ``batching=False`` runs every job alone (the baseline the load benchmark compares against).
    """

    def __init__(
        self,
        policy: Rewriter,
        token_counter: TokenCounter | None = None,
        *,
        max_queue: int = 32,
        max_batch: int = 8,
        max_wait: float = 0.01,
        batching: bool = True,
    ) -> None:
        check_range("max_queue", max_queue, 1)
        check_range("max_batch", max_batch, 1)
        check_range("max_wait", max_wait, 0)
        self.policy, self.token_counter = policy, token_counter
        self.max_queue, self.max_batch, self.max_wait, self.batching = (
            max_queue,
            max_batch,
            max_wait,
            batching,
        )
        self.stats = WorkerStats()
        self._queue: deque[_Job] = deque()
        self._cv = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name="reprompt-model-worker", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------------------------- submit
    def submit_rewrite(self, prompts: Sequence[str], options: GenerationOptions) -> concurrent.futures.Future:
        """Rewrite ``prompts`` (already checked with ``check_prompt``); the future gives a
        :class:`RewriteResult`."""
        return self._submit(_Job(concurrent.futures.Future(), prompts=list(prompts), options=options))

    def submit_call(self, fn: Callable[[], Any]) -> concurrent.futures.Future:
        """Run ``fn()`` on the worker thread (image generation: rewrite + render as one unit)."""
        return self._submit(_Job(concurrent.futures.Future(), call=fn))

    def _submit(self, job: _Job) -> concurrent.futures.Future:
        with self._cv:
            if self._closed:
                raise RuntimeError("the model worker is closed")
            if len(self._queue) >= self.max_queue:
                self.stats.refused_full += 1
                raise QueueFull(f"{len(self._queue)} requests are already waiting (the limit)")
            self._queue.append(job)
            self._cv.notify_all()
        job.future.add_done_callback(lambda f: self._drop(job) if f.cancelled() else None)
        return job.future

    def _drop(self, job: _Job) -> None:
        """A job cancelled while waiting (its client left) gives its queue slot back at once."""
        with self._cv:
            if job in self._queue:
                self._queue.remove(job)
                self.stats.skipped_cancelled += 1

    @property
    def waiting(self) -> int:
        return len(self._queue)

    def close(self) -> None:
        with self._cv:
            self._closed = True
            self._cv.notify_all()
        self._thread.join(timeout=30)

    # --------------------------------------------------------------------------------------- loop
    def _loop(self) -> None:
        while True:
            with self._cv:
                while not self._queue and not self._closed:
                    self._cv.wait()
                if not self._queue:
                    return
                job = self._queue.popleft()
            if not self._start(job):
                continue
            if job.call is not None:
                self._run_call(job)
            else:
                self._run_rewrites(self._gather(job))

    def _start(self, job: _Job) -> bool:
        """Mark a job running; False (and counted) when its client cancelled it while it waited."""
        if job.future.set_running_or_notify_cancel():
            self.stats.jobs += 1
            return True
        self.stats.skipped_cancelled += 1
        return False

    def _gather(self, first: _Job) -> list[_Job]:
        """``first`` plus queued rewrite jobs with the same options, up to ``max_batch`` prompts."""
        batch, n = [first], len(first.prompts)
        if not self.batching:
            return batch
        deadline = time.monotonic() + self.max_wait
        with self._cv:
            while n < self.max_batch:
                for job in list(self._queue):
                    fits = n + len(job.prompts) <= self.max_batch
                    if job.call is None and job.options == first.options and fits:
                        self._queue.remove(job)
                        if self._start(job):
                            batch.append(job)
                            n += len(job.prompts)
                remaining = deadline - time.monotonic()
                if n >= self.max_batch or remaining <= 0:
                    break
                self._cv.wait(remaining)
        return batch

    def _run_call(self, job: _Job) -> None:
        try:
            job.future.set_result(job.call())  # type: ignore[misc]
        except BaseException as e:  # delivered to the waiting request
            job.future.set_exception(e)

    def _run_rewrites(self, batch: list[_Job]) -> None:
        options = batch[0].options or GenerationOptions()
        prompts = [p for job in batch for p in job.prompts]
        # one generate call for a merged batch; a single large job still goes in chunks of max_batch
        merged = dataclasses.replace(
            options, batch_size=max(options.batch_size, min(len(prompts), self.max_batch))
        )
        try:
            out = self.policy.rewrite(prompts, options=merged, token_counter=self.token_counter)
        except BaseException as e:
            if len(batch) > 1:  # one bad job must not fail the others: run each alone
                logger.warning(
                    "batched rewrite of %d requests failed (%s); retrying one by one", len(batch), e
                )
                for job in batch:
                    self._run_rewrites_alone(job)
                return
            batch[0].future.set_exception(e)
            return
        self._record(len(prompts))
        self._deliver(batch, out, options.num_candidates)

    def _run_rewrites_alone(self, job: _Job) -> None:
        options = job.options or GenerationOptions()
        try:
            out = self.policy.rewrite(job.prompts, options=options, token_counter=self.token_counter)
        except BaseException as e:
            job.future.set_exception(e)
            return
        self._record(len(job.prompts))
        self._deliver([job], out, options.num_candidates)

    def _record(self, n: int) -> None:
        self.stats.batches += 1
        self.stats.prompts += n
        self.stats.largest_batch = max(self.stats.largest_batch, n)

    def _input_tokens(self, prompt: str) -> int | None:
        """Length of the policy's chat input for ``prompt`` (runs on the worker thread, like the model)."""
        tokenizer = getattr(self.policy, "tokenizer", None)
        if tokenizer is None or getattr(tokenizer, "chat_template", None) is None:
            return None
        text = tokenizer.apply_chat_template(
            self.policy.messages_for(prompt), tokenize=False, add_generation_prompt=True
        )
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    def _deliver(self, batch: list[_Job], out: list[Rewrite], per_prompt: int) -> None:
        start = 0
        for job in batch:
            size = len(job.prompts) * per_prompt
            mine = out[start : start + size]
            start += size
            if len(mine) != size:  # every prompt in must be accounted for in the reply
                from reprompt.errors import RemoteServiceError

                job.future.set_exception(
                    RemoteServiceError(f"the policy returned {len(mine)} rewrites for {size} expected")
                )
                continue
            try:
                tokens = [self._input_tokens(p) for p in job.prompts]
            except Exception as e:  # counting is a courtesy: never fail a finished rewrite over it
                logger.warning("could not count input tokens: %s", e)
                tokens = [None] * len(job.prompts)
            job.future.set_result(RewriteResult(mine, tokens))
