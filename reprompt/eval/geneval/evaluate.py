"""Score a GenEval run folder: ``results.jsonl`` (official per-image schema) and ``summary.json``.

Works on our runs (``generate.py``) and on folders written by GenEval's own generation scripts (no
``run.json``: every digit-named folder with a ``metadata.jsonl`` is scored). Resumable: records are
appended per image; on restart, prompts with all their records are kept, a prompt cut off mid-way is
rescored, and the finished file is rewritten in folder order. The scorer settings are saved in
``scoring.json``; resuming with other settings is refused (``force=True`` starts over).
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reprompt.errors import ConfigError, RepromptError
from reprompt.eval.geneval.generate import (
    EXTRA_KEYS,
    git_hash,
    load_scene,
    original_metadata,
    prompt_indices,
    read_prompt_metadata,
    read_run_info,
    sample_files,
)
from reprompt.utils.io import append_jsonl, atomic_write_json, atomic_write_text, read_jsonl

if TYPE_CHECKING:
    from reprompt.eval.geneval.rules import GenEvalOptions
    from reprompt.eval.schema import GenEvalSummary, SampleRecord, ScorerInfo

logger = logging.getLogger(__name__)

RESULTS_FILE = "results.jsonl"
SUMMARY_FILE = "summary.json"
SCORING_FILE = "scoring.json"
DETECTOR_CHOICES = ("auto", "oracle", "mask2former", "mmdet")
COLOR_CHOICES = ("auto", "oracle", "clip")


@dataclass
class ScoreConfig:
    """How to score a run. The GenEval options default to the official values."""

    # --- detector
    detector: str = field(
        default="auto",
        metadata={
            "help": "auto (oracle if the run has scene sidecars, else mask2former) | "
            "oracle | mask2former | mmdet"
        },
    )
    detector_model: str | None = field(
        default=None,
        metadata={"help": "Mask2Former id or folder (default facebook/mask2former-swin-small-coco-instance)"},
    )
    mmdet_config: str | None = field(default=None, metadata={"help": "mmdet config file (detector mmdet)"})
    mmdet_checkpoint: str | None = field(default=None, metadata={"help": "mmdet checkpoint (detector mmdet)"})
    # --- colours
    colors: str = field(
        default="auto",
        metadata={"help": "auto (oracle's drawn colours for oracle, else CLIP) | oracle | clip"},
    )
    clip_model: str = field(
        default="openai/clip-vit-large-patch14", metadata={"help": "CLIP id or folder for colours"}
    )
    device: str = field(default="cpu", metadata={"help": "device for the detector and CLIP"})
    batch_size: int = field(default=4, metadata={"help": "images per detector call"})
    # --- official options
    threshold: float = field(default=0.3, metadata={"help": "detection score threshold"})
    counting_threshold: float = field(default=0.9, metadata={"help": "threshold for the counting tag"})
    max_objects: int = field(default=16, metadata={"help": "max detections kept per class"})
    max_overlap: float = field(default=1.0, metadata={"help": "NMS IoU (1.0 = no NMS)"})
    position_threshold: float = field(default=0.1, metadata={"help": "relation dead zone"})
    # --- output
    out: str | None = field(default=None, metadata={"help": "folder for results/summary (default: the run)"})
    force: bool = field(default=False, metadata={"help": "discard earlier results and rescore everything"})
    progress: bool = field(default=True, metadata={"help": "show a progress bar"})

    def __post_init__(self) -> None:
        if self.detector not in DETECTOR_CHOICES:
            raise ConfigError(
                f"--detector must be one of {', '.join(DETECTOR_CHOICES)}, got {self.detector!r}"
            )
        if self.colors not in COLOR_CHOICES:
            raise ConfigError(f"--colors must be one of {', '.join(COLOR_CHOICES)}, got {self.colors!r}")
        self.options()  # validates the thresholds

    def options(self) -> GenEvalOptions:
        from reprompt.eval.geneval.rules import GenEvalOptions

        try:
            return GenEvalOptions(
                threshold=self.threshold,
                counting_threshold=self.counting_threshold,
                max_objects=self.max_objects,
                max_overlap=self.max_overlap,
                position_threshold=self.position_threshold,
            )
        except ValueError as e:
            raise ConfigError(str(e)) from e


def _resolve(config: ScoreConfig, run_dir: Path, indices: list[int]) -> tuple[str, str]:
    """Concrete detector and colour source for ``auto``."""
    has_scenes = bool(indices) and (run_dir / f"{indices[0]:05d}" / "scenes").is_dir()
    detector = config.detector
    if detector == "auto":
        detector = "oracle" if has_scenes else "mask2former"
    colors = config.colors
    if colors == "auto":
        colors = "oracle" if detector == "oracle" else "clip"
    if colors == "oracle" and detector != "oracle":
        raise ConfigError(
            "--colors oracle needs --detector oracle (only a simulator knows the drawn colours)"
        )
    return detector, colors


def scorer_info(config: ScoreConfig, detector: str, colors: str) -> ScorerInfo:
    model = None
    if detector == "mask2former":
        from reprompt.eval.geneval.detectors import DEFAULT_MASK2FORMER

        model = config.detector_model or DEFAULT_MASK2FORMER
    elif detector == "mmdet":
        model = f"{config.mmdet_config}:{config.mmdet_checkpoint}"
    return {
        "detector": detector,
        "detector_model": model,
        "colors": "oracle" if colors == "oracle" else f"clip:{config.clip_model}",
        "options": asdict(config.options()),
    }


def _build_detector(config: ScoreConfig, detector: str) -> Any:
    from reprompt.eval.geneval.detectors import load_detector

    if detector == "oracle":
        return load_detector("oracle")
    if detector == "mask2former":
        kw: dict[str, Any] = {"device": config.device, "batch_size": config.batch_size}
        if config.detector_model:
            kw["model_id_or_path"] = config.detector_model
        return load_detector("mask2former", **kw)
    if not (config.mmdet_config and config.mmdet_checkpoint):
        raise ConfigError("--detector mmdet needs --mmdet-config and --mmdet-checkpoint (GenEval's files)")
    return load_detector(
        "mmdet", config=config.mmdet_config, checkpoint=config.mmdet_checkpoint, device=config.device
    )


def _image_index(filename: str) -> tuple[int, int]:
    """(prompt folder index, image index) from a results filename ``.../00012/samples/0003.png``."""
    parts = Path(filename).parts
    return int(parts[-3]), int(Path(parts[-1]).stem)


def score_run(run_dir: str | Path, config: ScoreConfig | None = None) -> GenEvalSummary:
    """Score every finished prompt of ``run_dir`` (resuming earlier scoring) and write the summary."""
    from PIL import Image

    config = config or ScoreConfig()
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RepromptError(f"run folder {str(run_dir)!r} does not exist")
    run_info = read_run_info(run_dir)
    indices = prompt_indices(run_dir, done_only=run_info is not None)
    if not indices:
        raise RepromptError(f"{run_dir} has no finished prompt folders (00000/metadata.jsonl ...) to score")
    detector_name, colors = _resolve(config, run_dir, indices)
    info = scorer_info(config, detector_name, colors)
    out = Path(config.out) if config.out else run_dir
    results_path = out / RESULTS_FILE
    records = _resume(out, info, config.force)
    files = {i: sample_files(run_dir, i) for i in indices}
    done = _complete_prompts(records, files)
    records = [r for r in records if _image_index(r["filename"])[0] in done]
    atomic_write_text(results_path, "".join(json.dumps(r) + "\n" for r in records))
    todo = [i for i in indices if i not in done and files[i]]

    if todo:
        from tqdm.auto import tqdm

        from reprompt.eval.geneval.scoring import make_record, score_images

        detector = _build_detector(config, detector_name)
        classifier = None
        if colors == "clip":
            from reprompt.eval.geneval.colors import ClipColorClassifier

            classifier = ClipColorClassifier(config.clip_model, device=config.device)
        options = config.options()
        for index in tqdm(todo, desc="scoring", unit="prompt", disable=not config.progress):
            meta = original_metadata(read_prompt_metadata(run_dir, index))
            images = [Image.open(p).convert("RGB") for p in files[index]]
            scenes = None
            if detector_name == "oracle":
                scenes = [load_scene(run_dir, index, int(p.stem)) for p in files[index]]
            results = score_images(
                [meta] * len(images),
                images,
                scenes,
                detector=detector,
                color_classifier=classifier,
                options=options,
            )
            for path, result in zip(files[index], results, strict=True):
                record = make_record(str(path), meta, result)
                append_jsonl(results_path, record)
                records.append(record)

    records.sort(key=lambda r: _image_index(r["filename"]))
    atomic_write_text(results_path, "".join(json.dumps(r) + "\n" for r in records))
    summary = build_summary(run_dir, records, info, run_info)
    atomic_write_json(out / SUMMARY_FILE, summary)
    return summary


def _resume(out: Path, info: ScorerInfo, force: bool) -> list[dict[str, Any]]:
    scoring_path = out / SCORING_FILE
    results_path = out / RESULTS_FILE
    if force:
        results_path.unlink(missing_ok=True)
    elif scoring_path.exists() and results_path.exists():
        old = json.loads(scoring_path.read_text(encoding="utf-8"))
        if old != info:
            changed = [k for k in info if old.get(k) != info[k]]  # type: ignore[literal-required]
            raise RepromptError(
                f"{results_path} was scored with other settings ({', '.join(changed)} differ): pass --force "
                "to rescore everything, or --out another folder"
            )
    elif results_path.exists():
        raise RepromptError(f"{results_path} exists but {SCORING_FILE} does not: pass --force to rescore")
    atomic_write_json(scoring_path, info)
    return read_jsonl(results_path)


def _complete_prompts(records: list[dict[str, Any]], files: dict[int, list[Path]]) -> set[int]:
    have: dict[int, set[int]] = {}
    for r in records:
        i, k = _image_index(r["filename"])
        have.setdefault(i, set()).add(k)
    return {i for i, ks in have.items() if i in files and ks == {int(p.stem) for p in files[i]}}


def build_summary(
    run_dir: Path, records: list[dict[str, Any]], scorer: ScorerInfo, run_info: dict[str, Any] | None
) -> GenEvalSummary:
    """The GenEval summary (via ``scoring.summarize``) plus provenance and per-prompt records."""
    from reprompt.eval.geneval.scoring import summarize
    from reprompt.eval.registry import load_task

    task = load_task("geneval")
    s = summarize(records)
    by_prompt: dict[int, list[dict[str, Any]]] = {}
    for r in records:
        by_prompt.setdefault(_image_index(r["filename"])[0], []).append(r)
    samples: list[SampleRecord] = []
    for index, recs in sorted(by_prompt.items()):
        meta = read_prompt_metadata(run_dir, index)
        seeds = meta.get("seeds") or []
        images = []
        for r in recs:
            k = _image_index(r["filename"])[1]
            seed = seeds[k] if k < len(seeds) else None
            images.append(
                {
                    "filename": r["filename"],
                    "image_index": k,
                    "seed": seed,
                    "correct": bool(r["correct"]),
                    "reason": r["reason"],
                }
            )
        samples.append(
            {
                "index": index,
                "tag": meta["tag"],
                "prompt": meta["prompt"],
                "rewritten_prompt": meta.get("rewritten_prompt", meta["prompt"]),
                "reasoning": meta.get("reasoning", ""),
                "format_ok": bool(meta.get("format_ok", True)),
                "fallback": bool(meta.get("fallback", False)),
                "score": sum(im["correct"] for im in images) / len(images),
                "images": images,
            }
        )
    selected = (run_info or {}).get("selection", {}).get("n_selected") or len(samples)
    return {
        "task": "geneval",
        "versions": {"geneval": task.version},
        "results": {**s["tags"], "overall": s["overall"]},
        "correct_images": s["correct_images"],
        "correct_prompts": s["correct_prompts"],
        "tag_counts": s["tag_counts"],
        "missing_tags": s["missing_tags"],
        "complete": len(samples) >= selected,
        "higher_is_better": task.higher_is_better,
        "n_samples": {
            "original": (run_info or {}).get("n_prompts", len(samples)),
            "selected": selected,
            "effective": len(samples),
            "images": s["n_images"],
        },
        "seeds": (run_info or {}).get("seeds"),
        "policy": (run_info or {}).get("policy"),
        "backbone": (run_info or {}).get("backbone"),
        "scorer": scorer,
        "run_dir": str(run_dir),
        "git_hash": git_hash(),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "samples": samples,
    }


def read_results(run_dir: str | Path, results: str | Path | None = None) -> tuple[GenEvalSummary, list[dict]]:
    """A scored run's summary and per-image records (for compare and report)."""
    run_dir = Path(run_dir)
    folder = Path(results) if results else run_dir
    summary_path = folder / SUMMARY_FILE
    if not summary_path.exists():
        raise RepromptError(
            f"{summary_path} does not exist: score the run first (reprompt eval geneval-score {run_dir})"
        )
    summary = json.loads(summary_path.read_text(encoding="utf-8"))
    return summary, read_jsonl(folder / RESULTS_FILE)


def format_summary(summary: GenEvalSummary) -> str:
    """A short plain-text table of a summary (per tag, overall, image and prompt rates)."""
    lines = [f"{'tag':<16}{'score':>8}{'images':>12}"]
    for tag, score in summary["results"].items():
        if tag == "overall":
            continue
        c, n = summary["tag_counts"][tag]
        lines.append(f"{tag:<16}{score:>8.3f}{f'{c}/{n}':>12}")
    lines.append(f"{'overall':<16}{summary['results']['overall']:>8.3f}")
    lines.append(
        f"correct images {summary['correct_images']:.3f}, prompts with a correct image "
        f"{summary['correct_prompts']:.3f} ({summary['n_samples']['effective']} prompts"
        + ("" if summary["complete"] else f" of {summary['n_samples']['selected']}, INCOMPLETE")
        + ")"
    )
    if summary["missing_tags"]:
        lines.append(f"missing tags: {', '.join(summary['missing_tags'])} (overall not comparable to papers)")
    return "\n".join(lines)


__all__ = ["EXTRA_KEYS", "ScoreConfig", "build_summary", "format_summary", "read_results", "score_run"]
