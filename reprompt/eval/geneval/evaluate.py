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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from reprompt.errors import RepromptError
from reprompt.eval.geneval.generate import (
    EXTRA_KEYS,
    broken_samples,
    load_scene,
    original_metadata,
    prompt_indices,
    read_prompt_metadata,
    sample_files,
)
from reprompt.eval.provenance import git_hash
from reprompt.eval.runner import read_run_info
from reprompt.geneval.scorer import ScorerConfig, build_scorer
from reprompt.geneval.vocabulary import GENEVAL_TAGS
from reprompt.utils.io import append_jsonl, atomic_write_json, atomic_write_text, read_json, read_jsonl

if TYPE_CHECKING:
    from reprompt.eval.registry import TaskConfig
    from reprompt.eval.schema import (
        GenEvalSummary,
        ImageResult,
        RewriteFields,
        SampleRecord,
        ScoredRun,
        ScorerInfo,
    )

logger = logging.getLogger(__name__)
T = TypeVar("T")

RESULTS_FILE = "results.jsonl"
SUMMARY_FILE = "summary.json"
SCORING_FILE = "scoring.json"


@dataclass
class ScoreConfig(ScorerConfig):
    """How to score a run: the GenEval scorer (:class:`~reprompt.geneval.scorer.ScorerConfig`, official
    options by default) plus where results go."""

    # --- output
    out: str | None = field(default=None, metadata={"help": "folder for results/summary (default: the run)"})
    force: bool = field(default=False, metadata={"help": "discard earlier results and rescore everything"})
    progress: bool = field(default=True, metadata={"help": "show a progress bar"})


def has_scenes(run_dir: Path, indices: list[int]) -> bool:
    """Did the backbone write scene records (a simulator's run)? Then the oracle detector can read them."""
    return bool(indices) and (run_dir / f"{indices[0]:05d}" / "scenes").is_dir()


def image_index(filename: str) -> tuple[int, int]:
    """(prompt folder index, image index) from a results filename ``.../00012/samples/0003.png``."""
    parts = Path(filename).parts
    return int(parts[-3]), int(Path(parts[-1]).stem)


def locked(
    run_dir: str | Path, results_dir: str | None, command: str, what: str, score: Callable[[Path], T]
) -> T:
    """``score(run_dir)`` while holding a lock on the results folder: a second scoring of it at the same time
    is refused (both would append to one results file)."""
    from reprompt.utils.lock import folder_lock

    if not Path(run_dir).is_dir():
        raise RepromptError(f"run folder {str(run_dir)!r} does not exist")
    with folder_lock(results_dir or run_dir, command, what):
        return score(Path(run_dir))


def finished_indices(run_dir: Path, run_info: Mapping[str, Any] | None) -> list[int]:
    """The prompt folders to score: the finished ones of a run we wrote, every one of a foreign layout."""
    indices = prompt_indices(run_dir, done_only=run_info is not None)
    if not indices:
        raise RepromptError(f"{run_dir} has no finished prompt folders (00000/metadata.jsonl ...) to score")
    return indices


def score_run(run_dir: str | Path, config: ScoreConfig | None = None) -> GenEvalSummary:
    """Score every finished prompt of ``run_dir`` (resuming earlier scoring) and write the summary."""
    config = config or ScoreConfig()
    return locked(run_dir, config.out, "geneval-score", "GenEval scores", lambda d: _score_run(d, config))


def _score_run(run_dir: Path, config: ScoreConfig) -> GenEvalSummary:
    from PIL import Image

    run_info = read_run_info(run_dir)
    if run_info is not None and run_info.get("task", "geneval") != "geneval":
        raise RepromptError(
            f"{run_dir} is a {run_info.get('task')!r} run, not GenEval: score it with its own command "
            "(GenEval 2: reprompt eval geneval2-score)"
        )
    indices = finished_indices(run_dir, run_info)
    scorer = build_scorer(config, has_scenes=has_scenes(run_dir, indices))
    info: ScorerInfo = scorer.info()  # type: ignore[assignment]
    out = Path(config.out) if config.out else run_dir
    results_path = out / RESULTS_FILE
    records, todo, files = resume_scoring(run_dir, out, info, config.force, indices)
    _check_images(run_dir, todo, run_info is not None)

    if todo:
        from tqdm.auto import tqdm

        from reprompt.geneval.metadata import validate_metadata
        from reprompt.geneval.scoring import make_record

        for index in tqdm(todo, desc="scoring", unit="prompt", disable=not config.progress):
            meta = validate_metadata(
                original_metadata(read_prompt_metadata(run_dir, index)),
                where=f"{run_dir / f'{index:05d}' / 'metadata.jsonl'}",
            )
            images = [Image.open(p).convert("RGB") for p in files[index]]
            scenes = None
            if scorer.needs_scenes:
                scenes = [load_scene(run_dir, index, int(p.stem)) for p in files[index]]
            results = scorer.score([meta] * len(images), images, scenes)
            for path, result in zip(files[index], results, strict=True):
                record = make_record(str(path), meta, result)
                append_jsonl(results_path, record)
                records.append(record)

    records.sort(key=lambda r: image_index(r["filename"]))
    atomic_write_text(results_path, "".join(json.dumps(r) + "\n" for r in records))
    summary = build_summary(run_dir, records, info, run_info)
    atomic_write_json(out / SUMMARY_FILE, summary)
    return summary


def _check_images(run_dir: Path, indices: list[int], ours: bool) -> None:
    """Refuse to score broken image files (empty, truncated), naming them and the fix."""
    problems = [p for i in indices for p in broken_samples(run_dir, i)]
    if not problems:
        return
    fix = (
        "rerun the `reprompt eval geneval` command that made this run: it generates prompts with broken "
        "images again, then scores"
        if ours
        else "write these images again with the script that made this folder, or delete their prompt folders"
    )
    shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
    raise RepromptError(f"cannot score {run_dir}: {shown}. To fix: {fix}")


def resume_scoring(
    run_dir: Path, out: Path, info: Mapping[str, Any], force: bool, indices: list[int]
) -> tuple[list[dict[str, Any]], list[int], dict[int, list[Path]]]:
    """Where the scoring of ``indices`` stands: the per-image records already in ``out``'s results (none with
    ``force``) of the prompts whose every image has one (the results file is rewritten to those), the prompts
    with images still to score, and every prompt's image files. The records must have been scored with the
    settings ``info`` (then saved as ``scoring.json``). GenEval 2's scoring resumes the same way."""
    scoring_path = out / SCORING_FILE
    results_path = out / RESULTS_FILE
    if force:
        results_path.unlink(missing_ok=True)
    elif scoring_path.exists() and results_path.exists():
        old = read_json(scoring_path, "pass --force to rescore everything, or --results-dir another folder")
        if not isinstance(old, dict):
            raise RepromptError(f"{scoring_path} is not a scorer record: pass --force to rescore everything")
        if old != info:
            changed = sorted(k for k in set(old) | set(info) if old.get(k) != info.get(k))
            raise RepromptError(
                f"{results_path} was scored with other settings ({', '.join(changed)} differ): pass --force "
                "to rescore everything, or --results-dir another folder"
            )
    elif results_path.exists():
        raise RepromptError(f"{results_path} exists but {SCORING_FILE} does not: pass --force to rescore")
    atomic_write_json(scoring_path, info)
    files = {i: sample_files(run_dir, i) for i in indices}
    have: dict[int, set[int]] = {}
    for r in (records := read_jsonl(results_path)):
        i, k = image_index(r["filename"])
        have.setdefault(i, set()).add(k)
    done = {i for i, ks in have.items() if i in files and ks == {int(p.stem) for p in files[i]}}
    records = [r for r in records if image_index(r["filename"])[0] in done]
    atomic_write_text(results_path, "".join(json.dumps(r) + "\n" for r in records))
    return records, [i for i in indices if i not in done and files[i]], files


def summarize(results: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """GenEval's summary of per-image records (as ``summary_scores.py``), as fractions in [0, 1], computed by
    the task's registered metrics (``task.yaml``): ``tags`` (metric ``correct``: per-tag mean image
    correctness), ``overall`` (the unweighted mean of the per-tag means present), ``correct_images`` (fraction
    of images correct), ``correct_prompts`` (fraction of prompts with at least one correct image; prompts are
    grouped by their metadata); and ``tag_counts`` (tag -> [correct, images]), ``n_images``, ``n_prompts``
    and ``missing_tags`` (GenEval tags with no image: then ``overall`` is not comparable with published
    numbers)."""
    from reprompt.eval.registry import load_task

    items = [
        {
            "value": float(bool(r["correct"])),
            "tag": r["tag"],
            "prompt": r["metadata"] if isinstance(r["metadata"], str) else json.dumps(r["metadata"]),
        }
        for r in results
    ]
    scores = load_task("geneval").compute(items, order=GENEVAL_TAGS)
    tags: dict[str, float] = scores["correct"]  # type: ignore[assignment]
    counts: dict[str, list[int]] = {t: [0, 0] for t in tags}
    for it in items:
        counts[it["tag"]][0] += int(it["value"])
        counts[it["tag"]][1] += 1
    return {
        "overall": scores["overall"],
        "tags": tags,
        "tag_counts": counts,
        "correct_images": scores["correct_images"],
        "correct_prompts": scores["correct_prompts"],
        "n_images": len(items),
        "n_prompts": len({it["prompt"] for it in items}),
        "missing_tags": [t for t in GENEVAL_TAGS if t not in tags],
    }


def prompt_groups(
    run_dir: Path, records: list[dict[str, Any]]
) -> list[tuple[int, dict[str, Any], list[tuple[dict[str, Any], int, int | None]]]]:
    """Scored image records grouped by prompt, in index order: ``(index, the prompt's metadata, [(record,
    image index, seed)])`` (GenEval and GenEval 2 build their per-prompt samples from these)."""
    by_prompt: dict[int, list[dict[str, Any]]] = {}
    for r in records:
        by_prompt.setdefault(image_index(r["filename"])[0], []).append(r)
    groups = []
    for index, recs in sorted(by_prompt.items()):
        meta = read_prompt_metadata(run_dir, index)
        seeds = meta.get("seeds") or []
        images = []
        for r in recs:
            k = image_index(r["filename"])[1]
            images.append((r, k, seeds[k] if k < len(seeds) else None))
        groups.append((index, meta, images))
    return groups


def rewrite_fields(meta: dict[str, Any]) -> RewriteFields:
    """What a scored prompt records of its rewrite, from the prompt's metadata."""
    return {
        "prompt": meta["prompt"],
        "rewritten_prompt": meta.get("rewritten_prompt", meta["prompt"]),
        "reasoning": meta.get("reasoning", ""),
        "format_ok": bool(meta.get("format_ok", True)),
        "fallback": bool(meta.get("fallback", False)),
    }


def scored_run(
    task: TaskConfig,
    run_dir: Path,
    run_info: dict[str, Any] | None,
    samples: Sequence[Mapping[str, Any]],
    prompts: int,
) -> ScoredRun:
    """What a summary says of the run: provenance, its ``samples`` (the scored prompts, each with its
    ``images``) and whether each of the selected prompts was scored (``prompts``: those with records)."""
    info = run_info or {}
    selected = info.get("selection", {}).get("n_selected") or prompts
    return {
        "task": task.task,
        "versions": {task.task: task.version},
        "complete": prompts >= selected,
        "higher_is_better": task.higher_is_better,
        "n_samples": {
            "original": info.get("n_prompts", prompts),
            "selected": selected,
            "effective": len(samples),
            "images": sum(len(sample["images"]) for sample in samples),
        },
        "seeds": info.get("seeds"),
        "policy": info.get("policy"),
        "backbone": info.get("backbone"),
        "run_dir": str(run_dir),
        "git_hash": git_hash(),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def build_summary(
    run_dir: Path, records: list[dict[str, Any]], scorer: ScorerInfo, run_info: dict[str, Any] | None
) -> GenEvalSummary:
    """The GenEval summary (:func:`summarize`) plus provenance and per-prompt records."""
    from reprompt.eval.registry import load_task

    s = summarize(records)
    samples: list[SampleRecord] = []
    for index, meta, recs in prompt_groups(run_dir, records):
        images: list[ImageResult] = [
            {
                "filename": r["filename"],
                "image_index": k,
                "seed": seed,
                "correct": bool(r["correct"]),
                "reason": r["reason"],
            }
            for r, k, seed in recs
        ]
        samples.append(
            {
                "index": index,
                "tag": meta["tag"],
                **rewrite_fields(meta),
                "score": sum(im["correct"] for im in images) / len(images),
                "images": images,
            }
        )
    run = scored_run(load_task("geneval"), run_dir, run_info, samples, len(samples))
    return {
        **run,
        "results": {**s["tags"], "overall": s["overall"]},
        "correct_images": s["correct_images"],
        "correct_prompts": s["correct_prompts"],
        "tag_counts": s["tag_counts"],
        "missing_tags": s["missing_tags"],
        "scorer": scorer,
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
    summary = read_json(summary_path, f"score the run again (reprompt eval geneval-score {run_dir})")
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


__all__ = [
    "EXTRA_KEYS",
    "ScoreConfig",
    "build_summary",
    "format_summary",
    "read_results",
    "score_run",
    "summarize",
]
