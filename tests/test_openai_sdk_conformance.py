"""The openai Python SDK's own API tests for chat completions and models, run against a loopback
``reprompt serve``.

The SDK's tests (Apache-2.0, from the sdist of the installed ``openai`` version on PyPI) take their server
from ``TEST_API_BASE_URL``; each runs with a loose and a strict client (strict: every reply is parsed
with ``_strict_response_validation``, so a field of the wrong type fails). ``scripts/setup.sh`` downloads
them into ``.cache/openai-sdk/``; without them (no network at setup) this test skips. They are run, not
copied into this repository.

Every SDK test must pass, except the ones that ask for what this server refuses on purpose, which must
fail with the refusal the README documents: a request with every optional field set (a 4xx naming a
field), and stored chat completions and model deletion (not kept, not offered: 404/405).
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

SDK_TESTS = ("tests/api_resources/chat/test_completions.py", "tests/api_resources/test_models.py")

# (test name pattern, error pattern): the SDK tests that must fail, and how.
EXPECTED_FAILURES = (
    # every optional field at once (tools, logprobs, audio...; max_tokens 0, a negative seed): a 4xx
    # naming the first field refused
    (r"with_all_params_overload", r"Error code: (400|422) - .*(max_tokens|max_completion_tokens|seed|: )"),
    # stored chat completions: nothing is stored (store: true is refused), so there is nothing to list,
    # retrieve, update or delete
    (
        r"Test(Async)?Completions::test_(method|raw_response|streaming_response)_"
        r"(retrieve|update|list|list_with_all_params|delete)\[",
        r"Error code: (404|405)",
    ),
    # deleting a model: the served model is not deleted over HTTP (the route only answers GET)
    (r"Test(Async)?Models::test_(method|raw_response|streaming_response)_delete\[", r"Error code: 405"),
)


def sdk_folder() -> Path | None:
    import openai

    folder = REPO_ROOT / ".cache" / "openai-sdk" / f"openai-{openai.__version__}"
    return folder if all((folder / t).is_file() for t in SDK_TESTS) else None


def served_model_id(folder: Path) -> str:
    """The model id the SDK's chat tests ask for (the mock server they are written for serves any)."""
    ids = Counter(re.findall(r'model="([^"]+)"', (folder / SDK_TESTS[0]).read_text(encoding="utf-8")))
    return ids.most_common(1)[0][0]


def outcomes(junit: Path) -> dict[str, tuple[str, str]]:
    """test id -> (passed | failed | error | skipped, message) from a JUnit XML report."""
    out: dict[str, tuple[str, str]] = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        name = f"{case.get('classname', '').rsplit('.', 1)[-1]}::{case.get('name')}"
        status, message = "passed", ""
        for kind in ("failure", "error", "skipped"):
            found = case.find(kind)
            if found is not None:
                status = {"failure": "failed"}.get(kind, kind)
                message = (found.get("message") or "") + "\n" + (found.text or "")
                break
        out[name] = (status, message)
    return out


@pytest.mark.skipif(
    importlib.util.find_spec("pytest_asyncio") is None,
    reason="the SDK's tests need pytest-asyncio (dev extra)",
)
def test_openai_sdk_api_tests_against_reprompt_serve(tiny_model, tmp_path):
    folder = sdk_folder()
    if folder is None:
        pytest.skip("the openai SDK's tests are not in .cache/openai-sdk: run scripts/setup.sh (needs PyPI)")
    from reprompt.backbones import load_backbone
    from reprompt.policy import load_policy
    from reprompt.policy.base import GenerationOptions
    from reprompt.serving.http import BackgroundServer
    from reprompt.serving.image_service import ServeConfig, create_app

    app = create_app(
        load_policy(str(tiny_model("tiny-qwen2"))),
        load_backbone("sketch", width=32, height=32),
        options=GenerationOptions(max_new_tokens=8),
        config=ServeConfig(served_model_name=served_model_id(folder)),
    )
    junit = tmp_path / "sdk.xml"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the SDK's `tests` package, not ours
    with BackgroundServer(app) as srv:
        env["TEST_API_BASE_URL"] = srv.url + "/v1"
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                *SDK_TESTS,
                "-q",
                "-p",
                "no:cacheprovider",
                "-o",
                "addopts=",
                "-k",
                "not aiohttp",  # the aiohttp transport is an optional SDK extra, not a server question
                f"--junitxml={junit}",
            ],
            cwd=folder,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
    assert junit.exists(), run.stdout[-3000:] + run.stderr[-3000:]
    results = outcomes(junit)
    unexpected = []
    for test, (status, message) in results.items():
        rule = next((e for t, e in EXPECTED_FAILURES if re.search(t, test)), None)
        if rule is None and status != "passed":
            unexpected.append(f"{test}: {status}: {message.strip()[:300]}")
        elif rule is not None and not (status == "failed" and re.search(rule, message)):
            unexpected.append(
                f"{test}: {status}, expected a failure matching {rule!r}: {message.strip()[:300]}"
            )
    counts = Counter(status for status, _ in results.values())
    print(f"openai SDK {folder.name} API tests against reprompt serve: {dict(counts)}")
    assert not unexpected, "\n".join(unexpected)
    strict = [t for t, (s, _) in results.items() if s == "passed" and t.endswith("[strict]")]
    assert counts["passed"] >= 60 and len(strict) >= 30  # both clients, sync and async, parse every reply
