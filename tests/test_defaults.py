"""Every default that says where it comes from holds that value.

A config field's help text that cites its source, "(paper: 4)", "(reference code: 0.04)", "(official: 10)",
pins its default: this test reads every such citation in the package's config dataclasses and checks the
field's default against it, so a default cannot drift from its stated source unnoticed (the GRPO ``beta``
of the reference code, 0.04, once survived being changed to TRL's 0.0).
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import re
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1] / "reprompt"
SOURCE = re.compile(r"\b(paper|reference code|official): *([^;()]+?) *[;)]")


def cited_fields() -> list[tuple[str, str, str, str, Any]]:
    """(class, field, source, cited value, default) for every citation in a config field's help."""
    out = []
    for path in sorted(ROOT.rglob("*.py")):
        if not SOURCE.search(path.read_text(encoding="utf-8")):
            continue
        name = ".".join(path.relative_to(ROOT.parent).with_suffix("").parts).removesuffix(".__init__")
        module = importlib.import_module(name)
        for cls in vars(module).values():
            if not (inspect.isclass(cls) and dataclasses.is_dataclass(cls) and cls.__module__ == name):
                continue
            for f in dataclasses.fields(cls):
                own = f.name in getattr(cls, "__annotations__", {})  # declared (or redeclared) here
                for source, cited in SOURCE.findall(str(f.metadata.get("help", ""))):
                    if own:
                        out.append((f"{name}.{cls.__qualname__}", f.name, source, cited, _default(f)))
    return out


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def _value(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


CITED = cited_fields()


def citations_in_source() -> int:
    """Citations in the help texts of ``field(...)`` calls, read from the source (not imported)."""
    count = 0
    for path in ROOT.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and getattr(node.func, "id", None) == "field"):
                continue
            for kw in node.keywords:
                if kw.arg == "metadata" and isinstance(kw.value, ast.Dict):
                    for k, v in zip(kw.value.keys, kw.value.values, strict=True):
                        if isinstance(k, ast.Constant) and k.value == "help" and isinstance(v, ast.Constant):
                            count += len(SOURCE.findall(str(v.value)))
    return count


def test_the_citations_are_found() -> None:
    """The reader finds every citation written in a field's help (a reader that missed some would pass
    vacuously), the known ones among them."""
    assert len(CITED) == citations_in_source()
    found = {(cls.rsplit(".", 1)[1], field) for cls, field, *_ in CITED}
    assert {
        ("RepromptGRPOConfig", "beta"),
        ("RepromptGRPOConfig", "num_generations"),
        ("RepromptSFTConfig", "learning_rate"),
        ("LengthBounds", "min_tokens"),
        ("GenerationOptions", "max_new_tokens"),
        ("CompBenchRunConfig", "images"),
    } <= found


@pytest.mark.parametrize(("cls", "field", "source", "cited", "default"), CITED, ids=lambda v: str(v))
def test_a_default_holds_its_cited_value(cls: str, field: str, source: str, cited: str, default: Any) -> None:
    want = _value(cited)
    ok = default == want if not isinstance(want, str) else str(default) == want
    assert ok, f"{cls}.{field} defaults to {default!r}, but its help says ({source}: {cited})"


def test_the_reader_catches_a_drifted_default() -> None:
    @dataclasses.dataclass
    class Drifted:
        beta: float = dataclasses.field(
            default=0.0, metadata={"help": "KL coefficient (reference code: 0.04)"}
        )

    ((source, cited),) = SOURCE.findall(dataclasses.fields(Drifted)[0].metadata["help"])
    assert (source, _value(cited)) == ("reference code", 0.04) and _value(cited) != Drifted().beta
