"""The VLM judge: score parsing, the OpenAI-compatible backend against a real local FastAPI server that
answers well, badly, slowly or with errors, and the local transformers backend on the tiny Qwen2.5-VL."""

from __future__ import annotations

import asyncio
import base64
import io
import logging
import pickle
import threading

import numpy as np
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from PIL import Image

from reprompt.errors import ConfigError
from reprompt.rewards import build_component
from reprompt.rewards.vlm_judge.local import LocalJudge
from reprompt.rewards.vlm_judge.options import JUDGE_PROMPT
from reprompt.rewards.vlm_judge.parsing import parse_score, to_reward
from reprompt.serving.http import BackgroundServer

# -------------------------------------------------------------------------------------------- parsing


# Real reply styles of judge models: the requested line, markdown, reasoning then a score, sub-scores,
# tags, JSON, bare numbers. A marked final score wins; disagreeing unmarked scores are refused (None).
JUDGE_REPLIES = [
    # the shape asked for, and its common decorations
    ("Final score: 7", 7.0),
    ("final score:7", 7.0),
    ("**Final Score:** 8/10", 8.0),
    ("Final score: 7.5", 7.5),
    ("Score: 7", 7.0),
    ("score:7", 7.0),
    ("**Score:** 8/10", 8.0),
    ("Score: **6**", 6.0),
    ("Rating: 4 out of 10", 4.0),
    ("score = 7.5", 7.5),
    ("Score:\n9", 9.0),
    # a marked final score after reasoning or sub-scores wins
    ("The image shows two cats.\nScore: 3", 3.0),
    ("Counting: 3/10\nColors: 9/10\nOverall: 6/10", 6.0),
    ("Counting score: 3\nColor score: 8\nFinal score: 5", 5.0),
    ("Score: 7 ... (score 3 for counting)", 7.0),  # issue 9: read 3 before
    ("Score: 7\nThe counting is off (score 3 for counting) but colors are right.", 7.0),
    ("- Objects: all present\n- Score: 8", 8.0),
    ("Overall rating is 4.", 4.0),
    ("Total score = 9/10", 9.0),
    ("<score>7</score>", 7.0),  # issue 9: read as missing before
    ("Reasoning: the dog is left of the cup.\n<score>8</score>", 8.0),
    ("<rating>6/10</rating>", 6.0),
    ('{"score": 9, "reason": "all objects present"}', 9.0),
    ('```json\n{"Score": "4"}\n```', 4.0),
    ('{"counting": 3, "final_score": 6}', 6.0),
    ('{"score": "7/10"}', 7.0),
    # bare numbers and loose mentions, when they are the only score
    ("10", 10.0),
    ("  0. ", 0.0),
    ("**8**", 8.0),
    ("6/10", 6.0),
    ("7 out of 10", 7.0),
    ("I would rate it 8 out of 10.", 8.0),
    ("I'd give it a 7.", 7.0),
    ("It gets a score of 5 because the bowl is missing.", 5.0),
    # several unmarked scores that disagree: refuse rather than guess
    ("Score: 2. After a second look... Score: 6", None),
    ("Counting: 3/10\nColors: 9/10", None),
    ("score 3 for counting, score 8 for color", None),
    # agreeing repeats are fine
    ("Score: 7\n\nSo the score is 7/10.", 7.0),
    # out of range, negative, no score
    ("Score: 11", None),
    ("Final score: 70/100", None),
    ("Score: -3", None),
    ("The image has 3 cats and 2 dogs.", None),
    ("I cannot rate this image.", None),
    ('{"reason": "no score here"}', None),
    ("", None),
    ("   ", None),
    (None, None),
]


@pytest.mark.parametrize(("text", "expected"), JUDGE_REPLIES)
def test_parse_score(text, expected):
    assert parse_score(text) == expected


def test_the_judge_prompt_asks_for_the_marked_final_score_it_parses():
    assert '"Final score: N"' in JUDGE_PROMPT and "no other scores" in JUDGE_PROMPT
    assert LocalJudge.PREFILL == "Final score: "
    for n in range(11):  # what the constrained local judge writes after its prefill
        assert parse_score(LocalJudge.PREFILL + str(n)) == n
    assert parse_score("The cup is missing (counting score: 2).\nFinal score: 4") == 4


def test_score_mapping():
    assert [to_reward(s) for s in (0.0, 5.0, 10.0, None)] == [-1.0, 0.0, 1.0, None]


# ---------------------------------------------------------------------------- local OpenAI-compatible server


class JudgeServer:
    """FastAPI app speaking /v1/chat/completions. The ``model`` field picks the behaviour:
    good (score = mean red channel of the image / 25.5), bad (no score), slow (sleeps), flaky (two 503s,
    then good), ratelimit (one 429 with Retry-After, then good), reject (400), parts (content as a list),
    garbage (not JSON)."""

    def __init__(self) -> None:
        self.app = FastAPI()
        self.lock = threading.Lock()
        self.counts: dict[str, int] = {}
        self.in_flight = 0
        self.max_in_flight = 0
        self.auth: list[str | None] = []
        self.payloads: list[dict] = []

        @self.app.post("/v1/chat/completions")
        async def chat(request: Request):
            body = await request.json()
            mode = body["model"]
            with self.lock:
                self.counts[mode] = self.counts.get(mode, 0) + 1
                n = self.counts[mode]
                self.auth.append(request.headers.get("authorization"))
                self.payloads.append(body)
                self.in_flight += 1
                self.max_in_flight = max(self.max_in_flight, self.in_flight)
            try:
                await asyncio.sleep(0.05)  # hold the slot so concurrency is observable
                if mode == "slow":
                    await asyncio.sleep(2.0)
                if mode == "flaky" and n <= 2:
                    return JSONResponse({"error": "overloaded"}, status_code=503)
                if mode == "ratelimit" and n == 1:
                    return JSONResponse(
                        {"error": "slow down"}, status_code=429, headers={"Retry-After": "0.2"}
                    )
                if mode == "reject":
                    return JSONResponse({"error": "bad request"}, status_code=400)
                if mode == "garbage":
                    return JSONResponse("not a completion")
                image = self._image(body)
                score = round(float(np.asarray(image)[..., 0].mean()) / 25.5)
                text = {"bad": "I am not able to judge images.", "parts": None}.get(mode, f"Score: {score}")
                content = [{"type": "text", "text": f"Score: {score}"}] if mode == "parts" else text
                return {"choices": [{"index": 0, "message": {"role": "assistant", "content": content}}]}
            finally:
                with self.lock:
                    self.in_flight -= 1

    @staticmethod
    def _image(body: dict) -> Image.Image:
        parts = body["messages"][-1]["content"]
        url = next(p["image_url"]["url"] for p in parts if p["type"] == "image_url")
        header, data = url.split(",", 1)
        assert header == "data:image/png;base64"
        return Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB")


@pytest.fixture(scope="module")
def judge_server():
    server = JudgeServer()
    with BackgroundServer(server.app) as bg:
        server.base_url = bg.url + "/v1"
        yield server


def red_images(levels):
    return [Image.new("RGB", (32, 32), (int(v), 0, 0)) for v in levels]


def judge(server, model, **options):
    return build_component(
        "vlm_judge",
        {"backend": "openai", "model": model, "base_url": server.base_url, "backoff": 0.05, **options},
    )


def test_openai_judge_scores_images(judge_server, monkeypatch):
    monkeypatch.setenv("JUDGE_TEST_KEY", "sk-test-secret")
    reward = judge(judge_server, "good", api_key_env="JUDGE_TEST_KEY")
    levels = [0, 51, 127.5, 255]
    scores = reward.score_images(["a red square"] * 4, red_images(levels), [None] * 4, [None] * 4)
    assert scores == pytest.approx([to_reward(round(v / 25.5)) for v in levels])
    assert judge_server.auth[-1] == "Bearer sk-test-secret"
    body = judge_server.payloads[-1]
    assert body["max_tokens"] == 32 and body["temperature"] == 0.0
    assert '"a red square"' in body["messages"][0]["content"][0]["text"]
    assert not reward.failures


def test_openai_judge_bounds_concurrency(judge_server):
    judge_server.max_in_flight = 0
    reward = judge(judge_server, "good", concurrency=3)
    scores = reward.score_images(["x"] * 12, red_images([100] * 12), [None] * 12, [None] * 12)
    assert all(s is not None for s in scores)
    assert 1 < judge_server.max_in_flight <= 3


def test_openai_judge_retries_5xx_and_429(judge_server, monkeypatch):
    from reprompt.rewards.vlm_judge import remote

    waits: list[float] = []
    real_delay = remote.backoff_delay

    def delay(*args, **kwargs) -> float:
        waits.append(real_delay(*args, **kwargs))
        return waits[-1]

    monkeypatch.setattr(remote, "backoff_delay", delay)
    for mode in ("flaky", "ratelimit"):
        waits.clear()
        reward = judge(judge_server, mode, concurrency=1, retries=3)
        assert reward.score_images(["x"], red_images([255]), [None], [None]) == [1.0]
        assert not reward.failures
        if mode == "ratelimit":
            assert waits == [0.2]  # the server's Retry-After, not our backoff
    assert judge_server.counts["flaky"] == 3 and judge_server.counts["ratelimit"] == 2


def test_openai_judge_failures_are_missing_counted_and_logged(judge_server, caplog, monkeypatch):
    monkeypatch.setenv("JUDGE_TEST_KEY", "sk-never-log-me")
    cases = {
        "bad": "unparseable reply",
        "reject": "HTTP 400",
        "garbage": "malformed response",
        "slow": "timeout",
        "flaky-never": None,
    }
    for mode, reason in cases.items():
        if reason is None:
            continue
        reward = judge(
            judge_server, mode, api_key_env="JUDGE_TEST_KEY", timeout=0.5, retries=1, parse_retries=1
        )
        with caplog.at_level(logging.WARNING):
            assert reward.score_images(["x", "y"], red_images([200, 10]), [None] * 2, [None] * 2) == [
                None,
                None,
            ]
        assert reward.failures == {reason: 2}, mode
    assert judge_server.counts["bad"] == 4  # each asked twice (one parse retry)
    assert judge_server.counts["reject"] == 2  # a 400 is never retried
    assert "judgements failed and are missing (not 0)" in caplog.text
    assert "sk-never-log-me" not in caplog.text


def test_openai_judge_content_parts_and_connection_errors(judge_server):
    reward = judge(judge_server, "parts")
    assert reward.score_images(["x"], red_images([255]), [None], [None]) == [1.0]
    dead = build_component(
        "vlm_judge",
        {
            "backend": "openai",
            "model": "good",
            "base_url": "http://127.0.0.1:9/v1",
            "retries": 1,
            "backoff": 0.01,
        },
    )
    assert dead.score_images(["x"], red_images([1]), [None], [None]) == [None]
    assert sum(dead.failures.values()) == 1 and "connection error" in next(iter(dead.failures))


def test_openai_judge_inside_a_running_event_loop(judge_server):
    reward = judge(judge_server, "good")

    async def main():
        return reward.score_images(["x"], red_images([255]), [None], [None])

    assert asyncio.run(main()) == [1.0]


def test_judge_options_are_checked():
    with pytest.raises(ConfigError, match="needs options.vlm_judge.model"):
        build_component("vlm_judge", {"backend": "openai"})
    with pytest.raises(ConfigError, match="Did you mean 'local'"):
        build_component("vlm_judge", {"backend": "locl"})
    with pytest.raises(ConfigError, match="{prompt}"):
        build_component("vlm_judge", {"prompt": "rate it"})


# ---------------------------------------------------------------------------------- local transformers


def test_local_judge_on_tiny_qwen2_5_vl(tiny_model, caplog):
    folder = str(tiny_model("tiny-qwen2-vl"))
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 255, (56 + 8 * i, 64, 3), dtype=np.uint8)) for i in range(3)]
    prompts = ["a red cat", "two dogs", "a cup left of a bowl"]

    constrained = build_component("vlm_judge", {"backend": "local", "model": folder, "batch_size": 2})
    scores = constrained.score_images(prompts, images, [None] * 3, [None] * 3)
    # constrained decoding can only write 0..10: a random model still yields a valid score
    assert all(s is not None and -1.0 <= s <= 1.0 and (s + 1) * 5 == round((s + 1) * 5) for s in scores)
    single = [
        constrained.score_images([p], [im], [None], [None])[0] for p, im in zip(prompts, images, strict=True)
    ]
    assert single == scores
    assert not constrained.failures

    free = build_component(
        "vlm_judge", {"backend": "local", "model": folder, "mode": "generate", "max_tokens": 6}
    )
    with caplog.at_level(logging.WARNING):
        got = free.score_images(prompts[:2], images[:2], [None] * 2, [None] * 2)
    # a random model writes no score: missing, counted, logged -- never 0
    assert got == [None, None] and free.failures == {"unparseable reply": 2}
    assert "missing (not 0)" in caplog.text

    clone = pickle.loads(pickle.dumps(constrained))
    assert clone.backend._model is None and clone.__name__ == "vlm_judge"
