"""One rewrite → render path: the five front ends render the same prompt for the same options.

The policy is a two-candidate fake rewriter (a real OpenAI-compatible rewriter talking to a local fake
server): candidate 1 writes no prompt block (it falls back to the original), candidate 2 writes a good one.
``reprompt generate``, ``reprompt serve``, the web UI, the diffusers wrapper and the ComfyUI node must all
render candidate 2, with the same seed rule.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from reprompt.backbones import load_backbone
from tests.fake_openai import FakeOpenAI

PROMPT = "a red apple and a blue car"
BROKEN = "Sure! Here is a better prompt: a shiny red apple next to a blue car."  # no tags: a fallback
GOOD = "A red apple on the left side of the image. A blue car on the right side of the image."
REPLIES = [
    BROKEN,
    f"<reason>Objects: one apple, one car. Apple left, car right.</reason><prompt>{GOOD}</prompt>",
]
SEED = 3


@pytest.fixture(scope="module")
def server():
    with FakeOpenAI(lambda body: REPLIES[: body.get("n", 1)]) as s:
        yield s


def pixels(images) -> list[np.ndarray]:
    return [np.asarray(im.convert("RGB")) for im in images]


def sketch_render(prompt: str, n: int = 1) -> list[np.ndarray]:
    return pixels(load_backbone("sketch").render([prompt] * n, [SEED + k for k in range(n)]).images)


def test_reprompt_generate_renders_the_first_usable_candidate(server, tmp_path, capsys):
    from PIL import Image

    from reprompt.cli.main import main

    out = tmp_path / "gen"
    code = main(
        ["generate", PROMPT, "--policy", "openai", "--api-base", server.base_url, "--api-model", "fake-model",
         "--backbone", "sketch", "--candidates", "2", "--temperature", "0.9", "--seed", str(SEED),
         "--images", "2", "--out", str(out)]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    record = json.loads((out / "record.json").read_text())
    assert record["rewritten"] == GOOD and record["rewrite"]["candidate"] == 1
    assert [c["fallback"] for c in record["candidates"]] == [True, False]  # every candidate is recorded
    rendered = pixels(Image.open(out / f) for f in record["files"]["rewritten"])
    assert all(np.array_equal(a, b) for a, b in zip(rendered, sketch_render(GOOD, 2), strict=True))


def test_reprompt_serve_renders_the_first_usable_candidate(server):
    from fastapi.testclient import TestClient

    from reprompt.policy import GenerationOptions, load_policy
    from reprompt.serving.image_service import create_app
    from reprompt.utils.images import decode_png

    options = GenerationOptions(num_candidates=2, temperature=0.9)
    policy = load_policy("openai", api_base=server.base_url, api_model="fake-model")
    app = create_app(policy, load_backbone("sketch"), options=options)
    with TestClient(app) as client:
        body = client.post("/v1/images/generations", json={"prompt": PROMPT, "seed": SEED}).json()
    assert body["data"][0]["revised_prompt"] == GOOD and body["reprompt"]["fallback"] is False
    assert np.array_equal(pixels([decode_png(body["data"][0]["b64_json"])])[0], sketch_render(GOOD)[0])


def test_the_ui_renders_the_first_usable_candidate(server, tmp_path):
    from PIL import Image

    from reprompt.model_spec import BackboneChoice, ModelSpec, PolicyChoice
    from reprompt.ui.studio import Studio

    studio = Studio(ModelSpec(PolicyChoice(server.base_url), BackboneChoice("sketch")), tmp_path)
    turn = studio.enhance(PROMPT, seed=SEED, candidates=2, temperature=0.9)
    assert turn.rewrite.prompt == GOOD and len(turn.candidates) == 2
    assert np.array_equal(pixels([Image.open(turn.rewritten_paths[0])])[0], sketch_render(GOOD)[0])


def test_the_diffusers_wrapper_renders_the_first_usable_candidate(server, tiny_model):
    import torch
    from diffusers import DiffusionPipeline

    from reprompt.integrations import RePromptDiffusionPipeline

    pipe = DiffusionPipeline.from_pretrained(str(tiny_model("tiny-flux")))
    pipe.set_progress_bar_config(disable=True)
    call = {"height": 32, "width": 32, "num_inference_steps": 2}
    wrapped = RePromptDiffusionPipeline(pipe, server.base_url)
    out = wrapped(
        PROMPT,
        rewrite_options={"num_candidates": 2, "temperature": 0.9},
        generator=torch.Generator().manual_seed(SEED),
        **call,
    )
    assert out.prompts == [GOOD] and out.rewrites[0].candidate == 1
    plain = pipe(GOOD, generator=torch.Generator().manual_seed(SEED), **call).images
    assert np.array_equal(np.asarray(out.images[0]), np.asarray(plain[0]))


def test_the_comfyui_node_passes_on_the_first_usable_candidate(server):
    import asyncio
    import importlib.util

    stub = str(Path(__file__).resolve().parent / "comfy_stub")  # a stand-in for ComfyUI's comfy_api.latest
    folder = Path(__file__).resolve().parents[1] / "comfyui"
    sys.path.insert(0, stub)
    try:
        spec = importlib.util.spec_from_file_location("reprompt_front_end_node", folder / "__init__.py")
        package = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = package
        spec.loader.exec_module(package)
        (node,) = asyncio.run(asyncio.run(package.comfy_entrypoint()).get_node_list())
        enhanced, reasoning = node.execute(
            prompt=PROMPT,
            policy=server.base_url,
            enable=True,
            candidates=2,
            seed=SEED,
            temperature=0.9,
            keep_loaded=False,
        ).result
    finally:
        sys.path.remove(stub)
        for name in [m for m in sys.modules if m == "comfy_api" or m.startswith("comfy_api.")]:
            del sys.modules[name]
    assert enhanced == GOOD and "fallback" not in reasoning


def test_choose_rewrite_prefers_a_usable_candidate_the_guard_passes_else_says_why():
    from reprompt.guard import check_rewrite
    from reprompt.pipeline import choose_rewrite
    from reprompt.policy.base import Rewrite

    def rw(prompt: str, k: int, fallback: bool = False, guard: bool = False) -> Rewrite:
        r = Rewrite(
            PROMPT, prompt, "", "", not fallback, fallback, candidate=k, issue="no tags" if fallback else None
        )
        r.guard = check_rewrite(PROMPT, prompt) if guard else None
        return r

    dropped = rw("A red apple.", 1, guard=True)  # keeps the apple, drops the car: the guard warns
    kept = rw(GOOD, 2, guard=True)
    assert choose_rewrite([rw(PROMPT, 0, fallback=True), dropped, kept]) is kept
    assert choose_rewrite([rw(PROMPT, 0, fallback=True), dropped]) is dropped  # guard warn: used, reported
    none = choose_rewrite([rw(PROMPT, 0, fallback=True), rw(PROMPT, 1, fallback=True)])
    assert none.fallback and none.prompt == PROMPT and "none of the 2 candidates" in none.issue
    single = rw(PROMPT, 0, fallback=True)
    assert choose_rewrite([single]) is single  # one candidate: its own reason stands
