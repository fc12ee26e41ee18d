"""Dependencies: those reprompt never imports itself but its models need at run time, and declared floors that
the code really needs."""

from __future__ import annotations

import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def declared(name: str) -> str:
    """The requirement string of ``name`` in pyproject.toml's dependencies."""
    from packaging.requirements import Requirement

    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    return next(d for d in deps if Requirement(d).name == name)


def test_scipy_is_declared_because_mask2former_needs_it() -> None:
    """A clean install without scipy fails building Mask2Former (``Mask2FormerLoss requires the scipy
    library``): the GenEval detector. It is easy to drop as "unused" since no reprompt module imports it."""
    assert declared("scipy")
    from transformers.models.mask2former.modeling_mask2former import Mask2FormerLoss  # noqa: F401


def test_the_transformers_floor_has_what_training_uses() -> None:
    """Every training recipe sets ``activation_checkpointing``, a TrainingArguments field first shipped in
    transformers 5.23.0 (5.22.2 has only ``gradient_checkpointing``), and ``share_prompt_pass`` reads the model
    output's ``cache`` (``past_key_values`` up to 5.23). The floor said 5.0, so an install with 5.17 (the GPU
    machine's image) was accepted and every recipe failed: "unknown key(s) 'activation_checkpointing'. Did you
    mean 'gradient_checkpointing'?"."""
    from dataclasses import fields

    from packaging.requirements import Requirement
    from packaging.version import Version
    from transformers import TrainingArguments

    spec = Requirement(declared("transformers")).specifier
    floor = min(Version(s.version) for s in spec if s.operator == ">=")
    assert floor >= Version("5.24.0"), f"transformers floor {floor} predates what training uses"
    assert "activation_checkpointing" in {f.name for f in fields(TrainingArguments)}
    from transformers.modeling_outputs import CausalLMOutputWithPast

    assert "cache" in {f.name for f in fields(CausalLMOutputWithPast)}


def test_every_direct_dependency_declares_a_floor() -> None:
    """``scripts/check_floors.sh`` resolves every direct dependency to its floor: one without a floor resolves
    to its first release ever (sentencepiece 0.0.0 does not even build), so the floors check could not run and
    the declared range claimed versions nobody tried."""
    from packaging.requirements import Requirement

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    listed = project["dependencies"] + project["optional-dependencies"]["dev"]
    bare = [
        r.name for r in map(Requirement, listed) if not any(s.operator in (">=", "==") for s in r.specifier)
    ]
    assert not bare, f"give these a >= floor (the lowest scripts/check_floors.sh passes): {bare}"
