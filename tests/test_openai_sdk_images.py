"""The openai SDK's own API tests for images (``tests/api_resources/test_images.py`` of the installed SDK's
sdist, Apache-2.0; ``scripts/setup.sh`` fetches them, no network here) run against a loopback ``reprompt
serve`` (tiny policy + sketch), in both of their modes, ``loose`` and ``strict`` (``_strict_response_validation``:
every reply parsed strictly with the SDK's types), sync and async.

What they send that this server does not serve (another ``model``, ``stream: true``, ``background:
"transparent"``) must fail as the SDK's own 4xx error naming the field, never as a parse error or a 5xx; the
exact pass/fail split is pinned below. Then our extensions (``size``, ``seed``, the FLUX fields,
``response_format: "url"``) through the same SDK, strictly parsed."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from reprompt.backbones import load_backbone
from reprompt.policy import load_policy
from reprompt.policy.base import GenerationOptions
from reprompt.serving.http import BackgroundServer
from reprompt.serving.image_service import create_app
from reprompt.utils.images import read_provenance

REPO = Path(__file__).resolve().parents[1]

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

PLUGIN = """
import json, os, pytest

RESULTS = []

@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call" or (report.when == "setup" and report.failed):
        row = {"name": item.originalname, "id": item.nodeid, "outcome": report.outcome}
        exc = call.excinfo.value if call.excinfo is not None else None
        if exc is not None:
            row["error"] = type(exc).__name__
            row["status"] = getattr(exc, "status_code", None)
            body = getattr(exc, "body", None)
            row["param"] = body.get("param") if isinstance(body, dict) else None
            row["message"] = str(exc)[:300]
        RESULTS.append(row)
    return report

def pytest_sessionfinish(session):
    with open(os.environ["SDK_RESULTS"], "w") as f:
        json.dump(RESULTS, f)
"""


def sdk_tests() -> Path | None:
    import openai

    root = Path(
        os.environ.get("REPROMPT_OPENAI_SDK_TESTS", REPO / ".cache" / "openai-sdk-tests" / openai.__version__)
    )
    return root if (root / "tests" / "api_resources" / "test_images.py").is_file() else None


@pytest.fixture(scope="module")
def server(tiny_model):
    policy = load_policy(str(tiny_model("tiny-qwen2")))
    app = create_app(
        policy, load_backbone("sketch", width=64, height=64), options=GenerationOptions(max_new_tokens=4)
    )
    with BackgroundServer(app) as srv:
        yield srv


def test_the_sdks_own_images_tests_against_reprompt_serve(server, tmp_path):
    root = sdk_tests()
    if root is None:
        reason = "the openai SDK's tests are not fetched (bash scripts/setup.sh does it)"
        if os.environ.get("CI"):
            pytest.fail(f"the SDK conformance run must happen in CI, but: {reason}")
        warnings.warn(reason, stacklevel=1)
        pytest.skip(reason)
    pytest.importorskip("pytest_asyncio")
    (tmp_path / "sdk_outcomes.py").write_text(PLUGIN)
    (tmp_path / "pytest.ini").write_text(
        "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = session\n"
    )
    results = tmp_path / "results.json"
    env = {
        **os.environ,
        "TEST_API_BASE_URL": f"{server.url}/v1",
        "SDK_RESULTS": str(results),
        "PYTHONPATH": os.pathsep.join([str(root), str(tmp_path)]),  # their `tests` package, not ours
    }
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-c", str(tmp_path / "pytest.ini"), "--rootdir", str(root)]
        + ["-p", "sdk_outcomes", "-p", "no:cacheprovider", "-k", "generate and not aiohttp"]
        + [str(root / "tests" / "api_resources" / "test_images.py")],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert results.exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = json.loads(results.read_text())
    print(proc.stdout.splitlines()[-1] if proc.stdout else proc.stderr[-500:])
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
