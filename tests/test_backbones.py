"""Diffusers backbones on tiny random pipelines of the real architectures, loaded as users load them."""

from __future__ import annotations

import numpy as np
import pytest

from reprompt.backbones import backbone_names, load_backbone
from reprompt.backbones.sketch import sketch_config
from reprompt.errors import ModelNotFoundError, RepromptError

# preset name -> tiny zoo model of the same architecture
PRESET_TINY = {
    "flux-dev": "tiny-flux",
    "sd3": "tiny-sd3",
    "pixart-sigma": "tiny-pixart-sigma",
    "sdxl": "tiny-sdxl",
}


@pytest.fixture(scope="module", params=list(PRESET_TINY))
def backbone(request, tiny_model):
    folder = tiny_model(PRESET_TINY[request.param])
    return load_backbone(request.param, model=str(folder), height=32, width=32, steps=2, batch_size=2)


def _arr(img):
    return np.asarray(img, dtype=np.int16)


def test_render_shapes_and_seeds(backbone):
    out = backbone.render(["a red cat", "two dogs"], [0, 1])
    assert len(out.images) == 2 and out.images[0].size == (32, 32)
    assert out.seeds == [0, 1] and out.scenes is None
    assert backbone.render_calls >= 2


def test_same_seed_same_image_and_batch_matches_single(backbone):
    prompts, seeds = ["a red cat", "two dogs", "a bus"], [5, 6, 7]
    batch = backbone.render(prompts, seeds)
    single = [backbone.render([p], [s]).images[0] for p, s in zip(prompts, seeds, strict=True)]
    for a, b in zip(batch.images, single, strict=True):
        assert np.abs(_arr(a) - _arr(b)).max() <= 2  # batch-size kernels may differ in the last bit
    again = backbone.render(prompts[:1], seeds[:1]).images[0]
    assert np.array_equal(_arr(again), _arr(single[0]))
    other = backbone.render(prompts[:1], [999]).images[0]
    assert not np.array_equal(_arr(other), _arr(single[0]))


def test_original_and_rewrite_share_noise(backbone):
    # Same seed, different prompt: the generator stream is identical, so images differ only via text.
    a = backbone.render(["a cat"], [3]).images[0]
    b = backbone.render(["a cat"], [3]).images[0]
    assert np.array_equal(_arr(a), _arr(b))


def test_token_length_per_encoder(backbone):
    long = "a very detailed photo of a red cat " * 20
    counts = backbone.count_tokens_all(long)
    if "clip" in counts:
        assert counts["clip"].limit == 77 and counts["clip"].truncated
        assert backbone.count_tokens(long) == counts["clip"]
    if "t5" in counts:
        assert counts["t5"].limit in (300, 512, 256) or counts["t5"].limit > 77
    short = backbone.count_tokens("a cat")
    assert 2 <= short.tokens <= 6 and not short.truncated


def test_pixart_limit_is_t5_300(tiny_model):
    b = load_backbone(
        "pixart-sigma", model=str(tiny_model("tiny-pixart-sigma")), height=32, width=32, steps=2
    )
    tc = b.count_tokens("a cat")
    assert tc.encoder.startswith("t5") and tc.limit == 300


def test_truncation_warning(tiny_model):
    b = load_backbone("flux-dev", model=str(tiny_model("tiny-flux")), height=32, width=32, steps=2)
    out = b.render(["a red cat sitting on a sofa " * 20], [0])
    assert any("77" in w for w in out.warnings)


def test_generic_diffusers_folder(tiny_model):
    b = load_backbone(str(tiny_model("tiny-flux")), height=32, width=32, steps=2)
    assert b.render(["a cat"], [0]).images[0].size == (32, 32)


def test_errors(tmp_path):
    with pytest.raises(RepromptError, match="Did you mean 'flux-dev'"):
        load_backbone("flux-devv")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelNotFoundError, match="model_index.json"):
        load_backbone("flux-dev", model=str(tmp_path / "empty"))
    with pytest.raises(ModelNotFoundError):
        load_backbone(str(tmp_path / "missing" / "pipe"))
    assert "sketch" in backbone_names() and "flux-dev" in backbone_names()


def test_sketch_calibrations_are_accepted_wherever_a_backbone_is_named(tmp_path, capsys, shared_benchmarks):
    """sketch-b through the registry, a reward config, `reprompt score` and `reprompt eval geneval`."""
    import json

    from reprompt.backbones import is_simulator
    from reprompt.cli.main import main
    from reprompt.rewards.composite import CompositeReward
    from reprompt.rewards.config import RewardConfig

    assert {"sketch", "sketch-b"} <= set(backbone_names()) and is_simulator("sketch-b")
    assert not is_simulator("flux-dev")
    with pytest.raises(RepromptError, match="Did you mean 'sketch-b'"):
        load_backbone("sketch-c")
    config = RewardConfig.from_dict(
        {"backbone": "sketch-b", "backbone_options": {"width": 32, "height": 32}, "components": ["geneval"]}
    )
    backbone = CompositeReward.from_config(config).backbone
    assert backbone.name == "sketch-b" and backbone.config == sketch_config("sketch-b", width=32, height=32)

    meta = {
        "tag": "counting",
        "include": [{"class": "cat", "count": 3}],
        "exclude": [{"class": "cat", "count": 4}],
    }
    completion = (
        "<reason>Three cats.</reason><prompt>A photo of three cats. All three cats sit in a row.</prompt>"
    )
    rc = main(
        [
            "score",
            "--prompt",
            "a photo of three cats",
            "--completion",
            completion,
            "--backbone",
            "sketch-b",
            "--width",
            "64",
            "--height",
            "64",
            "--rewards",
            "geneval",
            "--metadata",
            json.dumps(meta),
            "--json",
        ]
    )
    assert rc == 0 and json.loads(capsys.readouterr().out)["components"]["geneval"][0] == 1.0

    out = tmp_path / "run"
    rc = main(
        [
            "eval",
            "geneval",
            "--metadata",
            str(shared_benchmarks / "geneval" / "evaluation_metadata.jsonl"),
            "--out",
            str(out),
            "--policy",
            "none",
            "--backbone",
            "sketch-b",
            "--height",
            "64",
            "--per-tag",
            "1",
            "--images",
            "2",
            "--no-progress",
        ]
    )
    assert rc == 0
    run = json.loads((out / "run.json").read_text())
    assert (
        run["backbone"]["name"] == "sketch-b" and run["backbone"]["settings"]["relation_follow_rate"] == 0.26
    )
    summary = json.loads((out / "summary.json").read_text())
    assert summary["scorer"]["detector"] == "oracle" and 0.0 <= summary["results"]["overall"] <= 1.0


def test_compbench_scores_sketch_b_as_a_simulator(tmp_path):
    import json

    from reprompt.eval.compbench.evaluate import _default_detector

    (tmp_path / "run.json").write_text(json.dumps({"settings": {"backbone": "sketch-b"}}))
    assert _default_detector(tmp_path) == "oracle"
