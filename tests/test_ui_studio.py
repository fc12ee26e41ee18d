"""The UI's engine (no browser): rewrite, same-seed renders, edit and re-render, rewrite off, candidates,
backbone settings, records and downloads; plus ``reprompt ui``'s command line and its bind address."""

from __future__ import annotations

import importlib.util
import json
import weakref
import zipfile

import numpy as np
import pytest
from PIL import Image

from reprompt.cli.common import model_spec
from reprompt.cli.main import main, make_parser
from reprompt.errors import RepromptError
from tests.fake_openai import FakeOpenAI

REPLY = (
    "<reason>Objects: one apple and one car. Layout: apple left, car right.</reason>"
    "<prompt>A red apple on the left side of the image. A blue car on the right side of the image.</prompt>"
)
ENHANCED = "A red apple on the left side of the image. A blue car on the right side of the image."


def ui_args(*argv: str):
    return make_parser().parse_args(["ui", *argv])


def ui_spec(*argv: str):
    """The ModelSpec `reprompt ui ARGV` builds for the studio."""
    return model_spec(ui_args(*argv))


@pytest.fixture()
def served(tmp_path):
    from reprompt.ui.studio import Studio

    with FakeOpenAI(REPLY) as server:
        yield server, Studio(ui_spec("--policy", server.base_url, "--height", "96"), tmp_path / "turns")


def pixels(paths) -> list[np.ndarray]:
    return [np.asarray(Image.open(p).convert("RGB")) for p in paths]


def same(paths, images) -> bool:
    """The saved PNGs hold exactly these images (paths or PIL images), in order."""
    other = (
        [np.asarray(im.convert("RGB")) for im in images]
        if images and hasattr(images[0], "convert")
        else pixels(images)
    )
    return len(paths) == len(other) and all(
        np.array_equal(a, b) for a, b in zip(pixels(paths), other, strict=True)
    )


def test_enhance_renders_original_and_rewrite_with_the_same_seeds(served):
    from reprompt.backbones import load_backbone

    server, studio = served
    stages: list[tuple[float, str]] = []
    turn = studio.enhance(
        "a red apple and a blue car", seed=5, num_images=2, progress=lambda f, d: stages.append((f, d))
    )
    assert turn.kind == "rewrite" and turn.rewrite.prompt == ENHANCED
    assert turn.rewrite.reasoning.startswith("Objects: one apple")
    assert turn.seeds == [5, 6] and server.requests[-1]["model"] == "fake-model"  # listed at the URL
    # progress is reported in order, from loading to writing the record
    assert [f for f, _ in stages] == sorted(f for f, _ in stages)
    assert any("rewriting" in d for _, d in stages) and stages[-1][1] == "writing the record"
    # the images are exactly what the backbone renders for each prompt with those seeds
    sketch = load_backbone("sketch", height=96, width=96)
    assert same(turn.original_paths, sketch.render(["a red apple and a blue car"] * 2, [5, 6]).images)
    assert same(turn.rewritten_paths, sketch.render([ENHANCED] * 2, [5, 6]).images)
    record = json.loads(turn.record_path.read_text())
    assert record["original"] == "a red apple and a blue car" and record["rewritten"] == ENHANCED
    assert record["seeds"] == [5, 6] and record["settings"]["ui_kind"] == "rewrite"
    with zipfile.ZipFile(turn.zip_path) as z:
        names = set(z.namelist())
    assert {"record.json", "comparison.png", "original_0.png", "rewritten_1.png"} <= names


def test_edit_renders_the_users_prompt_beside_the_same_originals(served):
    from reprompt.backbones import load_backbone
    from reprompt.ui.studio import describe

    _, studio = served
    first = studio.enhance("a red apple and a blue car", seed=3)
    edited = "A red apple at the top of the image. A blue car at the bottom of the image."
    turn = studio.render_edit(first, edited)
    assert turn.kind == "edit" and turn.parent == first.number and turn.seeds == first.seeds
    assert turn.rewrite.prompt == edited and turn.rewrite.reasoning == first.rewrite.reasoning
    assert turn.rewrite.prompt_tokens is not None
    assert same(turn.original_paths, first.original_paths)
    assert same(
        turn.rewritten_paths, load_backbone("sketch", height=96, width=96).render([edited], [3]).images
    )
    assert not same(turn.rewritten_paths, first.rewritten_paths)
    record = json.loads(turn.record_path.read_text())
    assert record["rewritten"] == edited and record["settings"]["edited_from"] == ENHANCED
    assert "Edited by you" in describe(turn)
    with pytest.raises(RepromptError, match="empty prompt"):
        studio.render_edit(first, "  ")


def test_rewrite_off_renders_the_original_only(served):
    server, studio = served
    n = len(server.requests)
    turn = studio.enhance("a red apple", rewrite=False, seed=1)
    assert len(server.requests) == n  # the policy is not asked
    assert turn.kind == "original" and turn.rewritten_paths == [] and len(turn.original_paths) == 1
    assert json.loads(turn.record_path.read_text())["files"]["rewritten"] == ["image_0.png"]
    # the user can still write their own version and compare it against the same seed
    edit = studio.render_edit(turn, "A red apple in the center of the image.")
    assert len(edit.original_paths) == 1 and len(edit.rewritten_paths) == 1
    assert json.loads(edit.record_path.read_text())["files"]["comparison"] == "comparison.png"


def test_candidates_backbone_settings_and_errors(served):
    from reprompt.backbones.base import RenderSettings

    server, studio = served
    turn = studio.enhance(
        "a red apple",
        candidates=3,
        temperature=0.9,
        policy_seed=11,
        settings=RenderSettings(width=80, height=48),
    )
    assert len(turn.candidates) == 3 and server.requests[-1]["n"] == 3 and server.requests[-1]["seed"] == 11
    assert len(json.loads(turn.record_path.read_text())["candidates"]) == 3
    assert Image.open(turn.original_paths[0]).size == (80, 48)
    assert studio._backbone.config.width == 96  # the per-request size did not stick
    with pytest.raises(RepromptError, match="temperature"):
        studio.enhance("a red apple", candidates=2, temperature=0.0)
    with pytest.raises(RepromptError, match="images must be between"):
        studio.enhance("a red apple", num_images=99)
    with pytest.raises(RepromptError, match="width must be between"):
        RenderSettings(width=3)
    with pytest.raises(RepromptError, match="empty prompt"):
        studio.enhance("")


def test_rendering_another_candidate_keeps_its_reasoning(tmp_path):
    from reprompt.ui.studio import Studio, describe

    replies = [
        "<reason>Plan A: the apple on the left.</reason><prompt>A red apple on the left side.</prompt>",
        "<reason>Plan B: the apple at the top.</reason><prompt>A red apple at the top of the image.</prompt>",
    ]
    with FakeOpenAI(lambda body: replies[: body["n"]]) as server:
        studio = Studio(ui_spec("--policy", server.base_url), tmp_path)
        turn = studio.enhance("a red apple", candidates=2, temperature=0.8)
        assert [c.prompt for c in turn.candidates] == [
            "A red apple on the left side.",
            "A red apple at the top of the image.",
        ]
        assert turn.rewrite.candidate == 0
        other = studio.render_edit(turn, "A red apple at the top of the image.")
        assert other.kind == "candidate" and other.rewrite.candidate == 1
        assert other.rewrite.reasoning == "Plan B: the apple at the top."
        assert "Candidate 2 of turn" in describe(other)
        mine = studio.render_edit(turn, "A red apple in the bottom right corner.")
        assert mine.kind == "edit" and mine.rewrite.reasoning == "Plan A: the apple on the left."


def test_diffusers_backbone_settings_apply_per_request(tmp_path, tiny_model):
    from reprompt.backbones.base import RenderSettings
    from reprompt.ui.studio import Studio

    spec = ui_spec("--policy", "none", "--backbone", "flux-dev", "--model", str(tiny_model("tiny-flux")))
    studio = Studio(spec, tmp_path)
    turn = studio.enhance("a cat", settings=RenderSettings(width=32, height=48, steps=2, guidance=1.0))
    assert Image.open(turn.original_paths[0]).size == (32, 48)
    bb = studio._backbone
    assert (bb.width, bb.height, bb.steps, bb.guidance) == (512, 512, 50, 3.5)  # flux-dev's own, restored
    assert turn.settings["render"] == {"width": 32, "height": 48, "steps": 2, "guidance": 1.0}


def test_switching_the_policy_frees_the_old_one(tmp_path, tiny_model):
    from reprompt.ui.studio import Studio

    studio = Studio(ui_spec("--policy", str(tiny_model("tiny-qwen2")), "--max-new-tokens", "8"), tmp_path)
    turn = studio.enhance("a cat")
    assert turn.rewrite.fallback  # random weights: the original is rendered, and the status says why
    ref = weakref.ref(studio._policy.model)
    studio.enhance("a cat", policy="none")
    assert studio.policy_name == "none" and ref() is None


@pytest.mark.skipif(
    importlib.util.find_spec("reprompt.guard") is None, reason="no intent guard in this build"
)
def test_guard_mode_from_the_ui(tmp_path):
    from reprompt.ui.studio import Studio, describe

    with FakeOpenAI("<reason>fruit</reason><prompt>A green pear on a table.</prompt>") as server:
        studio = Studio(ui_spec("--policy", server.base_url), tmp_path)
        turn = studio.enhance("two red apples", guard="fallback")
        assert turn.rewrite.prompt == "two red apples" and turn.rewrite.fallback
        assert "Intent guard:" in describe(turn)
        edit = studio.render_edit(turn, "Two red apples on a white plate.")
        assert edit.rewrite.guard.ok  # the user's version is checked too


def test_models_are_fixed_when_others_can_reach_the_ui(tmp_path):
    from reprompt.ui.studio import Studio
    from reprompt.utils.endpoints import is_loopback

    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5")
    studio = Studio(ui_spec("--policy", "none"), tmp_path, allow_model_change=False)
    assert studio.enhance("a cat").kind == "original"
    with pytest.raises(RepromptError, match="restart it to use other models"):
        studio.enhance("a cat", policy="/some/folder")


def test_cli_defaults_and_errors(capsys):
    args = ui_args()
    assert (args.host, args.policy, args.backbone, args.port) == (
        "127.0.0.1",
        "smollm2-sketch",
        "sketch",
        7860,
    )
    assert main(["ui", "--port", "70000"]) == 2
    assert "--port must be between" in capsys.readouterr().err


def test_app_serves_on_localhost_only(tmp_path):
    import httpx

    from reprompt.ui.app import launch

    demo, url = launch(ui_spec("--policy", "none"), out_dir=tmp_path, port=0, block=False)
    try:
        assert url.startswith("http://127.0.0.1:")
        assert demo.server_name == "127.0.0.1"
        page = httpx.get(url, timeout=30)
        assert page.status_code == 200 and "reprompt" in page.text
    finally:
        demo.close()
