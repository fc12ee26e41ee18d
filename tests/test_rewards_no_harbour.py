"""No safe harbour in the training reward: a completion that writes no usable prompt block never outscores a
completion of its group that wrote one, in total or in any component, and costs no render. Inference (and
the held-out guard, which measures what a user gets) still renders the original prompt for it."""

from __future__ import annotations

import json
import random
from pathlib import Path
from types import SimpleNamespace

import pytest

from reprompt.backbones import load_backbone
from reprompt.cli.main import main
from reprompt.errors import ConfigError
from reprompt.rewards import build_component
from reprompt.rewards.base import ImageComponent
from reprompt.rewards.composite import CompositeReward, no_harbour
from reprompt.rewards.config import A_PHOTO, RewardConfig
from reprompt.rewards.trl import OutageGuard

REPO = Path(__file__).resolve().parents[1]
THREE_CUPS = {
    "tag": "counting",
    "include": [{"class": "cup", "count": 3}],
    "exclude": [{"class": "cup", "count": 4}],
}
# The issue's example: two completions with no prompt block, two well-formed rewrites that draw something else.
ISSUE_COMPLETIONS = [
    "I think the user wants cups, let me see",
    "<reason>three cups</reason> cups cups",
    "<reason>The user wants three cups on a table.</reason><prompt>A photo of a red bicycle parked on a "
    "street, sunny day, high detail.</prompt>",
    "<reason>The user wants three cups on a table.</reason><prompt>A photo of a dog sleeping on a couch in "
    "a living room, warm light.</prompt>",
]


def test_the_issue_example_gives_the_fallbacks_no_harbour(capsys):
    """On the old main the two fallbacks rendered "a photo of three cups" and got total +0.5 each, the two
    well-formed rewrites -0.5 each: falling back paid."""
    argv = ["score", "--config", str(REPO / "configs/rewards/cpu.yaml"), "--normalization", "group", "--json"]
    argv += ["--prompt", "a photo of three cups", "--metadata", json.dumps(THREE_CUPS)]
    for c in ISSUE_COMPLETIONS:
        argv += ["--completion", c]
    assert main(argv) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["fallback"] == [True, True, False, False] and data["fallback_score"] == "group_worst"
    fallbacks, rewrites = [0, 1], [2, 3]
    assert max(data["total"][i] for i in fallbacks) < min(data["total"][i] for i in rewrites)
    for name in ("geneval", "format", "length"):
        worst_rewrite = min(data["normalized"][name][i] for i in rewrites)
        assert all(data["normalized"][name][i] <= worst_rewrite for i in fallbacks), name
    assert data["render_calls"] == 2 * 2  # two rewrites x two images; the fallbacks render nothing
    assert data["assigned"] == [True, True, False, False]


def test_score_says_which_rule_it_applied(capsys):
    argv = ["score", "--config", str(REPO / "configs/rewards/cpu.yaml"), "--prompt", "a photo of three cups"]
    argv += ["--metadata", json.dumps(THREE_CUPS), "--completion", ISSUE_COMPLETIONS[0]]
    argv += ["--completion", ISSUE_COMPLETIONS[2]]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.startswith("fallback rule: group_worst (the training rule")
    assert main([*argv, "--fallback-score", "render_original"]) == 0
    out = capsys.readouterr().out
    assert "fallback rule: render_original" in out
    assert "rendered prompt (fallback, render_original): a photo of three cups" in out


class Ink(ImageComponent):
    """A real image component (share of drawn pixels), so rows differ by what they render."""

    name = "ink"

    def score_images(self, originals, images, scenes, metadata):
        import numpy as np

        out = []
        for im in images:
            a = np.asarray(im.convert("RGB"), dtype=np.int16)
            out.append(float((np.abs(a - a[0, 0]).sum(-1) > 30).mean()))
        return out


def good(prompt: str) -> str:
    return f"<reason>Plan: the objects, counts and places.</reason>\n<prompt>{prompt}</prompt>"


POOL = [
    good("A photo of exactly three cups in a row in the center of the image, nothing else around them."),
    good("three cups"),
    good("A photo of a red bicycle parked on a street, sunny day, high detail."),
    good("A photo of a dog on the left side of the image and a cup on the right side of the image."),
    "<prompt>A photo of three cups on a table.</prompt>",  # recovered: a prompt, no reason block
    "no tags at all",  # fallbacks
    "<reason>I will think about the cups for a while",
    "<reason>Plan it.</reason> a cup",
]


@pytest.mark.parametrize("trial", range(24))
def test_no_fallback_outscores_a_completion_that_wrote_a_prompt(trial):
    """Random groups, normalizations, floors, weights and image counts: in every group, every component's
    value and the total of a fallback are at most those of every completion that wrote a prompt."""
    rng = random.Random(trial)
    mode = rng.choice(["none", "group", "batch"])
    comps = [build_component("geneval"), build_component("format"), build_component("length"), Ink()]
    weights = {c.name: rng.choice([0.25, 0.5, 1.0, 2.0]) for c in comps}
    floors = {"geneval": 0.1} if rng.random() < 0.5 else None
    pipe = CompositeReward(
        comps,
        backbone=load_backbone("sketch", width=64, height=64),
        weights=weights,
        normalization=mode,
        images_per_completion=rng.choice([1, 2]),
        paired_baseline=rng.random() < 0.5,
        std_floor=floors,
    )
    prompts = ["a photo of three cups", "a photo of a dog left of a cup", "a photo of a cup"]
    originals, completions, metadata = [], [], []
    for p in prompts:
        for _ in range(4):
            originals.append(p)
            completions.append(rng.choice(POOL))
            metadata.append(THREE_CUPS if rng.random() < 0.8 else None)
    # one metadata per prompt (a group shares its prompt's metadata)
    meta_of = {p: m for p, m in zip(originals, metadata, strict=True)}
    metadata = [meta_of[p] for p in originals]
    r = pipe.score(originals, completions, metadata)
    for p in prompts:
        rows = [i for i, o in enumerate(originals) if o == p]
        fb = [i for i in rows if r.fallback[i]]
        wrote = [i for i in rows if not r.fallback[i]]
        if not fb or not wrote:
            continue
        for name in r.normalized:
            assert max(r.normalized[name][i] for i in fb) <= min(r.normalized[name][i] for i in wrote) + 1e-9
        assert max(r.total[i] for i in fb) <= min(r.total[i] for i in wrote) + 1e-9
    n_rendered = sum(not f for f in r.fallback) * len(r.seeds[0])
    assert r.render_calls <= n_rendered  # fallbacks cost no render (dedupe may save more)


def test_an_all_fallback_group_renders_nothing_and_gets_no_advantage():
    ink = Ink()
    pipe = CompositeReward(
        [build_component("format"), build_component("length"), ink],
        backbone=load_backbone("sketch", width=64, height=64),
        images_per_completion=2,
    )
    originals = ["a photo of a cat"] * 4 + ["a photo of a dog"] * 4
    completions = ["no tags"] * 4 + [
        good("A photo of a dog in the center of the image, large and visible.")
    ] * 2
    completions += ["junk", "more junk"]
    r = pipe.score(originals, completions)
    assert r.render_calls == 2  # the dog group's one distinct rewrite, two seeds; the cat group nothing
    for name, col in r.normalized.items():
        assert len({col[i] for i in range(4)}) == 1, name  # equal within the group: zero advantage
    assert r.components["ink"][:4] == [None] * 4  # never rendered, so nothing measured
    assert r.metrics["ink/missing"] == 0  # and that is not a failure


def test_no_harbour_is_per_component_and_keeps_a_worse_own_value():
    fb = [True, False, False, True]
    groups = [0, 0, 0, 1]
    assert no_harbour([None, 0.4, 0.9, None], fb, groups) == [0.4, 0.4, 0.9, None]
    assert no_harbour([-1.0, 1.0, 1.0, -1.0], fb, groups) == [-1.0, 1.0, 1.0, -1.0]
    # a negative weight: the worst value is the highest one
    assert no_harbour([None, 0.4, 0.9, None], fb, groups, higher_is_better=False) == [0.9, 0.4, 0.9, None]


def test_the_outage_guard_does_not_count_rows_the_rule_scored():
    class Down(ImageComponent):
        name = "judge"

        def score_images(self, originals, images, scenes, metadata):
            return [None] * len(images)

    pipe = CompositeReward([build_component("format"), Down()], backbone=load_backbone("sketch", width=32))
    guard = OutageGuard(["judge"], max_fraction=0.5, max_batches=1)
    everyone_fell_back = pipe.score(["a photo of a cat"] * 4, ["junk"] * 4)
    guard.check(everyone_fell_back)  # the judge was never asked: not an outage
    from reprompt.errors import RewardOutageError

    with pytest.raises(RewardOutageError):  # the judge was asked and failed on every rendered image
        guard.check(pipe.score(["a photo of a cat"] * 2, ["junk", good("A photo of a cat on a sofa.")]))


def test_the_reference_rule_renders_a_photo_and_the_inference_rule_the_original():
    class Seen(Ink):
        def __init__(self):
            self.prompts = []

        def __call__(self, batch):
            self.prompts += batch.prompts
            return super().__call__(batch)

    for rule, rendered in (("render_a_photo", A_PHOTO), ("render_original", "a photo of a cat")):
        seen = Seen()
        pipe = CompositeReward([seen], backbone=load_backbone("sketch", width=32), fallback_score=rule)
        r = pipe.score(["a photo of a cat"], ["junk"])
        assert seen.prompts == [rendered] and r.render_calls == 1 and r.assigned == [False]


def test_config_names_the_rule_and_refuses_unknown_ones():
    assert RewardConfig().fallback_score == "group_worst"
    with pytest.raises(ConfigError, match="Did you mean 'group_worst'"):
        RewardConfig(fallback_score="group_worts")
    heldout = RewardConfig.from_yaml(REPO / "configs/rewards/heldout.yaml")
    assert heldout.fallback_score == "render_original"


def test_the_heldout_guard_measures_what_a_user_gets(tmp_path):
    """The held-out reward renders the original for a fallback (what a user gets); it refuses the training
    rule, which would hide a policy that falls back."""
    from reprompt.format import PromptSpec
    from reprompt.train.callbacks import MetricsSink
    from reprompt.train.config import HELDOUT_FALLBACK, RepromptGRPOConfig, default_heldout_rewards
    from reprompt.train.grpo import build_heldout

    assert default_heldout_rewards("sketch").fallback_score == HELDOUT_FALLBACK == "render_original"
    prompts = tmp_path / "heldout.jsonl"
    prompts.write_text(json.dumps({"prompt": "a photo of three cups", **THREE_CUPS}) + "\n")
    backbone = load_backbone("sketch", width=32)
    base = dict(
        prompts=str(prompts),
        rewards={"components": ["geneval"]},
        output_dir=str(tmp_path / "run"),
        report_to="none",
        heldout_prompts=str(prompts),
        heldout_every=5,
        heldout_max=8,
        max_completion_length=16,
        heldout_batch_size=4,
    )
    with pytest.raises(ConfigError, match="held-out guard measures what a user gets"):
        RepromptGRPOConfig(
            **base, heldout_rewards={"components": ["geneval"], "fallback_score": "group_worst"}
        )
    scorer = SimpleNamespace(backbone=backbone)
    cfg = RepromptGRPOConfig(**base, heldout_rewards={"components": ["geneval"]})
    callback = build_heldout(cfg, scorer, PromptSpec(), MetricsSink())
    assert callback.scorer.fallback_score == "render_original"
    assert callback.scorer.backbone is backbone  # names no backbone: the training one, already in memory
    cfg = RepromptGRPOConfig(**base)
    assert build_heldout(cfg, scorer, PromptSpec(), MetricsSink()).scorer.fallback_score == "render_original"


def test_fallback_rules_benchmark_measures_the_harbour(monkeypatch, tiny_model, tmp_path, capsys):
    """benchmarks/fallback_rules.py: on the issue's example the harbour shows under render_original (each
    fallback outscores both rewrites) and is gone under group_worst; the script runs end to end."""
    import importlib.util
    import sys

    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    spec = importlib.util.spec_from_file_location("fallback_rules", REPO / "benchmarks" / "fallback_rules.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "fallback_rules", module)
    spec.loader.exec_module(module)
    meta = {**THREE_CUPS, "prompt": "a photo of three cups"}
    found = {}
    for rule in module.RULES:
        reward = CompositeReward.from_config(RewardConfig.from_dict(module.reward_config(rule)))
        result = reward.score(["a photo of three cups"] * 4, ISSUE_COMPLETIONS, [meta] * 4)
        found[rule] = module.analyse(result, [0, 0, 0, 0])
    assert found["render_original"]["fallback_outscores_parsed_pairs"] == "4/4"
    assert found["render_original"]["parsed_with_negative_advantage"] == 1.0
    assert found["group_worst"]["fallback_outscores_parsed_pairs"] == "0/4"
    assert found["group_worst"]["parsed_with_negative_advantage"] == 0.0
    assert found["group_worst"]["render_calls"] < found["render_original"]["render_calls"]
    out = tmp_path / "rules.json"
    argv = ["fallback_rules.py", "--policy", str(tiny_model("tiny-qwen2")), "--prompts", "2", "--g", "2"]
    monkeypatch.setattr(sys, "argv", [*argv, "--max-new-tokens", "8", "--out", str(out)])
    assert module.main() == 0
    data = json.loads(out.read_text())
    assert set(data["rules"]) == set(module.RULES) and data["prompts"] == 2
