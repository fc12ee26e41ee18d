"""Paired comparison of two scored GenEval runs: did the rewrite help?

Runs A and B must cover the same prompts with the same image seeds (e.g. ``--policy none`` and
``--policy smollm2``, both ``--seed 42``), so image ``k`` of a prompt is the same draw of noise in both.
The unit of resampling is the prompt: a prompt's score is the fraction of its images judged correct,
and the difference of two runs on a tag is the mean over its prompts of ``b - a`` (equal to the
difference of the tag scores). The 95% interval is a paired percentile bootstrap over prompts,
stratified by tag so every resample keeps GenEval's tag sizes; ``overall`` is the mean of the per-tag
differences, as GenEval's overall is the mean of per-tag scores.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from reprompt.errors import RepromptError
from reprompt.geneval.vocabulary import GENEVAL_TAGS
from reprompt.utils.io import read_json

RESAMPLES = 10_000
"""Bootstrap resamples behind every interval (compare, report): enough for stable 95% bounds."""
CONFIDENCE = 0.95
"""Interval level of every comparison unless told otherwise."""

if TYPE_CHECKING:
    from reprompt.eval.schema import CompareResult, GenEvalSummary, PromptChange, TagDifference


@dataclass
class _Prompt:
    index: int
    tag: str
    prompt: str
    rewritten: str
    correct: dict[int, bool]
    seeds: dict[int, int | None]
    reasons: dict[int, str]

    @property
    def score(self) -> float:
        return sum(self.correct.values()) / len(self.correct)


def _prompts(summary: GenEvalSummary) -> dict[int, _Prompt]:
    out = {}
    for s in summary["samples"]:
        out[s["index"]] = _Prompt(
            index=s["index"],
            tag=s["tag"],
            prompt=s["prompt"],
            rewritten=s["rewritten_prompt"],
            correct={im["image_index"]: bool(im["correct"]) for im in s["images"]},
            seeds={im["image_index"]: im.get("seed") for im in s["images"]},
            reasons={im["image_index"]: im["reason"] for im in s["images"]},
        )
    return out


def _load(run: str | Path, results: str | Path | None) -> GenEvalSummary:
    from reprompt.eval.geneval.evaluate import read_results

    return read_results(run, results)[0]


def prompt_scores(run: str | Path) -> tuple[list[str], dict[int, tuple[str, float, tuple]]]:
    """A scored run's per-prompt scores: (its scorer settings as JSON, {prompt index: (tag, fraction of
    images correct, the images' seeds)}), for statistics over several runs (:mod:`reprompt.eval.seeds`)."""
    summary = _load(run, None)
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
    if not 0.5 < confidence < 1:
        raise RepromptError("--confidence must be in (0.5, 1), e.g. 0.95")
    sa, sb = _load(run_a, results_a), _load(run_b, results_b)
    if sa["versions"] != sb["versions"]:
        raise RepromptError(
            f"the runs were scored with different task versions: {sa['versions']} vs {sb['versions']}"
        )
    if sa["scorer"] != sb["scorer"]:
        raise RepromptError(
            "the runs were scored differently (detector, colours or options differ): "
            f"{sa['scorer']} vs {sb['scorer']}; rescore one with the other's settings"
        )
    pa, pb = _prompts(sa), _prompts(sb)
    warnings: list[str] = []
    common = sorted(set(pa) & set(pb))
    if not common:
        raise RepromptError("the runs share no prompt: they must be generated from the same metadata file")
    if len(common) < max(len(pa), len(pb)):
        warnings.append(f"compared on the {len(common)} prompts both runs scored (A {len(pa)}, B {len(pb)})")
    seeds_match = True
    for i in common:
        a, b = pa[i], pb[i]
        if a.prompt != b.prompt or a.tag != b.tag:
            raise RepromptError(f"prompt {i} differs between the runs ({a.prompt!r} vs {b.prompt!r})")
        if set(a.correct) != set(b.correct):
            raise RepromptError(
                f"prompt {i} has images {sorted(a.correct)} in A but {sorted(b.correct)} in B"
            )
        if a.seeds != b.seeds or any(s is None for s in a.seeds.values()):
            seeds_match = False
    if not seeds_match:
        msg = "the runs do not share image seeds, so images do not pair up (use the same --seed)"
        if not allow_seed_mismatch:
            raise RepromptError(msg + "; pass --allow-seed-mismatch to compare anyway")
        warnings.append(msg)

    tags = [t for t in GENEVAL_TAGS if any(pa[i].tag == t for i in common)]
    tags += sorted({pa[i].tag for i in common} - set(tags))
    diffs = {t: np.array([pb[i].score - pa[i].score for i in common if pa[i].tag == t]) for t in tags}
    a_scores = {t: np.array([pa[i].score for i in common if pa[i].tag == t]) for t in tags}
    rng = np.random.default_rng(seed)
    # One set of resampled prompt indices per tag, shared by every statistic so they stay paired.
    idx = {t: rng.integers(0, len(d), size=(resamples, len(d))) for t, d in diffs.items()}
    boot = {t: diffs[t][idx[t]].mean(axis=1) for t in tags}
    a_any = {
        t: np.array([float(any(pa[i].correct.values())) for i in common if pa[i].tag == t]) for t in tags
    }
    any_diffs = {
        t: np.array([float(any(pb[i].correct.values())) for i in common if pa[i].tag == t]) - a_any[t]
        for t in tags
    }
    n_total = len(common)
    alpha = (1 - confidence) / 2

    def interval(a_val: float, point: float, samples: np.ndarray, n: int) -> TagDifference:
        lo, hi = np.quantile(samples, [alpha, 1 - alpha])
        return {
            "a": float(a_val),
            "b": float(a_val + point),
            "diff": float(point),
            "ci_low": float(lo),
            "ci_high": float(hi),
            "n_prompts": n,
        }

    tag_result = {t: interval(a_scores[t].mean(), diffs[t].mean(), boot[t], len(diffs[t])) for t in tags}
    overall_boot = np.mean([boot[t] for t in tags], axis=0)
    overall = interval(
        float(np.mean([a_scores[t].mean() for t in tags])),
        float(np.mean([diffs[t].mean() for t in tags])),
        overall_boot,
        n_total,
    )
    weights = {t: len(diffs[t]) / n_total for t in tags}
    images_boot = sum(boot[t] * weights[t] for t in tags)
    images = interval(
        sum(a_scores[t].mean() * weights[t] for t in tags),
        sum(diffs[t].mean() * weights[t] for t in tags),
        images_boot,  # type: ignore[arg-type]
        n_total,
    )
    any_prompts = interval(
        sum(a_any[t].mean() * weights[t] for t in tags),
        sum(any_diffs[t].mean() * weights[t] for t in tags),
        sum(any_diffs[t][idx[t]].mean(axis=1) * weights[t] for t in tags),  # type: ignore[arg-type]
        n_total,
    )

    prompts = {"won": 0, "lost": 0, "tied": 0}
    pairs = {"won": 0, "lost": 0, "both": 0, "neither": 0}
    worse: list[PromptChange] = []
    better: list[PromptChange] = []
    for i in common:
        a, b = pa[i], pb[i]
        key = "won" if b.score > a.score else "lost" if b.score < a.score else "tied"
        prompts[key] += 1
        for k in a.correct:
            ca, cb = a.correct[k], b.correct[k]
            pairs["both" if ca and cb else "won" if cb else "lost" if ca else "neither"] += 1
        if key != "tied":
            change: PromptChange = {
                "index": i,
                "tag": a.tag,
                "prompt": a.prompt,
                "a": a.score,
                "b": b.score,
                "rewritten_a": a.rewritten,
                "rewritten_b": b.rewritten,
                "reasons_b": sorted({r for k, r in b.reasons.items() if not b.correct[k] and r}),
            }
            (better if key == "won" else worse).append(change)
    worse.sort(key=lambda c: (c["b"] - c["a"], c["index"]))
    better.sort(key=lambda c: (c["a"] - c["b"], c["index"]))
    result: CompareResult = {
        "run_a": str(run_a),
        "run_b": str(run_b),
        "policy_a": (sa.get("policy") or {}).get("name"),
        "policy_b": (sb.get("policy") or {}).get("name"),
        "seeds_match": seeds_match,
        "n_prompts": n_total,
        "confidence": confidence,
        "bootstrap": {
            "resamples": resamples,
            "seed": seed,
            "unit": "prompt",
            "stratified_by": "tag",
            "method": "percentile",
        },
        "tags": tag_result,
        "overall": overall,
        "correct_images": images,
        "correct_prompts": any_prompts,
        "prompts": prompts,
        "images": pairs,
        "worse": worse,
        "better": better,
    }
    if warnings:
        result["warnings"] = warnings
    return result


def _fmt_row(name: str, d: TagDifference) -> str:
    ci = f"[{d['ci_low']:+.3f}, {d['ci_high']:+.3f}]"
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
        f"{'tag':<16}{'A':>7}{'B':>7}{'B-A':>8}  {f'{pct}% CI':<18}{'prompts':>6}",
    ]
    lines += [_fmt_row(t, d) for t, d in result["tags"].items()]
    lines.append(_fmt_row("overall", result["overall"]))
    lines.append(_fmt_row("correct images", result["correct_images"]))
    lines.append(_fmt_row("correct prompts", result["correct_prompts"]))
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
    "prompt_scores",
    "write_comparison",
]
