"""Render T2I-CompBench images in the official layout, on the shared benchmark runner (:mod:`reprompt.eval.runner`).

``RUN/<category>/samples/{prompt}_{index:06d}.png``: each prompt is rewritten once (greedy) by the chosen
rewriter, then rendered ``images`` times (official: 10) with seeds ``seed + n`` (official: 42 ... 51). The
file name keeps the ORIGINAL prompt, so the scorers judge the image against what the user asked for.

Seeds, shards, resume and the run identity are the runner's. A prompt is finished once its record line
(written after all its images, each saved atomically) is in ``RUN/<category>/records*.jsonl`` and its images
are whole; shard ``i/n`` takes the prompts with index % n == i of each category and writes its own records
file, so processes never share a file. Simulator scenes go inline into the record, in the one scene encoding
of :mod:`reprompt.geneval.scene` (boxes only by default).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reprompt.eval import runner
from reprompt.eval.compbench import categories as cats
from reprompt.eval.runner import Item, RunConfig, RunContext
from reprompt.geneval.scene import objects_from_json, objects_to_json
from reprompt.utils.images import png_problem
from reprompt.utils.io import append_jsonl, atomic_save_image, read_jsonl

if TYPE_CHECKING:
    from reprompt.backbones.base import RenderOutput
    from reprompt.geneval.scene import SceneObject
    from reprompt.policy import Rewrite

logger = logging.getLogger(__name__)

RUN_FORMAT = "reprompt-compbench-run/1"


@dataclass(kw_only=True)
class CompBenchRunConfig(RunConfig):
    """One T2I-CompBench generation run (``reprompt eval compbench generate``)."""

    data_dir: str = field(metadata={"help": "folder with the official *_val.txt prompt files"})
    categories: str = field(default="all", metadata={"help": "comma-separated categories, or 'all'"})
    out: str = field(metadata={"help": "run folder (one sub-folder per category)"})
    images: int = field(default=10, metadata={"help": "images per prompt (official: 10)"})
    limit: int | None = field(default=None, metadata={"help": "only the first N prompts of each category"})
    scenes: str = field(
        default="boxes",
        metadata={
            "help": "simulator scenes kept in the records for the oracle detector: with RLE masks, boxes "
            "only, or none",
            "choices": runner.SCENE_MODES,
        },
    )


def records_file(category_dir: Path, shard_index: int, shard_count: int) -> Path:
    if shard_count == 1:
        return category_dir / "records.jsonl"
    return category_dir / f"records-{shard_index}-of-{shard_count}.jsonl"


def read_records(category_dir: str | Path) -> list[dict[str, Any]]:
    """All finished prompts of a category (every shard), by prompt index; later lines win."""
    by_index: dict[int, dict[str, Any]] = {}
    for path in sorted(Path(category_dir).glob("records*.jsonl")):
        for rec in read_jsonl(path):
            by_index[int(rec["prompt_index"])] = rec
    return [by_index[i] for i in sorted(by_index)]


def scene_from_json(data: list[dict[str, Any]] | None) -> list[SceneObject] | None:
    """A record's inline scene (objects without masks, or with them: both encodings read)."""
    return None if data is None else objects_from_json(data)


class CompBenchLayout:
    """T2I-CompBench's side of the runner: prompts from the category files, images named by prompt."""

    task = "t2i-compbench"
    run_format = RUN_FORMAT
    lock_name = "compbench"
    label = "T2I-CompBench"

    def select(self, config: CompBenchRunConfig) -> tuple[list[Item], list[str]]:
        items: list[Item] = []
        groups = []
        for cat in cats.resolve_categories(config.categories):
            prompts = cats.load_prompts(cat, config.data_dir)
            n = min(len(prompts), config.limit) if config.limit else len(prompts)
            items += [
                Item(key=(cat.name, i), prompt=prompts[i], group=cat.name, position=i) for i in range(n)
            ]
            groups.append(cat.name)
        return items, groups

    def describe(self, config: CompBenchRunConfig, items: list[Item]) -> dict[str, Any]:
        groups = list(dict.fromkeys(it.group for it in items))
        return {
            "data_dir": str(Path(config.data_dir).resolve()),
            "categories": groups,
            "selection": {"limit": config.limit, "n_selected": len(items)},
        }

    def identity(self, info: dict[str, Any]) -> dict[str, Any]:
        return {"task_version": info["task_version"]}

    def legacy_diff(self, existing: dict[str, Any], info: dict[str, Any]) -> list[str] | None:
        """``run.json`` as written before the shared runner: ``{"settings": {...}, "data_dir", "created"}``."""
        old = existing.get("settings")
        if not isinstance(old, dict) or old.get("task") != self.task:
            return None
        now = {
            "task_version": str(info["task_version"]),
            "backbone": info["backbone"]["name"],
            "model": info["backbone"]["settings"].get("model"),
            "policy": info["policy"]["name"],
            "images_per_prompt": info["seeds"]["images_per_prompt"],
            "seed": info["seeds"]["base_seed"],
        }
        before = {**{k: old.get(k) for k in now}, "task_version": str(old.get("task_version"))}
        return [f"{k}: {before[k]!r} -> {now[k]!r}" for k in now if before[k] != now[k]]

    def check_new_folder(self, out: Path) -> None:
        return None  # category folders without run.json are official layouts that only `score` reads

    def unfinished(self, out: Path, items: list[Item], check_images: bool = True) -> list[Item]:
        done: dict[str, set[int]] = {}
        for group in dict.fromkeys(it.group for it in items):
            done[group] = self._finished(out / group, check_images)
        return [it for it in items if it.key[1] not in done[it.group]]

    @staticmethod
    def _finished(category_dir: Path, check_images: bool) -> set[int]:
        """Prompt indices with a record whose images are there (and, ``check_images``, whole PNGs)."""
        samples = category_dir / "samples"
        finished = set()
        for rec in read_records(category_dir):
            problems = []
            for name in rec["files"]:
                path = samples / name
                why = png_problem(path) if check_images else (None if path.exists() else "is missing")
                if why:
                    problems.append(f"{path} {why}")
                    if check_images:
                        logger.warning("%s %s: generating prompt %d again", path, why, rec["prompt_index"])
            if not problems:
                finished.add(int(rec["prompt_index"]))
        return finished

    def write(self, out: Path, item: Item, rw: Rewrite, render: RenderOutput, run: RunContext) -> None:
        seeds = render.seeds
        category, index = item.key
        cat_dir = out / category
        k = len(seeds)
        indices = [cats.global_index(index, j, k) for j in range(k)]
        files = [cats.image_name(item.prompt, g) for g in indices]
        for name, image, seed in zip(files, render.images, seeds, strict=True):
            atomic_save_image(cat_dir / "samples" / name, image, run.provenance(item.prompt, rw, seed))
        mode = run.info["scenes"]
        scenes = None
        if render.scenes is not None and mode != "none":
            scenes = [objects_to_json(s, masks=mode == "rle") for s in render.scenes]
        append_jsonl(
            records_file(cat_dir, *run.shard),
            {
                "prompt_index": index,
                "prompt": item.prompt,
                "rendered_prompt": rw.prompt,
                "reasoning": rw.reasoning,
                "rewrite": {
                    key: value
                    for key, value in asdict(rw).items()
                    if key not in ("original", "prompt", "reasoning")
                },
                "policy": run.policy,
                "backbone": run.backbone,
                "seeds": list(seeds),
                "indices": indices,
                "files": files,
                "render_seconds": round(render.seconds, 4),
                "warnings": list(render.warnings),
                "scenes": scenes,
            },
        )


def run_generate(
    config: CompBenchRunConfig, *, rewriter: Any = None, backbone: Any = None
) -> dict[str, dict[str, int]]:
    """Render every unfinished prompt of this shard; returns ``{category: {"rendered", "already_done"}}``.

    ``rewriter``/``backbone`` may be passed built, or as zero-argument factories (the CLI), or left None to
    load them from ``config``; either way they load only when there is work left."""
    return runner.run("t2i-compbench", config, rewriter=rewriter, backbone=backbone).groups
