"""`reprompt score`: inspect a reward by hand (each component and the total), and its user errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from reprompt.cli.main import main

REPO = Path(__file__).resolve().parents[1]
META = json.dumps(
    {"tag": "counting", "include": [{"class": "cat", "count": 3}], "exclude": [{"class": "cat", "count": 4}]}
)
GOOD = "<reason>Plan: the objects, counts and places.</reason>\n<prompt>A photo of exactly three orange cats side by side in the center of the image.</prompt>"


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_score_prints_each_component_and_the_total(capsys, tmp_path):
    f = tmp_path / "c.txt"
    f.write_text(GOOD)
    code, out, err = run(
        capsys,
        "score",
        "--prompt",
        "a photo of three cats",
        "--completion-file",
        str(f),
        "--completion",
        "junk",
        "--backbone",
        "sketch",
        "--width",
        "64",
        "--height",
        "64",
        "--rewards",
        "format,length,geneval",
        "--metadata",
        META,
        "--baseline",
        "--images-per-completion",
        "2",
        "--save-images",
        str(tmp_path / "img"),
    )
    assert code == 0, err
    assert "rendered prompt (well-formed): A photo of exactly three orange cats" in out
    assert "fallback rule: group_worst" in out  # the training reward, and it says so
    assert "no prompt block: not rendered; scores assigned by the fallback rule" in out
    for name in ("format", "length", "geneval", "baseline geneval", "total (weighted raw): +3.0000"):
        assert name in out
    assert "render calls: 2 (+2 baseline, 0 from the cache)" in out  # the fallback renders nothing
    assert len(list((tmp_path / "img").glob("*.png"))) == 2


def test_score_json_weights_options_and_config(capsys):
    code, out, _ = run(
        capsys,
        "score",
        "--prompt",
        "a photo of three cats",
        "--completion",
        GOOD,
        "--rewards",
        "format,geneval",
        "--weights",
        "geneval=2,format=0.5",
        "--option",
        "geneval.mode=strict",
        "--metadata",
        META,
        "--json",
        "--width",
        "64",
    )
    assert code == 0
    data = json.loads(out)
    assert data["weights"] == {"format": 0.5, "geneval": 2.0}
    assert data["components"]["geneval"][0] in (0.0, 1.0)
    assert data["raw_total"][0] == pytest.approx(0.5 + 2.0 * data["components"]["geneval"][0])
    code, out, _ = run(
        capsys,
        "score",
        "--config",
        str(REPO / "configs/rewards/cpu.yaml"),
        "--prompt",
        "a photo of three cats",
        "--completion",
        GOOD,
        "--completion",
        "x",
        "--metadata",
        META,
    )
    assert (
        code == 0
        and "normalization group" in out
        and "render calls: 2 (+2 baseline, 0 from the cache)" in out
    )


def test_score_rewards_narrows_a_config_with_floors(capsys):
    """``--rewards`` kept weights and options of the named components only, not ``std_floor``: every shipped
    config with a floor (paper.yaml, cpu.yaml, ...) failed as soon as a floored component was left out."""
    for config, components in (("paper.yaml", "format,length"), ("cpu.yaml", "format,length")):
        code, out, err = run(
            capsys,
            "score",
            "--config",
            str(REPO / "configs" / "rewards" / config),
            "--rewards",
            components,
            "--backbone",
            "sketch",
            "--prompt",
            "a photo of three cats",
            "--completion",
            GOOD,
            "--json",
        )
        assert code == 0, err
        assert sorted(json.loads(out)["components"]) == ["format", "length"]


def test_score_list(capsys):
    code, out, _ = run(capsys, "score", "--list")
    assert code == 0 and "vlm_judge" in out and "imagereward" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--completion", "x"], "give the original prompt"),
        (["--prompt", "a cat"], "give a completion"),
        (["--prompt", "a cat", "--completion-file", "/nonexistent/c.txt"], "does not exist"),
        (["--prompt", "a cat", "--completion", "x", "--metadata", "{oops"], "not valid JSON"),
        (["--prompt", "a cat", "--completion", "x", "--metadata", "@/nonexistent.json"], "does not exist"),
        (
            [
                "--prompt",
                "a cat",
                "--completion",
                "x",
                "--rewards",
                "geneval",
                "--metadata",
                '{"include": [{"class": "cat", "count": 1000000000}]}',
            ],
            "include[0].count must be at most 16",
        ),
        (["--prompt", "a cat", "--completion", "x", "--rewards", "formt"], "Did you mean 'format'"),
        (["--prompt", "a cat", "--completion", "x", "--option", "geneval"], "component.key=value"),
        (
            ["--prompt", "a cat", "--completion", "x", "--rewards", "geneval", "--option", "geneval.mdoe=x"],
            "Did you mean 'mode'",
        ),
        (["--prompt", "a cat", "--completion", "x", "--weights", "format"], "name=number"),
        (["--prompt", "a cat", "--completion", "x", "--config", "/nonexistent.yaml"], "not found"),
        (["--prompt", "a cat", "--completion", "x", "--backbone", "flux-devv"], "Did you mean 'flux-dev'"),
    ],
)
def test_score_user_errors(capsys, argv, message):
    code, _, err = run(capsys, "score", *argv)
    assert code == 2 and err.startswith("reprompt: error:") and message in err


def test_commands_import_nothing_heavy():
    code = (
        "import sys; from reprompt.cli.main import make_parser; make_parser().parse_args(['score', '--list']); "
        "make_parser().parse_args(['serve-rewards', '--config', 'x.yaml']); "
        "heavy = [m for m in ('torch', 'transformers', 'diffusers', 'trl', 'fastapi') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)
