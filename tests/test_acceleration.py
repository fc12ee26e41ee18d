"""diffusers' step caches and torch.compile as backbone options, on the tiny FLUX and SD3 pipelines.

A cache must really skip work (counted: calls of each transformer block's attention projection, which runs
only when the block computes), keep a seed's image the same twice, change nothing outside the call that asks
for it, and keep image k of a batch what prompt k renders alone; a combination a model cannot run is refused
with a message before any image.
"""

from __future__ import annotations

import numpy as np
import pytest

from reprompt.backbones import load_backbone
from reprompt.backbones.acceleration import parse_cache, parse_compile
from reprompt.backbones.base import RenderSettings
from reprompt.errors import RepromptError

STEPS = 4


def _pixels(image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.int16)


@pytest.fixture(scope="module")
def flux(tiny_model):
    return load_backbone("flux-dev", model=str(tiny_model("tiny-flux")), width=32, height=32, steps=STEPS)


@pytest.fixture(scope="module")
def sd3(tiny_model):
    return load_backbone("sd3", model=str(tiny_model("tiny-sd3")), width=32, height=32, steps=2)


class BlockComputes:
    """How many times each transformer block of the tiny FLUX computed (its attention's query projection
    runs only when the block does: a skipped block returns cached or predicted values without it)."""

    def __init__(self, transformer) -> None:
        self.counts: dict[int, int] = {}
        blocks = list(transformer.transformer_blocks) + list(transformer.single_transformer_blocks)
        self.handles = [
            b.attn.to_q.register_forward_pre_hook(lambda *_, i=i: self._hit(i)) for i, b in enumerate(blocks)
        ]

    def _hit(self, i: int) -> None:
        self.counts[i] = self.counts.get(i, 0) + 1

    def render(self, backbone, prompts, seeds, settings=None):
        self.counts = {}
        return backbone.render(prompts, seeds, settings), dict(self.counts)

    def close(self) -> None:
        for h in self.handles:
            h.remove()


@pytest.fixture
def computes(flux):
    counter = BlockComputes(flux.pipe.transformer)
    yield counter
    counter.close()


def test_specs_have_one_spelling_and_clear_errors() -> None:
    assert parse_cache("first-block:0.12").text == "first-block:threshold=0.12"
    assert parse_cache("first-block:threshold=0.12") == parse_cache("first-block:0.12")
    assert parse_cache("taylorseer:4").text == "taylorseer:cache_interval=4"
    assert parse_cache("none").off and parse_cache(None) is None
    assert RenderSettings(cache="first-block:0.12") == RenderSettings(cache="first-block:threshold=0.12")
    assert parse_compile("true").text == parse_compile("default").text == "default"
    assert parse_compile("mode=max-autotune").text == "max-autotune"
    assert parse_compile("backend=eager,fullgraph=true").text == "backend=eager,fullgraph=true"
    for bad, message in [
        ("firstblock", "Did you mean 'first-block'"),
        ("first-block:x", "must be a number"),
        ("first-block:", "give a value"),
        ("none:1", "takes no options"),
    ]:
        with pytest.raises(RepromptError, match=message):
            parse_cache(bad)
    with pytest.raises(RepromptError, match="Did you mean 'default'"):
        parse_compile("defualt")
    with pytest.raises(RepromptError, match="unknown key 'modes'"):
        parse_compile("modes=default")


def test_first_block_cache_skips_blocks_and_keeps_seeds(flux, computes) -> None:
    plain, counts = computes.render(flux, ["a red cat"], [3])
    assert counts == {0: STEPS, 1: STEPS}  # every block, every step
    # threshold 10: the rest of the transformer is skipped whenever First-Block-Cache may (every step
    # after the first), as a converged real model skips most steps
    cached = RenderSettings(cache="first-block:10")
    first, counts = computes.render(flux, ["a red cat"], [3], cached)
    assert counts == {0: STEPS, 1: 1}, counts  # the head block always computes; the tail once
    again, counts = computes.render(flux, ["a red cat"], [3], cached)
    assert counts == {0: STEPS, 1: 1}  # diffusers reset its state after the call
    assert np.array_equal(_pixels(first.images[0]), _pixels(again.images[0]))  # a seed, the same image
    assert not np.array_equal(_pixels(first.images[0]), _pixels(plain.images[0]))  # skipping changed it
    # the cache belonged to that call: the next plain call computes everything and renders the plain image
    after, counts = computes.render(flux, ["a red cat"], [3])
    assert counts == {0: STEPS, 1: STEPS}
    assert np.array_equal(_pixels(after.images[0]), _pixels(plain.images[0]))
    assert "cache" not in flux.settings()


def test_first_block_cache_renders_a_batch_one_image_at_a_time(flux, computes) -> None:
    """First-Block-Cache decides over the whole batch: the backbone renders one image per pipeline call
    under it, so image k is exactly what prompt k renders alone."""
    cached = RenderSettings(cache="first-block:0.5")
    prompts, seeds = ["a red cat", "two dogs on a sofa", "a bus"], [1, 2, 3]
    batch, _ = computes.render(flux, prompts, seeds, cached)
    for prompt, seed, image in zip(prompts, seeds, batch.images, strict=True):
        alone = flux.render([prompt], [seed], cached).images[0]
        assert np.array_equal(_pixels(alone), _pixels(image))


@pytest.mark.parametrize(
    ("spec", "steps", "most"),
    [
        ("taylorseer:cache_interval=2,disable_cache_before_step=1", 6, 4),  # steps 0, 1, 3, 5 compute
        ("mag:10", 6, 3),  # FLUX's published magnitude ratios: skips up to max_skip_steps=3 in a row
    ],
)
def test_taylorseer_and_magcache_skip_on_tiny_flux(flux, computes, spec, steps, most) -> None:
    settings = RenderSettings(steps=steps, cache=spec)
    first, counts = computes.render(flux, ["a red cat"], [5], settings)
    assert counts and all(n <= most < steps for n in counts.values()), counts
    again, counts_again = computes.render(flux, ["a red cat"], [5], settings)
    assert counts_again == counts
    assert np.array_equal(_pixels(first.images[0]), _pixels(again.images[0]))


def test_a_cache_loaded_with_the_backbone_and_turned_off_per_call(tiny_model) -> None:
    backbone = load_backbone(
        "flux-dev",
        model=str(tiny_model("tiny-flux")),
        width=32,
        height=32,
        steps=STEPS,
        cache="first-block:10",
    )
    assert backbone.settings()["cache"] == "first-block:threshold=10"
    counter = BlockComputes(backbone.pipe.transformer)
    try:
        _, counts = counter.render(backbone, ["a cat"], [0])
        assert counts == {0: STEPS, 1: 1}
        _, counts = counter.render(backbone, ["a cat"], [0], RenderSettings(cache="none"))
        assert counts == {0: STEPS, 1: STEPS}
    finally:
        counter.close()


def test_unsupported_combinations_are_refused_clearly(sd3, tiny_model) -> None:
    # SD3's transformer has no diffusers cache support: refused at load and per call, before any image
    with pytest.raises(RepromptError, match=r"SD3Transformer2DModel\) has no diffusers cache support"):
        load_backbone("sd3", model=str(tiny_model("tiny-sd3")), width=32, height=32, cache="first-block")
    with pytest.raises(RepromptError, match="has no diffusers cache support"):
        sd3.render(["a cat"], [0], RenderSettings(cache="taylorseer"))
    assert len(sd3.render(["a cat"], [0]).images) == 1  # and the backbone still renders
    # the simulator has no denoising steps
    with pytest.raises(RepromptError, match="sketch simulator has no denoising steps"):
        load_backbone("sketch", cache="first-block")
    with pytest.raises(RepromptError, match="sketch simulator has no denoising steps"):
        load_backbone("sketch").render(["a cat"], [0], RenderSettings(compile="default"))
    load_backbone("sketch").render(["a cat"], [0], RenderSettings(cache="none"))  # "none" is fine
    # a diffusers config field that does not exist, and fullgraph with a cache's graph break
    with pytest.raises(RepromptError, match="has no field 'treshold'.*Did you mean 'threshold'"):
        load_backbone(
            "flux-dev",
            model=str(tiny_model("tiny-flux")),
            width=32,
            height=32,
            cache="first-block:treshold=1",
        )
    with pytest.raises(RepromptError, match="fullgraph=true cannot run with cache"):
        load_backbone(
            "flux-dev",
            model=str(tiny_model("tiny-flux")),
            cache="first-block",
            compile="fullgraph=true",
        )


def test_cli_refuses_before_loading(capsys) -> None:
    from reprompt.cli.main import main

    code = main(["generate", "a cat", "--policy", "none", "--backbone", "sketch", "--cache", "first-block"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("reprompt: error:") and "no denoising steps" in err
    code = main(["generate", "a cat", "--policy", "none", "--backbone", "flux-dev", "--cache", "fbc"])
    err = capsys.readouterr().err
    assert code == 2 and "unknown cache 'fbc'" in err


@pytest.mark.parametrize(
    "argv",
    [
        ["generate", "--help"],
        ["serve", "--help"],
        ["ui", "--help"],
        ["eval", "geneval", "--help"],
        ["eval", "compbench", "generate", "--help"],
        ["score", "--help"],
    ],
)
def test_every_rendering_command_takes_cache_and_compile(capsys, argv) -> None:
    from reprompt.cli.main import main

    with pytest.raises(SystemExit):
        main(argv)
    out = capsys.readouterr().out
    assert "--cache" in out and "--compile" in out


@pytest.mark.slow
def test_compile_runs_the_transformer_through_torch_compile(flux, sd3) -> None:
    """``--compile`` wraps the transformer in torch.compile for the calls that ask (the ``eager`` backend
    here: it traces the graphs as inductor would, without minutes of code generation on a CPU)."""
    from torch._dynamo.utils import counters

    for backbone in (flux, sd3):
        plain = backbone.render(["a red cat"], [7]).images[0]
        before = counters["stats"]["unique_graphs"]
        compiled = backbone.render(["a red cat"], [7], RenderSettings(compile="backend=eager")).images[0]
        assert counters["stats"]["unique_graphs"] > before  # the transformer ran as captured graphs
        assert np.array_equal(_pixels(plain), _pixels(compiled))
        assert type(backbone.pipe.transformer).__name__.endswith("Transformer2DModel")  # swapped back


def test_render_profile_flag_renders_with_a_reward_configs_profile(tmp_path) -> None:
    """``--render-profile REWARD_YAML`` (every rendering command) fills the backbone options the flags left
    unset from the reward's train-time profile: the paired check runs one evaluation with it and one without."""
    import yaml

    from reprompt.cli.common import backbone_choice
    from reprompt.cli.main import make_parser

    reward = tmp_path / "reward.yaml"
    reward.write_text(
        yaml.safe_dump({"backbone": "flux-dev", "render": {"steps": 28, "cache": "first-block:0.12"}})
    )
    parser = make_parser()
    base = ["eval", "geneval", "--metadata", "m.jsonl", "--out", "o", "--backbone", "flux-dev"]
    args = parser.parse_args([*base, "--render-profile", str(reward)])
    options = backbone_choice(args).options
    assert (options.steps, options.cache) == (28, "first-block:threshold=0.12")
    args = parser.parse_args([*base, "--render-profile", str(reward), "--steps", "20"])
    assert backbone_choice(args).options.steps == 20  # a flag wins
    assert backbone_choice(parser.parse_args(base)).options.steps is None  # without: the preset's
    args = parser.parse_args(["generate", "a cat", "--backbone", "sd3", "--render-profile", str(reward)])
    with pytest.raises(RepromptError, match="its profile is for backbone 'flux-dev'"):
        backbone_choice(args)
    empty = tmp_path / "empty.yaml"
    empty.write_text(yaml.safe_dump({"backbone": "flux-dev"}))
    args = parser.parse_args([*base, "--render-profile", str(empty)])
    with pytest.raises(RepromptError, match="sets no render profile"):
        backbone_choice(args)


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--steps", "4"], "steps 4"),
        (["--guidance", "3"], "guidance 3.0"),
        (["--steps", "4", "--cache", "none"], "steps 4"),
    ],
)
def test_the_simulator_refuses_denoising_flags_it_would_drop(capsys, tmp_path, flags, named) -> None:
    """``--backbone sketch --steps 4`` once rendered without a word: the simulator was handed its size only."""
    from reprompt.cli.main import main

    argv = ["generate", "a cat", "--policy", "none", "--backbone", "sketch", "--out", str(tmp_path), *flags]
    code = main(argv)
    err = capsys.readouterr().err
    assert (
        code == 2 and f"sketch simulator has no denoising steps, guidance or transformer: {named} " in err
    ), err
    assert not list(tmp_path.iterdir())  # nothing rendered
    with pytest.raises(RepromptError, match="no denoising steps, guidance or transformer: steps 4"):
        load_backbone("sketch", steps=4)  # the library path says it the same way
