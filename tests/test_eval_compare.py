"""Paired comparison: exact counts and intervals on hand-built summaries, and two real sketch runs whose
differences are planted by editing the drawn scenes of known images."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from reprompt.errors import RepromptError
from reprompt.eval.compare import compare_runs, default_output, format_comparison
from reprompt.eval.geneval.evaluate import ScoreConfig, score_run
from reprompt.eval.geneval.generate import GenerateConfig, generate_run

SCORER = {"detector": "oracle", "detector_model": None, "colors": "oracle", "options": {"threshold": 0.3}}


def _summary(folder: Path, prompts: list[tuple[str, list[bool]]], seeds=(42, 43), policy="none") -> Path:
    """A summary.json as score_run writes it, with the given per-image correctness."""
    samples = []
    for i, (tag, correct) in enumerate(prompts):
        images = [
            {
                "filename": f"{folder}/{i:05d}/samples/{k:04d}.png",
                "image_index": k,
                "seed": seeds[k],
                "correct": bool(c),
                "reason": "" if c else f"expected thing {i}",
            }
            for k, c in enumerate(correct)
        ]
        samples.append(
            {
                "index": i,
                "tag": tag,
                "prompt": f"prompt {i}",
                "rewritten_prompt": f"{policy} {i}",
                "reasoning": "",
                "format_ok": True,
                "fallback": False,
                "score": float(sum(correct)) / len(correct),
                "images": images,
            }
        )
    folder.mkdir(parents=True, exist_ok=True)
    summary = {
        "task": "geneval",
        "versions": {"geneval": "1.0"},
        "scorer": SCORER,
        "samples": samples,
        "policy": {"name": policy},
    }
    (folder / "summary.json").write_text(json.dumps(summary))
    return folder


def test_counts_and_intervals_on_known_differences(tmp_path: Path):
    rng = np.random.default_rng(1)
    a_rows, b_rows = [], []
    # "colors": B fixes image 1 of every prompt -> every prompt +0.5, a degenerate interval.
    for _ in range(4):
        a_rows.append(("colors", [True, False]))
        b_rows.append(("colors", [True, True]))
    # "counting": 120 prompts with random paired outcomes.
    for _ in range(120):
        a_rows.append(("counting", list(rng.random(2) < 0.5)))
        b_rows.append(("counting", list(rng.random(2) < 0.6)))
    a = _summary(tmp_path / "a", a_rows)
    b = _summary(tmp_path / "b", b_rows, policy="smollm2")
    r = compare_runs(a, b, resamples=4000)

    colors = r["tags"]["colors"]
    assert (colors["a"], colors["b"], colors["diff"]) == (0.5, 1.0, 0.5)
    assert colors["ci_low"] == colors["ci_high"] == 0.5 and colors["n_prompts"] == 4
    d = np.array([np.mean(bc) - np.mean(ac) for (_, ac), (_, bc) in zip(a_rows[4:], b_rows[4:], strict=True)])
    counting = r["tags"]["counting"]
    assert counting["diff"] == pytest.approx(d.mean())
    half = 1.96 * d.std(ddof=1) / np.sqrt(len(d))  # the percentile bootstrap is close to the normal interval
    assert counting["ci_low"] == pytest.approx(d.mean() - half, abs=0.02)
    assert counting["ci_high"] == pytest.approx(d.mean() + half, abs=0.02)
    assert r["overall"]["diff"] == pytest.approx((0.5 + d.mean()) / 2)  # mean of the tag differences
    assert r["metrics"]["correct_images"]["diff"] == pytest.approx((4 * 0.5 + d.sum()) / 124)
    assert r["overall"]["ci_low"] < r["overall"]["diff"] < r["overall"]["ci_high"]
    any_d = [float(any(bc)) - float(any(ac)) for (_, ac), (_, bc) in zip(a_rows, b_rows, strict=True)]
    assert r["metrics"]["correct_prompts"]["diff"] == pytest.approx(np.mean(any_d))
    assert r["metrics"]["correct_prompts"]["a"] == pytest.approx(np.mean([any(ac) for _, ac in a_rows]))

    won = 4 + int((d > 0).sum())
    assert r["prompts"] == {"won": won, "lost": int((d < 0).sum()), "tied": 124 - won - int((d < 0).sum())}
    assert len(r["worse"]) == r["prompts"]["lost"] and len(r["better"]) == won
    assert all(c["b"] < c["a"] for c in r["worse"])
    assert [c["b"] - c["a"] for c in r["worse"]] == sorted(c["b"] - c["a"] for c in r["worse"])
    pairs = sum((np.array(bc) & ~np.array(ac)).sum() for (_, ac), (_, bc) in zip(a_rows, b_rows, strict=True))
    assert r["images"]["won"] == pairs
    assert sum(r["images"].values()) == 124 * 2
    assert r["seeds_match"] and r["policy_b"] == "smollm2"
    assert compare_runs(a, b, resamples=4000) == r  # a fixed bootstrap seed: reproducible


def test_mismatched_runs_are_refused(tmp_path: Path):
    a = _summary(tmp_path / "a", [("colors", [True, False])])
    b = _summary(tmp_path / "b", [("colors", [True, True])], seeds=(1, 2))
    with pytest.raises(RepromptError, match="seeds"):
        compare_runs(a, b)
    assert "warnings" in compare_runs(a, b, allow_seed_mismatch=True)
    c = _summary(tmp_path / "c", [("colors", [True])])
    with pytest.raises(RepromptError, match="images"):
        compare_runs(a, c)
    d = _summary(tmp_path / "d", [("counting", [True, True])])
    with pytest.raises(RepromptError, match="differs"):
        compare_runs(a, d)
    with pytest.raises(RepromptError, match="score the run first"):
        compare_runs(a, tmp_path / "nothing")


def _break_image(run: Path, index: int, k: int) -> None:
    """Erase everything drawn in image k of a prompt: the oracle then finds nothing there."""
    path = run / f"{index:05d}" / "scenes" / f"{k:04d}.json"
    scene = json.loads(path.read_text())
    scene["objects"] = []
    path.write_text(json.dumps(scene))


def test_two_real_runs_with_planted_differences(shared_benchmarks: Path, tmp_path: Path, capsys):
    from reprompt.cli.main import main

    metadata = shared_benchmarks / "geneval" / "evaluation_metadata.jsonl"
    a, b = tmp_path / "none", tmp_path / "other"
    generate_run(GenerateConfig(metadata=str(metadata), out=str(a), per_tag=3, images=2, progress=False))
    base = score_run(a, ScoreConfig(progress=False))
    perfect = [s for s in base["samples"] if s["score"] == 1.0]
    worse, better = perfect[0], next(s for s in perfect if s["tag"] != perfect[0]["tag"])
    shutil.copytree(a, b, ignore=shutil.ignore_patterns("results.jsonl", "summary.json", "scoring.json"))
    _break_image(b, worse["index"], 1)  # B loses image 1 of one prompt
    _break_image(a, better["index"], 0)  # A loses image 0 of another
    score_run(a, ScoreConfig(progress=False, force=True))
    score_run(b, ScoreConfig(progress=False))

    r = compare_runs(a, b)
    assert [c["index"] for c in r["worse"]] == [worse["index"]]
    assert [c["index"] for c in r["better"]] == [better["index"]]
    assert r["prompts"] == {"won": 1, "lost": 1, "tied": 16}
    assert (r["images"]["won"], r["images"]["lost"]) == (1, 1)
    assert r["tags"][worse["tag"]]["diff"] == pytest.approx(-0.5 / 3)
    assert r["tags"][better["tag"]]["diff"] == pytest.approx(0.5 / 3)
    assert r["overall"]["diff"] == pytest.approx(0.0, abs=1e-12)
    assert r["worse"][0]["reasons_b"] and "expected" in r["worse"][0]["reasons_b"][0]
    untouched = set(r["tags"]) - {worse["tag"], better["tag"]}
    assert all(r["tags"][t]["diff"] == 0 == r["tags"][t]["ci_low"] for t in untouched)

    assert main(["eval", "compare", str(a), str(b), "--resamples", "1000"]) == 0
    out = capsys.readouterr().out
    assert "prompts that got worse (1 of 1)" in out and f"{worse['index']:05d}" in out
    saved = json.loads(default_output(a, b).read_text())
    assert saved["prompts"] == r["prompts"]
    assert "B better on 1, worse on 1, tied on 16" in format_comparison(r)

    score_run(b, ScoreConfig(progress=False, threshold=0.5, force=True))
    with pytest.raises(RepromptError, match="scored differently"):
        compare_runs(a, b)


def _planner(body: dict) -> str:
    """An endpoint 'policy' that turns a GenEval relation into absolute places the sketch follows."""
    import re

    prompt = body["messages"][-1]["content"]
    m = re.fullmatch(r"a photo of (an? [a-z ]+?) (left of|right of|above|below) (an? [a-z ]+)", prompt)
    if not m:
        return f"<reason>nothing to plan</reason><prompt>{prompt}</prompt>"
    a, rel, b = m.groups()
    side = {
        "left of": ("on the left side", "on the right side"),
        "right of": ("on the right side", "on the left side"),
        "above": ("at the top", "at the bottom"),
        "below": ("at the bottom", "at the top"),
    }[rel]
    return f"<reason>{a} goes {side[0]}.</reason><prompt>A photo. {a} {side[0]} of the image. {b} {side[1]} of the image.</prompt>"


def test_an_endpoint_rewriter_that_plans_positions_helps_position(
    shared_benchmarks: Path, tmp_path: Path, capsys
):
    """End to end through the CLI: --policy none vs --policy openai (a local OpenAI-compatible server)."""
    from reprompt.cli.main import main
    from tests.fake_openai import FakeOpenAI

    metadata = shared_benchmarks / "geneval" / "evaluation_metadata.jsonl"
    a, b = tmp_path / "none", tmp_path / "planner"
    common = ["eval", "geneval", "--metadata", str(metadata), "--per-tag", "4", "--no-progress"]
    assert main([*common, "--out", str(a), "--policy", "none"]) == 0
    with FakeOpenAI(_planner) as srv:
        assert (
            main(
                [
                    *common,
                    "--out",
                    str(b),
                    "--policy",
                    "openai",
                    "--api-base",
                    srv.base_url,
                    "--api-model",
                    "planner",
                ]
            )
            == 0
        )
    run = json.loads((b / "run.json").read_text())
    assert (
        run["policy"]["resolved"] == "openai:planner"
        and run["policy"]["settings"]["base_url"] == srv.base_url
    )
    capsys.readouterr()
    r = compare_runs(a, b, resamples=2000)
    position = r["tags"]["position"]
    assert position["b"] >= 0.75 and position["diff"] > 0.5 and position["ci_low"] > 0
    assert all(r["tags"][t]["diff"] == 0 for t in r["tags"] if t != "position")  # same prompt, same seed
    assert r["prompts"]["lost"] == 0 and r["prompts"]["won"] >= 3
