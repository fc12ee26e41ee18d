"""Every field of OpenAI's chat request is applied, accepted because it asks for nothing, or refused with a
400 naming it (before: ``stop``, ``response_format``, ``tools``, ``logprobs``... were ignored silently and a
client asking for JSON or tool calls got plain text); ``GET /v1/models/{id}``; the error responses the
OpenAPI schema documents. Through the official ``openai`` SDK, parsed strictly with its types."""

from __future__ import annotations

import httpx
import openai
import pytest

from reprompt.backbones import load_backbone
from reprompt.policy import load_policy
from reprompt.policy.base import GenerationOptions
from reprompt.serving.http import BackgroundServer
from reprompt.serving.image_service import ServeConfig, create_app

MESSAGES = [{"role": "user", "content": "two red dogs"}]


@pytest.fixture(scope="module")
def server(tiny_model):
    policy = load_policy(str(tiny_model("tiny-qwen2")))
    app = create_app(
        policy,
        load_backbone("sketch", width=32, height=32),
        options=GenerationOptions(max_new_tokens=8),
        config=ServeConfig(served_model_name="org/tiny"),
    )
    with BackgroundServer(app) as srv:
        yield srv


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(
        base_url=server.url + "/v1", api_key="unused", max_retries=0, _strict_response_validation=True
    )


@pytest.fixture(scope="module")
def plain(client):
    return client.chat.completions.create(model="org/tiny", messages=MESSAGES)


TOOL = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}


@pytest.mark.parametrize(
    ("param", "kwargs"),
    [
        ("stop", {"stop": "\n"}),
        ("stop", {"stop": ["</prompt>", "."]}),
        ("response_format", {"response_format": {"type": "json_object"}}),
        ("response_format", {"response_format": {"type": "json_schema", "json_schema": {"name": "x"}}}),
        ("tools", {"tools": [TOOL]}),
        ("tool_choice", {"tool_choice": "required"}),
        ("tool_choice", {"tool_choice": {"type": "function", "function": {"name": "f"}}}),
        ("functions", {"functions": [{"name": "f"}]}),
        ("function_call", {"function_call": {"name": "f"}}),
        ("logprobs", {"logprobs": True}),
        ("top_logprobs", {"top_logprobs": 3}),
        ("frequency_penalty", {"frequency_penalty": 0.5}),
        ("presence_penalty", {"presence_penalty": -1.0}),
        ("logit_bias", {"logit_bias": {"50256": -100}}),
        ("audio", {"audio": {"format": "wav", "voice": "alloy"}}),
        ("modalities", {"modalities": ["text", "audio"]}),
        ("store", {"store": True}),
        ("prediction", {"prediction": {"type": "content", "content": "a dog"}}),
        ("reasoning_effort", {"reasoning_effort": "low"}),
        ("verbosity", {"verbosity": "high"}),
        ("web_search_options", {"web_search_options": {}}),
        (
            "stream_options.include_obfuscation",
            {"stream": True, "stream_options": {"include_obfuscation": True}},
        ),
        ("top_k", {"extra_body": {"top_k": 5}}),  # a vLLM extension this server does not have
        ("stream_options.colour", {"stream": True, "stream_options": {"colour": "red"}}),
    ],
)
def test_fields_the_server_will_not_honour_are_a_400_naming_them(client, param, kwargs):
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="org/tiny", messages=MESSAGES, **kwargs)
    body = info.value.body
    assert body["param"] == param and body["code"] == "unsupported_parameter"  # before: 200, field ignored
    assert param.split(".")[-1] in body["message"]
    assert info.value.response.json()["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"stop": []},
        {"response_format": {"type": "text"}},
        {"tools": [], "tool_choice": "none", "parallel_tool_calls": False},
        {"tool_choice": "auto", "function_call": "none"},
        {"logprobs": False, "top_logprobs": 0},
        {"frequency_penalty": 0, "presence_penalty": 0, "logit_bias": {}},
        {"modalities": ["text"], "store": False},
        {"user": "u-1", "safety_identifier": "s-1", "metadata": {"k": "v"}, "prompt_cache_key": "c"},
        {"service_tier": "auto", "prompt_cache_retention": "in_memory"},
        {"extra_body": {"reasoning_effort": None, "top_k": None}},  # explicit nulls ask for nothing
    ],
)
def test_values_that_ask_for_nothing_are_served_as_a_plain_request(client, plain, kwargs):
    reply = client.chat.completions.create(model="org/tiny", messages=MESSAGES, **kwargs)
    assert reply.choices[0].message.content == plain.choices[0].message.content


def test_reply_carries_the_reasoning_under_both_names(plain):
    extra = plain.choices[0].message.model_extra
    assert extra["reasoning"] == extra["reasoning_content"]  # vLLM renamed the second to the first


def test_a_stream_carries_the_reasoning_under_both_names():
    import json

    from openai.types.chat import ChatCompletionChunk

    from reprompt.serving.chat import stream_events

    message = {
        "role": "assistant",
        "content": "A red cat.",
        "reasoning": "one cat",
        "reasoning_content": "one cat",
    }
    reply = {
        "id": "chatcmpl-1",
        "created": 0,
        "model": "org/tiny",
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        "reprompt": {},
        "usage": {},
    }
    events = [e.removeprefix("data: ").strip() for e in stream_events(reply, include_usage=False)]
    assert events[-1] == "[DONE]"
    deltas = [ChatCompletionChunk.model_validate(json.loads(e)) for e in events[:-1]]
    extras = [c.choices[0].delta.model_extra or {} for c in deltas if c.choices]
    # before: only reasoning_content, which clients that follow vLLM's rename no longer read
    assert [x["reasoning"] for x in extras if "reasoning" in x] == ["one cat"]
    assert [x["reasoning_content"] for x in extras if "reasoning_content" in x] == ["one cat"]


def test_retrieve_a_model(client):
    model = client.models.retrieve("org/tiny")  # a served name with a slash, as hub ids have
    assert (model.id, model.object, model.owned_by) == ("org/tiny", "model", "reprompt")
    with pytest.raises(openai.NotFoundError, match="is not served here") as info:
        client.models.retrieve("gpt-4o")  # before: 404 from the router, no OpenAI error body
    assert info.value.body["param"] == "model" and info.value.body["code"] == "model_not_found"


def test_unknown_model_in_a_chat_is_a_404_naming_the_field(client):
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert info.value.body["param"] == "model"


def test_openapi_documents_the_errors_each_endpoint_returns(server):
    spec = httpx.get(server.url + "/openapi.json").json()
    documented = {
        (path, method): set(op["responses"])
        for path, ops in spec["paths"].items()
        for method, op in ops.items()
    }
    assert documented[("/v1/chat/completions", "post")] >= {
        "200",
        "400",
        "401",
        "404",
        "413",
        "422",
        "429",
        "500",
        "502",
    }  # before: only 200 and 422
    assert documented[("/v1/models", "get")] >= {"200", "401"}
    assert documented[("/v1/models/{model}", "get")] >= {"200", "401", "404"}
    every = {"200", "400", "401", "413", "422", "429", "500", "502"}
    assert documented[("/v1/images/generations", "post")] >= every | {"404"}
    assert documented[("/v1/rewrite", "post")] >= every
    assert documented[("/v1/images/files/{name}", "get")] >= {"200", "404"}
    error = spec["paths"]["/v1/chat/completions"]["post"]["responses"]["400"]["content"]
    ref = error["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    assert set(spec["components"]["schemas"][ref]["properties"]) == {"error"}
    assert "Retry-After" in spec["paths"]["/v1/chat/completions"]["post"]["responses"]["429"]["headers"]
