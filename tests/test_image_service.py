"""The image HTTP service on the sketch backbone and the tiny policy: the OpenAI Images shape, and every
bad request answered with a 4xx in OpenAI's error shape (never a 500), limits applied before auth."""

from __future__ import annotations

import base64
import json
import time

import pytest
from fastapi.testclient import TestClient

from reprompt.backbones import load_backbone
from reprompt.policy import load_policy
from reprompt.policy.base import GenerationOptions
from reprompt.serving.config import ServeConfig
from reprompt.serving.image_service import create_app
from reprompt.utils.images import decode_png, read_provenance


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
        ({"prompt": "a cat", "response_format": "base64"}, 422, "response_format"),
        ({"prompt": "a cat", "seed": -1}, 422, "seed"),
        ({"prompt": "a cat", "seed": 10**30}, 422, "seed"),
        ({"prompt": "a cat", "size": "500x500"}, 400, "size"),
        ({"prompt": "a cat", "size": "64x9000"}, 400, "size"),
        ({"prompt": "a cat", "size": "big"}, 400, "size"),
        ({"prompt": "a cat", "stream": True}, 400, "stream"),
        ({"prompt": "a cat", "num_inference_steps": 20}, 400, "num_inference_steps"),
        ({"prompt": "a cat", "guidance_scale": 3.5}, 400, "guidance_scale"),
        ({"prompt": "a cat", "negative_prompt": "blur"}, 400, "negative_prompt"),
        ({"prompt": "a cat", "num_inference_steps": 0}, 422, "num_inference_steps"),
        ({"prompt": "a cat", "guidance_scale": -1}, 422, "guidance_scale"),
        ({"prompt": "a cat", "background": "transparent"}, 422, "background"),
        ({"prompt": "a cat", "output_format": "jpeg"}, 422, "output_format"),
        ({"prompt": "   "}, 400, None),
    ],
)
def test_bad_requests_get_clear_4xx_in_openai_shape(client, payload, status, param):
    r = client.post("/v1/images/generations", json=payload, headers=AUTH)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["message"] and error["type"] == "invalid_request_error" and error["param"] == param
    if param and status == 400:
        assert param in error["message"]  # the message names the field to change


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


# ----------------------------------------------------------------------- images: what real clients send


def test_size_is_rendered_per_request(client):
    """Open WebUI sends size 512x512 by default; the backbone renders that size for this request only."""
    for size, expect in (("512x512", (512, 512)), ("128x64", (128, 64)), ("auto", (64, 64))):
        r = client.post("/v1/images/generations", json={"prompt": "a cat", "size": size}, headers=AUTH)
        assert r.status_code == 200, r.text
        assert decode_png(r.json()["data"][0]["b64_json"]).size == expect
        assert r.json()["size"] == "{}x{}".format(*expect)


def test_served_model_only(client):
    r = client.post("/v1/images/generations", json={"prompt": "a cat", "model": "dall-e-2"}, headers=AUTH)
    assert r.status_code == 404 and r.json()["error"]["param"] == "model"
    assert "tiny-qwen2" in r.json()["error"]["message"]
    ok = client.post("/v1/images/generations", json={"prompt": "a cat", "model": "tiny-qwen2"}, headers=AUTH)
    assert ok.status_code == 200, ok.text


def test_fields_without_effect_are_listed_not_hidden(client):
    body = {"prompt": "a cat", "quality": "hd", "style": "vivid", "user": "u1", "output_format": "png"}
    r = client.post("/v1/images/generations", json=body, headers=AUTH)
    assert r.status_code == 200 and r.json()["reprompt"]["ignored"] == ["quality", "style"]


def test_every_png_says_where_it_came_from(client):
    r = client.post(
        "/v1/images/generations", json={"prompt": "two red dogs", "seed": 9, "n": 2}, headers=AUTH
    )
    body = r.json()
    for k, item in enumerate(body["data"]):
        prov = read_provenance(base64.b64decode(item["b64_json"]))
        assert prov is not None and prov["original"] == "two red dogs" and prov["seed"] == 9 + k
        assert prov["prompt"] == item["revised_prompt"] and prov["policy"] == "tiny-qwen2"
        assert prov["backbone"] == "sketch" and prov["settings"] == {"width": 64, "height": 64}


def test_response_format_url_serves_the_same_png_under_an_unguessable_name(client):
    req = {"prompt": "a cat", "seed": 4, "n": 2}
    b64 = client.post("/v1/images/generations", json=req, headers=AUTH).json()
    r = client.post("/v1/images/generations", json={**req, "response_format": "url"}, headers=AUTH)
    assert r.status_code == 200, r.text
    urls = [d["url"] for d in r.json()["data"]]
    assert all("b64_json" not in d for d in r.json()["data"]) and len(set(urls)) == 2
    for url, item in zip(urls, b64["data"], strict=True):
        assert url.startswith("http://testserver/v1/images/files/")
        name = url.rsplit("/", 1)[1]
        assert len(name) == len("x" * 22 + ".png")  # 128 random bits, not a counter or a time
        got = client.get(url.removeprefix("http://testserver"))  # no token needed: the name is the key
        assert got.status_code == 200 and got.headers["content-type"] == "image/png"
        assert got.content == base64.b64decode(item["b64_json"])
        assert read_provenance(got.content)["seed"] in (4, 5)


@pytest.mark.parametrize(
    "name",
    ["AAAAAAAAAAAAAAAAAAAAAA.png", "..%2F..%2Fetc%2Fpasswd", "%2Fetc%2Fpasswd", "x.png", "record.json"],
)
def test_image_files_never_serve_another_path(client, name):
    r = client.get(f"/v1/images/files/{name}")
    assert r.status_code == 404 and r.json()["error"]["message"]


def test_image_urls_expire_and_behind_a_proxy_use_the_public_url(parts):
    app = create_app(
        *parts,
        options=GenerationOptions(max_new_tokens=4),
        config=ServeConfig(image_ttl_s=0.2, public_url="https://images.example.org/reprompt/"),
    )
    with TestClient(app) as c:
        r = c.post("/v1/images/generations", json={"prompt": "a cat", "response_format": "url"})
        url = r.json()["data"][0]["url"]
        assert url.startswith("https://images.example.org/reprompt/v1/images/files/")
        path = "/v1/images/files/" + url.rsplit("/", 1)[1]
        assert c.get(path).status_code == 200
        time.sleep(0.3)
        assert c.get(path).status_code == 404


def test_steps_guidance_and_negative_prompt_reach_a_diffusers_backbone(tiny_model):
    """On a pipeline with classic guidance (SD3) each extension changes the image and is recorded; FLUX.1
    (guidance-distilled) refuses a negative prompt by name instead of ignoring it."""
    from reprompt.backbones import load_backbone

    sd3 = load_backbone("sd3", model=str(tiny_model("tiny-sd3")), width=32, height=32, steps=2)
    app = create_app(load_policy("none"), sd3)
    with TestClient(app) as c:

        def image(**extra):
            r = c.post("/v1/images/generations", json={"prompt": "a red cat", "seed": 1, **extra})
            assert r.status_code == 200, r.text
            return r.json()["data"][0]["b64_json"], r.json()["reprompt"]["settings"]

        plain, settings = image()
        assert settings == {"width": 32, "height": 32, "steps": 2, "guidance": 7.0}
        for extra, key, value in (
            ({"num_inference_steps": 3}, "steps", 3),
            ({"guidance_scale": 1.5}, "guidance", 1.5),
            ({"negative_prompt": "blurry"}, "negative_prompt", "blurry"),
        ):
            b64, applied = image(**extra)
            assert b64 != plain and applied[key] == value, extra
            assert read_provenance(base64.b64decode(b64))["settings"][key] == value
        assert image(seed=1)[0] == plain  # nothing leaked into the backbone
    flux = load_backbone("flux-dev", model=str(tiny_model("tiny-flux")), width=32, height=32, steps=2)
    with TestClient(create_app(load_policy("none"), flux)) as c:
        r = c.post("/v1/images/generations", json={"prompt": "a cat", "negative_prompt": "blurry"})
        assert r.status_code == 400 and r.json()["error"]["param"] == "negative_prompt"
        r = c.post("/v1/images/generations", json={"prompt": "a cat", "guidance_scale": 2.0, "size": "64x64"})
        assert r.status_code == 200 and r.json()["reprompt"]["settings"]["guidance"] == 2.0
