"""The package's import graph only points down the layers written in the README ("Repository layout").

Every ``import`` and ``from ... import`` in ``reprompt/`` is checked, module-level or lazy (inside a
function), under ``TYPE_CHECKING`` too, and so are the dotted module names in lazy-export tables (string
constants such as ``"reprompt.rewards.composite"``) and the runner layouts that task files name. A module may
import its own package and the layers below its own; packages that share a layer may not import each other.
An import whose module name is computed (``importlib.import_module(name)``) cannot be checked, so only the
registries that turn checked names into modules may make one. ``reprompt.testing`` (tiny test models) is
outside the layers: it may import anything, and only the CLI's model listing may import it. No module may
reach itself through its imports (an import circle).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "reprompt"

# Lowest first. A unit is a package or module; the longest matching unit decides a module's layer.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("errors", ("reprompt.errors", "reprompt._version")),
    ("utilities", ("reprompt.utils",)),
    ("definitions", ("reprompt.format", "reprompt.geneval")),
    ("renderers", ("reprompt.backbones",)),
    ("intent guard", ("reprompt.guard",)),
    ("policies", ("reprompt.policy",)),
    ("what to load", ("reprompt.model_spec",)),
    ("rewrite + render", ("reprompt.pipeline",)),
    ("rewards", ("reprompt.rewards",)),
    ("training data", ("reprompt.data",)),
    ("evaluation", ("reprompt.eval",)),
    ("latency benchmark", ("reprompt.latency",)),
    ("services", ("reprompt.serving",)),
    ("training", ("reprompt.train",)),
    ("integrations", ("reprompt.integrations",)),
    ("browser UI", ("reprompt.ui",)),
    ("command line", ("reprompt.cli",)),
    ("public API", ("reprompt",)),
]
OUTSIDE = ("reprompt.testing",)  # the tiny test models
MAY_IMPORT_OUTSIDE = {"reprompt.cli.models"}  # `reprompt models` lists the tiny test models
# Modules that import by a computed name, and where the names they import are checked instead.
REGISTRIES = {
    "reprompt.rewards": "COMPONENTS: 'module:builder' strings, checked as dotted names",
    "reprompt.eval.registry": "task layouts, 'module:Class' in each task.yaml (test_task_layouts_point_down)",
    "reprompt.utils.lazy": "lazy-export tables, whose module strings are checked where they are written",
    "reprompt.cli.main": "COMMAND_MODULES, sub-commands inside reprompt.cli",
}
_DOTTED = re.compile(r"^reprompt(\.[A-Za-z_]\w*)+(:\w+)?$")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def unit_of(module: str) -> tuple[int, str] | None:
    """(layer index, unit) of a module, or None for modules outside the layers."""
    if any(module == o or module.startswith(o + ".") for o in OUTSIDE):
        return None
    best: tuple[int, str] | None = None
    for index, (_, units) in enumerate(LAYERS):
        for unit in units:
            if (module == unit or module.startswith(unit + ".")) and (
                best is None or len(unit) > len(best[1])
            ):
                best = (index, unit)
    if best is None:
        raise AssertionError(f"{module} is in no layer: add its package to LAYERS (and to the README)")
    return best


def imports_of(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every reprompt import in a file, lazy ones and dotted module strings included."""
    module = module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            out.append((node.lineno, target))
            out += [(node.lineno, f"{target}.{a.name}") for a in node.names]  # `from pkg import module`
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and _DOTTED.match(node.value):
            out.append((node.lineno, node.value.split(":")[0]))
    return [(line, name) for line, name in out if name == "reprompt" or name.startswith("reprompt.")]


def _existing(name: str) -> str:
    """``pkg.module.attr`` -> the longest prefix that is a module of the package."""
    parts = name.split(".")
    while parts:
        candidate = ROOT.parent.joinpath(*parts)
        if candidate.with_suffix(".py").is_file() or (candidate / "__init__.py").is_file():
            return ".".join(parts)
        parts.pop()
    return name


def problems_in(path: Path) -> list[str]:
    """Imports of one file against the layer order."""
    problems: list[str] = []
    module = module_name(path)
    mine = unit_of(module)
    if mine is None:
        return problems
    for line, target in dict.fromkeys((line, _existing(raw)) for line, raw in imports_of(path)):
        theirs = unit_of(target)
        where = f"{path.relative_to(ROOT.parent)}:{line}: {module} -> {target}"
        if theirs is None:
            if module not in MAY_IMPORT_OUTSIDE:
                problems.append(f"{where} (test models are not a runtime layer)")
            continue
        if theirs[1] == mine[1] or target == module:
            continue
        if theirs[0] > mine[0]:
            problems.append(f"{where} (up: {LAYERS[mine[0]][0]} -> {LAYERS[theirs[0]][0]})")
        elif theirs[0] == mine[0]:
            problems.append(f"{where} (sideways within {LAYERS[mine[0]][0]})")
    return problems


def upward_imports() -> list[str]:
    return [problem for path in sorted(ROOT.rglob("*.py")) for problem in problems_in(path)]


def test_imports_only_point_down() -> None:
    problems = upward_imports()
    assert not problems, "imports against the layer order:\n" + "\n".join(problems)


def test_test_models_import_nothing_that_imports_them() -> None:
    """``reprompt.testing`` sits outside the layers, but the CLI's model listing imports it: so it may not
    import the CLI (or the UI above it), or that arrow would run back up (the screenshot driver that needed
    both lives in scripts/ui_screenshot.py)."""
    above = ("reprompt.cli", "reprompt.ui")
    found = [
        f"{path.relative_to(ROOT.parent)}:{line}: {target}"
        for path in sorted((ROOT / "testing").rglob("*.py"))
        for line, target in imports_of(path)
        if any(target == a or target.startswith(a + ".") for a in above)
    ]
    assert not found, "the test models import what imports them:\n" + "\n".join(found)


def computed_imports(path: Path) -> list[str]:
    """``importlib.import_module(x)`` / ``__import__(x)`` calls whose module name is not a string literal."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        if name in ("import_module", "__import__") and not (
            isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)
        ):
            found.append(f"{path.relative_to(ROOT.parent)}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_computed_imports_only_in_the_registries() -> None:
    """An import by a computed name hides its target from the layer check (an upward import can hide behind
    it); only the registries may make one, and the names they import are checked where they are written."""
    hidden = [
        problem
        for path in sorted(ROOT.rglob("*.py"))
        if module_name(path) not in REGISTRIES
        for problem in computed_imports(path)
    ]
    assert not hidden, "imports by a computed name outside the registries:\n" + "\n".join(hidden)


@pytest.mark.parametrize(
    "source",
    [
        'import importlib\nm = importlib.import_module("reprompt." + "serving.http")\n',
        "from importlib import import_module\ndef f(n):\n    return import_module(n)\n",
        "m = __import__(f\"reprompt.{'eval'}\")\n",
    ],
)
def test_the_check_finds_a_computed_import(source: str) -> None:
    planted = ROOT / "backbones" / "_computed_probe.py"
    planted.write_text(source)
    try:
        assert computed_imports(planted) and module_name(planted) not in REGISTRIES
    finally:
        planted.unlink()


def test_task_layouts_point_down() -> None:
    """The runner layout a task file names is imported by the registry (evaluation): it must be there or below."""
    import yaml

    evaluation = next(i for i, (name, _) in enumerate(LAYERS) if name == "evaluation")
    for task in sorted((ROOT / "eval").glob("*/task.yaml")):
        layout = yaml.safe_load(task.read_text(encoding="utf-8")).get("layout")
        if layout:
            unit = unit_of(_existing(layout.split(":")[0]))
            assert unit is not None and unit[0] <= evaluation, f"{task}: layout {layout} is above evaluation"


def test_every_package_has_a_layer() -> None:
    for path in ROOT.rglob("*.py"):
        unit_of(module_name(path))  # raises for a module in no layer


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from reprompt.eval.geneval.evaluate import score_run\n", "up"),  # a renderer importing evaluation
        ("def f():\n    from reprompt.policy.hf import resolve_dtype\n", "up"),  # lazy imports count
        ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from reprompt.rewards import x\n", "up"),
        ('_LAZY = {"x": "reprompt.serving.http"}\n', "up"),  # lazy-export tables count
        ("from reprompt.geneval.scene import SceneObject\n", None),
        ("from . import sketch_text\n", None),
    ],
)
def test_the_check_catches_upward_arrows(tmp_path: Path, source: str, expected: str | None) -> None:
    """The checker itself: planted in the renderers' layer, each upward import is reported."""
    planted = ROOT / "backbones" / "_layer_probe.py"
    planted.write_text(source)
    try:
        found = problems_in(planted)
    finally:
        planted.unlink()
    assert (expected in found[0]) if expected else not found, found


def import_graph() -> dict[str, set[str]]:
    """Module -> the package's modules it imports (every import, lazy ones included; importing
    ``a.b.c`` imports the packages ``a.b`` and ``a`` too, except those the importer itself lives in)."""
    modules = {module_name(p): p for p in ROOT.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        deps: set[str] = set()
        for _, raw in imports_of(path):
            parts = _existing(raw).split(".")
            for i in range(2, len(parts) + 1):
                dep = ".".join(parts[:i])
                if dep in modules and dep != module and not module.startswith(dep + "."):
                    deps.add(dep)
        graph[module] = deps
    return graph


def import_circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan): each is an import circle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return circles


def test_no_import_circles() -> None:
    """No module reaches itself through imports, lazy ones included (a re-export is the usual cause)."""
    circles = import_circles(import_graph())
    assert not circles, "import circles:\n" + "\n".join(" <-> ".join(c) for c in circles)


def test_the_circle_check_finds_a_circle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert import_circles(graph) == [["a", "b", "c"]]


def test_long_modules_say_why() -> None:
    """A module over ~400 lines is a signal to split it; the ones kept whole say why at their top."""
    unexplained = []
    for path in sorted(ROOT.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        if text.count("\n") > 420 and "Why " not in (ast.get_docstring(ast.parse(text)) or ""):
            unexplained.append(f"{path.relative_to(ROOT.parent)} ({text.count(chr(10))} lines)")
    assert not unexplained, "split these or write why they stay whole: " + ", ".join(unexplained)
