"""The README's own-component example runs as written and scores what it says."""

from __future__ import annotations

import contextlib
import io
import re
import sys
import types
from pathlib import Path

from reprompt.rewards import COMPONENTS

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_readme_component_example_runs(monkeypatch):
    text = README.read_text()
    section = text[text.index("**Your own component.**") :]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    monkeypatch.setitem(COMPONENTS, "short", "unused")  # the example's registration is undone after the test
    out = io.StringIO()
    module = types.ModuleType("readme_example")  # a module, as a user's script is: dataclasses look it up
    monkeypatch.setitem(sys.modules, module.__name__, module)
    namespace = module.__dict__
    with contextlib.redirect_stdout(out):
        exec(compile(code, str(README), "exec"), namespace)
    scored = namespace["scored"]
    assert scored.components["short"] == [1.0]  # "a tabby cat on a sofa": 5 words <= 12
    assert scored.components["format"] == [1.0] and scored.total[0] is not None
    assert out.getvalue().startswith("[1.0]")
    reward = namespace["build_rewards"]({"components": ["short"], "options": {"short": {"max_words": 2}}})
    assert reward.score(
        ["a cat"], ["<reason>one cat, centred</reason><prompt>a tabby cat</prompt>"]
    ).components["short"] == [-1.0]
