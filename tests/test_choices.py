"""Every option with a fixed set of values refuses a typo the same way (``reprompt.errors.check_choice``): its
name, the choices, what was given, and the closest choice."""

from __future__ import annotations

import pytest

from reprompt.errors import ConfigError, check_choice
from reprompt.eval.geneval2.judges import JudgeConfig
from reprompt.geneval.scorer import ScorerConfig
from reprompt.rewards.clipscore import ClipScoreOptions
from reprompt.rewards.config import RewardConfig
from reprompt.rewards.geneval_reward import GenEvalRewardOptions
from reprompt.rewards.vlm_judge.options import VLMJudgeOptions


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
    ],
)
def test_config_options_refuse_a_typo_with_one_wording(build, message):
    with pytest.raises(ConfigError, match=message + r" .*, got '.*'\."):
        build()
