"""A self-contained HTML report of a scored GenEval or GenEval 2 run, optionally against a baseline run.

One file, no network: thumbnails are embedded as base64 (PNG or JPEG, whichever is smaller), the per-tag
bar chart is a matplotlib PNG, and the filters (failures, regressions, improvements, tag, text) are a
few lines of inline JavaScript. A GenEval 2 run shows its skills, Soft-TIFA AM and GM where GenEval shows tags
and its overall, and each image's failed questions (expected answer, judge's probability) as its reason. The page is the Jinja2 template ``templates/report.html.j2``, autoescaped:
this module only gathers the numbers, texts and images it shows. With ``baseline`` (``reprompt report RUN --compare BASELINE``) every
prompt shows the baseline's images next to this run's, paired by seed, with the rewrite, its reasoning
and the scorer's reason for every failed image.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reprompt.errors import check_range
from reprompt.eval.compare import RESAMPLES, row_label
from reprompt.utils.io import atomic_write_text

if TYPE_CHECKING:
    from reprompt.eval.schema import CompareResult, TagDifference

Summary = dict[str, Any]
"""A scored run's ``summary.json`` (:class:`~reprompt.eval.schema.GenEvalSummary` or ``Geneval2Summary``)."""
TASK_NAMES = {"geneval": "GenEval", "geneval2": "GenEval 2"}

REPORT_FILE = "report.html"


def thumbnail_uri(path: str | Path, size: int = 160) -> str:
    """A ``data:`` URI of the image shrunk to ``size`` px, as PNG or JPEG, whichever is smaller."""
    from PIL import Image

    with Image.open(path) as opened:
        im = opened.convert("RGB")
        im.thumbnail((size, size))
        best: tuple[int, str, bytes] | None = None
        for fmt, kw in (("PNG", {"optimize": True}), ("JPEG", {"quality": 80})):
            buf = io.BytesIO()
            im.save(buf, format=fmt, **kw)
            data = buf.getvalue()
            if best is None or len(data) < best[0]:
                best = (len(data), fmt.lower(), data)
    assert best is not None
    return f"data:image/{best[1]};base64,{base64.b64encode(best[2]).decode()}"


def bar_chart_uri(series: dict[str, dict[str, float]]) -> str:
    """Grouped bars per tag (and overall), one series per run, as a base64 PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(series)
    keys = [k for k in next(iter(series.values())) if all(k in s for s in series.values())]
    fig, ax = plt.subplots(figsize=(1.1 * len(keys) + 2, 3.2), dpi=100)
    width = 0.8 / len(names)
    for j, name in enumerate(names):
        xs = [i + (j - (len(names) - 1) / 2) * width for i in range(len(keys))]
        bars = ax.bar(xs, [series[name][k] for k in keys], width, label=name)
        ax.bar_label(bars, fmt="%.2f", fontsize=7)
    ax.set_xticks(range(len(keys)), [k.replace("_", "\n") for k in keys], fontsize=8)
    ax.set_ylim(0, 1.08)
    ax.set_ylabel("score")
    ax.legend(fontsize=8, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=len(names), frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _label(summary: Summary, run_dir: Path) -> str:
    info = summary.get("policy")
    policy = info["name"] if info else None
    return f"{run_dir.name} ({policy})" if policy and policy != run_dir.name else run_dir.name


def _paired(comparison: CompareResult) -> dict[str, TagDifference]:
    """Every row of a comparison, keyed as :func:`_rows` keys a summary's numbers."""
    return {**comparison["tags"], comparison["headline"]: comparison["overall"], **comparison["metrics"]}


def _rows(summary: Summary) -> dict[str, float]:
    """A summary's numbers in table order: per group (tag or skill), the headline, the other metrics."""
    if summary.get("task") == "geneval2":
        return {
            **summary["skills"],
            "soft_tifa_gm": summary["results"]["soft_tifa_gm"],
            "soft_tifa_am": summary["results"]["soft_tifa_am"],
            **{f"gm {n} atoms": v for n, v in summary["atomicity"].items()},
        }
    tags = {k: v for k, v in summary["results"].items() if k != "overall"}
    return {
        **tags,
        "overall": summary["results"]["overall"],
        "correct_images": summary["correct_images"],
        "correct_prompts": summary["correct_prompts"],
    }


def _label_of(key: str, task: str) -> str:
    if task == "geneval" and key == "correct_prompts":
        return "prompts with a correct image"
    return row_label(key).replace("_", " ")


def _chart_keys(keys: list[str], task: str) -> list[str]:
    """The rows the bar chart shows (GenEval 2's per-atomicity rows stay in the table)."""
    return [k for k in keys if not k.startswith("gm ")] if task == "geneval2" else keys


def _chart_label(key: str, task: str) -> str:
    return row_label(key) if task == "geneval2" else key


def _summary_rows(runs: list[tuple[str, Summary]], comparison: CompareResult | None) -> list[dict]:
    """One row per number. With a comparison every number is paired: computed on the prompts both runs scored,
    so the columns and the difference always agree."""
    task = runs[-1][1].get("task", "geneval")
    headline = "soft_tifa_gm" if task == "geneval2" else "overall"
    rows: list[dict[str, Any]] = []
    if comparison:
        for key, d in _paired(comparison).items():
            rows.append(
                {
                    "label": _label_of(key, task),
                    "bold": key == headline,
                    "numbers": [d["a"], d["b"]],
                    "diff": d["diff"],
                    "ci_low": d["ci_low"],
                    "ci_high": d["ci_high"],
                    "cls": "pos" if d["ci_low"] > 0 else "neg" if d["ci_high"] < 0 else "",
                }
            )
        return rows
    for key, value in _rows(runs[-1][1]).items():
        rows.append({"label": _label_of(key, task), "bold": key == headline, "numbers": [value]})
    return rows


def _scorer_text(summary: Summary) -> str:
    scorer = summary["scorer"]
    if summary.get("task") == "geneval2":
        judge = f"judge {scorer.get('judge')}" + (f" ({scorer['model']})" if scorer.get("model") else "")
        cov = summary["coverage"]
        return f"{judge} · {cov['answered']} of {cov['atoms']} questions answered"
    return f"detector {scorer['detector']}, colours {scorer['colors']}"


def _column(title: str, sample: dict[str, Any], run_dir: Path, thumb: int) -> dict[str, Any]:
    """One run's side of a prompt card: its rewrite, reasoning, and images with the scorer's verdicts."""
    flags = []
    if not sample["format_ok"]:
        flags.append("format not ok")
    if sample["fallback"]:
        flags.append("fell back to the original prompt")
    images = []
    for im in sample["images"]:
        path = Path(im["filename"])
        if not path.exists():  # results written with another working directory: resolve in the run
            path = run_dir / path.parts[-3] / "samples" / path.name
        images.append(
            {
                "src": thumbnail_uri(path, thumb) if path.exists() else "",
                "name": path.name,
                "correct": im["correct"],
                "reason": im["reason"],
                "seed": im["seed"],
            }
        )
    rewritten = sample["rewritten_prompt"]
    score = (
        f"AM {sample['score']:.2f} · GM {sample['gm']:.2f}"
        if "gm" in sample
        else f"score {sample['score']:.2f}"
    )
    return {
        "title": title,
        "score": score,
        "flags": ", ".join(flags),
        "rewritten": rewritten if rewritten != sample["prompt"] else None,
        "reasoning": sample["reasoning"],
        "images": images,
    }


def build_report(
    run_dir: str | Path,
    baseline: str | Path | None = None,
    out: str | Path | None = None,
    *,
    thumb: int = 160,
    max_prompts: int | None = None,
    resamples: int = RESAMPLES,
) -> Path:
    """Write the HTML report of ``run_dir`` (vs ``baseline`` if given); returns its path."""
    from reprompt.eval.compare import load_summary

    check_range("--thumb", thumb, 32, 512)
    run_dir = Path(run_dir)
    summary = load_summary(run_dir)
    task = summary.get("task", "geneval")
    runs: list[tuple[str, Summary]] = [(_label(summary, run_dir), summary)]
    comparison: CompareResult | None = None
    base_samples: dict[int, dict[str, Any]] = {}
    base_dir = Path(baseline) if baseline else None
    if base_dir is not None:
        from reprompt.eval.compare import compare_runs

        base_summary = load_summary(base_dir)
        comparison = compare_runs(base_dir, run_dir, resamples=resamples, allow_seed_mismatch=True)
        runs.insert(0, (_label(base_summary, base_dir), base_summary))
        base_samples = {s["index"]: s for s in base_summary["samples"]}
    changed = {c["index"]: "regressed" for c in (comparison["worse"] if comparison else [])}
    changed |= {c["index"]: "improved" for c in (comparison["better"] if comparison else [])}

    if comparison:
        paired = _paired(comparison)
        keys = _chart_keys(list(paired), task)
        chart = bar_chart_uri(
            {
                runs[0][0]: {_chart_label(k, task): paired[k]["a"] for k in keys},
                runs[1][0]: {_chart_label(k, task): paired[k]["b"] for k in keys},
            }
        )
    else:
        own = _rows(summary)
        if task == "geneval":  # one run's chart: its tags and overall
            own = {k: v for k, v in own.items() if not k.startswith("correct_")}
        chart = bar_chart_uri(
            {runs[0][0]: {_chart_label(k, task): own[k] for k in _chart_keys(list(own), task)}}
        )
    samples = summary["samples"][:max_prompts] if max_prompts else summary["samples"]
    cards = []
    for sample in samples:
        columns = []
        if base_dir is not None and sample["index"] in base_samples:
            columns.append(_column(runs[0][0], base_samples[sample["index"]], base_dir, thumb))
        columns.append(_column(runs[-1][0], sample, run_dir, thumb))
        cards.append(
            {
                "index": sample["index"],
                "tag": sample["tag"],
                "prompt": sample["prompt"],
                "cls": changed.get(sample["index"], ""),
                "fail": int(any(not im["correct"] for im in sample["images"])),
                "columns": columns,
            }
        )
    buttons = [("all", "all"), ("fail", "failures")]
    if comparison:
        buttons += [
            ("regressed", f"regressions ({len(comparison['worse'])})"),
            ("improved", f"improvements ({len(comparison['better'])})"),
        ]
    title = f"{TASK_NAMES.get(task, task)} report: {runs[-1][0]}" + (
        f" vs {runs[0][0]}" if comparison else ""
    )
    doc = _template().render(
        title=title,
        thumb=thumb,
        policy=summary.get("policy") or {},
        backbone=summary.get("backbone") or {},
        scorer=_scorer_text(summary),
        n=summary["n_samples"],
        complete=summary["complete"],
        seeds=summary.get("seeds") or {},
        version=summary["versions"].get(task),
        created=summary["created"],
        comparison=comparison,
        confidence=int(round(comparison["confidence"] * 100)) if comparison else None,
        run_names=[name for name, _ in runs],
        summary_rows=_summary_rows(runs, comparison),
        chart=chart,
        buttons=buttons,
        tags=sorted({s["tag"] for s in samples}),
        cards=cards,
    )
    path = Path(out) if out else run_dir / REPORT_FILE
    atomic_write_text(path, doc)
    return path


def _template() -> Any:
    """The page template, with autoescaping: prompts, rewrites and reasons can hold any text."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("reprompt.eval", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=False,
    )
    return env.get_template("report.html.j2")


__all__ = ["REPORT_FILE", "bar_chart_uri", "build_report", "thumbnail_uri"]
