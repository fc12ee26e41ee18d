"""The reward service on localhost (uvicorn in a thread, and `reprompt serve-rewards` in a subprocess):
same numbers as in-process, auth, size/batch/malformed-request limits with clear errors, round-robin and
surviving a server restart."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from reprompt.errors import RemoteServiceError
from reprompt.rewards import build_rewards
from reprompt.rewards.config import ServiceConfig
from reprompt.serving.http import BackgroundServer, free_port
from reprompt.serving.reward_client import RewardClient
from reprompt.serving.reward_service import create_app

REPO = Path(__file__).resolve().parents[1]
# fmt: off
CATS = {"tag": "counting", "prompt": "a photo of three cats", "include": [{"class": "cat", "count": 3}],
        "exclude": [{"class": "cat", "count": 4}]}
# fmt: on
COMPLETIONS = [
    "<reason>count</reason><prompt>A photo of exactly three orange cats side by side in the center of the image.</prompt>",
    "<reason>count</reason><prompt>three cats</prompt>",
    "no tags",
]
CONFIG = {
    "backbone": "sketch",
    "backbone_options": {"width": 48, "height": 48},
    "components": ["geneval", "format", "length"],
    "images_per_completion": 2,
    "paired_baseline": True,
    "normalization": "group",
}


def request_args():
    return [CATS["prompt"]] * 3, COMPLETIONS, [CATS] * 3


@pytest.fixture(scope="module")
def service():
    pipeline = build_rewards(CONFIG)
    limits = ServiceConfig(max_batch=8, max_request_bytes=20_000, max_completion_chars=2000)
    with BackgroundServer(create_app(pipeline, limits, token="s3cret-token")) as server:
        server.pipeline = pipeline
        yield server


@pytest.fixture
def token_env(monkeypatch):
    monkeypatch.setenv("REPROMPT_REWARD_TOKEN", "s3cret-token")


def test_same_numbers_and_images_as_in_process(service, token_env):
    client = RewardClient(service.url)
    remote = client.score(*request_args(), round=5, keep_images=True)
    local = build_rewards(CONFIG).score(*request_args(), round=5, keep_images=True)
    for field in (
        "components",
        "normalized",
        "total",
        "raw_total",
        "prompts",
        "seeds",
        "baseline",
        "improvement",
        "assigned",
        "fallback_score",
    ):
        assert getattr(remote, field) == getattr(local, field), field
    assert remote.assigned == [False, False, True]  # "no tags": scored by the no-harbour rule, not rendered
    assert remote.render_calls == local.render_calls == 4
    assert [[im.tobytes() for im in row] for row in remote.images] == [
        [im.tobytes() for im in row] for row in local.images
    ]
    assert client.component_names == ["geneval", "format", "length"] and client.weights["geneval"] == 1.0
    explicit = client.score(*request_args(), seeds=[[1, 2]] * 3)
    assert explicit.seeds == [[1, 2]] * 3


def test_auth(service, token_env, monkeypatch):
    assert httpx.get(service.url + "/health").json()["status"] == "ok"  # health needs no token
    body = {"originals": ["a cat"], "completions": ["x"]}
    r = httpx.post(service.url + "/score", json=body)
    assert r.status_code == 401 and "bearer token" in r.json()["error"]
    r = httpx.post(service.url + "/score", json=body, headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401
    assert httpx.get(service.url + "/info").status_code == 401
    r = httpx.post(service.url + "/score", json=body, headers={"Authorization": "Bearer s3cret-token"})
    assert r.status_code == 200 and r.json()["components"]["format"] == [-1.0]
    monkeypatch.delenv("REPROMPT_REWARD_TOKEN")
    with pytest.raises(RemoteServiceError, match="HTTP 401"):
        RewardClient(service.url, retries=0).score(["a cat"], ["x"])
    explicit = RewardClient(service.url, token="s3cret-token")  # a token passed in, not from the env
    assert explicit.score(["a cat"], ["x"]).components["format"] == [-1.0]


AUTH = {"Authorization": "Bearer s3cret-token"}


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (
            {"originals": ["a"] * 9, "completions": ["x"] * 9},
            413,
            "batch of 9 completions exceeds the limit of 8",
        ),
        ({"originals": ["a"], "completions": ["x" * 2001]}, 422, "exceeds the limit of 2000"),
        ({"originals": ["a", "b"], "completions": ["x"]}, 422, "got 2 originals but 1 completions"),
        ({"originals": ["a"]}, 422, "completions: Field required"),
        ({"originals": "a", "completions": ["x"]}, 422, "originals"),
        ({"originals": ["a"], "completions": ["x"], "pickle": "gAR9"}, 422, "Extra inputs"),
        ({"originals": ["a"], "completions": ["x"], "seeds": [["s"]]}, 422, "seeds"),
        ({"originals": ["a"], "completions": ["x"], "metadata": ["{broken"]}, 400, "not valid JSON"),
        (
            {"originals": ["a"], "completions": ["x"], "metadata": [{"include": [{"count": 1}]}]},
            400,
            "include[0].class is missing",
        ),
        ({"originals": ["a"], "completions": ["x"], "seeds": [[-1]]}, 422, "seeds"),
        ({"originals": ["a"], "completions": ["x"], "seeds": [[10**30]]}, 422, "seeds"),
        ({"originals": ["a"], "completions": ["x"], "seeds": [list(range(65))]}, 422, "seeds"),
    ],
)
def test_bad_requests_get_clear_4xx(service, body, status, message):
    r = httpx.post(service.url + "/score", json=body, headers=AUTH)
    assert r.status_code == status, r.text
    assert message in r.json()["error"]


def test_oversized_and_malformed_bodies(service):
    big = {"originals": ["a"], "completions": ["x" * 30_000]}
    r = httpx.post(service.url + "/score", json=big, headers=AUTH)
    assert r.status_code == 413 and "exceeds the limit of 20000 bytes" in r.json()["error"]

    def chunks():  # no Content-Length: the server must still stop reading at the limit
        yield b'{"originals": ["a"], "completions": ["'
        for _ in range(30):
            yield b"x" * 1000
        yield b'"]}'

    r = httpx.post(
        service.url + "/score", content=chunks(), headers={**AUTH, "Content-Type": "application/json"}
    )
    assert r.status_code == 413
    r = httpx.post(
        service.url + "/score", content=b"{not json", headers={**AUTH, "Content-Type": "application/json"}
    )
    assert r.status_code == 422 and "malformed request" in r.json()["error"]
    r = httpx.post(service.url + "/score", content=b"\x80\x04\x95pickle", headers=AUTH)
    assert r.status_code == 422


def test_client_refusals_are_not_retried(service, token_env, monkeypatch):
    sleeps: list[float] = []
    monkeypatch.setattr("reprompt.utils.failover._sleep", sleeps.append)
    client = RewardClient(service.url, retries=5, backoff=5.0)
    with pytest.raises(RemoteServiceError, match="batch of 9 completions exceeds"):
        client.score(["a"] * 9, ["x"] * 9)
    assert sleeps == []  # a 413 would fail again: asked once, no backoff


def test_round_robin_and_a_dead_url(token_env):
    pipes = [build_rewards(CONFIG), build_rewards(CONFIG)]
    servers = [BackgroundServer(create_app(p, ServiceConfig())).start() for p in pipes]
    try:
        client = RewardClient([s.url for s in servers], backoff=0.01)
        results = [client.score(*request_args()) for _ in range(4)]
        assert all(r.total == results[0].total for r in results)
        # two batches each: six images each, the second batch's baseline read from the cache
        assert [p.render_calls + p.cache.hits for p in pipes] == [2 * 6, 2 * 6]
        assert [p.cache.hits for p in pipes] == [2, 2]
        dead = f"http://127.0.0.1:{free_port()}"
        client = RewardClient([dead, servers[0].url], backoff=0.01)
        assert [client.score(*request_args()).total for _ in range(2)] == [results[0].total] * 2
    finally:
        for s in servers:
            s.stop()


def test_client_survives_a_server_restart(token_env, monkeypatch):
    pipeline = build_rewards(CONFIG)
    server = BackgroundServer(create_app(pipeline, ServiceConfig())).start()
    port = server.port
    client = RewardClient(server.url, retries=8, backoff=0.1, max_backoff=1.0)
    first = client.score(*request_args())
    server.stop()
    restarted: list[BackgroundServer] = []

    def restart():
        time.sleep(1.0)
        restarted.append(
            BackgroundServer(create_app(build_rewards(CONFIG), ServiceConfig()), port=port).start()
        )

    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        time.sleep(seconds)

    monkeypatch.setattr("reprompt.utils.failover._sleep", sleep)
    thread = threading.Thread(target=restart)
    thread.start()
    try:
        second = client.score(*request_args())  # the server is down for ~1 s: retried until it is back
        assert sleeps and sleeps == sorted(sleeps)  # it backed off (growing waits) until the server was back
        assert restarted and second.total == first.total
    finally:
        thread.join()
        for s in restarted:
            s.stop()


def test_serve_rewards_cli_in_a_subprocess(tmp_path):
    import yaml

    port = free_port()
    config = tmp_path / "reward.yaml"
    config.write_text(yaml.safe_dump({**CONFIG, "service": {"port": port, "token_env": "TEST_REWARD_TOKEN"}}))
    env = {**os.environ, "TEST_REWARD_TOKEN": "tok-123", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "reprompt.cli.main", "serve-rewards", "--config", str(config)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        client = RewardClient(
            f"http://127.0.0.1:{port}", token_env="TEST_REWARD_TOKEN", retries=12, backoff=0.25
        )
        os.environ["TEST_REWARD_TOKEN"] = "tok-123"
        remote = client.score(*request_args(), round=2)
        local = build_rewards(CONFIG).score(*request_args(), round=2)
        assert remote.total == local.total and remote.components == local.components
        assert (
            httpx.post(
                f"http://127.0.0.1:{port}/score", json={"originals": [], "completions": []}
            ).status_code
            == 401
        )
    finally:
        os.environ.pop("TEST_REWARD_TOKEN", None)
        proc.terminate()
        out, _ = proc.communicate(timeout=20)
    assert f"reprompt reward service on http://127.0.0.1:{port}" in out


# ------------------------------------------------------------------ malformed GenEval metadata (issue 11)
def _clause(**kw):
    return {"tag": "position", "include": [{"class": "dog", "count": 1}, {"class": "cat", "count": 1, **kw}]}


@pytest.mark.parametrize(
    ("metadata", "field"),
    [
        (_clause(count="two"), "include[1].count"),
        (_clause(count=[1]), "include[1].count"),
        (_clause(count=-5), "include[1].count"),
        (_clause(count=0), "include[1].count"),
        (_clause(count=1.5), "include[1].count"),
        (_clause(count=1_000_000_000), "include[1].count must be at most 16"),  # scored 0.0 with a 200
        (_clause(count=17), "include[1].count must be at most 16"),
        (
            {"include": [{"class": "dog", "count": 1}], "exclude": [{"class": "dog", "count": 10**12}]},
            "exclude[0].count must be at most 17",  # scored 1.0: an exclude clause that could never fail
        ),
        (_clause(position=["behind", 0]), "include[1].position[0]"),
        (_clause(position=["left of", 7]), "include[1].position[1]"),
        (_clause(position=["left of", 1]), "include[1].position[1]"),  # itself, not an earlier clause
        (_clause(position="left of"), "include[1].position"),
        (_clause(color="teal"), "include[1].color"),
        (_clause(colour="red"), "include[1] has unknown key"),
        ({"include": [{"class": "dragon", "count": 1}]}, "include[0].class 'dragon'"),
        (
            {"include": [{"class": "dog", "count": 1}], "exclude": [{"class": "dog", "count": "x"}]},
            "exclude[0].count",
        ),
        ({"include": "dog"}, "'include' must be a list"),
        ({"include": [["dog", 1]]}, "include[0] must be an object"),
    ],
)
def test_malformed_metadata_is_a_400_naming_the_field(service, metadata, field):
    """29 of 400 random malformed metadata requests got a 500 before; count -5 scored 1.0 and an
    unknown class 0.0, silently."""
    body = {"originals": ["a dog"], "completions": [COMPLETIONS[0]], "metadata": [metadata]}
    r = httpx.post(service.url + "/score", json=body, headers=AUTH)
    assert r.status_code == 400, r.text
    assert field in r.json()["error"]


class Gated:
    """The real pipeline behind a gate the test opens: makes "the service is busy" deterministic."""

    def __init__(self, pipeline):
        self.pipeline, self.calls = pipeline, 0
        self.gate, self.entered = threading.Event(), threading.Event()

    def score(self, *args, **kwargs):
        self.calls += 1
        self.entered.set()
        assert self.gate.wait(30)
        return self.pipeline.score(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.pipeline, name)


def _wait_until(condition, timeout=20.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


def test_full_queue_is_429_and_a_gone_client_is_skipped():
    gated = Gated(build_rewards(CONFIG))
    app = create_app(gated, ServiceConfig(max_queue=1))
    body = {"originals": [CATS["prompt"]], "completions": [COMPLETIONS[0]], "metadata": [CATS]}
    with BackgroundServer(app) as server:
        results = []
        first = threading.Thread(target=lambda: results.append(httpx.post(server.url + "/score", json=body)))
        first.start()
        assert gated.entered.wait(20)  # request 1 is being scored (held at the gate)

        def gives_up():  # request 2 waits in the queue, then its client times out and disconnects
            with pytest.raises(httpx.ReadTimeout):
                httpx.post(server.url + "/score", json=body, timeout=httpx.Timeout(20, read=1.0))

        second = threading.Thread(target=gives_up)
        second.start()
        _wait_until(lambda: app.state.queue["waiting"] == 1)
        r = httpx.post(server.url + "/score", json=body)  # request 3: the queue is full
        assert r.status_code == 429 and r.headers["Retry-After"] == "1"
        assert "already waiting" in r.json()["error"]
        second.join()
        gated.gate.set()
        first.join()
        _wait_until(lambda: app.state.queue["skipped"] == 1)
        assert results[0].status_code == 200
        assert gated.calls == 1  # request 2 never ran: nobody was there to read it


def test_openapi_schema_is_published(service):
    schema = httpx.get(service.url + "/openapi.json").json()
    op = schema["paths"]["/score"]["post"]
    body = op["requestBody"]["content"]["application/json"]["schema"]
    assert set(body["required"]) == {"originals", "completions"} and body["additionalProperties"] is False
    assert {"400", "413", "422", "429", "500"} <= set(op["responses"])


def test_internal_errors_are_not_retried_and_carry_the_message(token_env, monkeypatch):
    pipeline = build_rewards(CONFIG)

    def broken(*args, **kwargs):
        raise ZeroDivisionError("a scorer bug")

    monkeypatch.setattr(pipeline, "score", broken)  # a real internal failure of the scoring code
    with BackgroundServer(create_app(pipeline, ServiceConfig())) as server:
        r = httpx.post(server.url + "/score", json={"originals": ["a"], "completions": ["x"]})
        assert r.status_code == 500 and r.json()["retryable"] is False
        sleeps = []
        monkeypatch.setattr("reprompt.utils.failover._sleep", sleeps.append)
        client = RewardClient(server.url, retries=6)
        with pytest.raises(RemoteServiceError, match="ZeroDivisionError: a scorer bug"):
            client.score(["a"], ["x"])
        assert sleeps == []  # one try, no backoff (it used to be 7 tries over ~30 s, then "HTTP 500")


def test_a_user_error_is_reported_once_with_the_servers_message(service, token_env, monkeypatch):
    sleeps = []
    monkeypatch.setattr("reprompt.utils.failover._sleep", sleeps.append)
    client = RewardClient(service.url, retries=6)
    with pytest.raises(RemoteServiceError, match=r"HTTP 400\): GenEval metadata: include\[0\].count"):
        client.score(["a dog"], ["x"], metadata=[{"include": [{"class": "dog", "count": -5}]}])
    assert sleeps == []
