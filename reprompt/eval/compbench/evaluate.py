"""Score a T2I-CompBench run folder: per-category ``RUN/<category>/scores.json`` and ``RUN/compbench_summary.json``.

Works on our runs (``records*.jsonl`` give the prompt, rewrite and, for the sketch simulator, the drawn
scene) and on any folder in the official layout (``<category>/samples/{prompt}_{index:06d}.png``), where
the prompt is read back from the file name as the official scorers do. Per-image scores are appended to
``scores.partial.jsonl`` as they are computed, so a killed evaluation resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from reprompt.errors import RepromptError
from reprompt.eval.compbench import categories as cats
from reprompt.eval.compbench import metrics, nlp, rules
from reprompt.eval.compbench.generate import read_records, scene_from_json
from reprompt.eval.runner import RUN_FILE
from reprompt.utils.io import append_jsonl, atomic_write_json, read_json, read_jsonl

if TYPE_CHECKING:
    from reprompt.eval.schema import CategoryScores, CompBenchSummary

SUMMARY_FILE = "compbench_summary.json"


@dataclass
class EvaluateConfig:
    """Which models score a run, and how."""

    run_dir: str = field(metadata={"help": "run folder written by `reprompt eval compbench generate`"})
    data_dir: str | None = field(
        default=None, metadata={"help": "prompt files (needed for 'complex' splits)"}
    )
    categories: str = field(default="all", metadata={"help": "comma-separated categories, or 'all'"})
    detector: str | None = field(
        default=None, metadata={"help": "oracle, mask2former or mmdet (default: oracle for sketch runs)"}
    )
    detector_model: str | None = field(
        default=None, metadata={"help": "detector folder or id (mmdet: CONFIG.py,CHECKPOINT.pth)"}
    )
    threshold: float = field(default=metrics.UNIDET_THRESHOLD, metadata={"help": "detection confidence cut"})
    blip_model: str = field(default=metrics.DEFAULT_BLIP, metadata={"help": "BLIP-VQA folder or id"})
    blip_image_size: int | None = field(
        default=None,
        metadata={
            "help": "BLIP input size (None: the image processor's own, a listed deviation from the official 480)"
        },
    )
    clip_model: str = field(default=metrics.DEFAULT_CLIP, metadata={"help": "CLIP folder or id"})
    depth_model: str = field(
        default=metrics.DEFAULT_DEPTH, metadata={"help": "depth-estimation folder or id"}
    )
    depth_image_size: int | None = field(default=480, metadata={"help": "depth input size (official: 480)"})
    nlp: str = field(default="auto", metadata={"help": "prompt parser: auto, spacy (official) or rules"})
    device: str = field(default="cpu", metadata={"help": "torch device for the scoring models"})
    batch_size: int = field(default=16, metadata={"help": "images per scoring step"})
    overwrite: bool = field(default=False, metadata={"help": "rescore categories that already have scores"})
    progress: bool = field(default=True, metadata={"help": "show a progress bar"})

    def key(self, metric: str) -> str:
        """Hash of the settings that decide a metric's numbers (a change invalidates saved partial scores)."""
        used = {"metric": metric, "nlp": self.nlp, "version": cats.task_version()}
        if metric in ("blip_vqa", "three_in_one"):
            used |= {"blip": self.blip_model, "blip_size": self.blip_image_size}
        if metric in ("clip", "three_in_one"):
            used |= {"clip": self.clip_model}
        if metric in ("spatial_2d", "spatial_3d", "numeracy", "three_in_one"):
            used |= {
                "detector": self.detector,
                "detector_model": self.detector_model,
                "threshold": self.threshold,
            }
        if metric == "spatial_3d":
            used |= {"depth": self.depth_model, "depth_size": self.depth_image_size}
        return hashlib.sha256(json.dumps(used, sort_keys=True).encode()).hexdigest()[:16]


class Scorers:
    """Scoring models, each loaded on first use and shared across categories."""

    def __init__(self, cfg: EvaluateConfig) -> None:
        self.cfg = cfg
        self.analyzer = nlp.get_analyzer(cfg.nlp)

    @cached_property
    def blip(self) -> metrics.BlipVqaScorer:
        c = self.cfg
        return metrics.BlipVqaScorer(
            c.blip_model, c.device, batch_size=c.batch_size, image_size=c.blip_image_size
        )

    @cached_property
    def clip(self) -> metrics.ClipScorer:
        return metrics.ClipScorer(self.cfg.clip_model, self.cfg.device, batch_size=self.cfg.batch_size)

    @cached_property
    def depth(self) -> metrics.DepthEstimator:
        c = self.cfg
        return metrics.DepthEstimator(c.depth_model, c.device, image_size=c.depth_image_size)

    @cached_property
    def detector(self) -> Any:
        from reprompt.geneval.scorer import ScorerConfig, build_detector

        name = self.cfg.detector or "mask2former"
        mmdet: list[str | None] = [None, None]
        if name == "mmdet":
            mmdet = list((self.cfg.detector_model or "").split(","))
            if len(mmdet) != 2:
                raise RepromptError("--detector mmdet needs --detector-model CONFIG.py,CHECKPOINT.pth")
        config = ScorerConfig(
            detector=name,
            detector_model=self.cfg.detector_model if name == "mask2former" else None,
            mmdet_config=mmdet[0],
            mmdet_checkpoint=mmdet[1],
            device=self.cfg.device,
        )
        return build_detector(config, name)

    def info(self, metric: str) -> dict[str, Any]:
        out: dict[str, Any] = {"nlp": self.analyzer.name}
        if metric in ("blip_vqa", "three_in_one"):
            out["blip_vqa"] = self.blip.info()
        if metric in ("clip", "three_in_one"):
            out["clip"] = self.clip.info()
        if metric in ("spatial_2d", "spatial_3d", "numeracy", "three_in_one"):
            out["detector"] = {
                "name": self.detector.name,
                "model": self.cfg.detector_model,
                "threshold": self.cfg.threshold,
            }
        if metric == "spatial_3d":
            out["depth"] = self.depth.info()
        return out


@dataclass
class Item:
    """One image to score."""

    file: str
    index: int
    prompt: str
    scene: Any = None
    prompt_index: int | None = None


def list_items(category_dir: Path) -> list[Item]:
    """Images of a category, in global-index order: from our records, else from official file names."""
    records = read_records(category_dir)
    samples = category_dir / "samples"
    items: list[Item] = []
    if records:
        for rec in records:
            scenes = rec.get("scenes") or [None] * len(rec["files"])
            for name, index, scene in zip(rec["files"], rec["indices"], scenes, strict=True):
                if (samples / name).exists():
                    items.append(
                        Item(name, int(index), rec["prompt"], scene_from_json(scene), rec["prompt_index"])
                    )
    elif samples.is_dir():
        for path in samples.iterdir():
            parsed = cats.parse_image_name(path.name)
            if parsed:
                items.append(Item(path.name, parsed[1], parsed[0]))
    items.sort(key=lambda it: it.index)
    return items


def _run_info(run_dir: Path) -> dict[str, Any]:
    path = run_dir / RUN_FILE
    if not path.exists():
        return {}
    info = read_json(path, "it is not a reprompt run record; generate the run again or remove the file")
    return info if isinstance(info, dict) else {}


def _default_detector(run_dir: Path) -> str:
    from reprompt.backbones import is_simulator

    info = _run_info(run_dir)
    backbone = (info.get("backbone") or {}).get("name") or info.get("settings", {}).get("backbone") or ""
    return "oracle" if is_simulator(backbone) else "mask2former"


def evaluate(cfg: EvaluateConfig, scorers: Scorers | None = None) -> CompBenchSummary:
    """Score every requested category that has images; returns (and writes) the summary. Each category's
    score and the mean over categories are the task's registered metrics (``task.yaml``)."""
    run_dir = Path(cfg.run_dir)
    if not run_dir.is_dir():
        raise RepromptError(f"run folder {run_dir} not found")
    cfg.detector = cfg.detector or _default_detector(run_dir)
    cfg.data_dir = cfg.data_dir or _run_info(run_dir).get("data_dir")
    scorers = scorers or Scorers(cfg)
    results: dict[str, CategoryScores] = {}
    for cat in cats.resolve_categories(cfg.categories):
        cat_dir = run_dir / cat.name
        items = list_items(cat_dir)
        if not items:
            continue
        out_path = cat_dir / "scores.json"
        key = cfg.key(cat.metric)
        if out_path.exists() and not cfg.overwrite:
            saved = read_json(out_path, "pass --overwrite to rescore it")
            if isinstance(saved, dict) and saved.get("key") == key and saved.get("n_images") == len(items):
                results[cat.name] = cast("CategoryScores", saved)
                continue
        results[cat.name] = score_category(cfg, scorers, cat, items, cat_dir, key)
    task = cats.task()
    over = [{"value": im["score"], "category": name} for name, r in results.items() for im in r["per_image"]]
    overall = task.metric("mean_over_categories").score(over, order=list(results)) if results else None
    summary: CompBenchSummary = {
        "task": task.task,
        "task_version": cats.task_version(),
        "run_dir": str(run_dir),
        "scores": {name: r["score"] for name, r in results.items()},
        "n_images": {name: r["n_images"] for name, r in results.items()},
        "mean_over_categories": overall,
        "metrics": {name: r["metric"] for name, r in results.items()},
        "models": {name: r["models"] for name, r in results.items()},
        "deviations": {k: metrics.DEVIATIONS[k] for r in results.values() for k in r["deviations"]},
        "settings": {k: v for k, v in asdict(cfg).items() if k not in ("progress", "overwrite")},
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    atomic_write_json(run_dir / SUMMARY_FILE, summary)
    return summary


def score_category(
    cfg: EvaluateConfig, scorers: Scorers, cat: cats.Category, items: list[Item], cat_dir: Path, key: str
) -> CategoryScores:
    partial_path = cat_dir / "scores.partial.jsonl"
    if cfg.overwrite:
        partial_path.unlink(missing_ok=True)
    done = {r["file"]: r for r in read_jsonl(partial_path) if r.get("key") == key}
    todo = [it for it in items if it.file not in done]
    splits = None
    if cat.metric == "three_in_one":
        data_dir = cfg.data_dir
        if not data_dir:
            raise RepromptError("scoring 'complex' needs --data-dir (the complex_val_*.txt split files)")
        splits = cats.load_complex_splits(data_dir)
    bar = None
    if cfg.progress and todo:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(todo), desc=f"score {cat.name}", unit="img")
    for start in range(0, len(todo), cfg.batch_size):
        batch = todo[start : start + cfg.batch_size]
        for item, res in zip(
            batch, score_batch(cfg, scorers, cat.metric, batch, cat_dir, splits), strict=True
        ):
            record = {"file": item.file, "question_id": item.index, "prompt": item.prompt, "key": key, **res}
            append_jsonl(partial_path, record)
            done[item.file] = record
        if bar is not None:
            bar.update(len(batch))
    if bar is not None:
        bar.close()
    per_image = [{k: v for k, v in done[it.file].items() if k != "key"} for it in items]
    by_prompt: dict[str, list[float]] = {}
    for rec in per_image:
        by_prompt.setdefault(rec["prompt"], []).append(rec["score"])
    task = cats.task()
    metric = task.metric(cat.metric)
    result: CategoryScores = {
        "task": task.task,
        "task_version": cats.task_version(),
        "category": cat.name,
        "metric": cat.metric,
        "metric_info": metric.info(),
        "key": key,
        "score": metric.score([{"value": r["score"]} for r in per_image]),
        "n_images": len(per_image),
        "n_prompts": len(by_prompt),
        "models": scorers.info(cat.metric),
        "deviations": list(metrics.METRIC_DEVIATIONS[cat.metric]),
        "deviation_text": {k: metrics.DEVIATIONS[k] for k in metrics.METRIC_DEVIATIONS[cat.metric]},
        "per_prompt": {p: metric.aggregate(v) for p, v in by_prompt.items()},
        "per_image": per_image,
    }
    if cat.metric in ("spatial_2d", "spatial_3d", "numeracy", "three_in_one"):
        result["detector_coverage"] = _coverage(per_image)
    atomic_write_json(cat_dir / "scores.json", result)
    return result


def _coverage(per_image: list[dict[str, Any]]) -> float | None:
    """Share of prompt objects the detector can name (its vocabulary bounds the achievable score)."""
    names = [c for rec in per_image for c in rec.get("details", {}).get("classes", [])]
    return sum(c is not None for c in names) / len(names) if names else None


def score_batch(
    cfg: EvaluateConfig,
    scorers: Scorers,
    metric: str,
    batch: list[Item],
    cat_dir: Path,
    splits: dict[str, set[str]] | None = None,
) -> list[dict[str, Any]]:
    """Scores and details for a batch of images of one category."""
    from PIL import Image

    images = []
    for it in batch:
        with Image.open(cat_dir / "samples" / it.file) as im:
            images.append(im.convert("RGB"))
    prompts = [it.prompt for it in batch]
    scenes = [it.scene for it in batch] if all(it.scene is not None for it in batch) else None
    an = scorers.analyzer
    if metric == "blip_vqa":
        return [{"score": r["score"], "details": r} for r in scorers.blip.score(images, prompts, an)]
    if metric == "clip":
        return [{"score": s, "details": {}} for s in scorers.clip.score(images, prompts)]
    vocab = metrics.detector_vocabulary(scorers.detector)
    if metric in ("spatial_2d", "numeracy", "spatial_3d"):
        found = metrics.detect(scorers.detector, images, scenes, cfg.threshold)
        if metric == "spatial_2d":
            out = [metrics.spatial_2d(f, p, an, vocab) for f, p in zip(found, prompts, strict=True)]
        elif metric == "numeracy":
            out = [metrics.numeracy(f, p, an, vocab) for f, p in zip(found, prompts, strict=True)]
        else:
            depths = scorers.depth.predict(images, [metrics.frame_size(im) for im in images])
            out = [
                metrics.spatial_3d(f, d, p, an, vocab) for f, d, p in zip(found, depths, prompts, strict=True)
            ]
        return [{"score": r["score"], "details": r} for r in out]
    if metric == "three_in_one":
        return _three_in_one(cfg, scorers, batch, images, prompts, scenes, vocab, splits or {})
    raise RepromptError(f"unknown metric {metric!r}")


def _three_in_one(
    cfg: EvaluateConfig,
    scorers: Scorers,
    batch: list[Item],
    images: list[Any],
    prompts: list[str],
    scenes: list[Any] | None,
    vocab: set[str],
    splits: dict[str, set[str]],
) -> list[dict[str, Any]]:
    an = scorers.analyzer
    kinds = [cats.complex_kind(p, splits) for p in prompts]
    attribute = [r["score"] for r in scorers.blip.score(images, prompts, an)]
    need_spatial = [i for i, k in enumerate(kinds) if k in ("spatial", "spatialaction")]
    need_action = [i for i, k in enumerate(kinds) if k in ("action", "spatialaction")]
    spatial: dict[int, float] = {}
    if need_spatial:
        sub_scenes = [scenes[i] for i in need_spatial] if scenes is not None else None
        found = metrics.detect(scorers.detector, [images[i] for i in need_spatial], sub_scenes, cfg.threshold)
        for i, f in zip(need_spatial, found, strict=True):
            spatial[i] = metrics.spatial_2d(f, prompts[i], an, vocab, complex_prompt=True)["score"]
    action: dict[int, float] = {}
    if need_action:
        texts = [nlp.without_adjectives(prompts[i], an) for i in need_action]
        for i, s in zip(
            need_action, scorers.clip.score([images[i] for i in need_action], texts), strict=True
        ):
            action[i] = s
    out = []
    for i, kind in enumerate(kinds):
        score = rules.three_in_one(kind, attribute[i], spatial.get(i), action.get(i))
        out.append(
            {
                "score": score,
                "details": {
                    "kind": kind,
                    "attribute": attribute[i],
                    "spatial": spatial.get(i),
                    "action": action.get(i),
                },
            }
        )
    return out
