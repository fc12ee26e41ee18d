"""GenEval generation in the official folder layout, on the shared benchmark runner (:mod:`reprompt.eval.runner`).

Layout (the official scorer reads it unchanged; it looks only at digit-named folders, their
``metadata.jsonl`` and ``samples/\\d+.png``)::

    <out>/run.json                      what the run is (policy, backbone, seeds, revisions, git hash)
    <out>/00000/metadata.jsonl          the original metadata line + extra keys (EXTRA_KEYS)
    <out>/00000/samples/0000.png ...    images; folder name = index of the prompt in the metadata file
    <out>/00000/scenes/0000.json ...    simulator backbones only: the objects drawn in image 0000
    <out>/00000/.done                   completion marker, written last
    <out>/logs/shard-<i>-of-<n>.jsonl   one line per invocation: prompts done and wall times

Seeds, shards, resume and the run identity are the runner's (image ``k`` of every prompt uses ``seed + k``,
so runs of the same metadata pair up image by image). A prompt counts as done once ``.done`` exists and its
images are whole PNGs. Scene sidecars use the one scene encoding of :mod:`reprompt.geneval.scene`; the
``oracle`` detector reads them at scoring time (``scenes="boxes"`` keeps no masks, enough for the oracle
rules; CLIP colours need masks).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reprompt.errors import RepromptError, check_range
from reprompt.eval import runner
from reprompt.eval.provenance import now
from reprompt.eval.runner import RUN_FILE, Item, RunConfig, RunContext
from reprompt.geneval.metadata import read_metadata_file
from reprompt.geneval.scene import scene_from_json, scene_to_json
from reprompt.utils.images import png_problem
from reprompt.utils.io import atomic_save_image, atomic_write_json, atomic_write_text

if TYPE_CHECKING:
    from reprompt.backbones.base import Backbone, RenderOutput
    from reprompt.geneval.scene import SceneObject
    from reprompt.policy import Rewrite, Rewriter

logger = logging.getLogger(__name__)

RUN_FORMAT = "reprompt-geneval-run/1"
MARKER = ".done"
# Keys we add to each metadata.jsonl; everything else is the original metadata line.
EXTRA_KEYS = (
    "index",
    "rewritten_prompt",
    "reasoning",
    "completion",
    "format_ok",
    "fallback",
    "recovered",
    "rewrite_issue",
    "completion_tokens",
    "prompt_tokens",
    "token_limit",
    "truncated",
    "seeds",
    "policy",
    "backbone",
    "rewrite_seconds",
    "render_seconds",
    "render_warnings",
)


# ------------------------------------------------------------------------------------------- layout


def prompt_dir(out: str | Path, index: int) -> Path:
    return Path(out) / f"{index:05d}"


def image_path(out: str | Path, index: int, k: int) -> Path:
    return prompt_dir(out, index) / "samples" / f"{k:04d}.png"


def scene_path(out: str | Path, index: int, k: int) -> Path:
    return prompt_dir(out, index) / "scenes" / f"{k:04d}.json"


def is_done(out: str | Path, index: int) -> bool:
    return (prompt_dir(out, index) / MARKER).exists()


def original_metadata(meta: dict[str, Any]) -> dict[str, Any]:
    """The official metadata line, without the keys reprompt added."""
    return {k: v for k, v in meta.items() if k not in EXTRA_KEYS}


def prompt_indices(out: str | Path, done_only: bool = True) -> list[int]:
    """Digit-named prompt folders of a run, sorted (only finished ones unless ``done_only=False``)."""
    out = Path(out)
    found = []
    for p in out.iterdir() if out.is_dir() else ():
        ok = p.is_dir() and p.name.isdigit() and (p / "metadata.jsonl").exists()
        if ok and (not done_only or (p / MARKER).exists()):
            found.append(int(p.name))
    return sorted(found)


def read_prompt_metadata(out: str | Path, index: int) -> dict[str, Any]:
    path = prompt_dir(out, index) / "metadata.jsonl"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise RepromptError(f"cannot read {path}: {e}") from e


def sample_files(out: str | Path, index: int) -> list[Path]:
    """Images of a prompt, as the official scorer lists them (``\\d+\\.png``, sorted by name)."""
    folder = prompt_dir(out, index) / "samples"
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if re.fullmatch(r"\d+\.png", p.name))


def broken_samples(out: str | Path, index: int, expected: int | None = None) -> list[str]:
    """Problems with a prompt's image files: fewer than ``expected`` images, or files that are not whole PNGs."""
    files = sample_files(out, index)
    problems = [f"{p} {why}" for p in files if (why := png_problem(p))]
    if expected is not None and len(files) < expected:
        problems.append(f"{prompt_dir(out, index) / 'samples'} holds {len(files)} of {expected} images")
    return problems


def load_scene(out: str | Path, index: int, k: int) -> list[SceneObject]:
    path = scene_path(out, index, k)
    if not path.exists():
        raise RepromptError(
            f"{path} is missing: the oracle detector needs the scene sidecars that a simulator backbone "
            "(sketch) writes; use --detector mask2former for runs of real models"
        )
    return scene_from_json(json.loads(path.read_text(encoding="utf-8")))


# --------------------------------------------------------------------------------------- selection


def select_indices(
    metas: list[dict[str, Any]], limit: int | None = None, per_tag: int | None = None
) -> list[int]:
    """Prompt indices to run: the first ``per_tag`` of every tag (if set), then the first ``limit``."""
    indices = list(range(len(metas)))
    if per_tag is not None:
        seen: dict[str, int] = {}
        keep = []
        for i in indices:
            tag = metas[i]["tag"]
            if seen.get(tag, 0) < per_tag:
                keep.append(i)
                seen[tag] = seen.get(tag, 0) + 1
        indices = keep
    return indices[:limit] if limit is not None else indices


def shard_indices(indices: list[int], shard: tuple[int, int]) -> list[int]:
    """Every n-th index starting at i: shards interleave, so each gets a mix of tags."""
    i, n = shard
    return indices[i::n]


# -------------------------------------------------------------------------------------- generation


@dataclass(kw_only=True)
class GenerateConfig(RunConfig):
    """One GenEval generation run (``reprompt eval geneval``): the runner's settings plus the metadata file."""

    metadata: str = field(metadata={"help": "GenEval evaluation_metadata.jsonl"})
    images: int = field(default=4, metadata={"help": "images per prompt (GenEval: 4)"})
    limit: int | None = field(default=None, metadata={"help": "only the first N prompts (after --per-tag)"})
    per_tag: int | None = field(default=None, metadata={"help": "only the first K prompts of each tag"})

    def __post_init__(self) -> None:
        super().__post_init__()
        check_range("--per-tag", self.per_tag, 1)


class GenEvalLayout:
    """GenEval's side of the runner: prompts from the metadata file, one folder per prompt."""

    task = "geneval"
    run_format = RUN_FORMAT
    lock_name = "geneval"
    label = "GenEval"

    def __init__(self) -> None:
        self._metas: dict[str, list[dict[str, Any]]] = {}

    def metadata(self, config: GenerateConfig) -> list[dict[str, Any]]:
        if config.metadata not in self._metas:
            self._metas[config.metadata] = read_metadata_file(config.metadata)
        return self._metas[config.metadata]

    def select(self, config: GenerateConfig) -> tuple[list[Item], list[str]]:
        metas = self.metadata(config)
        selected = select_indices(metas, config.limit, config.per_tag)
        items = [
            Item(key=i, prompt=metas[i]["prompt"], group=metas[i]["tag"], position=p, metadata=metas[i])
            for p, i in enumerate(selected)
        ]
        return items, list(dict.fromkeys(it.group for it in items))

    def describe(self, config: GenerateConfig, items: list[Item]) -> dict[str, Any]:
        return {
            "metadata_file": str(Path(config.metadata).resolve()),
            "metadata_sha256": hashlib.sha256(Path(config.metadata).read_bytes()).hexdigest(),
            "n_prompts": len(self.metadata(config)),
            "selection": {"limit": config.limit, "per_tag": config.per_tag, "n_selected": len(items)},
        }

    def identity(self, info: dict[str, Any]) -> dict[str, Any]:
        return {"metadata_sha256": info["metadata_sha256"]}

    def legacy_diff(self, existing: dict[str, Any], info: dict[str, Any]) -> list[str] | None:
        return None  # one format so far

    def check_new_folder(self, out: Path) -> None:
        if out.is_dir() and any(p.name.isdigit() for p in out.iterdir()):
            raise RepromptError(f"{out} holds prompt folders but no {RUN_FILE}: choose an empty --out folder")

    def unfinished(self, out: Path, items: list[Item], check_images: bool = True) -> list[Item]:
        return [it for it in items if not self._finished(out, it.key, check_images)]

    @staticmethod
    def _finished(out: Path, index: int, check_images: bool) -> bool:
        """Done, and (``check_images``) its images are whole; a broken image is redone, with a warning."""
        if not is_done(out, index):
            return False
        if not check_images:
            return True
        try:
            expected = json.loads((prompt_dir(out, index) / MARKER).read_text(encoding="utf-8"))["images"]
        except (OSError, ValueError, KeyError, TypeError):
            expected = None
        problems = broken_samples(out, index, expected)
        for problem in problems:
            logger.warning("%s: generating prompt %d again", problem, index)
        return not problems

    def write(self, out: Path, item: Item, rw: Rewrite, render: RenderOutput, run: RunContext) -> None:
        seeds = render.seeds
        info = run.info
        index, scenes = item.key, info["scenes"]
        folder = prompt_dir(out, index)
        (folder / MARKER).unlink(missing_ok=True)
        for stale in folder.rglob(".*.tmp") if folder.exists() else ():
            stale.unlink(missing_ok=True)  # temp files of a killed attempt
        for k, image in enumerate(render.images):
            atomic_save_image(image_path(out, index, k), image, run.provenance(item.prompt, rw, seeds[k]))
            if render.scenes is not None and scenes != "none":
                scene = scene_to_json(
                    render.scenes[k], image.width, image.height, seeds[k], masks=scenes == "rle"
                )
                atomic_write_json(scene_path(out, index, k), scene, indent=None)
        extra = {
            "index": index,
            "rewritten_prompt": rw.prompt,
            "reasoning": rw.reasoning,
            "completion": rw.completion,
            "format_ok": rw.format_ok,
            "fallback": rw.fallback,
            "recovered": rw.recovered,
            "rewrite_issue": rw.issue,
            "completion_tokens": rw.completion_tokens,
            "prompt_tokens": rw.prompt_tokens,
            "token_limit": rw.token_limit,
            "truncated": rw.truncated,
            "seeds": list(seeds),
            "policy": info["policy"]["name"],
            "backbone": info["backbone"]["name"],
            "rewrite_seconds": round(rw.seconds, 4),
            "render_seconds": round(float(render.seconds), 4),
            "render_warnings": list(render.warnings),
        }
        if set(extra) != set(EXTRA_KEYS):
            raise RuntimeError("EXTRA_KEYS and the keys written differ")  # a bug, not user input
        meta = item.metadata or {}
        atomic_write_text(folder / "metadata.jsonl", json.dumps({**meta, **extra}, ensure_ascii=False) + "\n")
        atomic_write_json(folder / MARKER, {"images": len(seeds), "finished": now()})


def generate_run(
    config: GenerateConfig, *, rewriter: Rewriter | None = None, backbone: Backbone | None = None
) -> runner.RunStats:
    """Generate (or resume) a GenEval run; ``rewriter``/``backbone`` override the named ones.

    Holds a lock on (``out``, shard) meanwhile: a second identical command is refused with a message."""
    return runner.run("geneval", config, rewriter=rewriter, backbone=backbone)
