"""The image HTTP service on the sketch backbone and the tiny policy."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from reprompt.backbones import load_backbone
from reprompt.policy import load_policy
from reprompt.policy.base import GenerationOptions
from reprompt.serving.codec import decode_png
from reprompt.serving.image_service import create_app


@pytest.fixture(scope="module")
def parts(tiny_model):
    return load_policy(str(tiny_model("tiny-qwen2"))), load_backbone("sketch", width=64, height=64)


@pytest.fixture()
def client(parts, monkeypatch):
    monkeypatch.setenv("REPROMPT_TEST_TOKEN", "s3cret")
    app = create_app(*parts, token_env="REPROMPT_TEST_TOKEN", options=GenerationOptions(max_new_tokens=4))
    return TestClient(app)


AUTH = {"Authorization": "Bearer s3cret"}


def test_health_is_open(client):
    assert client.get("/health").json()["backbone"] == "sketch"


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
    req = {"prompt": "a cat", "seed": 1, "rewrite": False}
    a = client.post("/v1/images/generations", json=req, headers=AUTH).json()
    b = client.post("/v1/images/generations", json=req, headers=AUTH).json()
    assert a["data"][0]["b64_json"] == b["data"][0]["b64_json"]
    assert a["data"][0]["revised_prompt"] == "a cat" and a["reprompt"]["reasoning"] == ""


def test_rewrite_endpoint(client):
    r = client.post("/v1/rewrite", json={"prompts": ["a cat", "a dog"]}, headers=AUTH)
    assert [d["original"] for d in r.json()["data"]] == ["a cat", "a dog"]


@pytest.mark.parametrize(
    ("payload", "status"),
    [
        ({"prompt": ""}, 422),
        ({"prompt": "x" * 5000}, 422),
        ({"prompt": "a cat", "n": 99}, 422),
        ({"prompt": "a cat", "response_format": "url"}, 422),
        ({"prompt": "a cat", "size": "1024x1024"}, 400),
        ({"prompt": "   "}, 400),
    ],
)
def test_bad_requests_get_clear_4xx(client, payload, status):
    r = client.post("/v1/images/generations", json=payload, headers=AUTH)
    assert r.status_code == status, r.text


def test_auth_required(client):
    assert client.post("/v1/rewrite", json={"prompts": ["a"]}).status_code == 401
    bad = {"Authorization": "Bearer nope"}
    assert client.post("/v1/images/generations", json={"prompt": "a"}, headers=bad).status_code == 401
