"""The image HTTP service on the sketch backbone and the tiny policy: the OpenAI Images shape, and every
bad request answered with a 4xx in OpenAI's error shape (never a 500), limits applied before auth."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from reprompt.backbones import load_backbone
from reprompt.policy import load_policy
from reprompt.policy.base import GenerationOptions
from reprompt.serving.config import ServeConfig
from reprompt.serving.image_service import create_app
from reprompt.utils.images import decode_png


@pytest.fixture(scope="module")
def parts(tiny_model):
    return load_policy(str(tiny_model("tiny-qwen2"))), load_backbone("sketch", width=64, height=64)


@pytest.fixture()
def client(parts, monkeypatch):
    monkeypatch.setenv("REPROMPT_TEST_TOKEN", "s3cret")
    app = create_app(
        *parts,
        token_env="REPROMPT_TEST_TOKEN",
        options=GenerationOptions(max_new_tokens=4),
        config=ServeConfig(max_request_bytes=64 * 1024),
    )
    with TestClient(app) as c:
        yield c


AUTH = {"Authorization": "Bearer s3cret"}


def test_health_is_open_and_shows_no_paths(client, parts):
    assert parts[0].name.startswith("/")  # the tiny policy is loaded from an absolute folder
    body = client.get("/health").json()
    assert body["backbone"] == "sketch" and body["policy"] == "tiny-qwen2"
    assert "/" not in json.dumps(body)


def test_images_generations_openai_shape(client):
    r = client.post(
        "/v1/images/generations", json={"prompt": "two red dogs", "n": 2, "seed": 5}, headers=AUTH
    )
    assert r.status_code == 200
    body = r.json()
    assert len(body["data"]) == 2 and body["reprompt"]["seeds"] == [5, 6]
    img = decode_png(body["data"][0]["b64_json"])
    assert img.size == (64, 64) and body["data"][0]["revised_prompt"]


def test_same_seed_same_image_and_rewrite_off_switch(client):
    req = {"prompt": "a cat", "seed": 1, "rewrite": False, "size": "auto"}
    a = client.post("/v1/images/generations", json=req, headers=AUTH).json()
    b = client.post("/v1/images/generations", json=req, headers=AUTH).json()
    assert a["data"][0]["b64_json"] == b["data"][0]["b64_json"]
    assert a["data"][0]["revised_prompt"] == "a cat" and a["reprompt"]["reasoning"] == ""


def test_rewrite_endpoint(client):
    r = client.post("/v1/rewrite", json={"prompts": ["a cat", "a dog"]}, headers=AUTH)
    assert [d["original"] for d in r.json()["data"]] == ["a cat", "a dog"]


@pytest.mark.parametrize(
    ("payload", "status", "param"),
    [
        ({"prompt": ""}, 422, "prompt"),
        ({"prompt": "x" * 5000}, 422, "prompt"),
        ({"prompt": "a cat", "n": 99}, 422, "n"),
        ({"prompt": "a cat", "response_format": "url"}, 422, "response_format"),
        ({"prompt": "a cat", "seed": -1}, 422, "seed"),
        ({"prompt": "a cat", "seed": 10**30}, 422, "seed"),
        ({"prompt": "a cat", "size": "1024x1024"}, 400, None),
        ({"prompt": "a cat", "stream": True}, 400, None),
        ({"prompt": "   "}, 400, None),
    ],
)
def test_bad_requests_get_clear_4xx_in_openai_shape(client, payload, status, param):
    r = client.post("/v1/images/generations", json=payload, headers=AUTH)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["message"] and error["type"] == "invalid_request_error" and error["param"] == param


# Python's json.dumps writes NaN/Infinity by default; "\ud800" is a lone surrogate escape. Before the fix
# FastAPI's handler echoed these inputs back, failed to serialise them, and answered 500.
NASTY = [
    b'{"prompt": "a cat", "n": NaN}',
    b'{"prompt": "a cat", "seed": Infinity}',
    b'{"prompt": "a cat", "n": -Infinity}',
    b'{"prompt": "\\ud800 a cat"}',
    b'{"prompt": ["\\udfff"]}',
    b'{"prompt": "a cat", "size": "\\ud800"}',
    b"NaN",
]


@pytest.mark.parametrize("body", NASTY)
def test_non_finite_numbers_and_lone_surrogates_are_4xx(client, body):
    r = client.post(
        "/v1/images/generations", content=body, headers={**AUTH, "Content-Type": "application/json"}
    )
    assert r.status_code == 422, r.text
    assert r.json()["error"]["message"]


def test_unknown_fields_are_ignored_even_when_nasty(client):
    body = b'{"prompt": "a cat", "\\ud800": NaN, "user": "\\udfff"}'
    r = client.post(
        "/v1/images/generations", content=body, headers={**AUTH, "Content-Type": "application/json"}
    )
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    "body", [b'{"prompts": ["\\ud800"]}', b'{"prompts": [NaN]}', b'{"prompts": "a", "x": Infinity}']
)
def test_rewrite_endpoint_refuses_the_same(client, body):
    r = client.post("/v1/rewrite", content=body, headers={**AUTH, "Content-Type": "application/json"})
    assert r.status_code == 422, r.text
    assert "surrogate" in r.text or "valid" in r.text


def test_auth_required_and_scheme_is_case_insensitive(client):
    assert client.post("/v1/rewrite", json={"prompts": ["a"]}).status_code == 401
    bad = {"Authorization": "Bearer nope"}
    r = client.post("/v1/images/generations", json={"prompt": "a"}, headers=bad)
    assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"
    assert r.headers["WWW-Authenticate"] == "Bearer"
    for scheme in ("bearer", "BEARER"):
        r = client.post("/v1/rewrite", json={"prompts": ["a"]}, headers={"Authorization": f"{scheme} s3cret"})
        assert r.status_code == 200, scheme


def test_body_limit_applies_before_auth_and_reading(client):
    big = b'{"prompt": "' + b"x" * 100_000 + b'"}'
    r = client.post("/v1/images/generations", content=big, headers={"Content-Type": "application/json"})
    assert r.status_code == 413, r.text  # no token sent: the size is refused first, not the token
    assert "exceeds the limit of 65536 bytes" in r.json()["error"]["message"]

    def chunks():  # no Content-Length: counted as it streams in
        yield b'{"prompt": "'
        for _ in range(100):
            yield b"x" * 1000
        yield b'"}'

    r = client.post("/v1/rewrite", content=chunks(), headers={**AUTH, "Content-Type": "application/json"})
    assert r.status_code == 413, r.text
