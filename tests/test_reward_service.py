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
from reprompt.serving.reward_client import RewardClient
from reprompt.serving.reward_service import BackgroundServer, create_app, free_port

REPO = Path(__file__).resolve().parents[1]
CATS = {"tag": "counting", "prompt": "a photo of three cats", "include": [{"class": "cat", "count": 3}],
        "exclude": [{"class": "cat", "count": 4}]}  # fmt: skip
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
    ):
        assert getattr(remote, field) == getattr(local, field), field
    assert remote.render_calls == local.render_calls == 6
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
            "clauses",
        ),
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


def test_client_refusals_are_not_retried(service, token_env):
    client = RewardClient(service.url, retries=5, backoff=5.0)
    t0 = time.perf_counter()
    with pytest.raises(RemoteServiceError, match="batch of 9 completions exceeds"):
        client.score(["a"] * 9, ["x"] * 9)
    assert time.perf_counter() - t0 < 2.0


def test_round_robin_and_a_dead_url(token_env):
    pipes = [build_rewards(CONFIG), build_rewards(CONFIG)]
    servers = [BackgroundServer(create_app(p, ServiceConfig())).start() for p in pipes]
    try:
        client = RewardClient([s.url for s in servers], backoff=0.01)
        results = [client.score(*request_args()) for _ in range(4)]
        assert all(r.total == results[0].total for r in results)
        assert pipes[0].render_calls == pipes[1].render_calls == 2 * 6  # two batches each
        dead = f"http://127.0.0.1:{free_port()}"
        client = RewardClient([dead, servers[0].url], backoff=0.01)
        assert [client.score(*request_args()).total for _ in range(2)] == [results[0].total] * 2
    finally:
        for s in servers:
            s.stop()


def test_client_survives_a_server_restart(token_env):
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

    thread = threading.Thread(target=restart)
    thread.start()
    try:
        t0 = time.perf_counter()
        second = client.score(*request_args())  # the server is down for ~1 s: retried until it is back
        assert time.perf_counter() - t0 >= 0.9
        assert second.total == first.total
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
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
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
