"""Paired comparison of two scored runs of one benchmark (GenEval or GenEval 2): did the rewrite help?

Runs A and B must cover the same prompts with the same image seeds (e.g. ``--policy none`` and
``--policy smollm2``, both ``--seed 42``), so image ``k`` of a prompt is the same draw of noise in both.
The unit of resampling is the prompt: the 95% interval of every row is a paired percentile bootstrap over
prompts, stratified by the prompt's group (GenEval: its tag, so every resample keeps GenEval's tag sizes;
GenEval 2: its atom count), and every row of one resample is computed from the same drawn prompts. A row is a
ratio of sums over prompts (each prompt adds a numerator and a denominator), or the mean of other rows:

- GenEval: per tag, the mean over its prompts of the fraction of images judged correct (``tags``);
  ``overall`` = the mean of the per-tag rows, as GenEval's overall is the mean of per-tag scores;
  ``metrics``: correct images, prompts with a correct image.
- GenEval 2: per skill, the skill's answered atoms' mean score (pooled over prompts, as the official per-skill
  analysis pools atoms; ``tags``); ``overall`` = Soft-TIFA GM (the prompt-level score); ``metrics``: Soft-TIFA
  AM, and the GM of the prompts of each atom count.

Why one ~440-line module: loading the two summaries, the prompt/row model (``_Prompt``, ``_Rows``) that the
bootstrap resamples, and the table that prints the rows are one computation over the same shapes; split, each
part would re-derive them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reprompt.errors import RepromptError, check_range
from reprompt.geneval.vocabulary import GENEVAL_TAGS
from reprompt.utils.io import read_json

RESAMPLES = 10_000
"""Bootstrap resamples behind every interval (compare, report): enough for stable 95% bounds."""
CONFIDENCE = 0.95
"""Interval level of every comparison unless told otherwise."""
TASKS = ("geneval", "geneval2")
"""The benchmarks whose scored runs compare (their ``summary.json``)."""

if TYPE_CHECKING:
    from reprompt.eval.schema import CompareResult, PromptChange, TagDifference


@dataclass
class _Prompt:
    index: int
    tag: str
    prompt: str
    rewritten: str
    images: dict[int, float]
    """Per-image score (GenEval: 1.0 when judged correct; GenEval 2: Soft-TIFA AM)."""
    correct: dict[int, bool]
    seeds: dict[int, int | None]
    reasons: dict[int, str]
    key: float
    """The prompt's score that decides won/lost/tied (GenEval: fraction of images correct; GenEval 2: its GM)."""
    parts: dict[str, tuple[float, float]] = field(default_factory=dict)
    """Row -> (numerator, denominator) this prompt adds to it."""

    @property
    def score(self) -> float:
        return sum(self.images.values()) / len(self.images)


@dataclass
class _Rows:
    """A task's rows: per-group rows, the headline, other rows; ``derived`` rows are means of others."""

    groups: list[str]
    headline: str
    metrics: list[str]
    derived: dict[str, list[str]]
    label: str
    stratum: str


def _image_value(im: dict[str, Any]) -> float:
    return float(im["score"]) if "score" in im else float(bool(im["correct"]))


def _prompts(summary: dict[str, Any]) -> dict[int, _Prompt]:
    task = summary.get("task", "geneval")
    out = {}
    for s in summary["samples"]:
        images = {im["image_index"]: _image_value(im) for im in s["images"]}
        p = _Prompt(
            index=s["index"],
            tag=s["tag"],
            prompt=s["prompt"],
            rewritten=s["rewritten_prompt"],
            images=images,
            correct={im["image_index"]: bool(im["correct"]) for im in s["images"]},
            seeds={im["image_index"]: im.get("seed") for im in s["images"]},
            reasons={im["image_index"]: im["reason"] for im in s["images"]},
            key=float(s["gm"]) if task == "geneval2" else sum(images.values()) / len(images),
        )
        n = len(s["images"])
        if task == "geneval2":
            p.parts = {
                "soft_tifa_gm": (p.key, 1.0),
                "soft_tifa_am": (p.score, 1.0),
                f"gm {p.tag}": (p.key, 1.0),
            }
            for im in s["images"]:
                for skill, (total, count) in im["skills"].items():
                    num, den = p.parts.get(f"skill {skill}", (0.0, 0.0))
                    p.parts[f"skill {skill}"] = (num + total / n, den + count / n)
        else:
            p.parts = {
                f"tag {p.tag}": (p.score, 1.0),
                "correct_images": (p.score, 1.0),
                "correct_prompts": (float(any(p.correct.values())), 1.0),
            }
        out[s["index"]] = p
    return out


def _strata(task: str, present: set[str]) -> list[str]:
    """The prompt groups in report order: GenEval's tags in GenEval's order; GenEval 2's atom counts rising."""
    if task == "geneval2":
        return sorted(present, key=lambda t: (int(t.split()[0]) if t.split()[0].isdigit() else 99, t))
    return [t for t in GENEVAL_TAGS if t in present] + sorted(present - set(GENEVAL_TAGS))


def _rows(task: str, prompts: list[_Prompt]) -> _Rows:
    tags = _strata(task, {p.tag for p in prompts})
    if task == "geneval2":
        from reprompt.eval.geneval2.data import SKILLS

        skills = {k.split(" ", 1)[1] for p in prompts for k in p.parts if k.startswith("skill ")}
        return _Rows(
            groups=[f"skill {s}" for s in SKILLS if s in skills]
            + sorted(f"skill {s}" for s in skills - set(SKILLS)),
            headline="soft_tifa_gm",
            metrics=["soft_tifa_am", *(f"gm {t}" for t in tags)],
            derived={},
            label="skill",
            stratum="atom count",
        )
    return _Rows(
        groups=[f"tag {t}" for t in tags],
        headline="overall",
        metrics=["correct_images", "correct_prompts"],
        derived={"overall": [f"tag {t}" for t in tags]},
        label="tag",
        stratum="tag",
    )


def load_summary(run: str | Path, results: str | Path | None = None) -> dict[str, Any]:
    """The ``summary.json`` of a scored GenEval or GenEval 2 run (in ``results`` if scored elsewhere)."""
    path = Path(results or run) / "summary.json"
    if not path.exists():
        raise RepromptError(
            f"{path} does not exist: score the run first (reprompt eval geneval-score {run}, or "
            f"geneval2-score for a GenEval 2 run)"
        )
    summary = read_json(path, f"score the run again (reprompt eval geneval-score {run}, or geneval2-score)")
    if not isinstance(summary, dict):
        raise RepromptError(f"{path} is not a run summary: score the run again")
    if summary.get("task", "geneval") not in TASKS:
        raise RepromptError(
            f"{path} is a {summary.get('task')!r} summary; compare takes {', '.join(TASKS)} runs"
        )
    return summary


def _policy_name(summary: dict[str, Any]) -> str | None:
    """The name of the policy a scored run used (None for a folder the official scripts wrote)."""
    policy = summary.get("policy")
    return policy["name"] if policy else None


def prompt_scores(run: str | Path) -> tuple[list[str], dict[int, tuple[str, float, tuple]]]:
    """A scored run's per-prompt scores: (its scorer settings as JSON, {prompt index: (tag, fraction of
    images correct, the images' seeds)}), for statistics over several runs (:mod:`reprompt.eval.seeds`, GenEval
    runs only)."""
    summary = load_summary(run)
    if summary.get("task", "geneval") != "geneval":
        raise RepromptError(
            f"{run} is a {summary['task']} run: rows of several training seeds compare GenEval runs; compare two "
            "single runs instead"
        )
    scorer = [json.dumps(summary["versions"], sort_keys=True), json.dumps(summary["scorer"], sort_keys=True)]
    return scorer, {i: (p.tag, p.score, tuple(sorted(p.seeds.items()))) for i, p in _prompts(summary).items()}


def compare_runs(
    run_a: str | Path,
    run_b: str | Path,
    *,
    results_a: str | Path | None = None,
    results_b: str | Path | None = None,
    resamples: int = RESAMPLES,
    confidence: float = CONFIDENCE,
    seed: int = 0,
    allow_seed_mismatch: bool = False,
) -> CompareResult:
    """Compare scored run B against run A (positive differences mean B is better)."""
    import numpy as np

    if resamples < 100:
        raise RepromptError("--resamples must be at least 100 for a meaningful interval")
    check_range("--confidence", confidence, 0.5, 1, low_open=True, high_open=True)  # e.g. 0.95
    sa, sb = load_summary(run_a, results_a), load_summary(run_b, results_b)
    task = sa.get("task", "geneval")
    if sb.get("task", "geneval") != task:
        raise RepromptError(
            f"run A is a {task} run and run B a {sb.get('task', 'geneval')} run: compare runs of one task"
        )
    if sa["versions"] != sb["versions"]:
        raise RepromptError(
            f"the runs were scored with different task versions: {sa['versions']} vs {sb['versions']}"
        )
    if sa["scorer"] != sb["scorer"]:
        raise RepromptError(
            "the runs were scored differently (detector, colours, judge or options differ): "
            f"{sa['scorer']} vs {sb['scorer']}; rescore one with the other's settings"
        )
    pa, pb = _prompts(sa), _prompts(sb)
    warnings: list[str] = []
    common = sorted(set(pa) & set(pb))
    if not common:
        raise RepromptError("the runs share no prompt: they must be generated from the same prompt file")
    if len(common) < max(len(pa), len(pb)):
        warnings.append(f"compared on the {len(common)} prompts both runs scored (A {len(pa)}, B {len(pb)})")
    seeds_match = True
    for i in common:
        a, b = pa[i], pb[i]
        if a.prompt != b.prompt or a.tag != b.tag:
            raise RepromptError(f"prompt {i} differs between the runs ({a.prompt!r} vs {b.prompt!r})")
        if set(a.images) != set(b.images):
            raise RepromptError(f"prompt {i} has images {sorted(a.images)} in A but {sorted(b.images)} in B")
        if a.seeds != b.seeds or any(s is None for s in a.seeds.values()):
            seeds_match = False
    if not seeds_match:
        msg = "the runs do not share image seeds, so images do not pair up (use the same --seed)"
        if not allow_seed_mismatch:
            raise RepromptError(msg + "; pass --allow-seed-mismatch to compare anyway")
        warnings.append(msg)

    rows = _rows(task, [pa[i] for i in common])
    order = _strata(task, {pa[i].tag for i in common})
    members = {t: [i for i in common if pa[i].tag == t] for t in order}
    rng = np.random.default_rng(seed)
    # One set of resampled prompt indices per stratum, shared by every row so they stay paired.
    idx = {t: rng.integers(0, len(m), size=(resamples, len(m))) for t, m in members.items()}
    alpha = (1 - confidence) / 2

    def arrays(side: dict[int, _Prompt], row: str) -> dict[str, tuple[Any, Any]]:
        return {
            t: (
                np.array([side[i].parts.get(row, (0.0, 0.0))[0] for i in m]),
                np.array([side[i].parts.get(row, (0.0, 0.0))[1] for i in m]),
            )
            for t, m in members.items()
        }

    def ratio(row: str) -> tuple[float, float, Any, int]:
        """(A's value, B's value, bootstrap samples of B - A, prompts in the row) of a ratio row."""
        va, vb = arrays(pa, row), arrays(pb, row)
        point = []
        boot = []
        for side in (va, vb):
            num = sum(float(side[t][0].sum()) for t in order)
            den = sum(float(side[t][1].sum()) for t in order)
            point.append(num / den if den else float("nan"))
            bnum = sum(side[t][0][idx[t]].sum(axis=1) for t in order)
            bden = sum(side[t][1][idx[t]].sum(axis=1) for t in order)
            with np.errstate(invalid="ignore", divide="ignore"):
                boot.append(bnum / bden)
        n = sum(int((va[t][1] > 0).sum()) for t in order)
        return point[0], point[1], boot[1] - boot[0], n

    def interval(a_val: float, b_val: float, samples: Any, n: int) -> TagDifference:
        lo, hi = np.nanquantile(samples, [alpha, 1 - alpha])
        return {
            "a": float(a_val),
            "b": float(b_val),
            "diff": float(b_val - a_val),
            "ci_low": float(lo),
            "ci_high": float(hi),
            "n_prompts": n,
        }

    computed: dict[str, tuple[float, float, Any, int]] = {}
    for row in [*rows.groups, *rows.metrics, *([] if rows.headline in rows.derived else [rows.headline])]:
        computed[row] = ratio(row)
    for row, parts in rows.derived.items():
        got = [computed[p] for p in parts]
        computed[row] = (
            float(np.mean([g[0] for g in got])),
            float(np.mean([g[1] for g in got])),
            np.mean([g[2] for g in got], axis=0),
            len(common),
        )
    result_rows = {row: interval(*computed[row]) for row in computed}

    prompts = {"won": 0, "lost": 0, "tied": 0}
    pairs = {"won": 0, "lost": 0, "both": 0, "neither": 0}
    worse: list[PromptChange] = []
    better: list[PromptChange] = []
    for i in common:
        a, b = pa[i], pb[i]
        key = "won" if b.key > a.key else "lost" if b.key < a.key else "tied"
        prompts[key] += 1
        for k in a.correct:
            ca, cb = a.correct[k], b.correct[k]
            pairs["both" if ca and cb else "won" if cb else "lost" if ca else "neither"] += 1
        if key != "tied":
            change: PromptChange = {
                "index": i,
                "tag": a.tag,
                "prompt": a.prompt,
                "a": a.key,
                "b": b.key,
                "rewritten_a": a.rewritten,
                "rewritten_b": b.rewritten,
                "reasons_b": sorted({r for k, r in b.reasons.items() if not b.correct[k] and r}),
            }
            (better if key == "won" else worse).append(change)
    worse.sort(key=lambda c: (c["b"] - c["a"], c["index"]))
    better.sort(key=lambda c: (c["a"] - c["b"], c["index"]))
    result: CompareResult = {
        "task": task,
        "run_a": str(run_a),
        "run_b": str(run_b),
        "policy_a": _policy_name(sa),
        "policy_b": _policy_name(sb),
        "seeds_match": seeds_match,
        "n_prompts": len(common),
        "confidence": confidence,
        "bootstrap": {
            "resamples": resamples,
            "seed": seed,
            "unit": "prompt",
            "stratified_by": rows.stratum,
            "method": "percentile",
        },
        "group_label": rows.label,
        "tags": {g.split(" ", 1)[1]: result_rows[g] for g in rows.groups},
        "overall": result_rows[rows.headline],
        "headline": rows.headline,
        "metrics": {m: result_rows[m] for m in rows.metrics},
        "prompts": prompts,
        "images": pairs,
        "worse": worse,
        "better": better,
    }
    if warnings:
        result["warnings"] = warnings
    return result


ROW_LABELS = {
    "overall": "overall",
    "correct_images": "correct images",
    "correct_prompts": "correct prompts",
    "soft_tifa_gm": "Soft-TIFA GM",
    "soft_tifa_am": "Soft-TIFA AM",
}
"""How tables name the rows of a comparison (GenEval 2's per-atomicity rows read "gm 5 atoms")."""


def row_label(key: str) -> str:
    if key.startswith("gm "):
        return f"GM, {key[3:]}"
    return ROW_LABELS.get(key, key)


def _fmt_row(name: str, d: TagDifference) -> str:
    ci = f"[{d['ci_low']:+.3f}, {d['ci_high']:+.3f}]"
    name = name if len(name) < 16 else name[:15]
    flag = " *" if d["ci_low"] > 0 or d["ci_high"] < 0 else ""
    return f"{name:<16}{d['a']:>7.3f}{d['b']:>7.3f}{d['diff']:>+8.3f}  {ci:<18}{d['n_prompts']:>6}{flag}"


def format_comparison(result: CompareResult, top: int = 10) -> str:
    """A plain-text table: per tag, overall, image rate; won/lost/tied; the prompts that got worse."""
    name_a = result["policy_a"] or Path(result["run_a"]).name
    name_b = result["policy_b"] or Path(result["run_b"]).name
    pct = int(round(result["confidence"] * 100))
    lines = [
        f"A = {result['run_a']} ({name_a})",
        f"B = {result['run_b']} ({name_b})",
        f"{result['group_label']:<16}{'A':>7}{'B':>7}{'B-A':>8}  {f'{pct}% CI':<18}{'prompts':>6}",
    ]
    lines += [_fmt_row(t, d) for t, d in result["tags"].items()]
    lines.append(_fmt_row(row_label(result["headline"]), result["overall"]))
    lines += [_fmt_row(row_label(m), d) for m, d in result["metrics"].items()]
    p, im = result["prompts"], result["images"]
    lines.append(
        f"(* the {pct}% interval excludes 0; paired bootstrap over prompts, "
        f"{result['bootstrap']['resamples']} resamples)"
    )
    lines.append(f"prompts: B better on {p['won']}, worse on {p['lost']}, tied on {p['tied']}")
    lines.append(
        f"same-seed images: B fixed {im['won']}, broke {im['lost']}, both correct {im['both']}, "
        f"neither {im['neither']}"
    )
    for w in result.get("warnings", []):
        lines.append(f"warning: {w}")
    if result["worse"] and top > 0:
        lines.append(f"prompts that got worse ({min(top, len(result['worse']))} of {len(result['worse'])}):")
        for c in result["worse"][:top]:
            reason = ("; ".join(c["reasons_b"]).replace("\n", "; "))[:120]
            lines.append(f"  {c['index']:05d} [{c['tag']}] {c['a']:.2f} -> {c['b']:.2f}  {c['prompt']!r}")
            lines.append(f"        B prompt: {c['rewritten_b'][:150]!r}")
            if reason:
                lines.append(f"        why: {reason}")
    return "\n".join(lines)


def write_comparison(result: CompareResult, path: str | Path) -> Path:
    from reprompt.utils.io import atomic_write_json

    atomic_write_json(path, result)
    return Path(path)


def default_output(run_a: str | Path, run_b: str | Path) -> Path:
    """``<run_b>/compare-<name of run_a>.json``."""
    return Path(run_b) / f"compare-{Path(run_a).resolve().name}.json"


def load_comparison(path: str | Path) -> CompareResult:
    return read_json(path, "run `reprompt eval compare` again to rewrite it")


__all__ = [
    "compare_runs",
    "default_output",
    "format_comparison",
    "load_comparison",
    "load_summary",
    "prompt_scores",
    "row_label",
    "write_comparison",
]
