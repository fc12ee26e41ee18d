"""Rewriters that answer in plain text: the extraction rules (input -> expected), the recipes under
configs/policies, a recipe on tiny transformers models of the zoo (Qwen2, and HunYuan-dense: PromptEnhancer-7B's
architecture, with its thinking switch), on an OpenAI-compatible server, and on the benchmark runner against
--policy none with the same seeds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from reprompt.errors import ConfigError, RepromptError
from reprompt.format.plain import Extraction, extract_prompt, requote
from reprompt.model_spec import PolicyChoice
from reprompt.policy import load_policy
from reprompt.policy.plain import PlainRecipe, PlainRewriter, is_recipe

ROOT = Path(__file__).resolve().parents[1]
RECIPES = sorted((ROOT / "configs" / "policies").glob("*.yaml"))
PROMPT_ENHANCER = ROOT / "configs" / "policies" / "promptenhancer-7b.yaml"

ANSWER_THINK = Extraction(tag="answer", drop=["think"], requote=True)
LABELLED = Extraction(labels=["Enhanced prompt:", "Prompt:"], first_paragraph=True)


@pytest.mark.parametrize(
    ("text", "how", "prompt", "reasoning", "fallback"),
    [
        ("A red cat on a sofa.", Extraction(), "A red cat on a sofa.", "", False),
        ('  "A red cat."  ', Extraction(), "A red cat.", "", False),
        (
            "<think>two objects</think><answer>A cat and a dog.</answer>",
            ANSWER_THINK,
            "A cat and a dog.",
            "two objects",
            False,
        ),
        ("<think>\n\n</think>\nA cat beside a dog.", ANSWER_THINK, "A cat beside a dog.", "", False),
        ("plan first <answer>A cat.</answer> done", ANSWER_THINK, "A cat.", "plan first done", False),
        (
            "<answer>A cat with a sign saying 'OPEN'.</answer>",
            ANSWER_THINK,
            'A cat with a sign saying "OPEN".',
            "",
            False,
        ),
        ("<think>an unfinished plan", ANSWER_THINK, "the original", "an unfinished plan", True),
        ("<answer>  </answer>", ANSWER_THINK, "the original", "", True),
        ("**Enhanced prompt:** A cat.\n\nThis prompt keeps the cat.", LABELLED, "A cat.", "", False),
        ("Prompt: Enhanced prompt: two dogs", LABELLED, "two dogs", "", False),
        ("Sure! FINAL: a blue bus.", Extraction(pattern=r"FINAL:\s*(.+)"), "a blue bus.", "", False),
        ("no match", Extraction(pattern=r"FINAL:\s*(.+)", fallback_to_text=False), "the original", "", True),
        ("", Extraction(), "the original", "", True),
    ],
)
def test_extraction(text, how, prompt, reasoning, fallback):
    got = extract_prompt(text, "the original", how)
    assert (got.prompt, got.reasoning, got.fallback, got.format_ok) == (
        prompt,
        reasoning,
        fallback,
        not fallback,
    )
    assert got.issue is None if not fallback else got.issue


def test_requote_is_promptenhancers_post_processing():
    assert requote("a sign 'OPEN' and it's fine ‘x’") == 'a sign "OPEN" and it\'s fine “x”'


def test_every_shipped_recipe_loads(tmp_path: Path):
    assert {p.name for p in RECIPES} >= {"promptenhancer-7b.yaml", "plain-llm.yaml", "smollm2-plain.yaml"}
    for path in RECIPES:
        recipe = PlainRecipe.load(path)
        assert recipe.kind == "plain" and recipe.system and "{prompt}" in recipe.user
        assert is_recipe(str(path))
        PolicyChoice(str(path))  # checked when the command line builds the spec
    pe = PlainRecipe.load(PROMPT_ENHANCER)
    assert (pe.model, pe.subfolder) == ("tencent/HunyuanImage-2.1", "reprompt")
    assert pe.chat_template_kwargs == {"enable_thinking": False}
    assert (pe.extract.tag, pe.extract.drop, pe.extract.requote) == ("answer", ["think"], True)
    same = [
        PlainRecipe.load(ROOT / "configs" / "policies" / n) for n in ("plain-llm.yaml", "smollm2-plain.yaml")
    ]
    assert same[0].system == same[1].system and same[0].extract == same[1].extract


def _recipe(tmp_path: Path, **fields) -> Path:
    path = tmp_path / f"{fields.get('name', 'r')}.yaml"
    path.write_text(yaml.safe_dump({"kind": "plain", **fields}))
    return path


def test_bad_recipes_are_refused_before_loading(tmp_path: Path):
    with pytest.raises(ConfigError, match="unknown policy recipe .* key 'sytem'.*Did you mean 'system'"):
        PolicyChoice(str(_recipe(tmp_path, model="smollm2", sytem="x")))
    with pytest.raises(ConfigError, match=r"must contain \{prompt\}"):
        PlainRecipe.load(_recipe(tmp_path, model="smollm2", user="rewrite it"))
    with pytest.raises(ConfigError, match="not a regular expression"):
        PlainRecipe.load(_recipe(tmp_path, model="smollm2", extract={"pattern": "("}))
    with pytest.raises(ConfigError, match="unknown policy recipe .* key 'extract.tags'"):
        PlainRecipe.load(_recipe(tmp_path, model="smollm2", extract={"tags": "answer"}))
    with pytest.raises(ConfigError, match="kind must be 'plain'"):
        PlainRecipe.load(_recipe(tmp_path, model="smollm2", kind="reason"))
    with pytest.raises(RepromptError, match="not found"):
        PolicyChoice(str(tmp_path / "missing.yaml"))
    with pytest.raises(RepromptError, match="--tags"):
        PolicyChoice(str(_recipe(tmp_path, model="smollm2")), tags="think/answer")


def test_a_recipe_on_a_tiny_transformers_model(tiny_model, tmp_path: Path):
    folder = tiny_model("tiny-qwen2")
    path = _recipe(
        tmp_path, name="tiny", model=str(folder), system="Rewrite prompts.", user="Request: {prompt}"
    )
    policy = load_policy(str(path))
    assert isinstance(policy, PlainRewriter) and policy.name == "tiny"
    assert policy.messages_for("a cat") == [
        {"role": "system", "content": "Rewrite prompts."},
        {"role": "user", "content": "Request: a cat"},
    ]
    prompts = ["a red cat", "two dogs on a bench", "a cup left of a bowl"]
    batched = policy.rewrite(prompts, max_new_tokens=12, batch_size=3)
    single = [policy.rewrite(p, max_new_tokens=12)[0] for p in prompts]
    assert [r.completion for r in batched] == [r.completion for r in single]  # greedy: batch = one at a time
    for rw in batched:
        expected = extract_prompt(rw.completion, rw.original, policy.recipe.extract)
        assert (rw.prompt, rw.fallback) == (expected.prompt, expected.fallback)
        assert 0 < rw.completion_tokens <= 12
    assert policy.backend.stop == ()  # no RePrompt stop string: the answer is plain text
    assert policy.settings()["recipe"]["user"] == "Request: {prompt}" and policy.model is not None
    assert not hasattr(policy, "base_url")


def test_the_promptenhancer_recipe_on_a_tiny_hunyuan_dense_model(tiny_model, tmp_path: Path):
    """PromptEnhancer-7B's recipe (its instruction, thinking off, <answer>/<think> extraction) with the model
    swapped for a tiny random HunYuanDenseV1ForCausalLM: the thinking switch reaches the chat template."""
    recipe = yaml.safe_load(PROMPT_ENHANCER.read_text())
    recipe.update(model=str(tiny_model("tiny-hunyuan-dense")), subfolder=None)
    path = tmp_path / "pe.yaml"
    path.write_text(yaml.safe_dump(recipe, allow_unicode=True))
    policy = load_policy(str(path))
    assert type(policy.model).__name__ == "HunYuanDenseV1ForCausalLM"
    encoded = policy.backend.encode([policy.messages_for("a photo of four handbags")])
    text = policy.backend.tokenizer.decode(encoded["input_ids"][0])
    assert text.endswith("<|im_start|>assistant\n<think>\n\n</think>\n")  # enable_thinking: false
    assert text.startswith("<|im_start|>system\nYou are an expert writer of prompts")
    rw = policy.rewrite("a photo of four handbags", max_new_tokens=10)[0]
    expected = extract_prompt(rw.completion, rw.original, policy.recipe.extract)
    assert rw.prompt == expected.prompt and rw.completion_tokens <= 10


def _enhancer(body: dict) -> str:
    user = body["messages"][-1]["content"]
    return (
        f"<think>one object, keep the count</think>\n<answer>Exactly {user}, centred, studio light.</answer>"
    )


def test_a_recipe_on_an_openai_compatible_endpoint(tmp_path: Path):
    from tests.fake_openai import FakeOpenAI

    with FakeOpenAI(_enhancer) as srv:
        recipe = yaml.safe_load(PROMPT_ENHANCER.read_text())
        recipe.update(model=srv.base_url, api_model="enhancer", stop=["<|eos|>"])
        path = tmp_path / "pe.yaml"
        path.write_text(yaml.safe_dump(recipe, allow_unicode=True))
        policy = load_policy(str(path))
        rw = policy.rewrite("four handbags")[0]
        body = srv.requests[-1]
    assert rw.prompt == "Exactly four handbags, centred, studio light." and rw.format_ok and not rw.fallback
    assert rw.reasoning == "one object, keep the count"
    assert body["model"] == "enhancer" and body["messages"][0]["role"] == "system"
    assert body["messages"][1] == {"role": "user", "content": "four handbags"}
    assert body["chat_template_kwargs"] == {"enable_thinking": False} and body["stop"] == ["<|eos|>"]
    assert policy.base_url == srv.base_url and policy.name == "promptenhancer-7b"


def _plain_planner(body: dict) -> str:
    """A plain-text 'API model' that places both objects of a GenEval relation absolutely."""
    import re

    prompt = body["messages"][-1]["content"]
    m = re.fullmatch(r"a photo of (an? [a-z ]+?) (left of|right of|above|below) (an? [a-z ]+)", prompt)
    if not m:
        return f"Here is the rewritten prompt: {prompt}"
    a, rel, b = m.groups()
    sides = {"left of": ("left", "right"), "right of": ("right", "left"), "above": ("top", "bottom")}
    first, second = sides.get(rel, ("bottom", "top"))
    return f"Here is the rewritten prompt: A photo. {a} on the {first} side of the image. {b} on the {second} side of the image."


def test_eval_geneval_compares_a_plain_rewriter_on_the_same_seeds(
    shared_benchmarks: Path, tmp_path: Path, capsys
):
    from reprompt.cli.main import main
    from reprompt.eval.compare import compare_runs
    from tests.fake_openai import FakeOpenAI

    metadata = shared_benchmarks / "geneval" / "evaluation_metadata.jsonl"
    a, b = tmp_path / "none", tmp_path / "plain"
    common = ["eval", "geneval", "--metadata", str(metadata), "--per-tag", "3", "--no-progress"]
    assert main([*common, "--out", str(a), "--policy", "none"]) == 0
    with FakeOpenAI(_plain_planner) as srv:
        recipe = _recipe(
            tmp_path,
            name="api-planner",
            model=srv.base_url,
            api_model="planner",
            system="Rewrite the request for a text-to-image model.",
            extract={"labels": ["Here is the rewritten prompt:"]},
        )
        assert main([*common, "--out", str(b), "--policy", str(recipe)]) == 0
    run = json.loads((b / "run.json").read_text())
    assert run["policy"]["name"] == str(recipe) and run["policy"]["cls"] == "PlainRewriter"
    assert run["policy"]["settings"]["recipe"]["system"] == "Rewrite the request for a text-to-image model."
    capsys.readouterr()
    r = compare_runs(a, b, resamples=500)
    assert r["seeds_match"] and r["tags"]["position"]["diff"] > 0.3
    meta = json.loads(next(b.glob("*/metadata.jsonl")).read_text())
    assert not meta["rewritten_prompt"].startswith("Here is") and meta["format_ok"]


def test_the_untrained_smollm2_as_a_plain_rewriter():
    policy = load_policy(str(ROOT / "configs" / "policies" / "smollm2-plain.yaml"))
    rw = policy.rewrite("a photo of a red apple", max_new_tokens=8)[0]
    assert type(policy.backend).__name__ == "RePrompter" and policy.name == "smollm2-plain"
    assert rw.completion and rw.completion_tokens <= 8 and (rw.prompt == rw.original) == rw.fallback
