"""The Backbone contract, checked on every registered backbone (``backbone_names()``: the sketch simulator's
calibrations and every diffusers preset, each preset on a tiny random pipeline of its own architecture), as
diffusers' ``PipelineTesterMixin`` checks every pipeline:

- image k depends only on (prompt k, seed k): a batch renders what each prompt renders alone, the same seed
  gives the same image and another seed another image;
- ``width``/``height`` are the size it renders, ``settings()`` records them, ``source()`` says what loaded;
- per-call ``RenderSettings`` change that call only;
- ``count_tokens`` agrees with the text encoder the backbone really feeds (and its truncation warning).
"""

from __future__ import annotations

import numpy as np
import pytest

from reprompt.backbones import backbone_names, is_simulator, load_backbone
from reprompt.backbones.base import Backbone, RenderSettings

# The tiny pipeline of each diffusers architecture; a preset of a new architecture must add one here.
TINY_BY_PIPELINE = {
    "FluxPipeline": "tiny-flux",
    "StableDiffusion3Pipeline": "tiny-sd3",
    "PixArtSigmaPipeline": "tiny-pixart-sigma",
    "StableDiffusionXLPipeline": "tiny-sdxl",
}
SIZE = 32
PROMPTS = ["a red cat", "two dogs on a sofa", "a bus left of a tree"]


@pytest.fixture(scope="module", params=backbone_names())
def backbone(request, tiny_model) -> Backbone:
    name = request.param
    if is_simulator(name):
        return load_backbone(name, width=SIZE, height=SIZE)
    from reprompt.backbones.diffusers_backbone import PRESETS

    tiny = TINY_BY_PIPELINE.get(PRESETS[name].pipeline)
    assert tiny, f"preset {name!r} ({PRESETS[name].pipeline}) has no tiny pipeline to test the contract on"
    return load_backbone(name, model=str(tiny_model(tiny)), height=SIZE, width=SIZE, steps=2, batch_size=2)


def _pixels(img) -> np.ndarray:
    return np.asarray(img.convert("RGB"), dtype=np.int16)


def _close(a, b) -> bool:
    """Equal images (a diffusers batch may differ from a single render in the last bit of a few pixels)."""
    return np.abs(_pixels(a) - _pixels(b)).max() <= 2


def test_a_batch_renders_what_each_prompt_renders_alone(backbone: Backbone) -> None:
    seeds = [5, 6, 7]
    batch = backbone.render(PROMPTS, seeds)
    assert batch.seeds == seeds and batch.prompts == PROMPTS and len(batch.images) == 3
    for prompt, seed, image in zip(PROMPTS, seeds, batch.images, strict=True):
        assert _close(backbone.render([prompt], [seed]).images[0], image)


def test_same_seed_same_image_other_seed_other_image(backbone: Backbone) -> None:
    first = backbone.render(PROMPTS[:1], [3]).images[0]
    assert np.array_equal(_pixels(backbone.render(PROMPTS[:1], [3]).images[0]), _pixels(first))
    assert not np.array_equal(_pixels(backbone.render(PROMPTS[:1], [4]).images[0]), _pixels(first))


def test_size_settings_and_source(backbone: Backbone) -> None:
    image = backbone.render(PROMPTS[:1], [0]).images[0]
    assert image.size == (backbone.width, backbone.height) == (SIZE, SIZE)
    settings = backbone.settings()
    assert (settings["width"], settings["height"]) == (SIZE, SIZE)
    resolved, revision = backbone.source()
    assert isinstance(resolved, str) and resolved and (revision is None or isinstance(revision, str))
    assert isinstance(backbone.name, str) and backbone.name


def test_render_settings_apply_to_one_call_only(backbone: Backbone) -> None:
    before = backbone.settings()
    out = backbone.render(PROMPTS[:1], [0], RenderSettings(width=48, height=SIZE))
    assert out.images[0].size == (48, SIZE)
    assert backbone.settings() == before and (backbone.width, backbone.height) == (SIZE, SIZE)
    assert backbone.render(PROMPTS[:1], [0]).images[0].size == (SIZE, SIZE)


def test_count_tokens_agrees_with_the_encoder(backbone: Backbone) -> None:
    long = "a very detailed photo of a red cat on a green sofa " * 12
    for text in ("a cat", long):
        tc = backbone.count_tokens(text)
        if is_simulator(backbone.name):  # the simulator reads exactly what it counts
            reading = backbone.read(text)  # type: ignore[attr-defined]
            assert (tc.tokens, tc.truncated) == (reading.tokens, reading.truncated)
        else:  # the tokenizer of the encoder whose limit binds (CLIP when there is one, else T5)
            pipe = backbone.pipe  # type: ignore[attr-defined]
            tokenizers = [getattr(pipe, a, None) for a in ("tokenizer", "tokenizer_2", "tokenizer_3")]
            tokenizers = [t for t in tokenizers if t is not None]
            clip = [t for t in tokenizers if "T5" not in type(t).__name__]
            tok = (clip or tokenizers)[0]
            assert tc.tokens == len(tok(text, add_special_tokens=True).input_ids)
            assert tc.limit == (77 if clip else backbone.max_sequence_length)  # type: ignore[attr-defined]
    assert not backbone.count_tokens("a cat").truncated
    long_tc = backbone.count_tokens(long * 6)
    assert long_tc.truncated
    warned = backbone.render([long * 6], [0]).warnings
    assert any(str(long_tc.limit) in w for w in warned)
