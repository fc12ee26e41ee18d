"""The openai Python SDK's own API tests for chat completions and models, run against a loopback
``reprompt serve`` (how they are fetched and run: tests/openai_sdk.py).

Every SDK test must pass, with the loose and the strict client, except the ones that ask for what this
server refuses on purpose, which must fail with the refusal the README documents: a request with every
optional field set (a 4xx naming a field), and stored chat completions and model deletion (not kept, not
offered: 404/405).
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from tests.openai_sdk import run_sdk_tests, sdk_tests

CHAT_TESTS = ("tests/api_resources/chat/test_completions.py", "tests/api_resources/test_models.py")

# (test id pattern, error pattern): the SDK tests that must fail, and how.
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


def served_model_id(root: Path) -> str:
    """The model id the SDK's chat tests ask for (the mock server they are written for serves any)."""
    ids = Counter(re.findall(r'model="([^"]+)"', (root / CHAT_TESTS[0]).read_text(encoding="utf-8")))
    return ids.most_common(1)[0][0]


def test_openai_sdk_api_tests_against_reprompt_serve(tiny_model, tmp_path):
    root = sdk_tests(*CHAT_TESTS)
    from reprompt.backbones import load_backbone
    from reprompt.policy import load_policy
    from reprompt.policy.base import GenerationOptions
    from reprompt.serving.http import BackgroundServer
    from reprompt.serving.image_service import ServeConfig, create_app

    app = create_app(
        load_policy(str(tiny_model("tiny-qwen2"))),
        load_backbone("sketch", width=32, height=32),
        options=GenerationOptions(max_new_tokens=8),
        config=ServeConfig(served_model_name=served_model_id(root)),
    )
    with BackgroundServer(app) as srv:
        # the aiohttp transport is an optional SDK extra, not a server question
        rows = run_sdk_tests(root, CHAT_TESTS, srv.url + "/v1", tmp_path, "not aiohttp")
    unexpected = []
    for row in rows:
        test, status, message = row["id"], row["outcome"], row.get("message", "")
        rule = next((e for t, e in EXPECTED_FAILURES if re.search(t, test)), None)
        if rule is None and status != "passed":
            unexpected.append(f"{test}: {status}: {message[:300]}")
        elif rule is not None and not (status == "failed" and re.search(rule, message)):
            unexpected.append(f"{test}: {status}, expected a failure matching {rule!r}: {message[:300]}")
    counts = Counter(row["outcome"] for row in rows)
    print(f"openai SDK {root.name} chat and models API tests against reprompt serve: {dict(counts)}")
    assert not unexpected, "\n".join(unexpected)
    strict = [r for r in rows if r["outcome"] == "passed" and r["id"].endswith("[strict]")]
    assert counts["passed"] >= 60 and len(strict) >= 30  # both clients, sync and async, parse every reply
