"""The diffusers wrapper on the tiny FLUX, SD3 and SDXL pipelines of the zoo: ``pipe(prompt, ...)``
rewrites first and renders exactly what the plain pipeline renders for the rewritten prompt."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from reprompt.errors import RepromptError
from tests.fake_openai import FakeOpenAI

REPLY = "<reason>One cat, on the left.</reason><prompt>A photo of one cat on the left side.</prompt>"
FAMILIES = {"flux": "tiny-flux", "sd3": "tiny-sd3", "sdxl": "tiny-sdxl"}
CALL = {"height": 64, "width": 64, "num_inference_steps": 2}


@pytest.fixture(scope="module")
def server():
    with FakeOpenAI(REPLY) as s:
        yield s


@pytest.fixture(scope="module", params=list(FAMILIES))
def pipe(request, tiny_model):
    from diffusers import DiffusionPipeline

    p = DiffusionPipeline.from_pretrained(str(tiny_model(FAMILIES[request.param])))
    p.set_progress_bar_config(disable=True)
    return p


def seeded(seed: int = 0):
    import torch

    return torch.Generator().manual_seed(seed)


def same(a, b) -> bool:
    return all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(a, b, strict=True))


def test_rewrites_first_then_renders_the_rewrite(pipe, server):
    from reprompt.integrations import RePromptDiffusionPipeline

    wrapped = RePromptDiffusionPipeline(pipe, server.base_url, api_model="m")
    out = wrapped("a cat", generator=seeded(), **CALL)
    assert out.prompts == ["A photo of one cat on the left side."]
    rw = out.rewrites[0]
    assert (rw.original, rw.reasoning) == ("a cat", "One cat, on the left.")
    assert rw.token_limit == 77 and 5 < rw.prompt_tokens < 77 and rw.truncated is False  # CLIP's count
    plain = pipe("A photo of one cat on the left side.", generator=seeded(), **CALL).images
    assert same(out.images, plain)
    assert out.pipeline_output.images is out.images and out["images"] is out.images

    n = len(server.requests)
    off = wrapped("a cat", rewrite=False, generator=seeded(), **CALL)
    assert len(server.requests) == n  # per-call off switch: the policy is not asked
    assert off.rewrites is None and off.prompts == ["a cat"]
    assert same(off.images, pipe("a cat", generator=seeded(), **CALL).images)
    assert not same(off.images, out.images)


def test_from_pipe_reuses_the_components(pipe, server):
    from diffusers import AutoPipelineForImage2Image

    from reprompt.integrations import RePromptDiffusionPipeline

    wrapped = RePromptDiffusionPipeline(pipe, server.base_url, api_model="m")
    again = RePromptDiffusionPipeline.from_pipe(wrapped)
    assert again.policy is wrapped.policy and type(again.pipe) is type(pipe)
    for name, component in pipe.components.items():
        if component is not None and hasattr(component, "parameters"):
            assert again.components[name] is component, name
    # a diffusers pipeline class's own from_pipe accepts the wrapper as the source pipeline
    img2img_cls = type(AutoPipelineForImage2Image.from_pipe(pipe))
    img2img = img2img_cls.from_pipe(wrapped)
    assert img2img.vae is pipe.vae and img2img.text_encoder is pipe.text_encoder
    out = again("a cat", generator=seeded(), **CALL)
    assert out.prompts == ["A photo of one cat on the left side."]


def test_batches_candidates_and_options_per_call(tiny_model, server):
    from diffusers import DiffusionPipeline

    from reprompt.integrations import wrap

    pipe = DiffusionPipeline.from_pretrained(str(tiny_model("tiny-flux")))
    wrapped = wrap(pipe, server.base_url, api_model="m")
    out = wrapped(
        ["a cat", "a dog"],
        num_images_per_prompt=2,
        rewrite_options={"temperature": 0.7, "num_candidates": 2, "seed": 1},
        generator=seeded(),
        **CALL,
    )
    assert len(out.images) == 4 and len(out.rewrites) == 2
    assert [len(c) for c in out.candidates] == [2, 2]
    assert [r.original for r in out.rewrites] == ["a cat", "a dog"]
    sent = server.requests[-1]
    assert sent["n"] == 2 and sent["temperature"] == 0.7 and sent["seed"] == 1
    with pytest.raises(RepromptError, match="unknown rewrite option"):
        wrapped("a cat", rewrite_options={"temprature": 0.7}, **CALL)
    images, rewrites = wrapped("a cat", return_dict=False, generator=seeded(), **CALL)
    assert len(images) == 1 and rewrites[0].prompt == "A photo of one cat on the left side."


def test_behaves_like_the_pipeline_it_wraps(tiny_model, server):
    import torch
    from diffusers import DiffusionPipeline

    from reprompt.integrations import RePromptDiffusionPipeline

    pipe = DiffusionPipeline.from_pretrained(str(tiny_model("tiny-flux")))
    wrapped = RePromptDiffusionPipeline(pipe, server.base_url, api_model="m")
    assert wrapped.transformer is pipe.transformer and wrapped.config == pipe.config
    assert wrapped.to("cpu") is wrapped
    wrapped.rewrite("a cat")  # measuring prompts in the pipeline's encoders leaves its settings alone
    assert "_progress_bar_config" not in vars(pipe)
    pipe.set_progress_bar_config(leave=False)
    RePromptDiffusionPipeline(pipe, wrapped.policy).rewrite("a dog")
    assert pipe._progress_bar_config == {"leave": False}
    assert "openai:m" in repr(wrapped)
    # from_pipe keeps the source's dtype (diffusers alone would cast to float32) and shares the weights
    pipe.to(torch.bfloat16)
    again = RePromptDiffusionPipeline.from_pipe(wrapped)
    assert again.transformer is pipe.transformer and again.transformer.dtype == torch.bfloat16
    from diffusers import FluxImg2ImgPipeline

    img2img = RePromptDiffusionPipeline.from_pipe(wrapped, FluxImg2ImgPipeline)
    assert type(img2img.pipe) is FluxImg2ImgPipeline and img2img.vae is pipe.vae
    with pytest.raises(RepromptError, match="needs policy="):
        RePromptDiffusionPipeline.from_pipe(pipe)
    with pytest.raises(RepromptError, match="expected a diffusers pipeline"):
        RePromptDiffusionPipeline(object(), wrapped.policy)


def test_local_policy_by_name_falls_back_to_the_original(tiny_model):
    from diffusers import DiffusionPipeline

    from reprompt.integrations import RePromptDiffusionPipeline
    from reprompt.policy import GenerationOptions

    pipe = DiffusionPipeline.from_pretrained(str(tiny_model("tiny-sdxl")))
    pipe.set_progress_bar_config(disable=True)
    wrapped = RePromptDiffusionPipeline(
        pipe, str(tiny_model("tiny-qwen2")), options=GenerationOptions(max_new_tokens=8)
    )
    out = wrapped("a red bus", generator=seeded(), **CALL)
    assert out.rewrites[0].fallback and out.prompts == ["a red bus"]  # random weights never write the format
    assert same(out.images, pipe("a red bus", generator=seeded(), **CALL).images)


@pytest.mark.skipif(
    importlib.util.find_spec("reprompt.guard") is None, reason="no intent guard in this build"
)
def test_intent_guard_per_call(tiny_model):
    from diffusers import DiffusionPipeline

    from reprompt.integrations import RePromptDiffusionPipeline

    pipe = DiffusionPipeline.from_pretrained(str(tiny_model("tiny-flux")))
    with FakeOpenAI("<reason>a pet</reason><prompt>A dog sleeping on a rug.</prompt>") as s:
        wrapped = RePromptDiffusionPipeline(pipe, s.base_url, api_model="m")
        out = wrapped("three cats on a red couch", rewrite_options={"guard": "fallback"}, **CALL)
        assert out.prompts == ["three cats on a red couch"] and not out.rewrites[0].guard.ok
        out = wrapped("three cats on a red couch", **CALL)
        assert out.prompts == ["A dog sleeping on a rug."]
