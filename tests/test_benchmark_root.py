"""One benchmark-data root: ``$REPROMPT_BENCHMARKS``, by default ``shared/benchmarks`` beside the repository,
read by every script and test through :mod:`reprompt.utils.benchmarks` (none builds the path by hand)."""

from __future__ import annotations

import ast
from pathlib import Path

from reprompt.utils.benchmarks import BENCHMARKS_ENV, DEFAULT_ROOT, benchmark_path, benchmarks_root

REPO = Path(__file__).resolve().parents[1]


def test_the_root_is_the_variable_else_the_sibling_shared_folder(monkeypatch, tmp_path):
    monkeypatch.delenv(BENCHMARKS_ENV, raising=False)
    assert benchmarks_root() == DEFAULT_ROOT == REPO.parent / "shared" / "benchmarks"
    monkeypatch.setenv(BENCHMARKS_ENV, str(tmp_path))
    assert benchmarks_root() == tmp_path
    assert (
        benchmark_path("geneval", "evaluation_metadata.jsonl")
        == tmp_path / "geneval" / "evaluation_metadata.jsonl"
    )


def _strings(path: Path) -> list[tuple[int, str]]:
    """String constants of a file that are not docstrings."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docs = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs
    ]


def test_no_script_or_test_builds_the_benchmark_path_by_hand():
    home = REPO / "reprompt" / "utils" / "benchmarks.py"
    found = [
        f"{path.relative_to(REPO)}:{line}: {text!r}"
        for folder in ("benchmarks", "tests", "reprompt", "scripts")
        for path in sorted((REPO / folder).rglob("*.py"))
        if path != home and path != Path(__file__).resolve()
        for line, text in _strings(path)
        if text == "shared" or "shared/benchmarks" in text
    ]
    assert not found, "use reprompt.utils.benchmarks (REPROMPT_BENCHMARKS):\n" + "\n".join(found)
