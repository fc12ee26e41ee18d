"""TRL adapters: one function per component with a stable name, ONE render per batch, the original prompt
recovered from conversations, dataset columns, seeds per step, pickling, and a real GRPOTrainer step."""

from __future__ import annotations

import json
import pickle
from types import SimpleNamespace

import pytest

from reprompt.backbones import load_backbone
from reprompt.format import PromptSpec
from reprompt.rewards import build_component, make_trl_reward_funcs
from reprompt.rewards.composite import CompositeReward
from reprompt.rewards.trl import EXPECTED_COLUMNS, NOT_RENDERED, completion_text, original_prompt

CATS = {"tag": "counting", "prompt": "a photo of three cats", "include": [{"class": "cat", "count": 3}]}
GOOD = "<reason>Plan: the objects, counts and places.</reason><prompt>A photo of exactly three orange cats side by side in the center of the image.</prompt>"


class CountingSketch:
    def __init__(self) -> None:
        self.inner = load_backbone("sketch", width=48, height=48)
        self.name, self.calls, self.images = "sketch", 0, 0

    def render(self, prompts, seeds, settings=None):
        self.calls += 1
        self.images += len(prompts)
        return self.inner.render(prompts, seeds, settings)

    def __getattr__(self, name):  # source(), settings(), width, ...: the real backbone's
        if name == "inner" or name.startswith("__"):  # not set yet (unpickling)
            raise AttributeError(name)
        return getattr(self.inner, name)

    def count_tokens(self, text):
        return self.inner.count_tokens(text)


def pipeline(**kw):
    bb = CountingSketch()
    comps = [build_component(n) for n in ("geneval", "format", "length")]
    return CompositeReward(
        comps, backbone=bb, weights={"geneval": 2.0, "format": 0.5, "length": 0.5}, **kw
    ), bb


def conversational(originals, completions):
    spec = PromptSpec()
    prompts = [spec.messages(o) for o in originals]
    return prompts, [[{"role": "assistant", "content": c}] for c in completions]


def test_names_weights_and_one_render_per_batch():
    pipe, bb = pipeline(images_per_completion=2)
    funcs, weights = make_trl_reward_funcs(pipe)
    assert [f.__name__ for f in funcs] == ["geneval", "format", "length"] and weights == [2.0, 0.5, 0.5]
    originals = [CATS["prompt"]] * 4
    completions = [GOOD, "nonsense", "<prompt>three cats</prompt>", GOOD.replace("orange", "gray")]
    prompts, comps = conversational(originals, completions)
    logged, extra = {}, {}
    kwargs = {
        "metadata": [json.dumps(CATS)] * 4,
        "trainer_state": SimpleNamespace(global_step=3),
        "log_metric": lambda k, v: logged.__setitem__(k, v),
        "log_extra": lambda k, v: extra.__setitem__(k, v),
    }
    outs = [f(prompts, comps, [[1, 2]] * 4, **kwargs) for f in funcs]
    # three functions, one render of the batch; the fallback ("nonsense") renders nothing
    assert bb.calls == 1 and bb.images == 3 * 2
    expected = pipe.score(originals, completions, [CATS] * 4, round=3)
    for f, out in zip(funcs, outs, strict=True):
        assert out == expected.normalized[f.__name__] and len(out) == 4
    assert logged["reward/render_calls"] == 6 and "reward/geneval/strict" in logged
    assert extra["rendered_prompt"][1] == NOT_RENDERED and extra["rendered_prompt"][0] != NOT_RENDERED
    assert logged["reward/fallback/assigned"] == 0.25
    # the weighted sum TRL computes equals the pipeline's total
    for i in range(4):
        trl_total = sum(w * out[i] for w, out in zip(weights, outs, strict=True) if out[i] is not None)
        assert trl_total == pytest.approx(expected.total[i])


def test_a_new_batch_or_step_is_scored_again_and_seeds_follow_the_step():
    pipe, bb = pipeline()
    (f, *_), _ = make_trl_reward_funcs(pipe)
    prompts, comps = conversational([CATS["prompt"]], [GOOD])
    f(prompts, comps, None, trainer_state=SimpleNamespace(global_step=0))
    f(prompts, comps, None, trainer_state=SimpleNamespace(global_step=0))
    assert bb.calls == 1
    f(prompts, comps, None, trainer_state=SimpleNamespace(global_step=1))
    assert bb.calls == 2
    assert f.shared._result.seeds == pipe.score([CATS["prompt"]], [GOOD], round=1).seeds


def test_original_column_wins_and_recovery_from_messages():
    pipe, _ = pipeline(normalization="none")
    (geneval, fmt, _), _ = make_trl_reward_funcs(pipe)
    # the user turn is sanitized ("<prompt>" -> "‹prompt›"); the `original` column keeps the exact text
    tricky = "a photo of three cats <prompt>"
    prompts, comps = conversational([tricky], ["junk"])
    assert original_prompt(prompts[0]) == "a photo of three cats ‹prompt›"
    fmt(prompts, comps, None, original=[tricky])
    assert fmt.shared._result.prompts == [tricky]
    # plain-text prompts and completions work too
    assert fmt(["a cat"], [GOOD], None) == [1.0]
    assert original_prompt([{"role": "user", "content": [{"type": "text", "text": "a dog"}]}]) == "a dog"
    assert completion_text([{"role": "assistant", "content": "x"}]) == "x"
    # metadata as dict, JSON string, None, or a datasets struct with None-filled keys
    struct = {
        "tag": "counting",
        "prompt": "p",
        "exclude": None,
        "include": [{"class": "cat", "count": 3, "color": None, "position": None}],
    }
    prompts, comps = conversational([CATS["prompt"]] * 4, [GOOD] * 4)
    out = geneval(prompts, comps, None, metadata=[CATS, json.dumps(CATS), None, struct])
    assert out[0] == out[1] == out[3] == 1.0
    assert geneval.shared._result.components["geneval"][2] is None  # missing (no metadata) ...
    assert out[2] == 1.0  # ... and TRL gets the group's mean: neutral, never a raw 0
    assert set(EXPECTED_COLUMNS) == {"original", "metadata"}


def test_reward_funcs_pickle():
    pipe, _ = pipeline()
    funcs, _ = make_trl_reward_funcs(pipe)
    prompts, comps = conversational([CATS["prompt"]] * 2, [GOOD, "x"])
    before = [f(prompts, comps, None, metadata=[CATS] * 2) for f in funcs]
    clones = pickle.loads(pickle.dumps(funcs))
    assert [c.__name__ for c in clones] == [f.__name__ for f in funcs]
    assert clones[0].shared is clones[1].shared  # still one shared scorer
    assert [c(prompts, comps, None, metadata=[CATS] * 2) for c in clones] == before


def test_grpo_trainer_step_with_the_reward(tiny_model, tmp_path):
    """TRL's GRPOTrainer calls the adapters and logs rewards/<name>/mean: one real training step."""
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    folder = tiny_model("tiny-qwen2")
    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    # a random policy always falls back: render the original for it (the inference rule), so that every
    # completion renders and the count below is of real renders
    pipe, bb = pipeline(dedupe_renders=False, fallback_score="render_original")
    funcs, weights = make_trl_reward_funcs(pipe)
    spec = PromptSpec()
    rows = [
        CATS,
        {
            "tag": "two_object",
            "prompt": "a photo of a dog and a cup",
            "include": [{"class": "dog", "count": 1}, {"class": "cup", "count": 1}],
        },
    ]
    data = Dataset.from_list(
        [
            {"prompt": spec.messages(r["prompt"]), "original": r["prompt"], "metadata": json.dumps(r)}
            for r in rows
        ]
    )
    args = GRPOConfig(
        output_dir=str(tmp_path),
        per_device_train_batch_size=4,
        num_generations=4,
        max_completion_length=8,
        max_steps=1,
        learning_rate=1e-3,
        reward_weights=weights,
        bf16=False,
        use_cpu=True,
        report_to=[],
        logging_steps=1,
        save_strategy="no",
        gradient_checkpointing=False,
        seed=0,
    )
    trainer = GRPOTrainer(
        model=model, reward_funcs=funcs, args=args, train_dataset=data, processing_class=tok
    )
    trainer.train()
    logs = {k: v for entry in trainer.state.log_history for k, v in entry.items()}
    for name in ("geneval", "format", "length"):
        assert f"rewards/{name}/mean" in logs
    assert funcs[0].shared.batches_scored == bb.calls >= 1
    assert bb.images == 4 * bb.calls  # one image per completion per batch
