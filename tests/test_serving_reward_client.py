"""RewardClient against dead, hung and misbehaving peers: no backoff paid for a known-dead URL, dead
peers probed again later, a hung service reported after one timeout, malformed replies refused."""

from __future__ import annotations

import threading

import pytest
from fastapi import FastAPI

from reprompt.errors import RemoteServiceError
from reprompt.rewards import build_rewards
from reprompt.rewards.config import ServiceConfig
from reprompt.serving.http import BackgroundServer, free_port
from reprompt.serving.reward_client import RewardClient, check_scored_reply
from reprompt.serving.reward_service import create_app

CONFIG = {
    "backbone": "sketch",
    "backbone_options": {"width": 32, "height": 32},
    "components": ["format", "length"],
}
ARGS = (["a cat"] * 2, ["<reason>a plan here</reason><prompt>A cat on a mat.</prompt>", "x"])


@pytest.fixture
def sleeps(monkeypatch):
    """Record the client's backoff sleeps instead of sleeping (and instead of timing them)."""
    calls: list[float] = []
    monkeypatch.setattr("reprompt.utils.failover._sleep", calls.append)
    return calls


@pytest.fixture(scope="module")
def live():
    pipeline = build_rewards(CONFIG)
    with BackgroundServer(create_app(pipeline, ServiceConfig())) as server:
        server.pipeline = pipeline
        yield server


def test_a_dead_first_url_costs_no_backoff_and_is_skipped_afterwards(live, sleeps):
    dead = f"http://127.0.0.1:{free_port()}"
    client = RewardClient([dead, live.url], backoff=5.0)
    before = live.pipeline.render_calls
    totals = [client.score(*ARGS).total for _ in range(4)]
    assert totals == [totals[0]] * 4
    assert sleeps == []  # before: every request started at the dead URL and slept 5 s
    assert live.pipeline.render_calls - before == 0  # format + length need no render
    assert list(client._dead_until) == [0]


def test_a_dead_peer_is_probed_again_later(sleeps, monkeypatch):
    pipes = [build_rewards(CONFIG), build_rewards(CONFIG)]
    port = free_port()
    first = BackgroundServer(create_app(pipes[0], ServiceConfig()), port=port).start()
    second = BackgroundServer(create_app(pipes[1], ServiceConfig())).start()
    counts = {0: 0, 1: 0}
    for i, pipe in enumerate(pipes):
        original = pipe.score

        def counted(*a, _i=i, _orig=original, **kw):
            counts[_i] += 1
            return _orig(*a, **kw)

        pipe.score = counted
    try:
        client = RewardClient([first.url, second.url], probe_after=60.0)
        first.stop()
        for _ in range(3):
            client.score(*ARGS)
        assert counts == {0: 0, 1: 3} and sleeps == []
        first = BackgroundServer(create_app(pipes[0], ServiceConfig()), port=port).start()
        for _ in range(2):
            client.score(*ARGS)
        assert counts[0] == 0  # still marked dead: not probed within 60 s
        import time

        later = time.monotonic() + 61.0
        monkeypatch.setattr("reprompt.utils.failover._clock", lambda: later)
        for _ in range(4):
            client.score(*ARGS)
        assert counts == {0: 2, 1: 7}  # back in the rotation (every other request) once probed
    finally:
        first.stop()
        second.stop()


def _scripted(handler) -> FastAPI:
    app = FastAPI()
    app.post("/score")(handler)
    return app


def test_a_hung_service_is_reported_after_one_timeout(sleeps):
    release = threading.Event()
    calls = []

    def hang() -> dict:
        calls.append(1)
        release.wait(10)
        return {}

    with BackgroundServer(_scripted(hang)) as server:
        client = RewardClient(server.url, timeout=0.5, retries=6)
        try:
            with pytest.raises(RemoteServiceError, match="no reply within 0.5 s"):
                client.score(*ARGS)
        finally:
            release.set()
    assert len(calls) == 1 and sleeps == []  # before: 7 tries x the timeout (600 s by default)


def test_server_errors_are_retried_with_the_servers_message(sleeps):
    def overloaded() -> dict:
        from fastapi.responses import JSONResponse

        return JSONResponse({"error": "GPU out of memory"}, status_code=503)

    with BackgroundServer(_scripted(overloaded)) as server:
        client = RewardClient(server.url, retries=2, backoff=0.1)
        with pytest.raises(RemoteServiceError, match="after 3 tries: .*HTTP 503: GPU out of memory"):
            client.score(*ARGS)
    assert sleeps == [0.1, 0.2]


def test_a_full_queue_is_retried_after_the_services_retry_after(sleeps):
    """The service answers 429 with Retry-After when its queue is full: wait what it says, not our backoff."""

    def full() -> dict:
        from fastapi.responses import JSONResponse

        return JSONResponse({"error": "queue full"}, status_code=429, headers={"Retry-After": "7"})

    with BackgroundServer(_scripted(full)) as server:
        client = RewardClient(server.url, retries=2, backoff=0.1, max_backoff=30.0)
        with pytest.raises(RemoteServiceError, match="HTTP 429: queue full"):
            client.score(*ARGS)
    assert sleeps == [7.0, 7.0]  # before: [0.1, 0.2], ignoring the service's Retry-After


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(total=d["total"][:1]), "total has 1 entries"),
        (lambda d: d.update(total=["1.0", "0.5"]), "total holds '1.0'"),
        (lambda d: d["components"].update(format=[1.0]), "components.format has 1 entries"),
        (lambda d: d.update(prompts=["a"]), "prompts must hold 2 values"),
        (lambda d: d.pop("format_ok"), "'format_ok' is missing"),
        (lambda d: d.update(raw_total=[True, 1.0]), "raw_total holds True"),
    ],
)
def test_malformed_replies_are_refused(live, mutate, message):
    import httpx

    good = httpx.post(live.url + "/score", json={"originals": ARGS[0], "completions": ARGS[1]}).json()
    check_scored_reply(good, 2)
    mutate(good)
    with pytest.raises(RemoteServiceError, match=message):
        check_scored_reply(good, 2)


def test_a_short_batch_from_the_server_does_not_reach_training(live, sleeps):
    import httpx

    good = httpx.post(live.url + "/score", json={"originals": ARGS[0], "completions": ARGS[1]}).json()
    short = {**good, "total": good["total"][:1]}
    with (
        BackgroundServer(_scripted(lambda: short)) as server,
        pytest.raises(RemoteServiceError, match="malformed reply: total has 1 entries"),
    ):
        RewardClient(server.url).score(*ARGS)


def test_the_client_still_pickles(live):
    import pickle

    client = RewardClient([live.url])
    clone = pickle.loads(pickle.dumps(client))
    assert clone.score(*ARGS).total == client.score(*ARGS).total
