"""Every option with a fixed set of values refuses a typo the same way (``reprompt.errors.check_choice``): its
name, the choices, what was given, and the closest choice. Every numeric option refuses a value out of its
bounds the same way too (``reprompt.errors.check_range``): its name, the bounds, what was given."""

from __future__ import annotations

import pytest

from reprompt.backbones.base import RenderSettings
from reprompt.backbones.sketch import sketch_config
from reprompt.errors import ConfigError, check_choice, check_range
from reprompt.eval.geneval2.judges import JudgeConfig
from reprompt.geneval.rules import GenEvalOptions
from reprompt.geneval.scorer import ScorerConfig
from reprompt.policy.base import GenerationOptions
from reprompt.rewards.clipscore import ClipScoreOptions
from reprompt.rewards.composite import normalize
from reprompt.rewards.config import RewardConfig
from reprompt.rewards.geneval_reward import GenEvalRewardOptions
from reprompt.rewards.vlm_judge.options import VLMJudgeOptions
from reprompt.serving.config import ServeConfig
from reprompt.utils.failover import FailoverClient


def test_check_choice_names_the_option_the_choices_the_value_and_the_closest():
    check_choice("mode", "b", ("a", "b"))  # a choice passes
    with pytest.raises(ConfigError) as e:
        check_choice("--detector", "orcale", ("auto", "oracle", "mask2former"))
    assert (
        str(e.value)
        == "--detector must be one of auto, oracle, mask2former, got 'orcale'. Did you mean 'oracle'?"
    )
    with pytest.raises(ConfigError, match=r"must be one of a, b, got 3\.$"):  # not a string: no hint
        check_choice("n", 3, ("a", "b"))


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: RewardConfig(components=["format"], normalization="gruop"), "normalization must be one of"),
        (
            lambda: RewardConfig(components=["format"], fallback_score="group_wrost"),
            "fallback_score must be one of",
        ),
        (
            lambda: RewardConfig(components=["format"], seed_schedule="per_promt"),
            "seed_schedule must be one of",
        ),
        (lambda: ScorerConfig(detector="orcale"), "--detector must be one of"),
        (lambda: ScorerConfig(colors="orcale"), "--colors must be one of"),
        (lambda: JudgeConfig(judge="orcale"), "--judge must be one of"),
        (lambda: ClipScoreOptions(style="geneval2"), "clipscore style must be one of"),
        (lambda: VLMJudgeOptions(mode="constraned"), "vlm_judge mode must be one of"),
        (lambda: GenEvalRewardOptions(mode="strcit"), "geneval mode must be one of"),
        (lambda: sketch_config("skecth"), "sketch calibration must be one of"),
        (lambda: normalize([1.0], [0], "gruop"), "normalization must be one of"),
    ],
)
def test_config_options_refuse_a_typo_with_one_wording(build, message):
    # the choices as a plain list (no tuple or list repr), then the value given
    with pytest.raises(ConfigError, match=message + r" [\w.+-]+(, [\w.+-]+)*, got '[^']*'\."):
        build()


def test_check_range_names_the_option_the_bounds_and_the_value():
    for args in ((1, 1), (None, 1), (5, 1, 5), (0.5, 0, 1), (0, 0), (0.0, 0)):
        check_range("n", *args)  # in bounds (or unset) passes
    cases = [
        (lambda: check_range("n", 0, 1), "n must be >= 1, got 0"),
        (lambda: check_range("n", 0, 0, low_open=True), "n must be > 0, got 0"),
        (lambda: check_range("n", 9, high=8), "n must be <= 8, got 9"),
        (lambda: check_range("n", 9, 1, 8), "n must be between 1 and 8, got 9"),
        (lambda: check_range("n", 0, 0, 1, low_open=True), "n must be in (0, 1], got 0"),
        (lambda: check_range("n", 1, 0.5, 1, low_open=True, high_open=True), "n must be in (0.5, 1), got 1"),
    ]
    for call, message in cases:
        with pytest.raises(ConfigError) as e:
            call()
        assert str(e.value) == message


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: GenerationOptions(top_p=0), "top_p must be in (0, 1], got 0"),
        (lambda: GenerationOptions(guard_temperature=0.0), "guard_temperature must be > 0, got 0.0"),
        (lambda: RenderSettings(width=8), "width must be between 16 and 4096, got 8"),
        (lambda: ServeConfig(max_queue=0), "--max-queue must be >= 1, got 0"),
        (lambda: FailoverClient("http://x", retries=-1), "retries must be >= 0, got -1"),
        (lambda: VLMJudgeOptions(parse_retries=-1), "vlm_judge parse_retries must be >= 0, got -1"),
        (lambda: ClipScoreOptions(batch_size=0), "clipscore batch_size must be >= 1, got 0"),
        (lambda: GenEvalOptions(counting_threshold=2), "GenEvalOptions.counting_threshold must be between"),
        (lambda: ScorerConfig(threshold=-1), "GenEvalOptions.threshold must be between"),
        (lambda: JudgeConfig(top_logprobs=21), "--top-logprobs must be between 1 and 20, got 21"),
    ],
)
def test_numeric_options_refuse_a_value_out_of_bounds_with_one_wording(build, message):
    """Before ``check_range`` these raised RepromptError, ValueError or ConfigError, some without the value."""
    with pytest.raises(ConfigError) as e:
        build()
    assert str(e.value).startswith(message)


def _placed_options() -> list[type]:
    """Every options dataclass in the package with a ``dtype`` field: each loads a model."""
    import dataclasses
    import importlib
    import pkgutil

    import reprompt

    found = {}
    for info in pkgutil.walk_packages(reprompt.__path__, "reprompt."):
        if info.name.startswith(("reprompt.ui", "reprompt.testing")):  # optional extras (gradio) / builders
            continue
        for obj in vars(importlib.import_module(info.name)).values():
            is_options = (
                isinstance(obj, type) and dataclasses.is_dataclass(obj) and obj.__module__ == info.name
            )
            if is_options and "dtype" in {f.name for f in dataclasses.fields(obj)}:
                found[obj.__qualname__] = obj
    return list(found.values())


def test_every_model_placement_is_checked_when_its_options_are_built():
    """A misspelt dtype fails when the options are built (before any model loads) with one wording, and the
    device/dtype pair has one home (:class:`reprompt.utils.dtypes.Placement`). The training config's dtype
    is TRL's ``ModelConfig`` field: checked by its own ``choices``."""
    from reprompt.train.config import PolicyArgs
    from reprompt.utils.dtypes import Placement

    placed = [cls for cls in _placed_options() if not issubclass(cls, PolicyArgs)]
    assert len(placed) >= 5, [c.__name__ for c in placed]
    for cls in placed:
        assert issubclass(cls, Placement), f"{cls.__name__} declares its own dtype: extend Placement"
        with pytest.raises(ConfigError, match=rf"{cls.__name__}\.dtype must be one of auto, .*, got 'bf61'"):
            cls(dtype="bf61")
        assert cls(dtype="bf16").dtype == "bf16"  # an alias resolve_dtype knows
