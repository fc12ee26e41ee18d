"""T2I-CompBench's categories, prompt files and file naming, read from the versioned ``task.yaml``.

The prompt files are not shipped with the package: users pass the folder holding the official
``*_val.txt`` files (``--data-dir``), the same folder the official scripts read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from reprompt.errors import RepromptError, did_you_mean
from reprompt.eval.registry import TaskConfig, load_task

TASK_FILE = Path(__file__).with_name("task.yaml")
_NAME_RE = re.compile(r"^(?P<prompt>.*)_(?P<index>\d+)\.png$")


@dataclass(frozen=True)
class Category:
    """One benchmark category: where its prompts are and which metric scores it."""

    name: str
    files: tuple[str, ...]
    metric: str
    splits: dict[str, str] = field(default_factory=dict, hash=False, compare=False)


def task() -> TaskConfig:
    """The task as the registry reads ``task.yaml`` (name, version, protocol, categories, metrics)."""
    return load_task(str(TASK_FILE))


def task_version() -> int:
    return int(task().version)


@lru_cache(maxsize=1)
def categories() -> dict[str, Category]:
    """All categories in the task's order."""
    out = {}
    for name, spec in task().dataset["categories"].items():
        out[name] = Category(name, tuple(spec["files"]), spec["metric"], dict(spec.get("splits", {})))
    return out


# fmt: off
CATEGORY_NAMES: tuple[str, ...] = (
    "color", "shape", "texture", "spatial", "3d_spatial", "numeracy", "non_spatial", "complex",
)
# fmt: on


def get_category(name: str) -> Category:
    cats = categories()
    if name not in cats:
        raise RepromptError(
            f"unknown T2I-CompBench category {name!r}; choose from {', '.join(cats)}.{did_you_mean(name, list(cats))}"
        )
    return cats[name]


def resolve_categories(names: str | list[str] | None) -> list[Category]:
    """``None``/``"all"`` -> every category; else a comma-separated string or list of names."""
    if names is None or names == "all" or names == ["all"]:
        return list(categories().values())
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    return [get_category(n) for n in names]


def read_prompt_file(path: str | Path) -> list[str]:
    """Prompts of one file as the official generation script reads them (one per line, text before a tab)."""
    path = Path(path)
    if not path.is_file():
        raise RepromptError(
            f"prompt file {path} not found; pass --data-dir with the T2I-CompBench *_val.txt files"
        )
    prompts = [line.split("\t")[0].strip() for line in path.read_text(encoding="utf-8").splitlines()]
    return [p for p in prompts if p]


def load_prompts(category: Category | str, data_dir: str | Path) -> list[str]:
    """The category's prompts in file order (the order fixes each image's global index)."""
    cat = get_category(category) if isinstance(category, str) else category
    prompts: list[str] = []
    for name in cat.files:
        prompts.extend(read_prompt_file(Path(data_dir) / name))
    for p in prompts:
        check_file_safe(p)
    return prompts


def complex_kind(prompt: str, splits: dict[str, set[str]]) -> str:
    """Which 3-in-1 branch a complex prompt takes: 'spatial', 'action' or 'spatialaction'.

    As ``3_in_1.py``: prompts are compared by their first sentence, lower-cased; a prompt in neither the
    spatial nor the action file counts as spatial+action.
    """
    key = _complex_key(prompt)
    if key in splits.get("spatial", set()):
        return "spatial"
    if key in splits.get("action", set()):
        return "action"
    return "spatialaction"


def _complex_key(prompt: str) -> str:
    return prompt.strip().split(".")[0].lower()


def load_complex_splits(data_dir: str | Path) -> dict[str, set[str]]:
    cat = get_category("complex")
    return {
        kind: {_complex_key(p) for p in read_prompt_file(Path(data_dir) / f)}
        for kind, f in cat.splits.items()
    }


# ------------------------------------------------------------------------------------------ file names


def check_file_safe(prompt: str) -> str:
    """Official file names embed the prompt, so it must be a valid file name and contain no '_'."""
    if "/" in prompt or "\0" in prompt or "_" in prompt:
        raise RepromptError(
            f"prompt {prompt!r} cannot be a T2I-CompBench file name (no '/', '_' or NUL allowed: the official "
            "scorers read the prompt back as the text before the first '_')"
        )
    if len(image_name(prompt, 0).encode("utf-8")) > 255:
        raise RepromptError(f"prompt {prompt[:60]!r}... is too long for a file name (255 bytes)")
    return prompt


def image_name(prompt: str, index: int) -> str:
    """``{prompt}_{index:06d}.png`` as written by the official ``inference_eval.py``."""
    return f"{prompt}_{index:06d}.png"


def global_index(prompt_index: int, image: int, images_per_prompt: int) -> int:
    """Running index over the category: prompt-major, as an uninterrupted official run numbers files."""
    return prompt_index * images_per_prompt + image


def parse_image_name(name: str) -> tuple[str, int] | None:
    """(prompt, index) from an official file name, or None for other files.

    The prompt is the text before the first '_' and the index the number after the last one, as the
    official scorers read them.
    """
    m = _NAME_RE.match(name)
    if not m:
        return None
    return name.split("_")[0], int(m.group("index"))
