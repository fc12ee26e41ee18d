"""GenEval generation + scoring pipeline: layout read back exactly, resume after a stop and after a kill,
shards, scorer resume, the Mask2Former + CLIP path on tiny models, and the CLI."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from reprompt.backbones import load_backbone
from reprompt.errors import RepromptError
from reprompt.eval.geneval.evaluate import ScoreConfig, read_results, score_run
from reprompt.eval.geneval.generate import (
    EXTRA_KEYS,
    MARKER,
    GenerateConfig,
    generate_run,
    original_metadata,
    prompt_indices,
    select_indices,
    shard_indices,
)
from reprompt.eval.runner import parse_shard
from reprompt.geneval.metadata import read_metadata_file
from reprompt.geneval.scene import rle_decode, rle_encode, scene_from_json
from reprompt.pipeline import image_seeds

REPO = Path(__file__).resolve().parents[1]
# Timing fields legitimately differ between two runs of the same thing.
TIMING = {"rewrite_seconds", "render_seconds"}


@pytest.fixture(scope="module")
def metadata(shared_benchmarks: Path) -> Path:
    return shared_benchmarks / "geneval" / "evaluation_metadata.jsonl"


def _config(metadata: Path, out: Path, **kw) -> GenerateConfig:
    return GenerateConfig(metadata=str(metadata), out=str(out), progress=False, **{"per_tag": 2, **kw})


def _tree(out: Path) -> dict[str, bytes]:
    """Every file of the prompt folders, with timing fields removed from metadata.jsonl."""
    files = {}
    for p in sorted(out.glob("[0-9]*/**/*")):
        if p.is_file() and p.name != MARKER:
            data = p.read_bytes()
            if p.name == "metadata.jsonl":
                meta = {k: v for k, v in json.loads(data).items() if k not in TIMING}
                data = json.dumps(meta).encode()
            files[str(p.relative_to(out))] = data
    return files


# ------------------------------------------------------------------------------------------ task + registry


def test_task_yaml_matches_the_official_defaults_everywhere():
    from dataclasses import asdict

    from reprompt.cli.main import make_parser
    from reprompt.eval.registry import get_metric, load_task
    from reprompt.geneval.rules import GenEvalOptions

    task = load_task("geneval")
    assert task.tags == ("single_object", "two_object", "counting", "colors", "position", "color_attr")
    assert task.protocol["options"] == asdict(GenEvalOptions())
    assert asdict(ScoreConfig().options()) == asdict(GenEvalOptions())
    assert (task.protocol["images_per_prompt"], task.protocol["seed"]) == (4, 42)
    args = make_parser().parse_args(["eval", "geneval", "--metadata", "m", "--out", "o"])
    assert (args.images, args.seed, args.threshold, args.counting_threshold, args.max_objects) == (
        4,
        42,
        0.3,
        0.9,
        16,
    )
    assert (args.max_overlap, args.position_threshold) == (1.0, 0.1)
    overall = get_metric("geneval/overall")
    assert overall.higher_is_better and overall.group_by == "tag"
    items = [{"value": v, "tag": "a"} for v in (1, 0)] + [{"value": 1, "tag": "b"}] * 4
    assert overall.score(items) == 0.75  # mean of tag means, not of images
    assert get_metric("geneval/correct").compute(items) == {"a": 0.5, "b": 1.0}
    with pytest.raises(RepromptError, match="Did you mean 'geneval'"):
        load_task("genevel")


def test_every_task_file_has_the_one_schema_and_its_metrics_compute_the_report(tmp_path):
    """One task.yaml schema (lm-eval's metric_list + metadata.version); another spelling is refused. The numbers
    a benchmark reports are its registered metrics' results."""
    import yaml

    from reprompt.errors import ConfigError
    from reprompt.eval.geneval.evaluate import summarize
    from reprompt.eval.registry import TASK_KEYS, load_task, task_names

    assert set(task_names()) == {"geneval", "geneval2", "t2i-compbench"}
    for name in task_names():
        task = load_task(name)
        raw = yaml.safe_load(task.path.read_text())
        assert set(raw) <= set(TASK_KEYS) and raw["metric_list"] and raw["metadata"]["version"]
        assert task.layout and task.protocol["images_per_prompt"] and task.protocol["seed"] == 42
    compbench = load_task("t2i-compbench")
    assert compbench.metric("blip_vqa").info()["model"] == "Salesforce/blip-vqa-capfilt-large"
    assert set(compbench.dataset["categories"]) == set(compbench.tags)
    old = tmp_path / "old.yaml"
    old.write_text(yaml.safe_dump({"task": "x", "version": 1, "metrics": {"m": {"aggregation": "mean"}}}))
    with pytest.raises(ConfigError, match="unknown key.*'metrics'"):
        load_task(str(old))
    # GenEval's summary is the registry's metrics over the per-image records
    records = [
        {"tag": "counting", "correct": c, "metadata": json.dumps({"prompt": p})}
        for p, c in (("a", True), ("a", False), ("b", False), ("b", False))
    ] + [{"tag": "colors", "correct": True, "metadata": '{"prompt": "c"}'}]
    s = summarize(records)
    assert s["tags"] == {"counting": 0.25, "colors": 1.0} and s["overall"] == 0.625
    assert (s["correct_images"], s["correct_prompts"], s["n_prompts"]) == (0.4, 2 / 3, 3)


# ----------------------------------------------------------------------------------------------- layout


def test_rle_round_trip():
    rng = np.random.default_rng(0)
    masks = [rng.random((7, 5)) > 0.5, np.ones((4, 3), bool), np.zeros((3, 4), bool), np.eye(6, dtype=bool)]
    for mask in masks:
        rle = rle_encode(mask)
        assert sum(rle["counts"]) == mask.size and rle["size"] == list(mask.shape)
        np.testing.assert_array_equal(rle_decode(rle), mask)
    assert rle_encode(np.ones((2, 2), bool))["counts"] == [0, 4]  # COCO: the first run is background


def test_selection_and_shards():
    metas = [{"tag": t, "prompt": f"p{i}", "include": []} for i, t in enumerate("aabbbc")]
    assert select_indices(metas, per_tag=1) == [0, 2, 5]
    assert select_indices(metas, per_tag=2, limit=3) == [0, 1, 2]
    shards = [shard_indices(list(range(10)), (i, 3)) for i in range(3)]
    assert sorted(sum(shards, [])) == list(range(10))
    assert parse_shard("1/4") == (1, 4) and parse_shard(None) == (0, 1)
    for bad in ("4/4", "1-4", "-1/2"):
        with pytest.raises(RepromptError):
            parse_shard(bad)


def test_layout_is_read_back_exactly(metadata: Path, tmp_path: Path):
    out = tmp_path / "run"
    stats = generate_run(_config(metadata, out, images=2, seed=7))
    metas = read_metadata_file(metadata)
    selected = select_indices(metas, per_tag=2)
    assert stats.done_now == len(selected) == 12 and stats.remaining == 0
    assert prompt_indices(out) == selected
    backbone = load_backbone("sketch")
    for index in selected[::3]:
        folder = out / f"{index:05d}"
        meta = json.loads((folder / "metadata.jsonl").read_text())
        # The official line, unchanged, plus exactly our extra keys.
        assert original_metadata(meta) == metas[index]
        assert set(meta) == set(metas[index]) | set(EXTRA_KEYS)
        assert meta["index"] == index and meta["seeds"] == image_seeds(7, 2) == [7, 8]
        assert (
            meta["rewritten_prompt"] == metas[index]["prompt"] and meta["format_ok"] and not meta["fallback"]
        )
        assert sorted(p.name for p in (folder / "samples").iterdir()) == ["0000.png", "0001.png"]
        # Images and scenes are exactly what the backbone renders for (prompt, seed k).
        render = backbone.render([meta["rewritten_prompt"]] * 2, meta["seeds"])
        for k in range(2):
            image = Image.open(folder / "samples" / f"{k:04d}.png")
            np.testing.assert_array_equal(np.asarray(image.convert("RGB")), np.asarray(render.images[k]))
            scene = scene_from_json(json.loads((folder / "scenes" / f"{k:04d}.json").read_text()))
            assert len(scene) == len(render.scenes[k])
            for got, want in zip(scene, render.scenes[k], strict=True):
                assert (got.cls, got.color, got.score) == (want.cls, want.color, want.score)
                assert got.box == pytest.approx(want.box)
                np.testing.assert_array_equal(got.mask, want.mask)
    run = json.loads((out / "run.json").read_text())
    assert run["seeds"] == {"base_seed": 7, "images_per_prompt": 2, "rule": run["seeds"]["rule"]}
    assert run["policy"]["name"] == "none" and run["backbone"]["cls"] == "SketchBackbone"
    assert run["selection"]["n_selected"] == 12 and run["n_prompts"] == len(metas)
    assert len(run["metadata_sha256"]) == 64 and "git_hash" in run

    summary = score_run(out, ScoreConfig(progress=False))
    assert summary["scorer"]["detector"] == "oracle" and summary["complete"]
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert len(records) == 24
    assert set(records[0]) == {"filename", "tag", "prompt", "correct", "reason", "metadata", "details"}
    assert json.loads(records[0]["metadata"]) == metas[selected[0]]  # the official grouping key
    assert summary["n_samples"]["images"] == 24 and len(summary["samples"]) == 12
    tags = [t for t in summary["results"] if t != "overall"]
    assert summary["results"]["overall"] == pytest.approx(np.mean([summary["results"][t] for t in tags]))


def test_scenes_without_masks_still_score_with_the_oracle(metadata: Path, tmp_path: Path):
    a, b = tmp_path / "rle", tmp_path / "boxes"
    generate_run(_config(metadata, a, per_tag=1))
    generate_run(_config(metadata, b, per_tag=1, scenes="boxes"))
    scene = json.loads((b / "00000" / "scenes" / "0000.json").read_text())
    assert all(obj["mask"] is None for obj in scene["objects"])
    sa, sb = score_run(a, ScoreConfig(progress=False)), score_run(b, ScoreConfig(progress=False))
    assert sa["results"] == sb["results"]


def test_a_different_run_in_the_same_folder_is_refused(metadata: Path, tmp_path: Path):
    out = tmp_path / "run"
    generate_run(_config(metadata, out, per_tag=1))
    with pytest.raises(RepromptError, match="different run.*seeds"):
        generate_run(_config(metadata, out, per_tag=2, seed=1))
    (tmp_path / "foreign" / "00000").mkdir(parents=True)
    with pytest.raises(RepromptError, match="no run.json"):
        generate_run(_config(metadata, tmp_path / "foreign", per_tag=1))


# ----------------------------------------------------------------------------------------------- resume


def test_resume_after_stop_redoes_nothing_and_loses_nothing(metadata: Path, tmp_path: Path):
    full, out = tmp_path / "full", tmp_path / "resumed"
    generate_run(_config(metadata, full))
    first = generate_run(_config(metadata, out, stop_after=5))
    assert (first.done_now, first.remaining) == (5, 7)
    done_before = {i: (out / f"{i:05d}" / MARKER).stat().st_mtime_ns for i in prompt_indices(out)}
    # A prompt killed mid-write: one image, a temp file, no marker. It must be redone from scratch.
    broken = out / f"{select_indices(read_metadata_file(metadata), per_tag=2)[5]:05d}"
    (broken / "samples").mkdir(parents=True)
    Image.new("RGB", (4, 4)).save(broken / "samples" / "0000.png")
    (broken / "samples" / ".0001.png.abc.tmp").write_bytes(b"partial")
    (broken / "metadata.jsonl").write_text("{}")
    second = generate_run(_config(metadata, out))
    assert (second.already_done, second.done_now, second.remaining) == (5, 7, 0)
    for i, mtime in done_before.items():  # finished prompts were not touched
        assert (out / f"{i:05d}" / MARKER).stat().st_mtime_ns == mtime
    assert not list(broken.rglob("*.tmp"))
    assert _tree(out) == _tree(full)
    assert generate_run(_config(metadata, out)).done_now == 0
    logs = (out / "logs" / "shard-0-of-1.jsonl").read_text().splitlines()
    assert [json.loads(line)["done_now"] for line in logs] == [5, 7]


def test_resume_after_kill(metadata: Path, tmp_path: Path):
    """SIGKILL a real CLI run mid-way; every marked prompt is complete and the rerun finishes the rest."""
    out, full = tmp_path / "killed", tmp_path / "full"
    args = [
        "eval",
        "geneval",
        "--metadata",
        str(metadata),
        "--out",
        str(out),
        "--per-tag",
        "10",
        "--images",
        "2",
        "--no-score",
        "--no-progress",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "reprompt.cli.main", *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.time() + 60
    while time.time() < deadline and len(list(out.glob(f"*/{MARKER}"))) < 3 and proc.poll() is None:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = prompt_indices(out)
    if len(done) == 60:
        pytest.skip("the run finished before it could be killed")
    for i in done:  # everything marked done is whole
        folder = out / f"{i:05d}"
        assert len(list((folder / "samples").glob("*.png"))) == 2
        assert len(list((folder / "scenes").glob("*.json"))) == 2
        json.loads((folder / "metadata.jsonl").read_text())
    marks = {i: (out / f"{i:05d}" / MARKER).stat().st_mtime_ns for i in done}
    rerun = subprocess.run(
        [sys.executable, "-m", "reprompt.cli.main", *args], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert rerun.returncode == 0, rerun.stderr
    assert f"({len(done)} were done)" in rerun.stdout
    assert len(prompt_indices(out)) == 60
    assert all((out / f"{i:05d}" / MARKER).stat().st_mtime_ns == m for i, m in marks.items())
    generate_run(_config(metadata, full, per_tag=10, images=2))
    assert _tree(out) == _tree(full)


def test_shard_union_equals_the_full_run(metadata: Path, tmp_path: Path):
    full, sharded = tmp_path / "full", tmp_path / "sharded"
    generate_run(_config(metadata, full))
    stats = [generate_run(_config(metadata, sharded, shard=f"{i}/3")) for i in range(3)]
    assert [s.shard_total for s in stats] == [4, 4, 4]
    assert _tree(sharded) == _tree(full)
    assert sorted(p.name for p in (sharded / "logs").iterdir()) == [f"shard-{i}-of-3.jsonl" for i in range(3)]
    a, b = score_run(full, ScoreConfig(progress=False)), score_run(sharded, ScoreConfig(progress=False))
    assert a["results"] == b["results"]


def test_scoring_resumes_and_checks_its_settings(metadata: Path, tmp_path: Path):
    out = tmp_path / "run"
    generate_run(_config(metadata, out))
    first = score_run(out, ScoreConfig(progress=False))
    results = out / "results.jsonl"
    lines = results.read_text().splitlines()
    # Killed while scoring: the last prompt half written and a torn line.
    results.write_text("\n".join(lines[:-2]) + "\n" + lines[-2][:30])
    again = score_run(out, ScoreConfig(progress=False))
    assert results.read_text().splitlines() == lines
    assert again["results"] == first["results"]
    with pytest.raises(RepromptError, match="other settings.*options"):
        score_run(out, ScoreConfig(progress=False, threshold=0.5))
    strict = score_run(out, ScoreConfig(progress=False, threshold=0.5, force=True))
    assert strict["scorer"]["options"]["threshold"] == 0.5


def test_official_layout_without_run_json_is_scored(metadata: Path, tmp_path: Path):
    """Folders written by GenEval's own scripts have no run.json and no markers."""
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    generate_run(_config(metadata, ours, per_tag=1))
    for folder in ours.glob("[0-9]*"):
        shutil.copytree(folder, theirs / folder.name, ignore=shutil.ignore_patterns(MARKER))
    s = score_run(theirs, ScoreConfig(progress=False, detector="oracle"))
    assert s["n_samples"]["effective"] == 6 and s["policy"] is None
    assert s["results"] == score_run(ours, ScoreConfig(progress=False))["results"]


def test_oracle_without_scenes_says_what_to_do(metadata: Path, tmp_path: Path):
    out = tmp_path / "run"
    generate_run(_config(metadata, out, per_tag=1, scenes="none"))
    with pytest.raises(RepromptError, match="scene sidecars"):
        score_run(out, ScoreConfig(progress=False, detector="oracle"))


# -------------------------------------------------------------------------------- real models (tiny)


def test_diffusers_backbone_then_mask2former_and_clip_on_tiny_models(
    metadata: Path, tmp_path: Path, tiny_model
):
    """The real-model path end to end: a FLUX pipeline renders, Mask2Former detects, CLIP names colours."""
    out = tmp_path / "run"
    flux = tiny_model("tiny-flux")
    backbone_kwargs = {"height": 64, "width": 64, "steps": 2}
    generate_run(
        _config(metadata, out, per_tag=1, images=1, backbone=str(flux), backbone_kwargs=backbone_kwargs)
    )
    run = json.loads((out / "run.json").read_text())
    assert run["backbone"]["cls"] == "DiffusersBackbone" and run["backbone"]["revision"].startswith("sha256:")
    assert run["backbone"]["settings"]["steps"] == 2
    assert not (out / "00000" / "scenes").exists()  # a real model reports no scene
    assert Image.open(out / "00000" / "samples" / "0000.png").size == (64, 64)
    config = ScoreConfig(
        progress=False,
        detector_model=str(tiny_model("tiny-mask2former")),
        clip_model=str(tiny_model("tiny-clip")),
    )
    summary = score_run(out, config)  # auto: no scenes -> mask2former + CLIP colours
    assert summary["scorer"]["detector"] == "mask2former"
    assert summary["scorer"]["colors"].startswith("clip:")
    assert summary["n_samples"]["images"] == 6
    _, records = read_results(out)
    for r in records:
        for boxes in json.loads(r["details"]).values():
            assert all(len(b) == 5 and b[4] > 0.3 for b in boxes)


def test_oracle_boxes_with_clip_colours_use_the_stored_masks(metadata: Path, tmp_path: Path, tiny_model):
    out = tmp_path / "run"
    generate_run(_config(metadata, out, per_tag=1, images=1, backbone_kwargs={"width": 64, "height": 64}))
    config = ScoreConfig(
        progress=False, detector="oracle", colors="clip", clip_model=str(tiny_model("tiny-clip"))
    )
    summary = score_run(out, config)
    assert summary["scorer"]["detector"] == "oracle" and summary["scorer"]["colors"].startswith("clip:")
    assert summary["n_samples"]["images"] == 6
    with pytest.raises(RepromptError, match="--colors oracle needs --detector oracle"):
        score_run(out, ScoreConfig(progress=False, detector="mask2former", colors="oracle", force=True))


def test_a_tiny_transformers_policy_writes_its_rewrites(metadata: Path, tmp_path: Path, tiny_model):
    from reprompt.policy import GenerationOptions

    out = tmp_path / "run"
    folder = tiny_model("tiny-qwen2")
    generate_run(
        _config(
            metadata,
            out,
            per_tag=1,
            images=1,
            policy=str(folder),
            generation=GenerationOptions(max_new_tokens=6, batch_size=4),
        )
    )
    run = json.loads((out / "run.json").read_text())
    assert run["policy"]["cls"] == "RePrompter" and run["policy"]["revision"].startswith("sha256:")
    assert run["generation"]["max_new_tokens"] == 6
    meta = json.loads((out / "00000" / "metadata.jsonl").read_text())
    assert meta["completion_tokens"] <= 6 and isinstance(meta["completion"], str)
    # A random model cannot write the format: the original prompt is rendered, and flagged.
    assert meta["fallback"] and meta["rewritten_prompt"] == meta["prompt"]


# ------------------------------------------------------------------------------------------------- CLI


def test_cli_generate_score_and_shard(metadata: Path, tmp_path: Path, capsys):
    from reprompt.cli.main import main

    out = tmp_path / "run"
    base = [
        "eval",
        "geneval",
        "--metadata",
        str(metadata),
        "--out",
        str(out),
        "--per-tag",
        "1",
        "--images",
        "2",
        "--no-progress",
    ]
    assert main([*base, "--shard", "0/2"]) == 0
    assert "not scoring yet" in capsys.readouterr().out
    assert main([*base, "--shard", "1/2"]) == 0
    printed = capsys.readouterr().out
    assert "overall" in printed and (out / "summary.json").exists()
    assert main(["eval", "geneval-score", str(out), "--no-progress"]) == 0
    assert "correct images" in capsys.readouterr().out
    assert main(["eval", "geneval-score", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main([*base, "--shard", "2/2"]) == 2
