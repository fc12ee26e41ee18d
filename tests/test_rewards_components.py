"""Reward components through their real code paths: format, length, geneval (oracle and tiny Mask2Former +
CLIP), clipscore (tiny CLIP)."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
from PIL import Image

from reprompt.backbones import load_backbone
from reprompt.backbones.base import TokenCount
from reprompt.errors import ConfigError, RepromptError
from reprompt.format import parse_completion
from reprompt.geneval.scene import SceneObject
from reprompt.geneval.scorer import build_scorer
from reprompt.rewards import build_component
from reprompt.rewards.base import RewardBatch
from reprompt.rewards.geneval_reward import parse_metadata


def make_batch(originals, completions, metadata=None, images=None, scenes=None, counter=None) -> RewardBatch:
    parsed = [parse_completion(c, o) for c, o in zip(completions, originals, strict=True)]
    n = len(completions)
    return RewardBatch(
        originals=list(originals),
        completions=list(completions),
        parsed=parsed,
        prompts=[p.prompt for p in parsed],
        metadata=list(metadata or [None] * n),
        seeds=[[0]] * n,
        groups=[0] * n,
        images=images,
        scenes=scenes,
        token_counter=counter,
    )


# ------------------------------------------------------------------------------------------- format


@pytest.mark.parametrize(
    ("completion", "expected"),
    [
        ("<reason>Plan: the objects, counts and places.</reason><prompt>A red car on a road.</prompt>", 1.0),
        (
            "<reason>Plan: the objects, counts and places.</reason>\n<prompt>A red car on a road.</prompt>\n",
            1.0,
        ),
        ("<prompt>A red car on a road.</prompt>", -1.0),  # recovered: no reason block
        (
            "<reason>Plan: the objects, counts and places.</reason><prompt>A red car on a road.",
            -1.0,
        ),  # missing close tag
        (
            "sure! <reason>Plan: the objects, counts and places.</reason><prompt>A red car.</prompt>",
            -1.0,
        ),  # text outside
        ("just a red car", -1.0),  # fallback to the original
        ("<reason>Plan: the objects, counts and places.</reason><prompt>  </prompt>", -1.0),  # empty prompt
    ],
)
def test_format_reward(completion, expected):
    fmt = build_component("format")
    assert fmt(make_batch(["a car"], [completion])) == [expected]


def test_format_reward_custom_values_and_pickle():
    fmt = build_component("format", {"well_formed": 2.0, "malformed": 0.0})
    clone = pickle.loads(pickle.dumps(fmt))
    assert clone.__name__ == "format"
    assert clone(
        make_batch(
            ["a", "a"], ["<reason>Plan: the objects, counts and places.</reason><prompt>A cat.</prompt>", "x"]
        )
    ) == [2.0, 0.0]


# ------------------------------------------------------------------------------------------- length


def words_counter(limit):
    return lambda text: TokenCount(len(text.split()) + 2, limit, "test")


@pytest.mark.parametrize(
    ("words", "limit", "options", "expected"),
    [
        (12, 77, {}, -1.0),  # 14 tokens < 15
        (13, 77, {}, 1.0),  # 15 tokens
        (75, 77, {}, 1.0),  # 77 tokens: the CLIP limit
        (76, 77, {}, -1.0),  # 78 tokens: truncated by CLIP
        (100, 300, {}, 1.0),  # a T5-only backbone allows more
        (100, None, {}, -1.0),  # no limit known: 77
        (100, 300, {"max_tokens": 60}, -1.0),  # explicit bound wins
        (5, 77, {"min_tokens": 3}, 1.0),
    ],
)
def test_length_reward_follows_the_backbone(words, limit, options, expected):
    length = build_component("length", options)
    prompt = " ".join(["word"] * words)
    batch = make_batch(
        ["a cat"],
        [f"<reason>Plan: the objects, counts and places.</reason><prompt>{prompt}</prompt>"],
        counter=words_counter(limit),
    )
    assert length(batch) == [expected]


def test_length_reward_uses_backbone_tokens_and_needs_a_backbone():
    sketch = load_backbone("sketch", width=32, height=32)
    length = build_component("length")
    prompt = "A photo of exactly three orange cats sitting side by side in the center of the image."
    batch = make_batch(
        ["three cats"],
        [f"<reason>Plan: the objects, counts and places.</reason><prompt>{prompt}</prompt>"],
        counter=sketch.count_tokens,
    )
    assert length(batch) == [1.0]
    with pytest.raises(ConfigError, match="backbone"):
        length(make_batch(["a"], ["x"]))
    with pytest.raises(ConfigError, match="not a valid range"):
        build_component("length", {"min_tokens": 50, "max_tokens": 10})


def test_a_fallback_is_penalised_by_format_only():
    """An unparseable completion renders the original prompt (7-14 tokens for GenEval): the length reward
    must not measure it and add a second -1 (it scores None, neutral in its group)."""
    fmt, length = build_component("format"), build_component("length")
    short_original = "a photo of a cat"
    batch = make_batch(
        [short_original, short_original], ["no tags at all", "<reason>x"], counter=words_counter(77)
    )
    assert all(p.fallback for p in batch.parsed) and batch.prompts == [short_original] * 2
    assert fmt(batch) == [-1.0, -1.0]
    assert length(batch) == [None, None]


# ------------------------------------------------------------------------------------------ geneval

TWO = {"tag": "two_object", "include": [{"class": "cat", "count": 1}, {"class": "dog", "count": 1}]}
RED_CAT = {
    "tag": "color_attr",
    "include": [{"class": "cat", "count": 1, "color": "red"}, {"class": "dog", "count": 1}],
}


def scene_image(objects: list[SceneObject], size=64) -> Image.Image:
    return Image.new("RGB", (size, size), (200, 200, 200))


@pytest.mark.parametrize(
    ("metadata", "scene", "strict", "partial"),
    [
        (TWO, [SceneObject("cat", (0, 0, 10, 10)), SceneObject("dog", (20, 20, 30, 30))], 1.0, 1.0),
        (TWO, [SceneObject("cat", (0, 0, 10, 10))], 0.0, 0.5),
        (
            RED_CAT,
            [SceneObject("cat", (0, 0, 10, 10), "red"), SceneObject("dog", (20, 20, 30, 30))],
            1.0,
            1.0,
        ),
        (
            RED_CAT,
            [SceneObject("cat", (0, 0, 10, 10), "blue"), SceneObject("dog", (20, 20, 30, 30))],
            0.0,
            0.5,
        ),
        (None, [SceneObject("cat", (0, 0, 10, 10))], None, None),
    ],
)
def test_geneval_strict_and_partial_on_oracle_scenes(metadata, scene, strict, partial):
    for mode, expected in (("strict", strict), ("partial", partial)):
        reward = build_component("geneval", {"mode": mode})
        batch = make_batch(["p"], ["x"], [metadata], images=[[scene_image(scene)]], scenes=[[scene]])
        assert reward(batch) == [expected]


def test_geneval_on_sketch_renders_and_image_average():
    sketch = load_backbone("sketch", width=96, height=96)
    meta = {
        "tag": "counting",
        "include": [{"class": "cup", "count": 2}],
        "exclude": [{"class": "cup", "count": 3}],
    }
    prompts = ["a photo of exactly two cups", "a photo of a dog"]
    out = sketch.render(prompts * 2, [1, 1, 2, 2])
    images = [[out.images[0], out.images[2]], [out.images[1], out.images[3]]]
    scenes = [[out.scenes[0], out.scenes[2]], [out.scenes[1], out.scenes[3]]]
    reward = build_component("geneval", {"mode": "partial"})
    got = reward(make_batch(prompts, prompts, [meta, meta], images=images, scenes=scenes))
    assert got[0] == 1.0  # an explicit count is never miscounted by the sketch
    assert got[1] == 0.5  # no cup: the exclude clause holds, the include does not


def test_geneval_oracle_needs_scenes():
    reward = build_component("geneval", {"detector": "oracle"})
    batch = make_batch(["p"], ["x"], [TWO], images=[[scene_image([])]], scenes=[[None]])
    with pytest.raises(RepromptError, match="simulator"):
        reward(batch)
    # the default is the evaluator's: auto = the oracle for simulator scenes, Mask2Former + CLIP otherwise
    auto = build_component("geneval")
    assert (auto.scorer(True).detector_name, auto.scorer(True).colors_name) == ("oracle", "oracle")
    assert (auto.scorer(False).detector_name, auto.scorer(False).colors_name) == ("mask2former", "clip")


def test_geneval_reward_and_evaluator_share_one_scorer_config():
    """The reward's options ARE the evaluator's scorer config (plus mode): same fields, same defaults."""
    import dataclasses

    from reprompt.eval.geneval.evaluate import ScoreConfig
    from reprompt.geneval.scorer import ScorerConfig
    from reprompt.rewards.geneval_reward import GenEvalRewardOptions

    shared = {f.name: f.default for f in dataclasses.fields(ScorerConfig)}
    for cls in (GenEvalRewardOptions, ScoreConfig):
        assert {f.name: f.default for f in dataclasses.fields(cls) if f.name in shared} == shared
    reward = build_component("geneval", {"detector": "mask2former", "threshold": 0.5})
    assert (
        reward.scorer(False).info()
        == build_scorer(ScorerConfig(detector="mask2former", threshold=0.5)).info()
    )


def test_geneval_reward_refuses_unknown_option_keys():
    with pytest.raises(ConfigError, match="unknown geneval option key 'detector_options'"):
        build_component("geneval", {"detector_options": {"model_id_or_path": "m2f"}})


def test_geneval_with_tiny_mask2former_and_clip(tiny_model):
    reward = build_component(
        "geneval",
        {
            "mode": "partial",
            "detector": "mask2former",
            "detector_model": str(tiny_model("tiny-mask2former")),
            "clip_model": str(tiny_model("tiny-clip")),
            "threshold": 0.0,
        },
    )
    rng = np.random.default_rng(0)
    images = [[Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))] for _ in range(2)]
    got = reward(make_batch(["p", "p"], ["x", "y"], [RED_CAT, None], images=images, scenes=[[None], [None]]))
    assert got[1] is None and got[0] is not None and 0.0 <= got[0] <= 1.0


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ({"tag": "x", "include": [], "exclude": []}, None),
        (json.dumps(TWO), {**TWO, "prompt": ""}),
        # `datasets` struct columns fill absent keys with None
        (
            {
                "tag": "two_object",
                "prompt": "p",
                "exclude": None,
                "include": [{"class": "cat", "count": 1, "color": None, "position": None}],
            },
            {"tag": "two_object", "prompt": "p", "include": [{"class": "cat", "count": 1}]},
        ),
    ],
)
def test_parse_metadata(value, expected):
    assert parse_metadata(value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("{oops", "not valid JSON"),
        ([1, 2], "mapping"),
        ({"include": [{"count": 1}]}, r"include\[0\]\.class is missing"),
    ],
)
def test_parse_metadata_errors(value, message):
    with pytest.raises(RepromptError, match=message):
        parse_metadata(value)


# ---------------------------------------------------------------------------------------- clipscore


def test_clipscore_on_tiny_clip(tiny_model):
    folder = str(tiny_model("tiny-clip"))
    reward = build_component("clipscore", {"model": folder, "batch_size": 2})
    rng = np.random.default_rng(1)
    images = [Image.fromarray(rng.integers(0, 255, (48, 40, 3), dtype=np.uint8)) for _ in range(3)]
    texts = ["a red cat", "a blue dog " * 40, "two cups"]  # the long one is cut at 77 tokens
    scores = reward.score_images(texts, images, [None] * 3, [None] * 3)
    assert len(scores) == 3 and all(-1.0 <= s <= 1.0 for s in scores)
    assert len(set(scores)) == 3
    single = [reward.score_images([t], [im], [None], [None])[0] for t, im in zip(texts, images, strict=True)]
    assert single == pytest.approx(scores, abs=1e-5)
    styled = build_component("clipscore", {"model": folder, "style": "clipscore"})
    assert styled.score_images(texts, images, [None] * 3, [None] * 3) == pytest.approx(
        [2.5 * max(s, 0.0) for s in scores], abs=1e-5
    )
    clone = pickle.loads(pickle.dumps(reward))
    assert clone._model is None and clone.name == "clipscore"
    assert clone.score_images(texts, images, [None] * 3, [None] * 3) == pytest.approx(scores, abs=1e-6)
    with pytest.raises(ConfigError):
        build_component("clipscore", {"style": "cider"})
