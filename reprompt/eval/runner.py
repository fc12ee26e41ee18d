"""One runner for every benchmark: select the prompts, shard them, skip what is done, rewrite, render, write.

A benchmark plugs in as a :class:`Layout` (registered by task name in :mod:`reprompt.eval.registry`): which
prompts a run covers, where each prompt's files go in the benchmark's official layout, when a prompt counts
as finished, and which run settings must match to resume. Everything else is shared and lives here:

- **Seeds.** Image ``k`` of every prompt uses ``seed + k`` (:func:`reprompt.pipeline.image_seeds`, the rule of
  every front end), whatever the rewriter, shard or selection, so two runs of the same prompts pair up image
  by image (``reprompt eval compare``). Rewriting, candidate choice and rendering are the pipeline's too.
- **Shards.** ``i/n`` (0-based) takes the prompts at positions ``p`` of the selection with ``p % n == i``;
  their union is the full run, and they may run at the same time (each under its own lock).
- **Resume.** A prompt's images are written atomically and its completion record last, so a killed run redoes
  at most the prompts in flight; a finished prompt whose images are missing or broken is done again.
- **Identity.** ``run.json`` records what the run is (policy, backbone, seeds, decoding, task version);
  resuming or adding a shard with other settings is refused with the differences.
- **Provenance.** Policy and backbone revisions, the git commit, timings per invocation (``logs/``).

Why ~440 lines: it is the one home of everything the benchmarks share; each benchmark's own part is
its layout (:mod:`reprompt.eval.geneval.generate`, :mod:`reprompt.eval.compbench.generate`).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from reprompt.backbones.base import applied_settings
from reprompt.errors import ConfigError, RepromptError, check_choice, check_range
from reprompt.eval.provenance import describe_backbone, describe_policy, git_hash, jsonable, now
from reprompt.geneval.scene import SCENE_MODES
from reprompt.pipeline import SEED_RULE, RePromptPipeline, image_seeds
from reprompt.utils.images import ImageProvenance
from reprompt.utils.io import append_jsonl, atomic_write_json
from reprompt.utils.names import public_name

if TYPE_CHECKING:
    from reprompt.backbones.base import Backbone, RenderOutput
    from reprompt.policy import GenerationOptions, Rewrite, Rewriter

logger = logging.getLogger(__name__)

RUN_FILE = "run.json"
# Settings that may change between resumed invocations without changing any output.
_VOLATILE = {"device", "cpu_offload", "batch_size", "render_batch_size", "progress"}


def parse_shard(text: str | tuple[int, int] | None) -> tuple[int, int]:
    """``"i/n"`` (0-based ``i``) -> (i, n); None -> (0, 1)."""
    if text is None:
        return 0, 1
    if isinstance(text, tuple):
        i, n = text
    else:
        m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
        if not m:
            raise ConfigError(f"--shard takes i/n with 0 <= i < n (e.g. 0/4), got {text!r}")
        i, n = int(m.group(1)), int(m.group(2))
    if not 0 <= i < n:
        raise ConfigError(f"--shard {i}/{n}: need 0 <= i < n (shards are numbered from 0)")
    return i, n


def read_run_info(out: str | Path) -> dict[str, Any] | None:
    path = Path(out) / RUN_FILE
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as e:
        raise RepromptError(f"{path} is not valid JSON ({e}); it is not a reprompt run folder") from e


# ------------------------------------------------------------------------------------------- config


@dataclass(kw_only=True)
class RunConfig:
    """What every benchmark run needs; a task's config adds where its prompts come from."""

    out: str = field(metadata={"help": "run folder (official layout); rerun the same command to resume"})
    policy: str = field(default="none", metadata={"help": "none | smollm2 | openai | folder | hub id"})
    policy_kwargs: dict[str, Any] = field(
        default_factory=dict, metadata={"help": "load_policy keywords (prompt_spec, device, api_model, ...)"}
    )
    generation: Any = field(
        default=None, metadata={"help": "GenerationOptions of the policy (default: greedy, 256 new tokens)"}
    )
    backbone: str = field(default="sketch", metadata={"help": "sketch | flux-dev | ... | diffusers folder"})
    backbone_kwargs: dict[str, Any] = field(default_factory=dict, metadata={"help": "load_backbone keywords"})
    images: int = field(default=4, metadata={"help": "images per prompt"})
    seed: int = field(default=42, metadata={"help": "image k of every prompt uses seed + k"})
    limit: int | None = field(default=None, metadata={"help": "only the first N prompts"})
    shard: str | None = field(
        default=None, metadata={"help": "i/n: this process does every n-th prompt (0-based i)"}
    )
    scenes: str = field(
        default="rle",
        metadata={
            "help": "simulator scenes kept for the oracle detector: with RLE masks, boxes only, or none",
            "choices": SCENE_MODES,
        },
    )
    stop_after: int | None = field(
        default=None, metadata={"help": "finish at most N prompts in this invocation, then exit"}
    )
    progress: bool = field(default=True, metadata={"help": "show a progress bar"})

    def __post_init__(self) -> None:
        check_range("--images", self.images, 1, 1000)
        check_range("--limit", self.limit, 1)
        check_range("--stop-after", self.stop_after, 1)
        check_choice("--scenes", self.scenes, SCENE_MODES)
        parse_shard(self.shard)


@dataclass
class Item:
    """One prompt of a run: ``key`` locates its files in the task's layout; ``position`` is its place in
    the run's selection (shards split by it); ``group`` is its tag or category."""

    key: Any
    prompt: str
    group: str
    position: int
    metadata: dict[str, Any] | None = None


@dataclass
class RunContext:
    """What a layout writes next to each prompt: the run's ``run.json``, the loaded models' names, and this
    process's shard (files that every shard appends to are kept per shard)."""

    info: dict[str, Any]
    policy: str
    backbone: str
    shard: tuple[int, int]
    render: dict[str, Any] = field(default_factory=dict)
    """What each render call uses (size, steps, guidance): recorded in every image's provenance."""

    def provenance(self, original: str, rw: Rewrite, seed: int) -> ImageProvenance:
        """The provenance of one image of this run (written into its PNG text chunks)."""
        how = "off" if self.policy == "none" else "fallback" if rw.fallback else "rewritten"
        return ImageProvenance(
            original=original,
            prompt=rw.prompt,
            seed=seed,
            backbone=public_name(self.backbone),
            settings=self.render,
            policy=None if how == "off" else public_name(self.policy),
            reasoning="" if how == "off" else rw.reasoning,
            rewrite=how,
            extra={"task": self.info.get("task")},
        )


@dataclass
class RunStats:
    """What one invocation did (``groups``: per tag or category, ``{"rendered", "already_done"}``)."""

    selected: int
    shard_total: int
    already_done: int
    done_now: int
    remaining: int
    seconds_rewrite: float = 0.0
    seconds_render: float = 0.0
    seconds_total: float = 0.0
    groups: dict[str, dict[str, int]] = field(default_factory=dict)


class Layout(Protocol):
    """A benchmark's side of the runner: its prompts, its files, its run identity."""

    task: str
    """Registered task name (``geneval``, ``t2i-compbench``): its ``task.yaml`` gives the version."""
    run_format: str
    """``format`` of its ``run.json`` (``reprompt-geneval-run/1``)."""
    lock_name: str
    """Prefix of the per-shard lock file (``geneval`` -> ``.geneval-shard-0-of-1.lock``)."""
    label: str
    """How messages name it (``GenEval``)."""

    def select(self, config: Any) -> tuple[list[Item], list[str]]:
        """The run's prompts in selection order, and every group it covers (in order)."""
        ...

    def describe(self, config: Any, items: list[Item]) -> dict[str, Any]:
        """Task fields of ``run.json`` (where the prompts came from, how they were selected)."""
        ...

    def identity(self, info: dict[str, Any]) -> dict[str, Any]:
        """Task fields of ``run.json`` that must match to resume (besides seeds, models and decoding)."""
        ...

    def check_new_folder(self, out: Path) -> None:
        """Refuse an ``out`` folder without ``run.json`` that already holds this task's outputs."""
        ...

    def unfinished(self, out: Path, items: list[Item], check_images: bool = True) -> list[Item]:
        """The items without a completion record, or (``check_images``) whose images are missing or
        broken: those are done again, with a warning naming the file."""
        ...

    def legacy_diff(self, existing: dict[str, Any], info: dict[str, Any]) -> list[str] | None:
        """For a ``run.json`` in an older format of this task: the settings that differ from ``info``
        (resuming is refused if any); None if ``existing`` is no run of this task at all."""
        ...

    def write(self, out: Path, item: Item, rewrite: Rewrite, render: RenderOutput, run: RunContext) -> None:
        """Save one prompt's images (image ``k`` rendered from ``render.seeds[k]``) atomically, then its
        completion record (last)."""
        ...


# ------------------------------------------------------------------------------------------- identity


def _strip_volatile(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _strip_volatile(v) for k, v in obj.items() if k not in _VOLATILE}
    if isinstance(obj, list):
        return [_strip_volatile(v) for v in obj]
    return obj


def run_identity(layout: Layout, info: dict[str, Any]) -> dict[str, Any]:
    """The part of ``run.json`` that must match when resuming or adding a shard."""
    policy, backbone = info["policy"], info["backbone"]
    return _strip_volatile(
        {
            **layout.identity(info),
            "seeds": info["seeds"],
            "policy": {"name": policy["name"], "settings": policy["settings"]},
            "backbone": {"name": backbone["name"], "settings": backbone["settings"]},
            "generation": info["generation"],
            "scenes": info["scenes"],
        }
    )


def diff_keys(a: Any, b: Any, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            out += diff_keys(a.get(k), b.get(k), f"{prefix}{k}.")
        return out
    return [] if a == b else [f"{prefix[:-1]}: {a!r} -> {b!r}"]


def run_info(
    layout: Layout,
    config: RunConfig,
    items: list[Item],
    rewriter: Rewriter,
    backbone: Backbone,
    options: GenerationOptions,
) -> dict[str, Any]:
    """The ``run.json`` of a run: task, where its prompts came from, seeds, models, decoding, provenance."""
    from reprompt._version import __version__
    from reprompt.eval.registry import load_task

    bb = describe_backbone(backbone, config.backbone)
    bb["settings"] = {**bb["settings"], **jsonable(config.backbone_kwargs)}
    return {
        "format": layout.run_format,
        "task": layout.task,
        "task_version": load_task(layout.task).version,
        **layout.describe(config, items),
        "seeds": {"base_seed": config.seed, "images_per_prompt": config.images, "rule": SEED_RULE},
        "policy": describe_policy(rewriter, config.policy),
        "backbone": bb,
        "generation": jsonable(dataclasses.asdict(options)) if config.policy != "none" else {},
        "scenes": config.scenes,
        "git_hash": git_hash(),
        "reprompt_version": __version__,
        "created": now(),
    }


# --------------------------------------------------------------------------------------------- run


def run(
    layout: Layout | str,
    config: RunConfig,
    *,
    rewriter: Rewriter | Callable[[], Rewriter] | None = None,
    backbone: Backbone | Callable[[], Backbone] | None = None,
) -> RunStats:
    """Generate (or resume) this shard of a benchmark run. ``layout`` is the task's layout or a registered
    task name (``geneval``, ``t2i-compbench``: the layout its ``task.yaml`` names). ``rewriter``/``backbone``
    override the named ones (built, or zero-argument factories); either way models load only when there is
    work left.

    Holds a lock on (``out``, shard) meanwhile: a second identical command is refused with a message."""
    from reprompt.eval.registry import get_layout
    from reprompt.utils.lock import folder_lock

    task: Layout = get_layout(layout) if isinstance(layout, str) else layout
    i, n = parse_shard(config.shard)
    with folder_lock(config.out, f"{task.lock_name}-shard-{i}-of-{n}", f"{task.label} shard {i}/{n}"):
        return _run(task, config, rewriter, backbone)


def _run(layout: Layout, config: RunConfig, rewriter: Any, backbone: Any) -> RunStats:
    from reprompt.policy import GenerationOptions

    t_start = time.perf_counter()
    out = Path(config.out)
    items, groups = layout.select(config)
    shard = parse_shard(config.shard)
    mine = [it for it in items if it.position % shard[1] == shard[0]]
    existing = read_run_info(out)
    if existing is None:
        layout.check_new_folder(out)
    todo = layout.unfinished(out, mine)
    stats = RunStats(len(items), len(mine), len(mine) - len(todo), 0, len(todo))
    stats.groups = {g: {"rendered": 0, "already_done": 0} for g in groups}
    pending = {id(it) for it in todo}
    for it in mine:
        if id(it) not in pending:
            stats.groups[it.group]["already_done"] += 1
    options = config.generation or GenerationOptions()
    if options.num_candidates != 1:
        raise ConfigError(f"{layout.label} renders one rewrite per prompt: use --candidates 1")
    if not todo and existing is not None:
        _check_settings(layout, out, existing, config)  # without loading models: seeds and model names
        return stats
    rewriter = _built(rewriter, "rewrite") or _load_policy(config.policy, config.policy_kwargs)
    backbone = _built(backbone, "render") or _load_backbone(config.backbone, config.backbone_kwargs)
    info = run_info(layout, config, items, rewriter, backbone, options)
    if existing is not None:
        if existing.get("format") == layout.run_format:
            diff = diff_keys(run_identity(layout, existing), run_identity(layout, info))
            info = {**existing, **{k: info[k] for k in _REFRESHED if k in info}}
        else:  # an older run.json of this task (rewritten in today's format), or no run of it at all
            legacy = layout.legacy_diff(existing, info)
            diff = (
                legacy
                if legacy is not None
                else [f"format: {existing.get('format')!r} -> {layout.run_format!r}"]
            )
        if diff:
            raise RepromptError(
                f"{out} holds a different run ({'; '.join(diff[:4])}); use another --out folder"
            )
    atomic_write_json(out / RUN_FILE, info)
    context = RunContext(info, rewriter.name, backbone.name, shard, applied_settings(backbone))
    if not todo:
        return stats

    from tqdm.auto import tqdm

    bar = tqdm(
        total=len(mine),
        initial=stats.already_done,
        disable=not config.progress,
        unit="prompt",
        desc=f"{layout.lock_name} {config.policy}"
        + (f" shard {shard[0]}/{shard[1]}" if shard[1] > 1 else ""),
    )
    if config.stop_after is not None:
        todo = todo[: config.stop_after]
    seeds = image_seeds(config.seed, config.images)
    pipe = RePromptPipeline(rewriter, backbone)
    try:
        for start in range(0, len(todo), options.batch_size):
            chunk = todo[start : start + options.batch_size]
            t0 = time.perf_counter()
            choices = pipe.rewrite([it.prompt for it in chunk], options)
            stats.seconds_rewrite += time.perf_counter() - t0
            for item, choice in zip(chunk, choices, strict=True):
                t1 = time.perf_counter()
                render = pipe.render(choice.chosen.prompt, seeds)
                stats.seconds_render += time.perf_counter() - t1
                layout.write(out, item, choice.chosen, render, context)
                stats.done_now += 1
                stats.groups[item.group]["rendered"] += 1
                bar.update(1)
    finally:
        bar.close()
        stats.remaining = len(layout.unfinished(out, mine, check_images=False))
        stats.seconds_total = time.perf_counter() - t_start
        logged = {k: v for k, v in dataclasses.asdict(stats).items() if k != "groups"}
        append_jsonl(out / "logs" / f"shard-{shard[0]}-of-{shard[1]}.jsonl", {"finished": now(), **logged})
    return stats


def _check_settings(layout: Layout, out: Path, existing: dict[str, Any], config: RunConfig) -> None:
    """Refuse a finished run's folder for a command with other seeds or models (checked before loading them)."""
    if existing.get("format") != layout.run_format:
        return  # an older run.json: checked in full when there is work to do
    asked = {
        "seeds.base_seed": config.seed,
        "seeds.images_per_prompt": config.images,
        "policy.name": config.policy,
        "backbone.name": config.backbone,
    }
    recorded = {
        "seeds.base_seed": existing["seeds"]["base_seed"],
        "seeds.images_per_prompt": existing["seeds"]["images_per_prompt"],
        "policy.name": existing["policy"]["name"],
        "backbone.name": existing["backbone"]["name"],
    }
    diff = [f"{k}: {recorded[k]!r} -> {asked[k]!r}" for k in asked if asked[k] != recorded[k]]
    if diff:
        raise RepromptError(f"{out} holds a different run ({'; '.join(diff)}); use another --out folder")


# Fields of run.json that describe this invocation's selection: a resumed run takes the new ones.
_REFRESHED = {"selection", "n_prompts", "categories"}


def _built(obj: Any, method: str) -> Any:
    """A built model, a model from a zero-argument factory, or None."""
    if obj is None:
        return None
    return obj if hasattr(obj, method) else obj()


def _load_policy(name: str, kwargs: dict[str, Any]) -> Rewriter:
    from reprompt.policy import load_policy

    return load_policy(name, **kwargs)


def _load_backbone(name: str, kwargs: dict[str, Any]) -> Backbone:
    from reprompt.backbones import load_backbone

    return load_backbone(name, **kwargs)
