"""Open WebUI with reprompt as its image engine, replayed: the exact request its ``openai`` image engine sends
(``backend/open_webui/routers/images.py``, ``image_generations``) and the way it reads the reply, against a
loopback ``reprompt serve`` with a token, as the README's recipe configures it:

    IMAGE_GENERATION_ENGINE=openai  IMAGES_OPENAI_API_BASE_URL=http://127.0.0.1:8080/v1
    IMAGES_OPENAI_API_KEY=$REPROMPT_TOKEN  IMAGE_GENERATION_MODEL=<served model>  IMAGE_SIZE=512x512
    ENABLE_IMAGE_PROMPT_GENERATION=false  IMAGES_OPENAI_PARAMS='{"seed": 42}'

Open WebUI posts ``{model, prompt, n, size, response_format: "b64_json", **IMAGES_OPENAI_PARAMS}`` with
``Authorization: Bearer`` to ``{base}/images/generations`` (``?api-version=`` when one is set); ``model`` is
``dall-e-2`` when none is configured; ``response_format`` is left out for model names matching ``^gpt-image``.
For each ``data`` item it fetches ``url`` (with the same headers) or base64-decodes ``b64_json`` as
``image/png``, and stores that file."""

from __future__ import annotations

import base64
import io
import re

import httpx
import pytest
from PIL import Image

from reprompt.backbones import load_backbone
from reprompt.policy import load_policy
from reprompt.policy.base import GenerationOptions
from reprompt.serving.http import BackgroundServer
from reprompt.serving.image_service import create_app
from reprompt.utils.images import read_provenance

TOKEN = "open-webui-s3cret"


def open_webui_generate(
    base_url: str,
    key: str,
    prompt: str,
    *,
    model: str = "",
    size: str = "512x512",
    n: int = 1,
    params: dict | None = None,
    api_version: str = "",
) -> list[tuple[bytes, str]]:
    """Open WebUI's ``openai`` image engine, step by step; returns what it would store: (bytes, mime)."""
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    url = f"{base_url}/images/generations"
    if api_version:
        url = f"{url}?api-version={api_version}"
    data = {
        "model": model if model else "dall-e-2",
        "prompt": prompt,
        "n": n,
        **({"size": size} if size else {}),
        **({} if re.match("^gpt-image", model) else {"response_format": "b64_json"}),
        **(params or {}),
    }
    r = httpx.post(url, json=data, headers=headers, timeout=120)
    r.raise_for_status()
    res = r.json()
    images = []
    for image in res["data"]:
        if image_url := image.get("url", None):
            got = httpx.get(image_url, headers={k: v for k, v in headers.items() if k != "Content-Type"})
            got.raise_for_status()
            images.append((got.content, got.headers["content-type"]))
        else:
            images.append((base64.b64decode(image["b64_json"]), "image/png"))
    return images


@pytest.fixture(scope="module")
def server(tiny_model):
    policy = load_policy(str(tiny_model("tiny-qwen2")))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("REPROMPT_OPEN_WEBUI_TEST_TOKEN", TOKEN)
        app = create_app(
            policy,
            load_backbone("sketch", width=64, height=64),
            token_env="REPROMPT_OPEN_WEBUI_TEST_TOKEN",
            options=GenerationOptions(max_new_tokens=4),
        )
    with BackgroundServer(app) as srv:
        yield srv


def test_the_recipe_renders_the_users_words_once_at_512(server):
    prompt = "a photo of a red apple left of a blue car"  # what the user typed: no prompt generation first
    ((png, mime),) = open_webui_generate(
        f"{server.url}/v1", TOKEN, prompt, model="tiny-qwen2", params={"seed": 42}, api_version="2024-02-01"
    )
    assert mime == "image/png"
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG" and image.size == (512, 512)
    prov = read_provenance(png)
    assert prov["original"] == prompt and prov["seed"] == 42 and prov["policy"] == "tiny-qwen2"


def test_several_images_and_url_replies_work_the_same(server):
    b64 = open_webui_generate(f"{server.url}/v1", TOKEN, "two dogs", model="tiny-qwen2", n=2)
    by_url = open_webui_generate(
        f"{server.url}/v1", TOKEN, "two dogs", model="tiny-qwen2", n=2, params={"response_format": "url"}
    )
    assert [png for png, _ in by_url] == [png for png, _ in b64]
    assert {mime for _, mime in by_url} == {"image/png"}


def test_gpt_image_style_names_and_an_unset_model_get_clear_errors(server):
    for model in ("", "gpt-image-1"):  # "" -> Open WebUI sends dall-e-2
        with pytest.raises(httpx.HTTPStatusError) as err:
            open_webui_generate(f"{server.url}/v1", TOKEN, "a cat", model=model)
        body = err.value.response.json()["error"]
        assert err.value.response.status_code == 404 and body["param"] == "model"
        assert "tiny-qwen2" in body["message"]  # says which model to configure


def test_a_wrong_key_is_refused(server):
    with pytest.raises(httpx.HTTPStatusError) as err:
        open_webui_generate(f"{server.url}/v1", "wrong", "a cat", model="tiny-qwen2")
    assert err.value.response.status_code == 401
