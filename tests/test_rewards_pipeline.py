"""The reward pipeline: render once per (completion, seed), shared seeds per group, fallback, baseline,
normalization, missing values, config and registry. Runs on the sketch simulator (no model weights)."""

from __future__ import annotations

import math
import pickle
from pathlib import Path

import pytest

from reprompt.backbones import load_backbone
from reprompt.errors import ConfigError, RepromptError
from reprompt.rewards import build_component, build_rewards, component_names
from reprompt.rewards.base import ImageComponent
from reprompt.rewards.composite import CompositeReward, derive_seeds, normalize, weighted_sum
from reprompt.rewards.config import RewardConfig

REPO = Path(__file__).resolve().parents[1]

# fmt: off
CATS = {"tag": "counting", "prompt": "a photo of three cats", "include": [{"class": "cat", "count": 3}],
        "exclude": [{"class": "cat", "count": 4}]}
DOG_LEFT = {"tag": "position", "prompt": "a photo of a dog left of a cup",
            "include": [{"class": "cup", "count": 1}, {"class": "dog", "count": 1, "position": ["left of", 0]}]}
# fmt: on


def good(prompt: str) -> str:
    return f"<reason>Plan: the objects, counts and places.</reason>\n<prompt>{prompt}</prompt>"


GROUP_CATS = [
    good(
        "A photo of exactly three orange cats sitting side by side in the center of the image, all clearly visible."
    ),
    good("three cats"),
    "no tags at all",
    good("A photo of exactly three cats on the left side of the image and nothing else in the scene at all."),
]
GROUP_DOG = [
    good(
        "A brown dog on the left side of the image and one white cup on the right side of the image, both visible."
    ),
    good("a cup"),
]


class RecordingSketch:
    """The real sketch backbone, recording every render call (the counts the tests check)."""

    def __init__(self) -> None:
        self.inner = load_backbone("sketch", width=64, height=64)
        self.name = "sketch"
        self.calls: list[tuple[list[str], list[int]]] = []

    def render(self, prompts, seeds, settings=None):
        self.calls.append((list(prompts), list(seeds)))
        return self.inner.render(prompts, seeds, settings)

    def __getattr__(self, name):  # source(), settings(), width, ...: the real backbone's
        if name == "inner" or name.startswith("__"):  # not set yet (unpickling)
            raise AttributeError(name)
        return getattr(self.inner, name)

    def count_tokens(self, text):
        return self.inner.count_tokens(text)

    @property
    def images_rendered(self) -> int:
        return sum(len(p) for p, _ in self.calls)


class ImageCounter(ImageComponent):
    """A real image component: the fraction of non-background pixels (so tests see which image it got)."""

    name = "ink"

    def __init__(self) -> None:
        self.seen = 0

    def score_images(self, originals, images, scenes, metadata):
        import numpy as np

        self.seen += len(images)
        out = []
        for im in images:
            a = np.asarray(im.convert("RGB"), dtype=np.int16)
            out.append(float((np.abs(a - a[0, 0]).sum(-1) > 30).mean()))
        return out


def make(
    components=("format", "length", "geneval"), backbone=None, **kw
) -> tuple[CompositeReward, RecordingSketch]:
    backbone = backbone or RecordingSketch()
    comps = [build_component(c) if isinstance(c, str) else c for c in components]
    return CompositeReward(comps, backbone=backbone, **kw), backbone


def batch():
    originals = [CATS["prompt"]] * len(GROUP_CATS) + [DOG_LEFT["prompt"]] * len(GROUP_DOG)
    return originals, GROUP_CATS + GROUP_DOG, [CATS] * len(GROUP_CATS) + [DOG_LEFT] * len(GROUP_DOG)


# ------------------------------------------------------------------------------------ render counting


@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("baseline", [False, True])
def test_render_once_per_completion_and_seed(k, baseline):
    ink = ImageCounter()
    pipe, bb = make(
        ("format", "length", "geneval", ink),
        images_per_completion=k,
        paired_baseline=baseline,
        dedupe_renders=False,
    )
    originals, completions, metadata = batch()
    result = pipe.score(originals, completions, metadata)
    n, groups = sum(not fb for fb in result.fallback), 2  # a fallback renders nothing (no harbour)
    assert n == len(completions) - 1
    assert len(bb.calls) == 1, "everything is rendered in one backbone call"
    assert result.render_calls == n * k
    assert result.baseline_render_calls == (groups * k if baseline else 0)
    assert bb.images_rendered == pipe.render_calls == n * k + result.baseline_render_calls
    # two image components scored the same images: geneval and ink each saw every image once
    assert ink.seen == n * k + (groups * k if baseline else 0)
    assert all(len(s) == k for s in result.seeds)


def test_group_shares_seeds_and_fallback_renders_the_original():
    pipe, bb = make(images_per_completion=2, fallback_score="render_original")
    originals, completions, metadata = batch()
    result = pipe.score(originals, completions, metadata)
    cat_seeds = {tuple(s) for s, o in zip(result.seeds, originals, strict=True) if o == CATS["prompt"]}
    dog_seeds = {tuple(s) for s, o in zip(result.seeds, originals, strict=True) if o == DOG_LEFT["prompt"]}
    assert len(cat_seeds) == 1 and len(dog_seeds) == 1 and cat_seeds != dog_seeds
    assert result.prompts[2] == CATS["prompt"] and result.fallback[2] and not result.format_ok[2]
    assert result.components["format"][2] == -1.0
    assert result.components["geneval"][2] is not None  # the image part is scored on the fallback
    rendered = list(zip(*bb.calls[0], strict=True))
    for prompt, seeds in zip(result.prompts, result.seeds, strict=True):
        for s in seeds:
            assert (prompt, s) in rendered


def test_dedupe_shares_identical_renders_with_the_baseline():
    pipe, bb = make(paired_baseline=True, dedupe_renders=True, fallback_score="render_original")
    originals, completions, metadata = batch()
    result = pipe.score(originals, completions, metadata)
    # the fallback completion renders exactly what the cat baseline renders: one render saved
    assert result.render_calls == len(completions)
    assert result.baseline_render_calls == 1
    assert bb.images_rendered == len(completions) + 1


@pytest.mark.parametrize("k", [1, 2])
def test_identical_completions_in_a_group_are_rendered_once(k):
    """Two completions of one group that render the same prompt (the same rewrite twice, two fallbacks) share
    one render per seed: GRPO groups often hold such duplicates, and each render is seconds on a GPU."""
    same = good("A photo of exactly three cats in a row in the center of the image, nothing else around.")
    completions = [same, "no tags", same, "still no tags", good("three cats")]
    originals, metadata = [CATS["prompt"]] * len(completions), [CATS] * len(completions)
    pipe, bb = make(images_per_completion=k, dedupe_renders=True, fallback_score="render_original")
    result = pipe.score(originals, completions, metadata, keep_images=True)
    distinct = {result.prompts[i] for i in range(len(completions))}
    assert len(distinct) == 3  # the rewrite, the original (both fallbacks), "three cats"
    assert result.render_calls == bb.images_rendered == 3 * k  # without dedupe: 5 * k
    assert result.images[0] == result.images[2] and result.images[1] == result.images[3]  # the same images
    assert result.components["geneval"][0] == result.components["geneval"][2]
    undeduped, bb2 = make(images_per_completion=k, dedupe_renders=False, fallback_score="render_original")
    again = undeduped.score(originals, completions, metadata)
    assert bb2.images_rendered == 5 * k and again.components == result.components  # same scores, more renders


def test_round_and_explicit_seeds():
    pipe, _ = make(images_per_completion=2)
    originals, completions, metadata = batch()
    r0 = pipe.score(originals, completions, metadata, round=0)
    r0b = pipe.score(originals, completions, metadata, round=0)
    r1 = pipe.score(originals, completions, metadata, round=1)
    assert r0.seeds == r0b.seeds and r0.components == r0b.components
    assert r0.seeds != r1.seeds
    assert r0.seeds[0] == derive_seeds(0, 0, CATS["prompt"], 2)
    explicit = [[5, 6]] * len(completions)
    assert pipe.score(originals, completions, metadata, seeds=explicit).seeds == explicit
    with pytest.raises(RepromptError, match="seeds"):
        pipe.score(originals, completions, metadata, seeds=[[1]])
    with pytest.raises(RepromptError, match="non-negative integer"):
        pipe.score(originals, completions, metadata, seeds=[[-1]] * len(completions))


def test_image_of_a_completion_does_not_depend_on_the_batch():
    pipe, _ = make(("geneval", ImageCounter()), images_per_completion=2, normalization="none")
    originals, completions, metadata = batch()
    full = pipe.score(originals, completions, metadata, keep_images=True)
    alone = pipe.score(originals[:1], completions[:1], metadata[:1], keep_images=True)
    assert [im.tobytes() for im in alone.images[0]] == [im.tobytes() for im in full.images[0]]
    assert alone.components["ink"][0] == full.components["ink"][0]


def _pixels(image):
    import numpy as np

    return np.asarray(image.convert("RGB"))


def test_per_prompt_seeds_render_each_baseline_once():
    """Seeds that depend on the prompt only: the second time a prompt comes (another step, another epoch) its
    baseline is the same image, read from the cache; the scores are what rendering it again gives."""
    pipe, bb = make(
        images_per_completion=2, paired_baseline=True, seed_schedule="per_prompt", baseline_cache=16
    )
    originals, completions, metadata = batch()
    first = pipe.score(originals, completions, metadata, round=0, keep_images=True)
    second = pipe.score(originals, completions, metadata, round=7, keep_images=True)
    assert second.seeds == first.seeds  # the round does not move them
    assert (first.baseline_render_calls, first.render_cache_hits) == (2 * 2, 0)
    assert (second.baseline_render_calls, second.render_cache_hits) == (0, 2 * 2)
    assert second.baseline == first.baseline and second.total == first.total
    assert bb.images_rendered == first.render_calls + first.baseline_render_calls + second.render_calls
    # the served scores equal a fresh render's: a reward without a cache agrees
    fresh, _ = make(images_per_completion=2, paired_baseline=True, seed_schedule="per_prompt")
    assert fresh.score(originals, completions, metadata, round=7).baseline == second.baseline


def test_per_step_seeds_change_every_round_and_never_hit():
    pipe, _ = make(images_per_completion=2, paired_baseline=True, baseline_cache=16)
    originals, completions, metadata = batch()
    first = pipe.score(originals, completions, metadata, round=0)
    second = pipe.score(originals, completions, metadata, round=1)
    assert second.seeds != first.seeds and second.render_cache_hits == 0
    again = pipe.score(originals, completions, metadata, round=1)  # the same step twice (a samples table)
    assert again.render_cache_hits == 2 * 2 and again.baseline_render_calls == 0


def test_the_baseline_cache_is_keyed_by_settings_and_bounded():
    from reprompt.backbones.base import RenderSettings
    from reprompt.rewards.render_cache import RenderCache, backbone_key

    backbone = load_backbone("sketch", width=64, height=64)
    assert backbone_key(backbone, None) != backbone_key(backbone, RenderSettings(width=48))
    assert backbone_key(backbone, None) != backbone_key(load_backbone("sketch-b", width=64, height=64), None)
    assert backbone_key(backbone, None) != backbone_key(load_backbone("sketch", width=48, height=64), None)
    cache = RenderCache(2)
    for k in "abc":
        cache.put(k, k.upper(), None)
    assert len(cache) == 2 and cache.get("a") is None and cache.get("c") == ("C", None)
    assert (cache.hits, cache.misses) == (1, 1)
    # one reward, two render profiles: nothing crosses between them
    originals, completions, metadata = batch()
    big, _ = make(images_per_completion=1, paired_baseline=True, seed_schedule="per_prompt", baseline_cache=8)
    small, _ = make(
        images_per_completion=1,
        paired_baseline=True,
        seed_schedule="per_prompt",
        baseline_cache=8,
        render=RenderSettings(width=48, height=48),
    )
    small.cache = big.cache  # even sharing one cache
    big.score(originals, completions, metadata)
    assert small.score(originals, completions, metadata, keep_images=True).render_cache_hits == 0
    assert small.score(originals, completions, metadata, keep_images=True).render_cache_hits == 2


def test_the_render_profile_reaches_every_render_of_the_reward():
    from reprompt.backbones.base import RenderSettings

    pipe, bb = make(paired_baseline=True, render=RenderSettings(width=40, height=40))
    originals, completions, metadata = batch()
    result = pipe.score(originals, completions, metadata, keep_images=True)
    assert all(im.size == (40, 40) for row in result.images for im in row)
    assert RewardConfig.from_dict({"render": {"width": 40, "height": 40}}).render == RenderSettings(40, 40)
    assert build_rewards(
        {"render": {"width": 40}, "components": ["format"]}
    ).render_settings == RenderSettings(width=40)
    assert (
        build_rewards({"components": ["format"]}).render_settings is None
    )  # nothing set: the backbone's own


# ----------------------------------------------------------------------------------- scores and total


def test_components_baseline_and_improvement():
    pipe, _ = make(
        paired_baseline=True, images_per_completion=2, normalization="none", fallback_score="render_original"
    )
    originals, completions, metadata = batch()
    r = pipe.score(originals, completions, metadata)
    assert r.components["format"] == [1.0, 1.0, -1.0, 1.0, 1.0, 1.0]
    assert r.components["length"][1] == -1.0 and r.components["length"][0] == 1.0  # "three cats" is short
    assert all(v is not None and 0 <= v <= 1 for v in r.components["geneval"])
    assert r.components["geneval"][4] == 1.0  # placed absolutely: the sketch follows it
    assert set(r.baseline) == {"geneval"} and set(r.improvement) == {"geneval"}
    for i in range(len(completions)):
        assert r.improvement["geneval"][i] == pytest.approx(
            r.components["geneval"][i] - r.baseline["geneval"][i]
        )
    assert r.components["length"][2] is None  # the fallback: only format penalises it
    present = [sum(v for c in r.components if (v := r.components[c][i]) is not None) for i in range(6)]
    assert r.raw_total == present
    lengths = [r.components["length"][i] for i in (0, 1, 3)]
    imputed = sum(lengths) / 3  # the group's mean length: neutral for row 2
    assert r.normalized["length"][2] == pytest.approx(imputed)
    assert r.total == pytest.approx([p + (imputed if i == 2 else 0.0) for i, p in enumerate(present)])
    assert r.metrics["render_calls"] == 12 and "improvement/geneval" in r.metrics


def test_normalization_modes():
    values = [1.0, 3.0, None, 5.0, 2.0, 2.0]
    groups = [0, 0, 0, 0, 1, 1]
    assert normalize(values, groups, "none") == values
    g = normalize(values, groups, "group")
    assert g[2] is None and g[4] == g[5] == 0.0  # no spread in group 1: no signal
    assert sum(g[:2] + g[3:4]) == pytest.approx(0) and g[0] == pytest.approx(-math.sqrt(1.5))
    b = normalize(values, groups, "batch")
    vals = [v for v in b if v is not None]
    assert sum(vals) == pytest.approx(0) and sum(v * v for v in vals) / len(vals) == pytest.approx(1)
    assert normalize([4.0], [0], "group") == [0.0]
    with pytest.raises(ConfigError):
        normalize(values, groups, "zscore")


def test_missing_is_never_zero():
    cols = {"a": [1.0, None, None], "b": [2.0, 3.0, None]}
    assert weighted_sum(cols, {"a": 2.0, "b": 1.0}, 3) == [4.0, 3.0, None]
    pipe, _ = make(normalization="group")
    originals, completions, _ = batch()
    r = pipe.score(originals, completions, None)  # no metadata: geneval is missing everywhere
    assert r.components["geneval"] == [None] * 6
    assert r.normalized["geneval"] == [0.0] * 6  # a whole group missing: a constant, neutral in the group
    assert all(t is not None for t in r.total)
    # the fallback (row 2) was not rendered: its None is the rule's, not a failed score
    assert r.metrics["geneval/missing"] == 5


class HalfMissing(ImageComponent):
    """A real image component whose scorer fails on some images (like a judge API timing out)."""

    name = "judge"

    def __init__(self, fail_rows: set[int]) -> None:
        self.fail_rows, self.calls = fail_rows, 0

    def score_images(self, originals, images, scenes, metadata):
        import numpy as np

        out = []
        for im in images:
            i, self.calls = self.calls, self.calls + 1
            out.append(None if i in self.fail_rows else float((np.asarray(im) < 128).mean()))
        return out


@pytest.mark.parametrize("mode", ["none", "group", "batch"])
def test_a_missing_score_is_neutral_within_its_group_in_every_mode(mode):
    """GRPO's advantage is a completion's total minus its group's mean: a missing judge score must add
    nothing to that difference, in every normalization mode (before: raw 0 under none, the batch mean under
    batch)."""
    judge = HalfMissing({1, 5})
    pipe = CompositeReward(
        [judge],
        backbone=load_backbone("sketch", width=64, height=64),
        normalization=mode,
        fallback_score="render_original",  # every row renders: the judge fails on images 1 and 5
    )
    originals = [CATS["prompt"]] * 4 + [DOG_LEFT["prompt"]] * 2
    r = pipe.score(originals, GROUP_CATS + GROUP_DOG)
    assert r.components["judge"][1] is None and r.components["judge"][5] is None
    for rows in ([0, 1, 2, 3], [4, 5]):
        col = [r.normalized["judge"][i] for i in rows]
        assert all(v is not None for v in col)
        group_mean = sum(col) / len(col)
        missing = rows[1]
        assert r.normalized["judge"][missing] == pytest.approx(group_mean)  # its advantage term is 0
    assert r.metrics["judge/missing"] == 2


def test_std_floor_keeps_noise_small():
    groups = [0, 0, 0, 0]
    noisy = [0.50, 0.51, 0.50, 0.50]
    plain = normalize(noisy, groups, "group")
    assert plain[1] == pytest.approx(1.732, abs=1e-3) and plain[0] == pytest.approx(-0.577, abs=1e-3)
    floored = normalize(noisy, groups, "group", floor=0.1)
    assert floored[1] == pytest.approx(0.075) and floored[0] == pytest.approx(-0.025)
    # a real difference is untouched by the floor
    real = [0.0, 1.0, 0.0, 1.0]
    assert normalize(real, groups, "group", floor=0.1) == normalize(real, groups, "group")


def test_std_floor_from_the_config_and_logged():
    cfg = RewardConfig.from_dict(
        {
            "components": ["geneval", "format"],
            "std_floor": {"geneval": 0.5},
            "backbone_options": {"width": 64},
        }
    )
    pipe = CompositeReward.from_config(cfg)
    assert pipe.std_floor == {"geneval": 0.5, "format": 0.0}
    originals, completions, metadata = batch()
    r = pipe.score(originals, completions, metadata)
    assert "geneval/group_std" in r.metrics and "geneval/floored_groups" in r.metrics
    assert "format/normalized_abs_mean" in r.metrics
    with pytest.raises(ConfigError, match="std_floor"):
        RewardConfig.from_dict({"components": ["format"], "std_floor": {"judge": 0.1}})
    with pytest.raises(ConfigError, match=">= 0"):
        RewardConfig.from_dict({"components": ["format"], "std_floor": {"format": -1}})


def test_an_empty_reason_block_is_not_well_formed_in_the_reward():
    pipe = CompositeReward(
        [build_component("format")],
        backbone=load_backbone("sketch", width=64, height=64),
        normalization="none",
    )
    prompt = "A photo of exactly three cats on the left side of the image."
    completions = [
        f"<reason></reason><prompt>{prompt}</prompt>",
        f"<reason> </reason><prompt>{prompt}</prompt>",
        good(prompt),
    ]
    r = pipe.score([CATS["prompt"]] * 3, completions)
    assert r.components["format"] == [-1.0, -1.0, 1.0]
    assert r.prompts[0] == prompt  # the prompt itself is still rendered


def test_weights_and_group_normalized_total():
    pipe, _ = make(weights={"geneval": 2.0, "format": 0.5, "length": 0.0})
    originals, completions, metadata = batch()
    r = pipe.score(originals, completions, metadata)
    for i in range(6):
        expect = 2.0 * r.normalized["geneval"][i] + 0.5 * r.normalized["format"][i]
        assert r.total[i] == pytest.approx(expect)
    # each group's normalized components have zero mean
    assert sum(r.normalized["format"][:4]) == pytest.approx(0)


def test_bad_inputs_are_clear_errors():
    pipe, _ = make()
    with pytest.raises(RepromptError, match="original prompts but"):
        pipe.score(["a"], ["x", "y"])
    with pytest.raises(RepromptError, match="metadata"):
        pipe.score(["a"], ["x"], [None, None])
    with pytest.raises(RepromptError, match="must be a string"):
        pipe.score(["a"], [None])
    with pytest.raises(RepromptError, match="not valid JSON"):
        pipe.score(["a"], ["x"], ["{not json"])
    with pytest.raises(ConfigError, match="give the composite reward a backbone"):
        CompositeReward([build_component("geneval")])
    assert len(pipe.score([], [])) == 0


# ------------------------------------------------------------------------------------- config, registry


def test_registry_and_unknown_names():
    assert {"format", "length", "geneval", "imagereward", "clipscore", "vlm_judge"} <= set(component_names())
    with pytest.raises(ConfigError, match="Did you mean 'geneval'"):
        build_component("genevl")
    with pytest.raises(ConfigError, match="Did you mean 'mode'"):
        build_component("geneval", {"mdoe": "strict"})
    with pytest.raises(ConfigError, match="strict"):
        build_component("geneval", {"mode": "lenient"})


def test_config_validation():
    with pytest.raises(ConfigError, match="Did you mean 'normalization'"):
        RewardConfig.from_dict({"normalisation": "group"})
    with pytest.raises(ConfigError, match="not in components"):
        RewardConfig(components=["format"], weights={"length": 1})
    with pytest.raises(ConfigError, match="normalization"):
        RewardConfig(normalization="zscore")
    with pytest.raises(ConfigError, match="service"):
        RewardConfig.from_dict({"service": {"prot": 1}})
    cfg = RewardConfig.from_dict({"components": "format, length", "weights": {"length": "2"}})
    assert (
        cfg.components == ["format", "length"] and cfg.weight("length") == 2.0 and cfg.weight("format") == 1.0
    )


def test_yaml_scalars_are_read_by_the_field_type_and_a_bad_one_names_its_key(tmp_path):
    """YAML (and JSON on a command line) carries scalars as their author wrote them: a quoted "false" must
    not become True (Python's bool("false") is), and a value that cannot be read names its key."""
    config = tmp_path / "reward.yaml"
    config.write_text(
        'components: [format, length]\npaired_baseline: "false"\ndedupe_renders: "no"\n'
        'images_per_completion: "2"\nseed: "7"\nmin_reason_words: 4.0\n'
        'service: {port: "9001", max_queue: "8"}\n'
        'options: {length: {min_tokens: "12", max_tokens: "60"}}\n'
    )
    cfg = RewardConfig.from_yaml(config)
    assert (cfg.paired_baseline, cfg.dedupe_renders) == (False, False)
    assert (cfg.images_per_completion, cfg.seed, cfg.min_reason_words) == (2, 7, 4)
    assert (cfg.service.port, cfg.service.max_queue) == (9001, 8)
    length = build_component("length", cfg.options["length"])
    assert (length.options.min_tokens, length.options.max_tokens) == (12, 60)
    for key, value, message in [
        ("paired_baseline", "maybe", "reward config key 'paired_baseline' must be true or false"),
        ("images_per_completion", "two", "reward config key 'images_per_completion' must be a whole number"),
        ("seed", 1.5, "reward config key 'seed' must be a whole number"),
        ("tags", 3, "reward config key 'tags' must be text"),
    ]:
        with pytest.raises(ConfigError, match=message):
            RewardConfig.from_dict({"components": ["format"], key: value})
    with pytest.raises(ConfigError, match="reward config key 'service.port' must be a whole number"):
        RewardConfig.from_dict({"components": ["format"], "service": {"port": "eighty"}})
    with pytest.raises(ConfigError, match="length option key 'min_tokens' must be a whole number"):
        build_component("length", {"min_tokens": "ten"})


def test_shipped_configs_load(tmp_path):
    cpu = RewardConfig.from_yaml(REPO / "configs/rewards/cpu.yaml")
    paper = RewardConfig.from_yaml(REPO / "configs/rewards/paper.yaml")
    assert (
        paper.components == ["imagereward", "vlm_judge", "format", "length"] and paper.backbone == "flux-dev"
    )
    assert paper.normalization == "group" and paper.service.host == "127.0.0.1"
    pipe = build_rewards(REPO / "configs/rewards/cpu.yaml")
    assert pipe.component_names == cpu.components and pipe.images_per_completion == 2
    r = pipe.score([CATS["prompt"]] * 2, GROUP_CATS[:2], [CATS] * 2)
    assert r.render_calls == 4 and r.baseline is not None
    bad = tmp_path / "bad.yaml"
    bad.write_text("components: [format]\nweigths: {}\n")
    with pytest.raises(ConfigError, match="Did you mean 'weights'"):
        RewardConfig.from_yaml(bad)
    with pytest.raises(ConfigError, match="not found"):
        RewardConfig.from_yaml(tmp_path / "missing.yaml")


def test_components_and_pipeline_pickle():
    pipe, _ = make()
    originals, completions, metadata = batch()
    for comp in pipe.components:
        clone = pickle.loads(pickle.dumps(comp))
        assert clone.name == comp.name == clone.__name__
    clone = pickle.loads(pickle.dumps(pipe))
    expect = pipe.score(originals, completions, metadata)
    got = clone.score(originals, completions, metadata)
    assert got.components == expect.components and got.total == expect.total
    assert all(len(col) == len(completions) for col in got.components.values())
