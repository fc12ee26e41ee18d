"""Rows trained with several seeds: a GenEval-style score and the difference of two rows, each with an interval
that covers training randomness as well as prompt sampling.

A row is one or more scored runs of the same prompts and image seeds, one run per training seed. The
bootstrap is hierarchical: every resample draws the row's training seeds with replacement, then the
prompts with replacement (stratified by tag, the same prompt draws for both rows, since the prompts and
image seeds are shared), and takes GenEval's overall score (the mean of the per-tag means) averaged over
the drawn seeds. When two rows are paired by seed (run i of B was trained from run i of A, e.g. GRPO from
that SFT model) one seed draw serves both; otherwise each row draws its own. With one run per row the
interval covers prompts only, as ``reprompt eval compare`` does.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from reprompt.errors import RepromptError
from reprompt.eval.compare import CONFIDENCE, RESAMPLES, prompt_scores
from reprompt.geneval.vocabulary import FAMILY_TAGS


def _matrix(runs: Sequence[str | Path]) -> tuple[list[str], list[int], Any, list[str]]:
    """(tag per prompt, prompt indices, scores[run, prompt], scorer key) for runs of the same prompts."""
    import numpy as np

    if not runs:
        raise RepromptError("a row needs at least one scored run")
    loaded = [prompt_scores(r) for r in runs]
    scorer, first = loaded[0]
    indices = sorted(first)
    for run, (other_scorer, other) in zip(runs, loaded, strict=True):
        if other_scorer != scorer:
            raise RepromptError(f"{run} was scored with other settings than {runs[0]}")
        if sorted(other) != indices:
            raise RepromptError(f"{run} does not cover the same prompts as {runs[0]}")
        for i in indices:
            if other[i][0] != first[i][0] or other[i][2] != first[i][2]:
                raise RepromptError(f"prompt {i} differs between {runs[0]} and {run} (tag or image seeds)")
    tags = [first[i][0] for i in indices]
    scores = np.array([[other[i][1] for i in indices] for _, other in loaded], dtype=float)
    return tags, indices, scores, scorer


def _ordered(tags: Sequence[str]) -> list[str]:
    present = set(tags)
    return [t for t in FAMILY_TAGS if t in present] + sorted(present - set(FAMILY_TAGS))


def _tag_means(scores: Any, tag_index: dict[str, Any], prompt_draws: dict[str, Any]) -> Any:
    """[resample, run, tag] means over each resample's drawn prompts of that tag."""
    import numpy as np

    return np.stack(
        [scores[:, tag_index[t]][:, prompt_draws[t]].mean(axis=2).T for t in tag_index], axis=-1
    )  # scores[:, idx][:, draws] -> [run, resample, n_t]; mean -> [run, resample]; .T -> [resample, run]


def compare_seeded(
    runs_a: Sequence[str | Path],
    runs_b: Sequence[str | Path],
    *,
    paired: bool = False,
    resamples: int = RESAMPLES,
    confidence: float = CONFIDENCE,
    seed: int = 0,
) -> dict[str, Any]:
    """Row B against row A (positive: B is better): the means over seeds, their difference and a
    hierarchical bootstrap interval (seeds, then prompts), overall and per tag. ``paired``: run i of B
    belongs to run i of A (both rows then need the same number of runs)."""
    import numpy as np

    tags_a, idx_a, sa, scorer_a = _matrix(runs_a)
    tags_b, idx_b, sb, scorer_b = _matrix(runs_b)
    if idx_a != idx_b or tags_a != tags_b:
        raise RepromptError("the two rows do not cover the same prompts")
    if scorer_a != scorer_b:
        raise RepromptError("the two rows were scored with different settings")
    if paired and len(runs_a) != len(runs_b):
        raise RepromptError(f"paired rows need as many runs each, got {len(runs_a)} and {len(runs_b)}")
    if resamples < 100:
        raise RepromptError("resamples must be at least 100 for a meaningful interval")
    rng = np.random.default_rng(seed)
    order = _ordered(tags_a)
    tag_index = {t: np.array([i for i, x in enumerate(tags_a) if x == t]) for t in order}
    draws = {t: rng.integers(0, len(ix), size=(resamples, len(ix))) for t, ix in tag_index.items()}
    seeds_a = rng.integers(0, len(runs_a), size=(resamples, len(runs_a)))
    seeds_b = seeds_a if paired else rng.integers(0, len(runs_b), size=(resamples, len(runs_b)))
    rows = np.arange(resamples)[:, None]
    # [resample, tag]: the drawn seeds' mean of the drawn prompts' tag means
    boot_a = _tag_means(sa, tag_index, draws)[rows, seeds_a].mean(axis=1)
    boot_b = _tag_means(sb, tag_index, draws)[rows, seeds_b].mean(axis=1)
    alpha = (1 - confidence) / 2

    def interval(a: float, b: float, samples: Any) -> dict[str, float]:
        lo, hi = np.quantile(samples, [alpha, 1 - alpha])
        return {"a": a, "b": b, "diff": b - a, "ci_low": float(lo), "ci_high": float(hi)}

    mean_a = {t: float(sa[:, ix].mean()) for t, ix in tag_index.items()}
    mean_b = {t: float(sb[:, ix].mean()) for t, ix in tag_index.items()}
    per_seed = {
        name: [float(np.mean([m[r, ix].mean() for ix in tag_index.values()])) for r in range(len(m))]
        for name, m in (("a", sa), ("b", sb))
    }
    return {
        "runs_a": [str(r) for r in runs_a],
        "runs_b": [str(r) for r in runs_b],
        "paired_seeds": paired,
        "n_prompts": len(idx_a),
        "confidence": confidence,
        "bootstrap": {"resamples": resamples, "seed": seed, "unit": "training seed, then prompt (by tag)"},
        "overall": interval(
            float(np.mean(list(mean_a.values()))),
            float(np.mean(list(mean_b.values()))),
            boot_b.mean(axis=1) - boot_a.mean(axis=1),
        ),
        "tags": {
            t: interval(mean_a[t], mean_b[t], boot_b[:, j] - boot_a[:, j]) for j, t in enumerate(tag_index)
        },
        "per_seed": per_seed,
    }


def summarize_seeded(
    runs: Sequence[str | Path], *, resamples: int = RESAMPLES, confidence: float = CONFIDENCE, seed: int = 0
) -> dict[str, Any]:
    """One row: GenEval's overall and per-tag scores averaged over its seeds, each with the hierarchical
    interval, and the overall of every seed."""
    import numpy as np

    tags, _, scores, _ = _matrix(runs)
    rng = np.random.default_rng(seed)
    order = _ordered(tags)
    tag_index = {t: np.array([i for i, x in enumerate(tags) if x == t]) for t in order}
    draws = {t: rng.integers(0, len(ix), size=(resamples, len(ix))) for t, ix in tag_index.items()}
    seed_draws = rng.integers(0, len(runs), size=(resamples, len(runs)))
    boot = _tag_means(scores, tag_index, draws)[np.arange(resamples)[:, None], seed_draws].mean(axis=1)
    alpha = (1 - confidence) / 2

    def interval(value: float, samples: Any) -> dict[str, float]:
        lo, hi = np.quantile(samples, [alpha, 1 - alpha])
        return {"score": value, "ci_low": float(lo), "ci_high": float(hi)}

    means = {t: float(scores[:, ix].mean()) for t, ix in tag_index.items()}
    return {
        "runs": [str(r) for r in runs],
        "n_prompts": scores.shape[1],
        "overall": interval(float(np.mean(list(means.values()))), boot.mean(axis=1)),
        "tags": {t: interval(means[t], boot[:, j]) for j, t in enumerate(tag_index)},
        "per_seed": [float(np.mean([row[ix].mean() for ix in tag_index.values()])) for row in scores],
    }


def format_seeded(result: dict[str, Any]) -> str:
    """A plain-text table of :func:`compare_seeded`: per tag and overall, A, B, B-A and the interval."""
    pct = int(round(result["confidence"] * 100))
    lines = [
        f"A = {len(result['runs_a'])} run(s): {', '.join(result['runs_a'])}",
        f"B = {len(result['runs_b'])} run(s): {', '.join(result['runs_b'])}",
        f"{'tag':<16}{'A':>7}{'B':>7}{'B-A':>8}  {pct}% CI (seeds, then prompts)",
    ]
    for name, d in [*result["tags"].items(), ("overall", result["overall"])]:
        flag = " *" if d["ci_low"] > 0 or d["ci_high"] < 0 else ""
        lines.append(
            f"{name:<16}{d['a']:>7.3f}{d['b']:>7.3f}{d['diff']:>+8.3f}  [{d['ci_low']:+.3f}, {d['ci_high']:+.3f}]{flag}"
        )
    seeds = ", ".join(f"{v:.3f}" for v in result["per_seed"]["a"])
    lines.append(f"A per seed: {seeds}")
    lines.append(f"B per seed: {', '.join(f'{v:.3f}' for v in result['per_seed']['b'])}")
    lines.append(
        f"({result['n_prompts']} prompts; {'paired' if result['paired_seeds'] else 'independent'} seed draws; "
        f"{result['bootstrap']['resamples']} resamples; * the interval excludes 0)"
    )
    return "\n".join(lines)
