"""GenEval 2 generation on the shared benchmark runner (:mod:`reprompt.eval.runner`).

The folder layout is GenEval's (one digit-named folder per prompt, named by the prompt's line in the data file;
``metadata.jsonl`` holds the data line plus the rewrite, ``samples/0000.png`` the images, ``scenes/`` the
simulator's drawn scenes, ``.done`` last), so everything GenEval's layout does — atomic images, resume, redoing
broken images, refusing a folder that is not a run — is reused. The official protocol renders one image per
prompt; ``--images N`` renders N with seeds seed+k (every image is judged, and a prompt's score is the mean
over its images). What differs is where the prompts come from: the user's ``geneval2_data.jsonl``, optionally
only the prompts the oracle judge can answer (``--subset oracle``: at least one question; ``oracle-full``:
all of them) and only the first K prompts of each atom count (``--per-atom-count``, a stratified subset).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reprompt.errors import check_choice, check_range
from reprompt.eval import runner
from reprompt.eval.geneval.generate import GenEvalLayout
from reprompt.eval.geneval2.data import Geneval2Prompt, read_data_file
from reprompt.eval.runner import Item, RunConfig

if TYPE_CHECKING:
    from reprompt.backbones.base import Backbone
    from reprompt.policy import Rewriter

RUN_FORMAT = "reprompt-geneval2-run/1"
SUBSETS = ("all", "oracle", "oracle-full")


def group_of(atom_count: int) -> str:
    """A prompt's group (its stratum in comparisons): its atom count."""
    return f"{atom_count} atoms"


@dataclass(kw_only=True)
class Geneval2Config(RunConfig):
    """One GenEval 2 generation run (``reprompt eval geneval2``): the runner's settings plus the data file."""

    data: str = field(
        metadata={"help": "your copy of GenEval 2's geneval2_data.jsonl (CC BY-NC 4.0; never shipped here)"}
    )
    images: int = field(default=1, metadata={"help": "images per prompt (official: 1)"})
    subset: str = field(
        default="all",
        metadata={
            "help": "all prompts; oracle = those with a question the oracle judge can answer from a sketch "
            "scene; oracle-full = those whose every question it can answer",
            "choices": SUBSETS,
        },
    )
    per_atom_count: int | None = field(
        default=None, metadata={"help": "only the first K prompts of each atom count (a stratified subset)"}
    )
    limit: int | None = field(default=None, metadata={"help": "only the first N prompts (after the others)"})

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice("--subset", self.subset, SUBSETS)
        check_range("--per-atom-count", self.per_atom_count, 1)


def select_prompts(
    prompts: list[Geneval2Prompt],
    subset: str = "all",
    per_atom_count: int | None = None,
    limit: int | None = None,
) -> list[Geneval2Prompt]:
    """The prompts a run covers, in file order: the ``subset``, then the first ``per_atom_count`` of each atom
    count, then the first ``limit``."""
    chosen = prompts
    if subset != "all":
        from reprompt.eval.geneval2.oracle import answerable

        test = all if subset == "oracle-full" else any
        chosen = [p for p in chosen if test(answerable(p.atoms))]
    if per_atom_count is not None:
        seen: dict[int, int] = {}
        kept = []
        for p in chosen:
            if seen.get(p.atom_count, 0) < per_atom_count:
                kept.append(p)
                seen[p.atom_count] = seen.get(p.atom_count, 0) + 1
        chosen = kept
    return chosen[:limit] if limit is not None else chosen


class Geneval2Layout(GenEvalLayout):
    """GenEval 2's side of the runner: prompts from the data file, GenEval's folder per prompt."""

    task = "geneval2"
    run_format = RUN_FORMAT
    lock_name = "geneval2"
    label = "GenEval 2"

    def __init__(self) -> None:
        super().__init__()
        self._data: dict[str, list[Geneval2Prompt]] = {}

    def prompts(self, config: Geneval2Config) -> list[Geneval2Prompt]:
        if config.data not in self._data:
            self._data[config.data] = read_data_file(config.data)
        return self._data[config.data]

    def select(self, config: Geneval2Config) -> tuple[list[Item], list[str]]:  # type: ignore[override]
        chosen = select_prompts(self.prompts(config), config.subset, config.per_atom_count, config.limit)
        items = [
            Item(key=p.index, prompt=p.prompt, group=group_of(p.atom_count), position=pos, metadata=p.line())
            for pos, p in enumerate(chosen)
        ]
        groups = sorted({p.atom_count for p in chosen})
        return items, [group_of(n) for n in groups]

    def describe(self, config: Geneval2Config, items: list[Item]) -> dict[str, Any]:  # type: ignore[override]
        return {
            "data_file": str(Path(config.data).resolve()),
            "data_sha256": hashlib.sha256(Path(config.data).read_bytes()).hexdigest(),
            "n_prompts": len(self.prompts(config)),
            "selection": {
                "subset": config.subset,
                "per_atom_count": config.per_atom_count,
                "limit": config.limit,
                "n_selected": len(items),
            },
        }

    def identity(self, info: dict[str, Any]) -> dict[str, Any]:
        return {"data_sha256": info["data_sha256"]}


def generate_run(
    config: Geneval2Config, *, rewriter: Rewriter | None = None, backbone: Backbone | None = None
) -> runner.RunStats:
    """Generate (or resume) a GenEval 2 run; ``rewriter``/``backbone`` override the named ones."""
    return runner.run("geneval2", config, rewriter=rewriter, backbone=backbone)
