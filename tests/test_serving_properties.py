"""Property-based tests (hypothesis, a bounded and derandomized number of examples): whatever JSON a
client sends, the services answer it without a 500, and GenEval metadata that passes validation can
always be scored."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reprompt.backbones import load_backbone
from reprompt.geneval.metadata import MetadataError, validate_metadata
from reprompt.geneval.rules import RELATIONS, detections_from_boxes, score_detections
from reprompt.geneval.vocabulary import GENEVAL_COLORS, GENEVAL_TAGS
from reprompt.policy.base import GenerationOptions, IdentityRewriter
from reprompt.rewards import build_rewards
from reprompt.rewards.config import ServiceConfig
from reprompt.serving import image_service, reward_service

FAST = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,  # the same examples on every run: CI never flakes on a new draw
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# JSON values as a client may send them: non-finite floats, huge integers, lone surrogates included.
text = st.text(st.characters(exclude_categories=()), max_size=12) | st.sampled_from(["\ud800", "a cat", ""])
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | text
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=8,
)

# Metadata close to valid, so that most examples reach the scoring code rather than the first check.
classes = st.sampled_from(["cat", "dog", "tv", "dragon"]) | json_values
counts = st.integers(-2, 5) | st.sampled_from(["two", [1], 1.5, True, None, 10**30])
clause = st.fixed_dictionaries(
    {"class": classes, "count": counts},
    optional={
        "color": st.sampled_from([*GENEVAL_COLORS[:3], "teal"]) | json_values,
        "position": st.tuples(st.sampled_from([*RELATIONS, "behind"]), st.integers(-1, 3)).map(list)
        | json_values,
    },
)
metadata = (
    st.fixed_dictionaries(
        {"tag": st.sampled_from(GENEVAL_TAGS) | json_values, "include": st.lists(clause, max_size=3)},
        optional={"exclude": st.lists(clause, max_size=2), "prompt": text},
    )
    | json_values
)
boxes = st.dictionaries(
    st.sampled_from(["cat", "dog", "tv"]),
    st.lists(st.tuples(*[st.floats(0, 64)] * 4, st.floats(0, 1)), max_size=4),
    max_size=3,
)


@FAST
@given(meta=metadata, found=boxes)
def test_validated_metadata_can_always_be_scored(meta, found):
    try:
        checked = validate_metadata(meta)
    except MetadataError as e:
        assert str(e).startswith("GenEval metadata")
        return
    result = score_detections(checked, detections_from_boxes(found), lambda _c, objs: ["red"] * len(objs))
    assert 0.0 <= result.partial <= 1.0 and result.correct == (result.partial == 1.0)


@pytest.fixture(scope="module")
def reward_client():
    config = {
        "backbone": "sketch",
        "backbone_options": {"width": 32, "height": 32},
        "components": ["geneval", "format", "length"],
    }
    app = reward_service.create_app(build_rewards(config), ServiceConfig(max_batch=4))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def _post(client: TestClient, path: str, payload) -> object:
    body = json.dumps(payload, allow_nan=True)  # NaN/Infinity as Python writes them; surrogates escaped
    return client.post(path, content=body, headers={"Content-Type": "application/json"})


@FAST
@given(
    meta=metadata, extra=st.dictionaries(st.sampled_from(["seeds", "round", "return_images"]), json_values)
)
def test_the_reward_service_never_answers_500(reward_client, meta, extra):
    payload = {
        "originals": ["a photo of a cat"],
        "completions": ["<reason>a b c</reason><prompt>a cat</prompt>"],
    }
    r = _post(reward_client, "/score", {**payload, "metadata": [meta], **extra})
    assert r.status_code < 500, r.text
    if r.status_code >= 400:
        assert isinstance(r.json()["error"], str) and r.json()["error"]


@pytest.fixture(scope="module")
def image_client():
    app = image_service.create_app(
        IdentityRewriter(), load_backbone("sketch", width=32, height=32), options=GenerationOptions()
    )
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


image_fields = st.fixed_dictionaries(
    {"prompt": text | json_values},
    optional={
        k: json_values | st.integers(-3, 10)
        for k in ("n", "size", "seed", "rewrite", "stream", "response_format")
    },
)
chat_fields = st.fixed_dictionaries(
    {
        "model": st.just("none") | json_values,
        "messages": st.lists(
            st.fixed_dictionaries(
                {"role": st.sampled_from(["user", "system"]) | json_values, "content": text | json_values}
            ),
            max_size=3,
        )
        | json_values,
    },
    optional={
        k: json_values | st.floats(-1, 3)
        for k in ("n", "temperature", "top_p", "max_tokens", "seed", "stream")
    },
)


@FAST
@given(images=image_fields, chat=chat_fields, prompts=st.lists(text | json_values, max_size=3) | json_values)
def test_the_image_service_never_answers_500(image_client, images, chat, prompts):
    for path, payload in (
        ("/v1/images/generations", images),
        ("/v1/chat/completions", chat),
        ("/v1/rewrite", {"prompts": prompts}),
    ):
        r = _post(image_client, path, payload)
        assert r.status_code < 500, (path, r.text)
        if r.status_code >= 400:
            assert r.json()["error"]["message"], r.text
