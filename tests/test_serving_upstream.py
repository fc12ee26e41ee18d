"""``reprompt serve --policy openai`` in front of a misbehaving upstream: every prompt is accounted for,
and upstream error bodies (which may echo the API key) stay out of replies and logs."""

from __future__ import annotations

import logging

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient

from reprompt.backbones import load_backbone
from reprompt.errors import RemoteServiceError
from reprompt.policy import load_policy
from reprompt.serving.http import BackgroundServer
from reprompt.serving.image_service import create_app

KEY = "sk-upstream-secret-0123456789"


def upstream(mode: str) -> FastAPI:
    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> JSONResponse:
        if mode == "no-choices":
            return JSONResponse({"id": "x", "object": "chat.completion", "choices": []})
        if mode == "echo-headers":  # a misconfigured proxy that reflects the request in its error
            return JSONResponse({"error": {"message": f"bad request: {dict(request.headers)}"}}, 400)
        return JSONResponse({"choices": "not a list"})

    return app


@pytest.fixture
def served(monkeypatch):
    monkeypatch.setenv("UPSTREAM_KEY", KEY)

    def make(mode: str) -> tuple[TestClient, BackgroundServer]:
        server = BackgroundServer(upstream(mode)).start()
        policy = load_policy(
            "openai", api_model="m", api_base=server.url + "/v1", api_key_env="UPSTREAM_KEY", retries=0
        )
        client = TestClient(create_app(policy, load_backbone("sketch", width=32, height=32)))
        made.append(server)
        return client, server

    made: list[BackgroundServer] = []
    yield make
    for server in made:
        server.stop()


@pytest.mark.parametrize("mode", ["no-choices", "not-a-completion"])
def test_an_upstream_without_choices_is_a_502_on_every_endpoint(served, mode):
    client, _ = served(mode)
    r = client.post("/v1/images/generations", json={"prompt": "a cat"})
    assert r.status_code == 502, r.text  # before: 500 (IndexError)
    r = client.post("/v1/rewrite", json={"prompts": ["a cat", "a dog"]})
    assert r.status_code == 502, r.text  # before: 200 with "data": [] (two prompts in, none out)
    assert r.json()["error"]["type"] == "upstream_error"


def test_upstream_error_bodies_never_reach_the_client_or_the_log(served, caplog):
    client, _ = served("echo-headers")
    with caplog.at_level(logging.DEBUG):
        r = client.post("/v1/rewrite", json={"prompts": ["a cat"]})
    assert r.status_code == 502
    assert KEY not in r.text and "bad request" not in r.text  # a generic message only
    assert "HTTP 400" in caplog.text and "bad request" in caplog.text  # the details are logged ...
    assert KEY not in caplog.text and "Bearer ***" in caplog.text  # ... with the key masked


def test_the_policy_error_itself_masks_the_key(served):
    _, server = served("echo-headers")
    policy = load_policy("openai", api_model="m", api_base=server.url + "/v1", api_key_env="UPSTREAM_KEY")
    with pytest.raises(RemoteServiceError) as info:
        policy.rewrite(["a cat"])
    assert "HTTP 400" in str(info.value) and "Bearer ***" in str(info.value) and KEY not in str(info.value)
