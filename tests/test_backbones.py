"""Backbones loaded as users load them: presets on tiny random pipelines of the real architectures, folders,
errors, and the simulator's calibrations wherever a backbone is named. The contract every backbone keeps is
``tests/test_backbone_contract.py``."""

from __future__ import annotations

import pytest

from reprompt.backbones import backbone_names, load_backbone
from reprompt.backbones.sketch import sketch_config
from reprompt.errors import ModelNotFoundError, RepromptError


def test_pixart_limit_is_t5_300(tiny_model):
    b = load_backbone(
        "pixart-sigma", model=str(tiny_model("tiny-pixart-sigma")), height=32, width=32, steps=2
    )
    tc = b.count_tokens("a cat")
    assert tc.encoder.startswith("t5") and tc.limit == 300


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


def test_a_diffusers_size_off_the_16_grid_is_refused_not_rounded(capsys, tiny_model, tmp_path):
    """``--width 100`` on FLUX rendered a 96-pixel-wide image without a word and recorded width 100."""
    from reprompt.backbones.base import RenderSettings
    from reprompt.cli.main import main
    from reprompt.errors import ConfigError

    flux = str(tiny_model("tiny-flux"))
    argv = ["generate", "a cat", *f"--policy none --backbone flux-dev --model {flux} --steps 1".split()]
    assert main([*argv, "--width", "100", "--height", "64", "--out", str(tmp_path / "a")]) == 2
    assert "width 100 is not a multiple of 16, which a diffusers backbone needs: use 96 or 112" in (
        capsys.readouterr().err
    )
    assert not (tmp_path / "a").exists()
    backbone = load_backbone("flux-dev", model=flux, width=64, height=64, steps=1)
    with pytest.raises(ConfigError, match="height 72 is not a multiple of 16"):
        backbone.render(["a cat"], [0], RenderSettings(height=72))  # a call's own size too
    assert backbone.render(["a cat"], [0], RenderSettings(width=96)).images[0].size == (96, 64)
    load_backbone("sketch", width=100, height=100)  # the simulator draws any size


def test_a_missing_hub_id_is_not_called_a_missing_folder():
    """Every hub id has a '/', which the message took for a local path: ``Qwen/Qwen2.5-3B-Instruct`` missing
    from the cache read "no model folder at 'Qwen/...' (pass a local folder holding it)"."""
    from reprompt.utils.hub import not_found

    hub = str(not_found("policy", "Qwen/Qwen2.5-3B-Instruct", OSError("not cached")))
    assert "'Qwen/Qwen2.5-3B-Instruct': not a local folder and not in the Hugging Face cache" in hub, hub
    local = str(not_found("policy", "/models/qwen", OSError("missing")))
    assert "no model folder at '/models/qwen'" in local, local
