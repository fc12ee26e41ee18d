"""Run folders under crashes and concurrent use: broken PNGs noticed on resume and on rescoring, one
process per run folder (a lock a kill -9 releases), and GenEval metadata checked where it is read."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reprompt.cli.main import main
from reprompt.errors import RepromptError
from reprompt.eval.geneval.evaluate import ScoreConfig, score_run
from reprompt.eval.geneval.generate import GenerateConfig, generate_run
from reprompt.geneval.metadata import read_metadata_file
from reprompt.utils.lock import folder_lock

REPO = Path(__file__).resolve().parents[1]
# fmt: off
META = [
    {"tag": "single_object", "include": [{"class": "cat", "count": 1}], "prompt": "a photo of a cat"},
    {"tag": "counting", "include": [{"class": "dog", "count": 2}], "exclude": [{"class": "dog", "count": 3}],
     "prompt": "a photo of two dogs"},
    {"tag": "colors", "include": [{"class": "car", "count": 1, "color": "red"}], "prompt": "a photo of a red car"},
]
# fmt: on


@pytest.fixture
def metadata(tmp_path: Path) -> Path:
    path = tmp_path / "meta.jsonl"
    path.write_text("".join(json.dumps(m) + "\n" for m in META))
    return path


def _config(metadata: Path, out: Path, **kw) -> GenerateConfig:
    return GenerateConfig(
        metadata=str(metadata),
        out=str(out),
        images=2,
        progress=False,
        backbone_kwargs={"width": 32, "height": 32},
        **kw,
    )


def _images(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.glob("[0-9]*/samples/*.png"))}


def test_resume_regenerates_empty_and_truncated_pngs(metadata, tmp_path, caplog):
    out = tmp_path / "run"
    generate_run(_config(metadata, out))
    whole = _images(out)
    (out / "00001" / "samples" / "0001.png").write_bytes(b"")  # zero bytes (a full disk, a kill mid-copy)
    truncated = out / "00002" / "samples" / "0000.png"
    truncated.write_bytes(whole["00002/samples/0000.png"][:-30])
    stats = generate_run(_config(metadata, out))  # before: both counted as done, nothing noticed
    assert stats.done_now == 2 and stats.already_done == 1
    assert _images(out) == whole  # the same seeds draw the same images again
    assert "00001/samples/0001.png is empty (0 bytes): generating prompt 1 again" in caplog.text
    assert "00002/samples/0000.png is not a complete PNG" in caplog.text


def test_rescoring_a_broken_png_names_the_file_and_the_fix(metadata, tmp_path, capsys):
    out = tmp_path / "run"
    generate_run(_config(metadata, out))
    score_run(out, ScoreConfig(progress=False))
    broken = out / "00001" / "samples" / "0000.png"
    broken.write_bytes(broken.read_bytes()[:100])
    with pytest.raises(
        RepromptError,
        match=r"00001/samples/0000.png is not a complete PNG .*rerun the `reprompt eval geneval`",
    ):
        score_run(out, ScoreConfig(progress=False, force=True))  # before: an internal error from PIL
    assert main(["eval", "geneval-score", str(out), "--force", "--no-progress"]) == 2
    assert "0000.png is not a complete PNG" in capsys.readouterr().err


def test_a_second_run_on_the_same_folder_is_refused(metadata, tmp_path, capsys):
    out = tmp_path / "run"
    with folder_lock(out, "geneval-shard-0-of-1"):  # as an identical command running right now would
        with pytest.raises(
            RepromptError, match=r"run is in use: another process \(pid \d+ .*\) is writing GenEval shard 0/1"
        ):
            generate_run(_config(metadata, out))
        generate_run(_config(metadata, out, shard="1/2"))  # another shard may run at the same time
        args = [
            "eval",
            "geneval",
            "--metadata",
            str(metadata),
            "--out",
            str(out),
            "--no-progress",
            "--policy",
            "none",
        ]
        assert main(args) == 2
        assert "is in use" in capsys.readouterr().err
    with folder_lock(out, "geneval-score"), pytest.raises(RepromptError, match="is writing GenEval scores"):
        score_run(out, ScoreConfig(progress=False))
    generate_run(_config(metadata, out))  # free again once the holder is gone


def test_a_killed_holder_leaves_no_stale_lock(tmp_path):
    folder = tmp_path / "run"
    code = (
        "import sys, time; sys.path.insert(0, sys.argv[1]); from reprompt.utils.lock import folder_lock\n"
        "with folder_lock(sys.argv[2]):\n    print('locked', flush=True); time.sleep(60)"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(REPO), str(folder)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "locked"
        with pytest.raises(RepromptError, match="is in use"), folder_lock(folder):
            pass
    finally:
        proc.kill()  # SIGKILL: no cleanup code runs
        proc.wait()
    deadline = time.monotonic() + 10
    while True:  # the kernel releases the flock when the process is gone
        try:
            with folder_lock(folder):
                break
        except RepromptError:
            assert time.monotonic() < deadline
            time.sleep(0.05)


def test_compbench_generate_is_locked_too(tmp_path):
    from reprompt.eval.compbench.generate import CompBenchRunConfig, run_generate

    data = tmp_path / "data"
    data.mkdir()
    (data / "color_val.txt").write_text("a red apple\n")
    cfg = CompBenchRunConfig(
        data_dir=str(data), out=str(tmp_path / "cb"), categories="color", images=1, progress=False
    )
    with folder_lock(cfg.out, "compbench-shard-0-of-1"), pytest.raises(RepromptError, match="is in use"):
        run_generate(cfg)
    assert run_generate(cfg)["color"]["rendered"] == 1


def test_metadata_is_checked_where_it_is_read(tmp_path):
    bad = tmp_path / "bad.jsonl"
    rows = [META[0], {**META[1], "include": [{"class": "dog", "count": -5}]}]
    bad.write_text("".join(json.dumps(m) + "\n" for m in rows))
    with pytest.raises(
        RepromptError, match=r"bad.jsonl:2: include\[0\].count must be a whole number >= 1, got -5"
    ):
        read_metadata_file(bad)
