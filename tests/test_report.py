"""HTML report: renders for one run and for a run against a baseline, self-contained and filterable."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image

from reprompt.errors import RepromptError
from reprompt.eval.geneval.evaluate import ScoreConfig, score_run
from reprompt.eval.geneval.generate import GenerateConfig, generate_run
from reprompt.eval.report import build_report, thumbnail_uri


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def _parse(path: Path) -> _Collect:
    parser = _Collect()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


@pytest.fixture(scope="module")
def runs(shared_benchmarks: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, int]:
    """A baseline and a second run of 6 prompts x 2 images; the second loses every object of one image."""
    root = tmp_path_factory.mktemp("report")
    metadata = shared_benchmarks / "geneval" / "evaluation_metadata.jsonl"
    a, b = root / "none", root / "other"
    generate_run(GenerateConfig(metadata=str(metadata), out=str(a), per_tag=1, images=2, progress=False))
    base = score_run(a, ScoreConfig(progress=False))
    shutil.copytree(a, b, ignore=shutil.ignore_patterns("results.jsonl", "summary.json", "scoring.json"))
    victim = next(s["index"] for s in base["samples"] if s["images"][0]["correct"])
    scene = b / f"{victim:05d}" / "scenes" / "0000.json"
    scene.write_text(json.dumps({**json.loads(scene.read_text()), "objects": []}))
    # Pretend run B rewrote that prompt, so the report has a rewrite and reasoning to show.
    meta_path = b / f"{victim:05d}" / "metadata.jsonl"
    meta = json.loads(meta_path.read_text())
    meta.update(rewritten_prompt="exactly one <thing> & more", reasoning="plan: put it in the middle")
    meta_path.write_text(json.dumps(meta))
    score_run(b, ScoreConfig(progress=False))
    return a, b, victim


def test_thumbnail_is_a_small_embedded_image(tmp_path: Path):
    path = tmp_path / "x.png"
    Image.new("RGB", (300, 200), (200, 10, 10)).save(path)
    uri = thumbnail_uri(path, 64)
    kind, data = re.fullmatch(r"data:image/(png|jpeg);base64,(.+)", uri).groups()
    image = Image.open(io.BytesIO(base64.b64decode(data)))
    assert max(image.size) == 64 and image.size == (64, 43)


def test_single_run_report(runs):
    a, _, _ = runs
    path = build_report(a, thumb=64)
    assert path == a / "report.html"
    doc = _parse(path)
    cards = [t for t in doc.tags if t[0] == "div" and "card" in t[1].get("class", "").split()]
    assert len(cards) == 6
    images = [t[1]["src"] for t in doc.tags if t[0] == "img"]
    assert len(images) == 6 * 2 + 1  # thumbnails + the bar chart
    assert all(src.startswith("data:image/") for src in images)  # self-contained: nothing to fetch
    assert not any(t[1].get("href", "").startswith("http") for t in doc.tags)
    text = "".join(doc.text)
    assert "overall" in text and "failures" in text and "regressions" not in text


def test_report_against_a_baseline_marks_the_regression(runs, tmp_path: Path):
    from reprompt.cli.main import main

    a, b, victim = runs
    out = tmp_path / "cmp.html"
    assert main(["report", str(b), "--compare", str(a), "--out", str(out), "--thumb", "48"]) == 0
    doc = _parse(out)
    cards = {t[1]["id"]: t[1] for t in doc.tags if t[0] == "div" and "card" in t[1].get("class", "").split()}
    assert len(cards) == 6
    assert cards[f"p{victim:05d}"]["class"].split() == ["card", "regressed"]
    assert cards[f"p{victim:05d}"]["data-fail"] == "1"
    assert sum("regressed" in c["class"] for c in cards.values()) == 1
    # Both runs' images side by side: 6 prompts x 2 images x 2 runs, plus the chart.
    assert sum(t[0] == "img" for t in doc.tags) == 6 * 2 * 2 + 1
    html_text = out.read_text()
    assert "exactly one &lt;thing&gt; &amp; more" in html_text  # the rewrite, escaped
    assert "plan: put it in the middle" in html_text and "expected" in html_text  # reasoning, reasons
    assert "regressions (1)" in html_text and "setMode" in html_text
    assert "paired on the 6 prompts both runs scored" in html_text


def test_report_needs_a_scored_run(tmp_path: Path):
    with pytest.raises(RepromptError, match="score the run first"):
        build_report(tmp_path)
