"""The model worker: which jobs merge into one generate call, the queue bound, skipped cancellations,
and one bad job not failing the others batched with it."""

from __future__ import annotations

import threading

import pytest

from reprompt.errors import RepromptError
from reprompt.policy.base import GenerationOptions, IdentityRewriter
from reprompt.serving.batching import ModelWorker, QueueFull


class Counting(IdentityRewriter):
    """The identity policy, recording the prompts of every call it gets."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def rewrite(self, prompts, options=None, token_counter=None, progress=False, **overrides):  # type: ignore[override]
        self.calls.append(list(prompts))
        return super().rewrite(prompts, options, token_counter, progress, **overrides)


@pytest.fixture
def held():
    """A worker whose thread is busy until ``release`` is set, so jobs pile up in its queue."""
    policy = Counting()
    worker = ModelWorker(policy, max_queue=8, max_batch=3, max_wait=0.0)
    release, started = threading.Event(), threading.Event()
    worker.submit_call(lambda: (started.set(), release.wait(30)))
    assert started.wait(10)  # the worker is busy now: everything submitted next waits in the queue
    yield policy, worker, release
    release.set()
    worker.close()


def test_compatible_jobs_merge_up_to_max_batch(held):
    policy, worker, release = held
    greedy, sampled = GenerationOptions(), GenerationOptions(temperature=0.9, seed=1)
    jobs = [worker.submit_rewrite([f"prompt {i}"], greedy) for i in range(4)]
    jobs.append(worker.submit_rewrite(["sampled"], sampled))
    jobs.append(worker.submit_rewrite(["prompt 5", "prompt 6"], greedy))
    release.set()
    results = [job.result(timeout=20) for job in jobs]
    assert [[r.original for r in res.rewrites] for res in results] == [
        ["prompt 0"],
        ["prompt 1"],
        ["prompt 2"],
        ["prompt 3"],
        ["sampled"],
        ["prompt 5", "prompt 6"],
    ]
    # first batch: 3 greedy prompts (the limit); then prompt 3 with the 2-prompt job; the sampled one alone
    assert policy.calls == [
        ["prompt 0", "prompt 1", "prompt 2"],
        ["prompt 3", "prompt 5", "prompt 6"],
        ["sampled"],
    ]
    assert worker.stats.largest_batch == 3 and worker.stats.batches == 3


def test_without_batching_every_job_runs_alone():
    policy = Counting()
    worker = ModelWorker(policy, batching=False)
    release = threading.Event()
    worker.submit_call(release.wait)
    jobs = [worker.submit_rewrite([f"p{i}"], GenerationOptions()) for i in range(3)]
    release.set()
    assert [job.result(timeout=20).rewrites[0].original for job in jobs] == ["p0", "p1", "p2"]
    assert policy.calls == [["p0"], ["p1"], ["p2"]]
    worker.close()


def test_queue_bound_and_cancelled_jobs(held):
    policy, worker, release = held
    jobs = [worker.submit_rewrite([f"p{i}"], GenerationOptions()) for i in range(8)]
    with pytest.raises(QueueFull, match="8 requests are already waiting"):
        worker.submit_rewrite(["one too many"], GenerationOptions())
    assert jobs[1].cancel() and worker.waiting == 7  # a client that left frees its slot at once
    worker.submit_rewrite(["fits again"], GenerationOptions())
    release.set()
    assert jobs[0].result(timeout=20).rewrites[0].original == "p0"
    assert all(p != "p1" for call in policy.calls for p in call)
    assert worker.stats.skipped_cancelled == 1 and worker.stats.refused_full == 1


def test_one_bad_job_does_not_fail_the_batch(held):
    policy, worker, release = held
    good = worker.submit_rewrite(["a cat"], GenerationOptions())
    bad = worker.submit_rewrite([""], GenerationOptions())  # the policy refuses an empty prompt
    release.set()
    assert good.result(timeout=20).rewrites[0].prompt == "a cat"
    with pytest.raises(RepromptError, match="empty prompt"):
        bad.result(timeout=20)
    assert policy.calls == [["a cat", ""], ["a cat"], [""]]  # merged, failed, then each alone
