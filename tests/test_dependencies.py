"""Dependencies that reprompt never imports itself but its models need at run time."""

from __future__ import annotations

import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_scipy_is_declared_because_mask2former_needs_it() -> None:
    """A clean install without scipy fails building Mask2Former (``Mask2FormerLoss requires the scipy
    library``): the GenEval detector. It is easy to drop as "unused" since no reprompt module imports it."""
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    assert any(d.split(">")[0].split("=")[0].strip() == "scipy" for d in deps)
    from transformers.models.mask2former.modeling_mask2former import Mask2FormerLoss  # noqa: F401
