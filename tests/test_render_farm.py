"""The render farm (``--backbone remote:URL,URL``): two real ``reprompt serve --policy none --backbone
sketch`` processes on loopback render what the sketch renders in-process, bit for bit, and the reward is the
same before and after one of them is killed mid-run; servers that cannot honour a seed are refused by name."""

from __future__ import annotations

import base64
import io
import json
import os
import pickle
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from reprompt.backbones import load_backbone
from reprompt.backbones.remote import RemoteBackbone
from reprompt.errors import RepromptError
from reprompt.geneval.scene import objects_to_json
from reprompt.rewards.composite import CompositeReward
from reprompt.rewards.config import RewardConfig
from reprompt.serving.http import free_port

REPO = Path(__file__).resolve().parents[1]
SIDE = 64
PROMPTS = [
    "a photo of a red car",
    "a photo of two cups",
    "a photo of a bus left of a bench",
    "a photo of three apples",
    "a photo of a blue bench",
    "a photo of a cat",
]
METADATA = [
    {"tag": "colors", "include": [{"class": "car", "count": 1, "color": "red"}]},
    {"tag": "counting", "include": [{"class": "cup", "count": 2}], "exclude": [{"class": "cup", "count": 3}]},
    {
        "tag": "position",
        "include": [{"class": "bench", "count": 1}, {"class": "bus", "count": 1, "position": ["left of", 0]}],
    },
    {
        "tag": "counting",
        "include": [{"class": "apple", "count": 3}],
        "exclude": [{"class": "apple", "count": 4}],
    },
    {"tag": "colors", "include": [{"class": "bench", "count": 1, "color": "blue"}]},
    {"tag": "single_object", "include": [{"class": "cat", "count": 1}]},
]


def start_server(side: int = SIDE) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "reprompt.cli.main", "serve", "--policy", "none", "--backbone", "sketch"]
    proc = subprocess.Popen(
        [*cmd, "--port", str(port), "--width", str(side), "--height", str(side)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return proc, f"http://127.0.0.1:{port}"


def wait_up(procs: list[tuple[subprocess.Popen, str]]) -> None:
    deadline = time.monotonic() + 120
    for proc, url in procs:
        while True:
            try:
                if httpx.get(url + "/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, f"{url} did not start"
            time.sleep(0.2)


@pytest.fixture
def farm() -> Iterator[list[tuple[subprocess.Popen, str]]]:
    procs = [start_server(), start_server()]
    try:
        wait_up(procs)
        yield procs
    finally:
        for proc, _ in procs:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=30)


def reward_config(backbone: str, detector: str = "auto") -> RewardConfig:
    return RewardConfig.from_dict(
        {
            "backbone": backbone,
            "backbone_options": {"width": SIDE, "height": SIDE},
            "components": ["geneval", "format", "length"],
            "weights": {"geneval": 1.0, "format": 0.5, "length": 0.5},
            "options": {"geneval": {"mode": "partial", "detector": detector}},
            "images_per_completion": 2,
            "paired_baseline": True,
            "normalization": "none",
            "seed": 7,
        }
    )


def completions(variant: int) -> list[str]:
    words = ["clearly", "vividly", "sharply"][variant % 3]
    return [f"<think>keep it</think><prompt>{p}, {words} drawn</prompt>" for p in PROMPTS]


def scored(reward: CompositeReward, variant: int) -> dict[str, Any]:
    out = reward.score(PROMPTS, completions(variant), metadata=[json.dumps(m) for m in METADATA])
    return {"total": out.total, "raw": out.raw_total, "components": out.components}


def test_the_farm_renders_what_the_sketch_renders_in_process(farm):
    remote = pickle.loads(pickle.dumps(RemoteBackbone([url for _, url in farm])))  # trainers pickle rewards
    local = load_backbone("sketch", width=SIDE, height=SIDE)
    seeds = [0, 1, 2, 3, 10**12, 2**40 + 5]
    got, want = remote.render(PROMPTS, seeds), local.render(PROMPTS, seeds)
    assert [im.tobytes() for im in got.images] == [im.tobytes() for im in want.images]
    assert [im.mode for im in got.images] == [im.mode for im in want.images]
    assert got.scenes is not None and want.scenes is not None
    assert [objects_to_json(s) for s in got.scenes] == [objects_to_json(s) for s in want.scenes]
    assert remote.name == "remote:sketch" and (remote.width, remote.height) == (SIDE, SIDE)
    assert remote.settings()["remote"] == "sketch"
    assert remote.count_tokens(PROMPTS[2]) == local.count_tokens(PROMPTS[2])


def test_a_command_line_backbone_choice_renders_through_the_farm(farm):
    """``--backbone remote:...`` with the other backbone flags at their defaults (generate, serve, ui, eval)."""
    from reprompt.backbones.base import BackboneOptions
    from reprompt.model_spec import BackboneChoice
    from reprompt.pipeline import RePromptPipeline
    from reprompt.policy import load_policy

    remote = BackboneChoice("remote:" + ",".join(url for _, url in farm), BackboneOptions()).load()
    local = BackboneChoice("sketch", BackboneOptions(width=SIDE, height=SIDE)).load()
    got, want = (
        RePromptPipeline(load_policy("none"), b)(PROMPTS[1], seed=3, num_images=3, compare=False)
        for b in (remote, local)
    )
    assert [im.tobytes() for im in got.rewritten_images] == [im.tobytes() for im in want.rewritten_images]
    with pytest.raises(RepromptError, match="belong to the servers"):
        BackboneChoice("remote:" + farm[0][1], BackboneOptions(device="cuda")).load()
    with pytest.raises(RepromptError, match="must start with http"):
        BackboneChoice("remote:localhost:8000")


def test_rewards_are_bit_identical_and_stay_so_when_a_server_dies_mid_run(farm):
    local = CompositeReward.from_config(reward_config("sketch"))
    remote = CompositeReward.from_config(reward_config("remote:" + ",".join(url for _, url in farm)))
    assert scored(remote, 0) == scored(local, 0)
    # kill the first server once a few images of the next batch have come back: its requests go elsewhere
    client = remote.backbone.client  # type: ignore[attr-defined]
    request, calls = client.request, []

    def request_then_kill(*a: Any, **kw: Any) -> Any:
        calls.append(1)
        if len(calls) == 3:
            farm[0][0].kill()
            farm[0][0].wait(timeout=30)
        return request(*a, **kw)

    client.request = request_then_kill
    assert scored(remote, 1) == scored(local, 1)
    assert farm[0][0].poll() is not None and len(calls) > 3
    assert scored(remote, 2) == scored(local, 2)  # the dead server stays skipped


def test_reprompt_score_renders_through_the_farm(farm):
    urls = ",".join(url for _, url in farm)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    meta = json.dumps(METADATA[0])

    def score(backbone: str) -> dict[str, Any]:
        cmd = [sys.executable, "-m", "reprompt.cli.main", "score", "--prompt", PROMPTS[0]]
        cmd += ["--completion", completions(0)[0], "--rewards", "geneval,format,length"]
        cmd += ["--metadata", meta, "--backbone", backbone, "--width", str(SIDE), "--height", str(SIDE)]
        out = subprocess.run([*cmd, "--json"], env=env, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        result = json.loads(out.stdout)
        result.pop("metrics")  # timings
        return result

    assert score("remote:" + urls) == score("sketch")


def test_the_reward_service_renders_through_the_farm(farm, monkeypatch):
    from reprompt.rewards import build_rewards
    from reprompt.rewards.config import ServiceConfig
    from reprompt.serving.http import BackgroundServer
    from reprompt.serving.reward_client import RewardClient
    from reprompt.serving.reward_service import create_app

    config = reward_config("remote:" + ",".join(url for _, url in farm)).to_dict()
    pipeline = build_rewards(config)
    monkeypatch.setenv("REPROMPT_REWARD_TOKEN", "t0ken")
    with BackgroundServer(create_app(pipeline, ServiceConfig(), token="t0ken")) as service:
        metadata = [json.dumps(m) for m in METADATA]
        remote = RewardClient(service.url).score(PROMPTS, completions(0), metadata, round=3)
    local = CompositeReward.from_config(reward_config("sketch"))
    want = local.score(PROMPTS, completions(0), metadata, round=3)
    assert (remote.total, remote.components) == (want.total, want.components)


# ------------------------------------------------------------------------------ servers that cannot
class FakeImages(BaseHTTPRequestHandler):
    """An image server without reprompt's echo: ``mode`` says what it does with ``seed``."""

    mode = "ignore"
    health: Any = None
    side: int | None = None  # None: renders the size asked for (else 8x8); a number: always that square
    echo = False  # sends the prompt back as revised_prompt, as sent (SGLang-Diffusion does)

    def log_message(self, *a: Any) -> None:
        pass

    def _send(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._send(200, self.health)

    def do_POST(self) -> None:
        import numpy as np
        from PIL import Image

        req = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.mode == "refuse":
            self._send(422, {"error": {"message": "unknown field: seed", "param": "seed"}})
            return
        seed = {"ignore": 0, "random": int(time.time_ns() % 1000), "exact": req["seed"]}[self.mode]
        width, height = map(int, req.get("size", "8x8").split("x"))
        if self.side is not None:
            width = height = self.side
        pixels = np.random.default_rng(seed).integers(0, 255, (height, width, 3), dtype=np.uint8)
        buf = io.BytesIO()
        Image.fromarray(pixels).save(buf, format="PNG")
        image = {"b64_json": base64.b64encode(buf.getvalue()).decode()}
        if self.echo:
            image["revised_prompt"] = req["prompt"]
        self._send(200, {"created": 0, "data": [image]})


def fake_server(mode: str, health: Any = None, **behaviour: Any) -> tuple[ThreadingHTTPServer, str]:
    handler = type("Handler", (FakeImages,), {"mode": mode, "health": health, **behaviour})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("ignore", "ignores seed"),
        ("random", "does not render a seed reproducibly"),
        ("refuse", "refused the seed"),
    ],
)
def test_a_server_that_cannot_honour_a_seed_is_refused_by_name(mode, message):
    server, url = fake_server(mode)
    try:
        with pytest.raises(RepromptError, match=message) as e:
            RemoteBackbone([url], width=SIDE, height=SIDE).render(["a cat"], [5])
        assert url in str(e.value)
    finally:
        server.shutdown()


def test_pixels_only_servers_render_but_the_oracle_says_it_needs_scenes():
    server, url = fake_server("exact")
    try:
        out = RemoteBackbone([url], width=SIDE, height=SIDE).render(["a cat", "a dog"], [5, 6])
        assert out.scenes is None and out.images[0].tobytes() != out.images[1].tobytes()
        # detector auto would look at the pixels (mask2former + CLIP, as for FLUX in-process); the oracle
        # says it has no scene to read rather than scoring without one
        reward = CompositeReward.from_config(reward_config("remote:" + url, detector="oracle"))
        with pytest.raises(RepromptError, match="oracle detector needs a simulator"):
            scored(reward, 0)
        with pytest.raises(RepromptError, match="render servers do not say what size"):
            _ = RemoteBackbone([url]).width
    finally:
        server.shutdown()


def test_a_reply_of_another_size_than_asked_is_refused():
    """A server that rounds or ignores ``size`` (here: always 48x48) once had its images scored and recorded as
    the size asked for; the farm now names the size it got."""
    server, url = fake_server("exact", side=48)
    try:
        farm = RemoteBackbone([url], width=SIDE, height=SIDE)
        with pytest.raises(RepromptError, match=f"rendered 48x48 for size {SIDE}x{SIDE}"):
            farm.render(["a cat"], [5])
        assert RemoteBackbone([url], width=48, height=48).render(["a cat"], [5]).images[0].size == (48, 48)
    finally:
        server.shutdown()


def test_a_server_that_echoes_the_prompt_as_sent_is_not_taken_for_a_rewriter():
    """SGLang-Diffusion sends the prompt back as ``revised_prompt`` exactly as it was sent; the farm compared it
    with the stripped prompt and refused a prompt with surrounding spaces as 'rewritten'."""
    server, url = fake_server("exact", echo=True)
    try:
        out = RemoteBackbone([url], width=SIDE, height=SIDE).render([" a cat \n", "a dog"], [5, 6])
        assert [im.size for im in out.images] == [(SIDE, SIDE)] * 2
    finally:
        server.shutdown()


def test_servers_of_one_farm_must_serve_the_same_settings():
    a, url_a = fake_server("exact", {"backbone": "sketch", "render": {"width": 64, "height": 64}})
    b, url_b = fake_server("exact", {"backbone": "sketch", "render": {"width": 32, "height": 32}})
    try:
        with pytest.raises(RepromptError, match="same model with the same settings"):
            RemoteBackbone([url_a, url_b]).render(["a cat"], [1])
        with pytest.raises(RepromptError, match="start them with"):
            load_backbone(f"remote:{url_a}", device="cuda")
        with pytest.raises(RepromptError, match="apply their own cache"):
            RemoteBackbone([url_a]).render(["a cat"], [1], settings=_settings(cache="first-block:0.12"))
    finally:
        a.shutdown()
        b.shutdown()


def _settings(**kw: Any) -> Any:
    from reprompt.backbones.base import RenderSettings

    return RenderSettings(**kw)


def test_the_farm_takes_the_failover_clients_timeout_and_retries_unless_given():
    """The farm once restated FailoverClient's defaults (600 s, 6 retries) in its own signature: two homes that
    could drift. Now it passes on only what it is given."""
    import inspect

    from reprompt.utils.failover import FailoverClient

    own = inspect.signature(FailoverClient).parameters
    farm = RemoteBackbone(["http://127.0.0.1:9"])  # nothing is asked of a server until a render
    assert (farm.client.timeout, farm.client.retries) == (own["timeout"].default, own["retries"].default)
    farm = RemoteBackbone(["http://127.0.0.1:9"], timeout=5.0, retries=1)
    assert (farm.client.timeout, farm.client.retries) == (5.0, 1)
