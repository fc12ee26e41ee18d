"""A self-contained HTML report of a scored GenEval run, optionally against a baseline run.

One file, no network: thumbnails are embedded as base64 (PNG or JPEG, whichever is smaller), the per-tag
bar chart is a matplotlib PNG, and the filters (failures, regressions, improvements, tag, text) are a
few lines of inline JavaScript. With ``baseline`` (``reprompt report RUN --compare BASELINE``) every
prompt shows the baseline's images next to this run's, paired by seed, with the rewrite, its reasoning
and the scorer's reason for every failed image.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reprompt.errors import RepromptError
from reprompt.utils.io import atomic_write_text

if TYPE_CHECKING:
    from reprompt.eval.schema import CompareResult, GenEvalSummary, SampleRecord

REPORT_FILE = "report.html"

_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222;max-width:1400px}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.5em}
table.sum{border-collapse:collapse;margin:.5em 0}table.sum td,table.sum th{padding:.25em .7em;
border-bottom:1px solid #ddd;text-align:right}table.sum td:first-child,table.sum th:first-child{text-align:left}
.pos{color:#137333}.neg{color:#b3261e}.meta{color:#555;font-size:.9em}
.bar{position:sticky;top:0;background:#fff;padding:.5em 0;border-bottom:1px solid #ccc;z-index:2}
.bar button{margin-right:.3em}.bar button.on{background:#333;color:#fff}
.card{border:1px solid #ddd;border-radius:6px;margin:.8em 0;padding:.6em}
.card.regressed{border-left:5px solid #b3261e}.card.improved{border-left:5px solid #137333}
.cols{display:flex;gap:1.2em;flex-wrap:wrap}.col{flex:1;min-width:320px}
.imgs{display:flex;gap:.4em;flex-wrap:wrap}.img{width:{thumb}px;font-size:.75em}
.img img{width:{thumb}px;height:auto;border:3px solid #137333;border-radius:3px;display:block}
.img.bad img{border-color:#b3261e}.why{color:#b3261e;white-space:pre-line}
.ptext{font-family:ui-monospace,monospace;font-size:.85em;background:#f6f6f6;padding:.3em;
white-space:pre-wrap}.tagpill{background:#eee;border-radius:3px;padding:0 .4em;font-size:.85em}
details{font-size:.85em;margin:.3em 0}
"""

_JS = """
let mode='all';
function apply(){const tag=document.getElementById('tag').value;
const q=document.getElementById('q').value.toLowerCase();let n=0;
for(const c of document.querySelectorAll('.card')){let show=(tag==='all'||c.dataset.tag===tag);
if(mode==='fail')show=show&&c.dataset.fail==='1';
if(mode==='regressed')show=show&&c.classList.contains('regressed');
if(mode==='improved')show=show&&c.classList.contains('improved');
if(q)show=show&&c.textContent.toLowerCase().includes(q);c.style.display=show?'':'none';n+=show;}
document.getElementById('count').textContent=n+' prompts shown';}
function setMode(m){mode=m;for(const b of document.querySelectorAll('.bar button'))
b.classList.toggle('on',b.dataset.mode===m);apply();}
window.addEventListener('load',()=>setMode(location.hash.slice(1)||'all'));
"""


def thumbnail_uri(path: str | Path, size: int = 160) -> str:
    """A ``data:`` URI of the image shrunk to ``size`` px, as PNG or JPEG, whichever is smaller."""
    from PIL import Image

    with Image.open(path) as im:
        im = im.convert("RGB")
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


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _label(summary: GenEvalSummary, run_dir: Path) -> str:
    policy = (summary.get("policy") or {}).get("name")
    return f"{run_dir.name} ({policy})" if policy and policy != run_dir.name else run_dir.name


def _paired(comparison: CompareResult) -> dict[str, dict[str, float]]:
    """Per-tag, overall and image-rate differences of a comparison, keyed like a summary's results."""
    return {
        **comparison["tags"],
        "overall": comparison["overall"],
        "correct_images": comparison["correct_images"],
        "correct_prompts": comparison["correct_prompts"],
    }


def _summary_table(runs: list[tuple[str, GenEvalSummary]], comparison: CompareResult | None) -> str:
    """One row per tag, overall and image rate. With a comparison every number is paired: computed on the
    prompts both runs scored, so the columns and the difference always agree."""
    head = "".join(f"<th>{_e(name)}</th>" for name, _ in runs)
    rows = []
    if comparison:
        pct = int(round(comparison["confidence"] * 100))
        head += f"<th>difference</th><th>{pct}% CI</th>"
        for key, d in _paired(comparison).items():
            cls = "pos" if d["ci_low"] > 0 else "neg" if d["ci_high"] < 0 else ""
            bold = " style='font-weight:bold'" if key == "overall" else ""
            label = {"correct_prompts": "prompts with a correct image"}.get(key, key.replace("_", " "))
            rows.append(
                f"<tr{bold}><td>{_e(label)}</td><td>{d['a']:.3f}</td><td>{d['b']:.3f}</td>"
                f"<td class='{cls}'>{d['diff']:+.3f}</td><td>[{d['ci_low']:+.3f}, {d['ci_high']:+.3f}]</td></tr>"
            )
        note = f"<div class='meta'>paired on the {comparison['n_prompts']} prompts both runs scored</div>"
        return f"<table class='sum'><tr><th></th>{head}</tr>{''.join(rows)}</table>{note}"
    summary = runs[-1][1]
    keys = [k for k in summary["results"] if k != "overall"] + ["overall"]
    for key in keys:
        bold = " style='font-weight:bold'" if key == "overall" else ""
        rows.append(f"<tr{bold}><td>{_e(key)}</td><td>{summary['results'][key]:.3f}</td></tr>")
    for key, label in (
        ("correct_images", "correct images"),
        ("correct_prompts", "prompts with a correct image"),
    ):
        rows.append(f"<tr><td>{label}</td><td>{summary[key]:.3f}</td></tr>")  # type: ignore[literal-required]
    return f"<table class='sum'><tr><th></th>{head}</tr>{''.join(rows)}</table>"


def _images_html(sample: SampleRecord, run_dir: Path, thumb: int) -> str:
    parts = []
    for im in sample["images"]:
        path = Path(im["filename"])
        if not path.exists():  # results written with another working directory: resolve in the run
            path = run_dir / path.parts[-3] / "samples" / path.name
        src = thumbnail_uri(path, thumb) if path.exists() else ""
        mark = "✓" if im["correct"] else "✗"
        why = "" if im["correct"] else f"<div class='why'>{_e(im['reason'])}</div>"
        parts.append(
            f"<div class='img{'' if im['correct'] else ' bad'}'><img src='{src}' alt='{_e(path.name)}' "
            f"title='{_e(im['reason'] or 'correct')}'><div>{mark} seed {_e(im['seed'])}</div>{why}</div>"
        )
    return f"<div class='imgs'>{''.join(parts)}</div>"


def _column(title: str, sample: SampleRecord, run_dir: Path, thumb: int) -> str:
    rewritten = sample["rewritten_prompt"]
    flags = []
    if not sample["format_ok"]:
        flags.append("format not ok")
    if sample["fallback"]:
        flags.append("fell back to the original prompt")
    body = f"<div class='meta'><b>{_e(title)}</b> · score {sample['score']:.2f}"
    body += (f" · <span class='neg'>{_e(', '.join(flags))}</span>" if flags else "") + "</div>"
    if rewritten != sample["prompt"]:
        body += f"<div class='ptext'>{_e(rewritten)}</div>"
    else:
        body += "<div class='meta'>rendered the original prompt</div>"
    if sample["reasoning"]:
        body += f"<details><summary>reasoning</summary><div class='ptext'>{_e(sample['reasoning'])}</div></details>"
    return f"<div class='col'>{body}{_images_html(sample, run_dir, thumb)}</div>"


def build_report(
    run_dir: str | Path,
    baseline: str | Path | None = None,
    out: str | Path | None = None,
    *,
    thumb: int = 160,
    max_prompts: int | None = None,
    resamples: int = 10_000,
) -> Path:
    """Write the HTML report of ``run_dir`` (vs ``baseline`` if given); returns its path."""
    from reprompt.eval.geneval.evaluate import read_results

    if not 32 <= thumb <= 512:
        raise RepromptError("--thumb must be between 32 and 512 pixels")
    run_dir = Path(run_dir)
    summary, _ = read_results(run_dir)
    runs: list[tuple[str, GenEvalSummary]] = [(_label(summary, run_dir), summary)]
    comparison: CompareResult | None = None
    base_samples: dict[int, SampleRecord] = {}
    base_dir = Path(baseline) if baseline else None
    if base_dir is not None:
        from reprompt.eval.compare import compare_runs

        base_summary, _ = read_results(base_dir)
        comparison = compare_runs(base_dir, run_dir, resamples=resamples, allow_seed_mismatch=True)
        runs.insert(0, (_label(base_summary, base_dir), base_summary))
        base_samples = {s["index"]: s for s in base_summary["samples"]}
    changed = {c["index"]: "regressed" for c in (comparison or {}).get("worse", [])}  # type: ignore[union-attr]
    changed |= {c["index"]: "improved" for c in (comparison or {}).get("better", [])}  # type: ignore[union-attr]

    if comparison:
        paired = _paired(comparison)
        chart = bar_chart_uri(
            {
                runs[0][0]: {k: d["a"] for k, d in paired.items()},
                runs[1][0]: {k: d["b"] for k, d in paired.items()},
            }
        )
    else:
        chart = bar_chart_uri({runs[0][0]: {**summary["results"]}})
    samples = summary["samples"][:max_prompts] if max_prompts else summary["samples"]
    cards = []
    for s in samples:
        fail = any(not im["correct"] for im in s["images"])
        cls = changed.get(s["index"], "")
        cols = ""
        if base_dir is not None and s["index"] in base_samples:
            cols += _column(runs[0][0], base_samples[s["index"]], base_dir, thumb)
        cols += _column(runs[-1][0], s, run_dir, thumb)
        cards.append(
            f"<div class='card {cls}' id='p{s['index']:05d}' data-tag='{_e(s['tag'])}' data-fail='{int(fail)}'>"
            f"<div><b>{s['index']:05d}</b> <span class='tagpill'>{_e(s['tag'])}</span> "
            f"{_e(s['prompt'])}</div><div class='cols'>{cols}</div></div>"
        )
    tags = sorted({s["tag"] for s in samples})
    buttons = [("all", "all"), ("fail", "failures")]
    if comparison:
        buttons += [
            ("regressed", f"regressions ({len(comparison['worse'])})"),
            ("improved", f"improvements ({len(comparison['better'])})"),
        ]
    bar = (
        "<div class='bar'>"
        + "".join(f"<button data-mode='{m}' onclick=\"setMode('{m}')\">{_e(t)}</button>" for m, t in buttons)
        + " tag <select id='tag' onchange='apply()'><option>all</option>"
        + "".join(f"<option>{_e(t)}</option>" for t in tags)
        + "</select> <input id='q' placeholder='search prompts' oninput='apply()'> <span id='count'></span></div>"
    )
    meta = _meta_html(summary, comparison)
    title = f"GenEval report: {runs[-1][0]}" + (f" vs {runs[0][0]}" if comparison else "")
    doc = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{_e(title)}</title>"
        f"<style>{_CSS.replace('{thumb}', str(thumb))}</style><script>{_JS}</script></head><body>"
        f"<h1>{_e(title)}</h1>{meta}<h2>Summary</h2>{_summary_table(runs, comparison)}"
        f"<img alt='per-tag scores' src='{chart}'>"
        f"<h2>Prompts</h2>{bar}{''.join(cards)}</body></html>"
    )
    path = Path(out) if out else run_dir / REPORT_FILE
    atomic_write_text(path, doc)
    return path


def _meta_html(summary: GenEvalSummary, comparison: CompareResult | None) -> str:
    pol, bb, sc = summary.get("policy") or {}, summary.get("backbone") or {}, summary["scorer"]
    seeds = summary.get("seeds") or {}
    n = summary["n_samples"]
    lines = [
        f"policy <b>{_e(pol.get('name', '?'))}</b> ({_e(pol.get('revision') or 'no revision')}) · "
        f"backbone <b>{_e(bb.get('name', '?'))}</b> · detector {_e(sc['detector'])}, colours {_e(sc['colors'])}",
        f"{n['effective']} prompts, {n['images']} images"
        + ("" if summary["complete"] else f" (INCOMPLETE: {n['selected']} selected)")
        + (
            f" · seeds {seeds.get('base_seed')}+k, {seeds.get('images_per_prompt')} per prompt"
            if seeds
            else ""
        )
        + f" · task version {_e(summary['versions'].get('geneval'))} · scored {_e(summary['created'])}",
    ]
    if comparison:
        p = comparison["prompts"]
        lines.append(
            f"vs baseline: better on {p['won']} prompts, worse on {p['lost']}, tied on {p['tied']}"
            + (
                ""
                if comparison["seeds_match"]
                else " · <span class='neg'>seeds differ: images do not pair</span>"
            )
        )
    return "".join(f"<div class='meta'>{line}</div>" for line in lines)


__all__ = ["REPORT_FILE", "bar_chart_uri", "build_report", "thumbnail_uri"]
