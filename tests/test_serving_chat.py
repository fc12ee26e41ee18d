"""The rewriter behind ``/v1/chat/completions``, used through the official ``openai`` SDK: replies,
streaming, errors the SDK can show, the queue limit, and micro-batching (same greedy text as alone)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import openai
import pytest

from reprompt.backbones import load_backbone
from reprompt.policy import load_policy
from reprompt.policy.base import GenerationOptions
from reprompt.serving.config import ServeConfig
from reprompt.serving.http import BackgroundServer
from reprompt.serving.image_service import create_app

PROMPTS = ["a photo of a cat", "two red dogs", "a bus left of a tree", "three cups", "a blue car"]


@pytest.fixture(scope="module")
def policy(tiny_model):
    return load_policy(str(tiny_model("tiny-qwen2")))


@pytest.fixture(scope="module")
def backbone():
    return load_backbone("sketch", width=32, height=32)


@pytest.fixture(scope="module")
def server(policy, backbone):
    app = create_app(
        policy, backbone, options=GenerationOptions(max_new_tokens=12, batch_size=8), config=ServeConfig()
    )
    with BackgroundServer(app) as srv:
        srv.app = app
        yield srv


def sdk(server, **kw) -> openai.OpenAI:
    """The official client, parsing every reply strictly with the SDK's types."""
    return openai.OpenAI(
        base_url=server.url + "/v1", api_key="unused", max_retries=0, _strict_response_validation=True, **kw
    )


def test_models_and_a_chat_completion(server, policy, backbone):
    client = sdk(server)
    assert [m.id for m in client.models.list()] == ["tiny-qwen2"]
    reply = client.chat.completions.create(
        model="tiny-qwen2",
        messages=[
            {"role": "system", "content": "ignored: the policy keeps its own prompt"},
            {"role": "user", "content": "two red dogs"},
        ],
    )
    direct = policy.rewrite(["two red dogs"], max_new_tokens=12, token_counter=backbone.count_tokens)[0]
    choice = reply.choices[0]
    assert choice.message.content == direct.prompt
    assert choice.message.reasoning_content == direct.reasoning  # vLLM's field for reasoning
    assert choice.finish_reason in ("stop", "length")
    block = reply.model_extra["reprompt"]
    assert block["original"] == "two red dogs"
    assert block["choices"][0]["format_ok"] == direct.format_ok
    assert block["choices"][0]["fallback"] == direct.fallback
    assert block["choices"][0]["prompt_tokens"] == direct.prompt_tokens  # in the backbone's encoder
    assert block["choices"][0]["truncated"] is False
    assert reply.usage.completion_tokens == direct.completion_tokens and reply.usage.prompt_tokens > 0


def test_content_parts_and_sampling_candidates(server):
    reply = sdk(server).chat.completions.create(
        model="tiny-qwen2",
        messages=[{"role": "user", "content": [{"type": "text", "text": "a photo of a cat"}]}],
        n=2,
        temperature=0.9,
        seed=3,
        max_tokens=6,
    )
    assert [c.index for c in reply.choices] == [0, 1]
    assert all(c["completion_tokens"] <= 6 for c in reply.model_extra["reprompt"]["choices"])


def test_streaming_through_the_sdk(server):
    client = sdk(server)
    plain = client.chat.completions.create(
        model="tiny-qwen2", messages=[{"role": "user", "content": "three cups"}]
    )
    stream = client.chat.completions.create(
        model="tiny-qwen2",
        messages=[{"role": "user", "content": "three cups"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    content, reasoning, finish, usage = "", "", None, None
    for chunk in stream:
        usage = chunk.usage or usage
        for choice in chunk.choices:
            content += choice.delta.content or ""
            reasoning += (choice.delta.model_extra or {}).get("reasoning_content") or ""
            finish = choice.finish_reason or finish
    assert content == plain.choices[0].message.content  # before: `stream: true` yielded nothing
    assert reasoning == plain.choices[0].message.reasoning_content
    assert (
        finish == plain.choices[0].finish_reason and usage.completion_tokens == plain.usage.completion_tokens
    )


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"model": "gpt-4o"}, openai.NotFoundError, "is not served here; GET /v1/models lists 'tiny-qwen2'"),
        ({"messages": []}, openai.UnprocessableEntityError, "messages: List should have at least 1 item"),
        ({"messages": [{"role": "system", "content": "x"}]}, openai.BadRequestError, "no user message"),
        ({"messages": [{"role": "user", "content": "  "}]}, openai.BadRequestError, "has no text"),
        ({"n": 2}, openai.BadRequestError, "needs sampling: set temperature > 0"),
        ({"temperature": 5.0}, openai.UnprocessableEntityError, "temperature: Input should be less than"),
    ],
)
def test_errors_the_sdk_shows_in_full(server, kwargs, error, message):
    request = {"model": "tiny-qwen2", "messages": [{"role": "user", "content": "a cat"}], **kwargs}
    with pytest.raises(error) as info:
        sdk(server).chat.completions.create(**request)
    assert message in str(info.value)  # before: FastAPI's 422 shape, shown as just "Error code: 422"


def test_auth_through_the_sdk(policy, backbone, monkeypatch):
    monkeypatch.setenv("CHAT_TOKEN", "tok-9")
    app = create_app(policy, backbone, token_env="CHAT_TOKEN", options=GenerationOptions(max_new_tokens=4))
    with BackgroundServer(app) as srv:
        with pytest.raises(openai.AuthenticationError, match="missing or wrong bearer token"):
            openai.OpenAI(base_url=srv.url + "/v1", api_key="wrong", max_retries=0).models.list()
        ok = openai.OpenAI(base_url=srv.url + "/v1", api_key="tok-9", max_retries=0)
        assert ok.chat.completions.create(model="tiny-qwen2", messages=[{"role": "user", "content": "a cat"}])
        r = httpx.get(srv.url + "/v1/models", headers={"Authorization": "bearer tok-9"})
        assert r.status_code == 200  # the scheme is case-insensitive


def test_images_through_the_sdk(server):
    client = sdk(server)
    out = client.images.generate(
        model="tiny-qwen2", prompt="a cat", n=2, response_format="b64_json", extra_body={"seed": 4}
    )
    assert len(out.data) == 2 and out.data[0].b64_json and out.data[0].revised_prompt
    assert out.model_extra["reprompt"]["seeds"] == [4, 5]
    with pytest.raises(openai.BadRequestError, match="stream: true is not supported for images"):
        client.images.generate(model="tiny-qwen2", prompt="a cat", extra_body={"stream": True})


def _hold(worker) -> threading.Event:
    """Occupy the model worker until the returned event is set (requests then queue up behind it)."""
    release, started = threading.Event(), threading.Event()
    worker.submit_call(lambda: (started.set(), release.wait(30)))
    assert started.wait(10)
    return release


def _wait_until(condition, timeout=20.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


def test_concurrent_chats_are_micro_batched_with_the_same_greedy_text(server):
    client = sdk(server)

    def ask(prompt: str) -> str:
        reply = client.chat.completions.create(
            model="tiny-qwen2", messages=[{"role": "user", "content": prompt}]
        )
        return reply.choices[0].message.content

    alone = [ask(p) for p in PROMPTS]
    worker = server.app.state.worker
    release = _hold(worker)
    with ThreadPoolExecutor(len(PROMPTS)) as pool:
        futures = [pool.submit(ask, p) for p in PROMPTS]
        _wait_until(lambda: worker.waiting == len(PROMPTS))
        batches_before = worker.stats.batches
        release.set()
        together = [f.result() for f in futures]
    assert together == alone
    assert worker.stats.batches == batches_before + 1 and worker.stats.largest_batch == len(PROMPTS)


def test_a_full_queue_is_429_and_a_gone_client_is_skipped(policy, backbone):
    app = create_app(
        policy,
        backbone,
        options=GenerationOptions(max_new_tokens=4),
        config=ServeConfig(max_queue=1, disconnect_poll_s=0.05),
    )
    worker = app.state.worker
    with BackgroundServer(app) as srv:
        release = _hold(worker)
        body = {"model": "tiny-qwen2", "messages": [{"role": "user", "content": "a cat"}]}

        def gives_up():
            with pytest.raises(httpx.ReadTimeout):
                # long enough that the SDK's request below meets it still waiting, even on a loaded machine
                httpx.post(srv.url + "/v1/chat/completions", json=body, timeout=httpx.Timeout(20, read=3.0))

        waiting = threading.Thread(target=gives_up)
        waiting.start()
        _wait_until(lambda: worker.waiting == 1)
        with pytest.raises(openai.RateLimitError, match="the server is busy") as info:
            sdk(srv).chat.completions.create(**body)
        assert info.value.response.headers["Retry-After"] == "1"
        waiting.join()
        _wait_until(lambda: worker.stats.skipped_cancelled == 1)  # its slot is free again at once
        assert worker.waiting == 0
        prompts_before = worker.stats.prompts
        release.set()
        assert sdk(srv).chat.completions.create(**body).choices[0].message.content
        assert worker.stats.prompts == prompts_before + 1  # the abandoned request never reached the model
