"""The CLI: fast help, one-line errors with non-zero exits, and the rewrite/generate paths."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from reprompt.cli.main import main


def run_cli(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_help_does_not_import_heavy_libraries():
    code = (
        "import sys; from reprompt.cli.main import make_parser; make_parser().format_help(); "
        "heavy = [m for m in ('torch', 'transformers', 'diffusers', 'trl') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["rewrite", "   ", "--policy", "none"], "empty prompt"),
        (["rewrite", "x" * 5000, "--policy", "none"], "limit is 2000"),
        (["rewrite", "--policy", "none"], "give a prompt"),
        (["rewrite", "--file", "/nonexistent/prompts.txt", "--policy", "none"], "does not exist"),
        (["rewrite", "a cat", "--policy", "smolm2"], "Did you mean 'smollm2'"),
        (["rewrite", "a cat", "--policy", "/nonexistent/model"], "no model folder"),
        (["generate", "a cat", "--backbone", "flux-devv", "--policy", "none"], "Did you mean 'flux-dev'"),
        (
            [
                "generate",
                "a cat",
                "--backbone",
                "flux-dev",
                "--model",
                "/nonexistent/flux",
                "--policy",
                "none",
            ],
            "could not load",
        ),
        (["generate", "a cat", "--images", "0", "--policy", "none"], "--images"),
        (["generate", "", "--policy", "none"], "empty prompt"),
        (["rewrite", "a cat", "--policy", "none", "--candidates", "2"], "needs sampling"),
    ],
)
def test_user_errors_are_one_line_and_nonzero(capsys, argv, message):
    code, out, err = run_cli(capsys, *argv)
    assert code == 2
    assert err.startswith("reprompt: error:") and message in err
    assert "Traceback" not in err and err.count("\n") == 1


def test_models_lists_registries(capsys):
    code, out, _ = run_cli(capsys, "models")
    assert code == 0 and "flux-dev" in out and "black-forest-labs/FLUX.1-dev" in out and "smollm2" in out


def test_rewrite_json_with_tiny_policy(capsys, tiny_model, tmp_path):
    f = tmp_path / "prompts.txt"
    f.write_text("a cat\n\n# a comment\ntwo dogs\n")
    code, out, _ = run_cli(
        capsys,
        "rewrite",
        "--file",
        str(f),
        "--json",
        "--policy",
        str(tiny_model("tiny-qwen2")),
        "--max-new-tokens",
        "6",
    )
    assert code == 0
    recs = [json.loads(line) for line in out.splitlines()]
    assert [r["original"] for r in recs] == ["a cat", "two dogs"]
    assert all(r["prompt"] and r["prompt_tokens"] and r["token_limit"] == 77 for r in recs)


def test_generate_writes_images_comparison_and_record(capsys, tiny_model, tmp_path):
    out_dir = tmp_path / "out"
    code, out, _ = run_cli(
        capsys,
        "generate",
        "a photo of a red cat",
        "--policy",
        str(tiny_model("tiny-qwen2")),
        "--backbone",
        "sketch",
        "--height",
        "64",
        "--images",
        "2",
        "--seed",
        "3",
        "--max-new-tokens",
        "6",
        "--out",
        str(out_dir),
    )
    assert code == 0 and "original : a photo of a red cat" in out
    rec = json.loads((out_dir / "record.json").read_text())
    assert rec["seeds"] == [3, 4] and rec["original"] == "a photo of a red cat"
    assert rec["files"]["comparison"] == "comparison.png"
    for name in rec["files"]["original"] + rec["files"]["rewritten"] + ["comparison.png"]:
        assert (out_dir / name).exists()


def test_generate_no_rewrite(capsys, tmp_path):
    code, out, _ = run_cli(
        capsys, "generate", "two dogs", "--no-rewrite", "--height", "64", "--out", str(tmp_path / "o")
    )
    rec = json.loads((tmp_path / "o" / "record.json").read_text())
    assert code == 0 and rec["rewritten"] == "two dogs" and "comparison" not in rec["files"]
    assert (tmp_path / "o" / "image_0.png").exists()


def test_generate_on_a_tiny_diffusers_backbone(capsys, tiny_model, tmp_path):
    code, _, _ = run_cli(
        capsys,
        "generate",
        "a cat",
        "--policy",
        "none",
        "--backbone",
        "flux-dev",
        "--model",
        str(tiny_model("tiny-flux")),
        "--height",
        "32",
        "--width",
        "32",
        "--steps",
        "2",
        "--out",
        str(tmp_path / "f"),
    )
    assert code == 0 and (tmp_path / "f" / "image_0.png").exists()
