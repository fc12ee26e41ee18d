"""Rows trained with several seeds: means over seeds and hierarchical intervals (seeds, then prompts), on
hand-built scored runs with known per-image outcomes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from reprompt.cli.main import main
from reprompt.errors import RepromptError
from reprompt.eval.compare import compare_runs
from reprompt.eval.seeds import compare_seeded, summarize_seeded
from tests.test_eval_compare import _summary


def _row(folder: Path, rates: dict[str, float], n: int = 40, seed: int = 0) -> Path:
    """A scored run whose prompts of each tag are correct with the given rate (2 images each)."""
    rng = np.random.default_rng(seed)
    prompts = [(tag, list(rng.random(2) < rate)) for tag, rate in rates.items() for _ in range(n)]
    return _summary(folder, prompts)


def test_one_run_per_row_matches_the_paired_prompt_bootstrap(tmp_path):
    a = _row(tmp_path / "a", {"counting": 0.4, "colors": 0.6}, seed=1)
    b = _row(tmp_path / "b", {"counting": 0.7, "colors": 0.6}, seed=2)
    seeded = compare_seeded([a], [b], resamples=4000)
    plain = compare_runs(a, b, resamples=4000)
    assert seeded["overall"]["diff"] == pytest.approx(plain["overall"]["diff"])
    # one training seed: the interval covers prompts only, like `reprompt eval compare` (another RNG stream)
    assert seeded["overall"]["ci_low"] == pytest.approx(plain["overall"]["ci_low"], abs=0.02)
    assert seeded["overall"]["ci_high"] == pytest.approx(plain["overall"]["ci_high"], abs=0.02)


def test_seed_spread_widens_the_interval_and_pairing_narrows_it(tmp_path):
    """Three seeds of B that disagree (0.3, 0.5, 0.9 on counting) give a wider interval than one seed with the
    same mean; B paired with A by seed cancels what the seeds share."""
    a_runs = [_row(tmp_path / f"a{s}", {"counting": r}, seed=10 + s) for s, r in enumerate((0.2, 0.4, 0.8))]
    b_runs = [
        _row(tmp_path / f"b{s}", {"counting": r + 0.1}, seed=20 + s) for s, r in enumerate((0.2, 0.4, 0.8))
    ]
    independent = compare_seeded(a_runs, b_runs, resamples=4000)
    paired = compare_seeded(a_runs, b_runs, paired=True, resamples=4000)
    width = lambda r: r["overall"]["ci_high"] - r["overall"]["ci_low"]  # noqa: E731
    assert independent["overall"]["diff"] == pytest.approx(paired["overall"]["diff"])
    assert width(paired) < width(independent)
    single = compare_seeded(a_runs[1:2], b_runs[1:2], resamples=4000)
    assert width(single) < width(independent)
    assert len(independent["per_seed"]["b"]) == 3
    summary = summarize_seeded(b_runs, resamples=4000)
    assert summary["overall"]["score"] == pytest.approx(np.mean(summary["per_seed"]))
    assert summary["overall"]["ci_low"] < min(summary["per_seed"]) + 0.1


def test_rows_must_match(tmp_path):
    a = _row(tmp_path / "a", {"counting": 0.5})
    b = _row(tmp_path / "b", {"colors": 0.5})
    with pytest.raises(RepromptError, match="same prompts"):
        compare_seeded([a], [b])
    with pytest.raises(RepromptError, match="as many runs"):
        compare_seeded([a, a], [a], paired=True)


def test_cli_takes_comma_separated_seeds(tmp_path, capsys):
    runs = [_row(tmp_path / f"r{s}", {"counting": 0.5}, seed=s) for s in range(4)]
    code = main(["eval", "compare", f"{runs[0]},{runs[1]}", f"{runs[2]},{runs[3]}", "--paired-seeds"])
    assert code == 0
    out = capsys.readouterr().out
    assert "CI (seeds, then prompts)" in out and "paired seed draws" in out
