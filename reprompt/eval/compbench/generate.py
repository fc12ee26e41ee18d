"""Render T2I-CompBench images in the official layout: ``RUN/<category>/samples/{prompt}_{index:06d}.png``.

Each prompt is rewritten once (greedy) by the chosen rewriter, then rendered ``images_per_prompt`` times with
seeds ``seed + n`` (official: 42 ... 51). The file name keeps the ORIGINAL prompt, so the scorers judge the
image against what the user asked for. Seeds depend only on n, so two runs with different rewriters are
paired image by image.

Resumable and shardable: a prompt is finished once its record line (written after all its images, each
saved atomically) is in ``RUN/<category>/records*.jsonl``; shard ``i/n`` takes prompts with index % n == i
and writes its own records file, so processes never share a file.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from reprompt.errors import ConfigError, RepromptError
from reprompt.eval.compbench import categories as cats
from reprompt.utils.io import append_jsonl, atomic_save_image, atomic_write_json, read_jsonl

logger = logging.getLogger(__name__)

RUN_FILE = "run.json"


@dataclass
class GenerateConfig:
    """Settings of a T2I-CompBench generation run."""

    data_dir: str = field(metadata={"help": "folder with the official *_val.txt prompt files"})
    out_dir: str = field(metadata={"help": "run folder (one sub-folder per category)"})
    categories: str = field(default="all", metadata={"help": "comma-separated categories, or 'all'"})
    backbone: str = field(default="sketch", metadata={"help": "backbone name, preset, or diffusers folder"})
    model: str | None = field(default=None, metadata={"help": "local folder for a preset backbone"})
    policy: str = field(
        default="none", metadata={"help": "rewriter: none, smollm2, openai, folder or hub id"}
    )
    api_model: str | None = field(default=None, metadata={"help": "model name for --policy openai"})
    api_base: str | None = field(default=None, metadata={"help": "base URL for --policy openai"})
    images_per_prompt: int = field(default=10, metadata={"help": "images per prompt (official: 10)"})
    seed: int = field(default=42, metadata={"help": "image n of each prompt uses seed + n (official: 42)"})
    limit: int | None = field(default=None, metadata={"help": "only the first N prompts of each category"})
    shard: str = field(
        default="0/1", metadata={"help": "i/n: this process renders prompts with index % n == i"}
    )
    max_new_tokens: int = field(default=256, metadata={"help": "policy tokens per rewrite"})
    rewrite_batch_size: int = field(default=8, metadata={"help": "prompts per policy generate() call"})
    device: str = field(default="cpu", metadata={"help": "torch device for the policy and the backbone"})
    dtype: str = field(default="auto", metadata={"help": "model dtype: auto, float32, bfloat16, float16"})
    progress: bool = field(default=True, metadata={"help": "show a progress bar"})

    def __post_init__(self) -> None:
        if self.images_per_prompt < 1:
            raise ConfigError("images_per_prompt must be >= 1")
        if self.limit is not None and self.limit < 1:
            raise ConfigError("limit must be >= 1")
        self.shard_index, self.shard_count = parse_shard(self.shard)

    def run_settings(self) -> dict[str, Any]:
        """What makes two shards (or a resumed run) the same run; mixing different ones is refused."""
        return {
            "task": cats.task_config()["task"],
            "task_version": cats.task_version(),
            "backbone": self.backbone,
            "model": self.model,
            "policy": self.policy,
            "api_model": self.api_model,
            "images_per_prompt": self.images_per_prompt,
            "seed": self.seed,
            "max_new_tokens": self.max_new_tokens,
        }


def parse_shard(text: str) -> tuple[int, int]:
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise ConfigError(f"--shard must look like i/n (e.g. 0/4), got {text!r}") from None
    if n < 1 or not 0 <= i < n:
        raise ConfigError(f"--shard {text}: need 0 <= i < n")
    return i, n


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


def _finished(category_dir: Path) -> set[int]:
    samples = category_dir / "samples"
    return {
        int(r["prompt_index"])
        for r in read_records(category_dir)
        if all((samples / f).exists() for f in r["files"])
    }


def check_run(out_dir: Path, settings: dict[str, Any], data_dir: str | None = None) -> None:
    """Write ``run.json`` on first use; refuse to add images made with other settings to a run."""
    path = out_dir / RUN_FILE
    if path.exists():
        import json

        old = json.loads(path.read_text(encoding="utf-8")).get("settings", {})
        diff = {k: (old.get(k), v) for k, v in settings.items() if old.get(k) != v}
        if diff:
            details = ", ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in diff.items())
            raise RepromptError(
                f"{out_dir} holds a run with other settings ({details}); use a new --out folder"
            )
        return
    record = {"settings": settings, "data_dir": str(Path(data_dir).resolve()) if data_dir else None}
    atomic_write_json(path, record | {"created": time.strftime("%Y-%m-%dT%H:%M:%S")})


def scene_to_json(scene: list[Any] | None) -> list[dict[str, Any]] | None:
    if scene is None:
        return None
    return [
        {"cls": o.cls, "box": [float(v) for v in o.box], "color": o.color, "score": float(o.score)}
        for o in scene
    ]


def scene_from_json(data: list[dict[str, Any]] | None) -> list[Any] | None:
    if data is None:
        return None
    from reprompt.backbones.base import SceneObject

    return [
        SceneObject(cls=o["cls"], box=tuple(o["box"]), color=o.get("color"), score=o.get("score", 1.0))
        for o in data
    ]


def build_rewriter(cfg: GenerateConfig) -> Any:
    from reprompt.policy import load_policy

    kw: dict[str, Any] = {"device": cfg.device, "dtype": cfg.dtype}
    if cfg.policy == "openai":
        kw = {"api_model": cfg.api_model, "api_base": cfg.api_base}
    return load_policy(cfg.policy, **kw)


def build_backbone(cfg: GenerateConfig) -> Any:
    from reprompt.backbones import is_simulator, load_backbone

    if is_simulator(cfg.backbone):
        return load_backbone(cfg.backbone)
    return load_backbone(cfg.backbone, model=cfg.model, device=cfg.device, dtype=cfg.dtype)


def generate(
    cfg: GenerateConfig, rewriter: Any = None, backbone: Any = None, options: Any = None
) -> dict[str, Any]:
    """Render every unfinished prompt of this shard; returns counts per category.

    ``rewriter``/``backbone`` may be passed built, or as zero-argument factories (the CLI), or left None
    to load them from ``cfg``; either way they load only when there is work left. ``options`` are the
    policy's :class:`GenerationOptions` (default: greedy, ``cfg.max_new_tokens``). Holds a lock on
    (``out_dir``, shard) meanwhile: a second identical command is refused with a message.
    """
    from reprompt.utils.lock import folder_lock

    i, n = cfg.shard_index, cfg.shard_count
    with folder_lock(cfg.out_dir, f"compbench-shard-{i}-of-{n}", f"T2I-CompBench shard {i}/{n}"):
        return _generate(cfg, rewriter, backbone, options)


def _generate(cfg: GenerateConfig, rewriter: Any, backbone: Any, options: Any) -> dict[str, Any]:
    from reprompt.policy import GenerationOptions

    out_dir = Path(cfg.out_dir)
    check_run(out_dir, cfg.run_settings(), cfg.data_dir)
    plan: list[tuple[cats.Category, list[int], list[str]]] = []
    summary: dict[str, Any] = {}
    for cat in cats.resolve_categories(cfg.categories):
        prompts = cats.load_prompts(cat, cfg.data_dir)
        n = min(len(prompts), cfg.limit) if cfg.limit else len(prompts)
        done = _finished(out_dir / cat.name)
        mine = [i for i in range(n) if i % cfg.shard_count == cfg.shard_index]
        todo = [i for i in mine if i not in done]
        plan.append((cat, todo, prompts))
        summary[cat.name] = {"rendered": 0, "already_done": len(mine) - len(todo)}
    total = sum(len(todo) for _, todo, _ in plan)
    if total == 0:
        return summary
    backbone = _build(backbone, lambda: build_backbone(cfg), "render")
    rewriter = _build(rewriter, lambda: build_rewriter(cfg), "rewrite")
    options = options or GenerationOptions(
        max_new_tokens=cfg.max_new_tokens, batch_size=cfg.rewrite_batch_size
    )
    bar = None
    if cfg.progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, desc="compbench", unit="prompt")
    for cat, todo, prompts in plan:
        cat_dir = out_dir / cat.name
        rec_path = records_file(cat_dir, cfg.shard_index, cfg.shard_count)
        if bar is not None:
            bar.set_description(f"compbench {cat.name}")
        for start in range(0, len(todo), cfg.rewrite_batch_size):
            chunk = todo[start : start + cfg.rewrite_batch_size]
            rewrites = rewriter.rewrite(
                [prompts[i] for i in chunk], options, token_counter=backbone.count_tokens
            )
            for i, rw in zip(chunk, rewrites, strict=True):
                _render_prompt(cfg, backbone, rewriter, cat_dir, rec_path, i, prompts[i], rw)
                summary[cat.name]["rendered"] += 1
                if bar is not None:
                    bar.update(1)
    if bar is not None:
        bar.close()
    return summary


def _build(obj: Any, default: Any, method: str) -> Any:
    if obj is None:
        return default()
    return obj if hasattr(obj, method) else obj()


def _render_prompt(
    cfg: GenerateConfig,
    backbone: Any,
    rewriter: Any,
    cat_dir: Path,
    rec_path: Path,
    index: int,
    prompt: str,
    rw: Any,
) -> None:
    k = cfg.images_per_prompt
    seeds = [cfg.seed + n for n in range(k)]
    out = backbone.render([rw.prompt] * k, seeds)
    indices = [cats.global_index(index, n, k) for n in range(k)]
    files = [cats.image_name(prompt, g) for g in indices]
    for name, image in zip(files, out.images, strict=True):
        atomic_save_image(cat_dir / "samples" / name, image)
    append_jsonl(
        rec_path,
        {
            "prompt_index": index,
            "prompt": prompt,
            "rendered_prompt": rw.prompt,
            "reasoning": rw.reasoning,
            "rewrite": {
                key: value
                for key, value in asdict(rw).items()
                if key not in ("original", "prompt", "reasoning")
            },
            "policy": getattr(rewriter, "name", cfg.policy),
            "backbone": getattr(backbone, "name", cfg.backbone),
            "seeds": seeds,
            "indices": indices,
            "files": files,
            "render_seconds": round(out.seconds, 4),
            "warnings": list(out.warnings),
            "scenes": [scene_to_json(s) for s in out.scenes] if out.scenes is not None else None,
        },
    )
