"""Score a GenEval 2 run folder: ``results.jsonl`` (one line per image: every atom's score) and ``summary.json``.

Every finished prompt folder is judged (:mod:`reprompt.eval.geneval2.judges`); an atom's score is the judge's
probability of its expected answer, or null with the reason when the judge cannot answer it (the oracle's
materials, verbs, ...). The reported numbers are the task's registered metrics over the answered atoms
(``task.yaml``): Soft-TIFA AM and GM, per skill and per atomicity, as fractions in [0, 1] (the official
script prints them x100); ``coverage`` says how many atoms were answered, per skill, and why the others were
not. An image with no answered atom has no score; a prompt with no answered atom in any image is left out of
the numbers and counted. Resumable as GenEval's scoring is: records are appended per image, a prompt cut off
mid-way is judged again, and the judge settings (``scoring.json``) must match to resume.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reprompt.errors import RepromptError
from reprompt.eval.geneval.evaluate import (
    RESULTS_FILE,
    SUMMARY_FILE,
    finished_indices,
    has_scenes,
    image_index,
    locked,
    prompt_groups,
    resume_scoring,
    rewrite_fields,
    scored_run,
)
from reprompt.eval.geneval.generate import (
    broken_samples,
    load_scene,
    original_metadata,
    read_prompt_metadata,
)
from reprompt.eval.geneval2.data import SKILLS, parse_line
from reprompt.eval.geneval2.generate import group_of
from reprompt.eval.geneval2.judges import JudgeConfig, build_judge
from reprompt.eval.runner import read_run_info
from reprompt.utils.io import append_jsonl, atomic_write_json, atomic_write_text, read_json

if TYPE_CHECKING:
    from reprompt.eval.schema import Geneval2ImageResult, Geneval2Sample, Geneval2Summary

CORRECT_AT = 0.5
"""An image counts as correct (the report's marks, compare's image pairs) when every answered atom scores at
least this: the judge's most likely answer is the expected one for each (exact for the oracle's 0/1 scores)."""
PROMPTS_PER_CALL = 8
"""Prompts judged per judge call (a local VLM batches their questions); records are written after each call."""


@dataclass
class Geneval2ScoreConfig(JudgeConfig):
    """How to score a GenEval 2 run: the judge (:class:`JudgeConfig`) plus where results go."""

    results_dir: str | None = field(
        default=None, metadata={"help": "folder for results/summary (default: the run)"}
    )
    force: bool = field(
        default=False, metadata={"help": "discard earlier results and judge everything again"}
    )
    progress: bool = field(default=True, metadata={"help": "show a progress bar"})


def score_run(run_dir: str | Path, config: Geneval2ScoreConfig | None = None) -> Geneval2Summary:
    """Judge every finished prompt of ``run_dir`` (resuming earlier scoring) and write the summary."""
    config = config or Geneval2ScoreConfig()
    return locked(
        run_dir, config.results_dir, "geneval2-score", "GenEval 2 scores", lambda d: _score_run(d, config)
    )


def _score_run(run_dir: Path, config: Geneval2ScoreConfig) -> Geneval2Summary:
    from PIL import Image

    run_info = read_run_info(run_dir)
    if run_info is not None and run_info.get("task") != "geneval2":
        raise RepromptError(
            f"{run_dir} is a {run_info.get('task')!r} run, not GenEval 2 (score it with its own command)"
        )
    indices = finished_indices(run_dir, run_info)
    judge = build_judge(config, has_scenes(run_dir, indices))
    info = {"task": "geneval2", **judge.info()}
    out = Path(config.results_dir) if config.results_dir else run_dir
    results_path = out / RESULTS_FILE
    records, todo, files = resume_scoring(run_dir, out, info, config.force, indices)
    problems = [p for i in todo for p in broken_samples(run_dir, i)]
    if problems:
        raise RepromptError(
            f"cannot score {run_dir}: {'; '.join(problems[:5])}. To fix: rerun the `reprompt eval geneval2` "
            "command that made this run (it generates prompts with broken images again)"
        )

    from tqdm.auto import tqdm

    bar = tqdm(total=len(todo), desc="judging", unit="prompt", disable=not config.progress)
    try:
        for start in range(0, len(todo), PROMPTS_PER_CALL):
            chunk = todo[start : start + PROMPTS_PER_CALL]
            images, atoms, scenes, owners = [], [], [], []
            for index in chunk:
                where = str(run_dir / f"{index:05d}" / "metadata.jsonl")
                entry = parse_line(original_metadata(read_prompt_metadata(run_dir, index)), index, where)
                for path in files[index]:
                    images.append(Image.open(path).convert("RGB"))
                    atoms.append(entry.atoms)
                    owners.append((path, entry))
                    if judge.needs_scenes:
                        scenes.append(load_scene(run_dir, index, int(path.stem)))
            scores = judge.score(images, atoms, scenes if judge.needs_scenes else None)
            for (path, entry), row in zip(owners, scores, strict=True):
                record = {
                    "filename": str(path),
                    "prompt": entry.prompt,
                    "atom_count": entry.atom_count,
                    "questions": [a.question for a in entry.atoms],
                    "answers": [a.answer for a in entry.atoms],
                    "skills": entry.skills,
                    "scores": [s for s, _ in row],
                    "unanswered": [why for _, why in row],
                }
                append_jsonl(results_path, record)
                records.append(record)
            bar.update(len(chunk))
    finally:
        bar.close()
    records.sort(key=lambda r: image_index(r["filename"]))
    atomic_write_text(results_path, "".join(json.dumps(r) + "\n" for r in records))
    summary = build_summary(run_dir, records, info, run_info)
    atomic_write_json(out / SUMMARY_FILE, summary)
    return summary


def summarize(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The task's registered metrics over per-image records (answered atoms only), plus coverage."""
    from reprompt.eval.registry import load_task

    task = load_task("geneval2")
    atoms = []
    coverage: dict[str, Any] = {"atoms": 0, "answered": 0, "by_skill": {}, "unanswered": {}}
    for r in records:
        for score, skill, why in zip(r["scores"], r["skills"], r["unanswered"], strict=True):
            coverage["atoms"] += 1
            counts = coverage["by_skill"].setdefault(skill, [0, 0])
            counts[1] += 1
            if score is None:
                coverage["unanswered"][why] = coverage["unanswered"].get(why, 0) + 1
                continue
            coverage["answered"] += 1
            counts[0] += 1
            atoms.append({"value": score, "image": r["filename"], "skill": skill})
    coverage["by_skill"] = {s: coverage["by_skill"][s] for s in SKILLS if s in coverage["by_skill"]}
    scores = task.compute(atoms, names=["soft_tifa_am", "soft_tifa_gm", "skill"], order=SKILLS)
    gm = dataclasses.replace(task.metric("soft_tifa_gm"), then=None).per_group(atoms) if atoms else {}
    am = dataclasses.replace(task.metric("soft_tifa_am"), then=None).per_group(atoms) if atoms else {}
    counts_of = {r["filename"]: str(r["atom_count"]) for r in records}
    per_image = [{"value": v, "atom_count": counts_of[f]} for f, v in gm.items()]
    order = [str(n) for n in sorted({int(c) for c in counts_of.values()})]
    atomicity = task.metric("atomicity").compute(per_image, order=order) if per_image else {}
    coverage["images"] = len(records)
    coverage["images_judged"] = len(gm)
    return {
        "soft_tifa_am": scores["soft_tifa_am"],
        "soft_tifa_gm": scores["soft_tifa_gm"],
        "skills": scores["skill"],
        "atomicity": atomicity,
        "coverage": coverage,
        "image_am": am,
        "image_gm": gm,
    }


def _image_result(
    record: dict[str, Any], seed: int | None, am: float | None, gm: float | None
) -> Geneval2ImageResult:
    skills: dict[str, list[float]] = {}
    failed = []
    unanswered = 0
    for q, a, s, skill in zip(
        record["questions"], record["answers"], record["scores"], record["skills"], strict=True
    ):
        if s is None:
            unanswered += 1
            continue
        part = skills.setdefault(skill, [0.0, 0])
        part[0] += s
        part[1] += 1
        if s < CORRECT_AT:
            failed.append(f"{q} (expected {a}): {s:.2f}")
    reason = "\n".join(failed)
    if unanswered:
        reason += ("\n" if reason else "") + f"{unanswered} question(s) not answered by the judge"
    return {
        "filename": record["filename"],
        "image_index": image_index(record["filename"])[1],
        "seed": seed,
        "score": am,
        "gm": gm,
        "correct": am is not None and not failed,
        "reason": reason,
        "skills": skills,
        "unanswered": unanswered,
    }


def build_summary(
    run_dir: Path, records: list[dict[str, Any]], judge: dict[str, Any], run_info: dict[str, Any] | None
) -> Geneval2Summary:
    """The GenEval 2 summary (:func:`summarize`) plus provenance and per-prompt records."""
    from reprompt.eval.registry import load_task

    s = summarize(records)
    groups = prompt_groups(run_dir, records)
    samples: list[Geneval2Sample] = []
    for index, meta, recs in groups:
        images = [
            _image_result(r, seed, s["image_am"].get(r["filename"]), s["image_gm"].get(r["filename"]))
            for r, _, seed in recs
        ]
        judged = [im for im in images if im["score"] is not None]
        if not judged:
            continue  # no question of this prompt could be answered: counted in coverage, not scored
        samples.append(
            {
                "index": index,
                "tag": group_of(int(meta["atom_count"])),
                "atom_count": int(meta["atom_count"]),
                **rewrite_fields(meta),
                "score": sum(im["score"] for im in judged) / len(judged),  # type: ignore[misc]
                "gm": sum(im["gm"] for im in judged) / len(judged),  # type: ignore[misc]
                "images": judged,
            }
        )
    run = scored_run(load_task("geneval2"), run_dir, run_info, samples, len(groups))
    return {
        **run,
        "results": {"soft_tifa_am": s["soft_tifa_am"], "soft_tifa_gm": s["soft_tifa_gm"]},
        "skills": s["skills"],
        "atomicity": s["atomicity"],
        "coverage": {**s["coverage"], "prompts": len(groups), "prompts_judged": len(samples)},
        "scorer": judge,
        "samples": samples,
    }


def format_summary(summary: Geneval2Summary) -> str:
    """A plain-text table: Soft-TIFA AM and GM, per skill (with coverage), per atomicity."""
    cov = summary["coverage"]
    lines = [f"{'skill':<12}{'AM':>8}{'atoms answered':>18}"]
    for skill, (answered, total) in cov["by_skill"].items():
        value = summary["skills"].get(skill)
        lines.append(f"{skill:<12}{'-' if value is None else f'{value:.3f}':>8}{f'{answered}/{total}':>18}")
    lines.append(f"{'Soft-TIFA AM':<12}{summary['results']['soft_tifa_am']:>8.3f}   (atom-level)")
    lines.append(f"{'Soft-TIFA GM':<12}{summary['results']['soft_tifa_gm']:>8.3f}   (prompt-level)")
    lines.append("GM per atom count: " + ", ".join(f"{k}: {v:.3f}" for k, v in summary["atomicity"].items()))
    n = summary["n_samples"]
    lines.append(
        f"{n['effective']} prompts judged ({n['images']} images)"
        + ("" if summary["complete"] else f" of {n['selected']} selected, INCOMPLETE")
        + f"; judge: {summary['scorer']['judge']}"
        + (f" ({summary['scorer']['model']})" if summary["scorer"].get("model") else "")
    )
    if cov["answered"] < cov["atoms"]:
        why = ", ".join(f"{k} {v}" for k, v in sorted(cov["unanswered"].items(), key=lambda kv: -kv[1]))
        lines.append(
            f"questions answered: {cov['answered']} of {cov['atoms']}; not answered: {why} (not scored; "
            f"{cov['prompts'] - cov['prompts_judged']} prompts had none answered)"
        )
    return "\n".join(lines)


def read_results(run_dir: str | Path, results: str | Path | None = None) -> Geneval2Summary:
    folder = Path(results) if results else Path(run_dir)
    path = folder / SUMMARY_FILE
    if not path.exists():
        raise RepromptError(
            f"{path} does not exist: score the run first (reprompt eval geneval2-score {run_dir})"
        )
    summary: Geneval2Summary = read_json(
        path, f"score the run again (reprompt eval geneval2-score {run_dir})"
    )
    return summary


__all__ = ["Geneval2ScoreConfig", "build_summary", "format_summary", "read_results", "score_run", "summarize"]
