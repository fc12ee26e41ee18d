"""The openai SDK's own API tests for images (``tests/api_resources/test_images.py`` of the installed SDK's
sdist, Apache-2.0; ``scripts/setup.sh`` fetches them, no network here; how they run: tests/openai_sdk.py)
run against a loopback ``reprompt serve`` (tiny policy + sketch), in both of their modes, ``loose`` and ``strict`` (``_strict_response_validation``:
every reply parsed strictly with the SDK's types), sync and async.

What they send that this server does not serve (another ``model``, ``stream: true``, ``background:
"transparent"``) must fail as the SDK's own 4xx error naming the field, never as a parse error or a 5xx; the
exact pass/fail split is pinned below. Then our extensions (``size``, ``seed``, the FLUX fields,
``response_format: "url"``) through the same SDK, strictly parsed."""

from __future__ import annotations

import base64

import pytest

from reprompt.backbones import load_backbone
from reprompt.policy import load_policy
from reprompt.policy.base import GenerationOptions
from reprompt.serving.http import BackgroundServer
from reprompt.serving.image_service import create_app
from reprompt.utils.images import read_provenance
from tests.openai_sdk import run_sdk_tests, sdk_tests

# Generated tests of the images resource that a reprompt server answers with 200 (3 shapes x loose/strict).
PASS = {"test_method_generate_overload_1", "test_raw_response_generate_overload_1"}
PASS |= {"test_streaming_response_generate_overload_1"}
# What they send that is refused, and the field the refusal names.
REFUSED = {
    "test_method_generate_with_all_params_overload_1": (422, "background"),  # "transparent"
    "test_method_generate_overload_2": (400, "stream"),
    "test_method_generate_with_all_params_overload_2": (422, "background"),
    "test_raw_response_generate_overload_2": (400, "stream"),
    "test_streaming_response_generate_overload_2": (400, "stream"),
}

IMAGES_TESTS = ("tests/api_resources/test_images.py",)


@pytest.fixture(scope="module")
def server(tiny_model):
    policy = load_policy(str(tiny_model("tiny-qwen2")))
    app = create_app(
        policy, load_backbone("sketch", width=64, height=64), options=GenerationOptions(max_new_tokens=4)
    )
    with BackgroundServer(app) as srv:
        yield srv


def test_the_sdks_own_images_tests_against_reprompt_serve(server, tmp_path):
    root = sdk_tests(*IMAGES_TESTS)
    rows = run_sdk_tests(root, IMAGES_TESTS, f"{server.url}/v1", tmp_path, "generate and not aiohttp")
    assert len(rows) == 4 * (len(PASS) + len(REFUSED))  # loose/strict x sync/async
    for row in rows:
        if row["name"] in PASS:
            assert row["outcome"] == "passed", row
        else:
            status, param = REFUSED[row["name"]]
            assert row["outcome"] == "failed", row
            assert row["error"] in ("BadRequestError", "UnprocessableEntityError"), row
            assert (row["status"], row["param"]) == (status, param), row
            assert param in row["message"], row


def test_our_extensions_through_the_sdk_strictly_parsed(server):
    import httpx
    from openai import NotFoundError, OpenAI

    client = OpenAI(base_url=f"{server.url}/v1", api_key="unused", _strict_response_validation=True)
    reply = client.images.generate(
        prompt="two red dogs", n=2, size="512x512", response_format="b64_json", extra_body={"seed": 42}
    )
    assert reply.size == "512x512" and reply.output_format == "png" and len(reply.data or []) == 2
    seeds = reply.model_extra["reprompt"]["seeds"]
    assert seeds == [42, 43]
    for item, seed in zip(reply.data or [], seeds, strict=True):
        png = base64.b64decode(item.b64_json or "")
        assert read_provenance(png)["seed"] == seed and item.revised_prompt
    by_url = client.images.generate(
        prompt="two red dogs", size="512x512", response_format="url", extra_body={"seed": 42}
    )
    url = (by_url.data or [])[0].url or ""
    assert url.startswith(server.url) and httpx.get(url).content == base64.b64decode(
        (reply.data or [])[0].b64_json or ""
    )
    with pytest.raises(NotFoundError) as err:
        client.images.generate(prompt="a cat", model="dall-e-3")
    assert err.value.body["param"] == "model"
