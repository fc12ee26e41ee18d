"""T2I-CompBench: prompt parsing, the official decision rules, file layout, resume, and the model paths
(BLIP-VQA, CLIP and depth) on tiny random models."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from reprompt.errors import RepromptError
from reprompt.eval.compbench import categories as cats
from reprompt.eval.compbench import nlp, rules
from reprompt.eval.compbench.generate import CompBenchRunConfig, read_records, run_generate
from reprompt.geneval.rules import Detection
from reprompt.policy import GenerationOptions

RULES = nlp.RuleAnalyzer()


# ------------------------------------------------------------------------------------------------ parsing


@pytest.mark.parametrize(
    ("prompt", "chunks"),
    [
        ("a green bench and a blue bowl", ["a green bench", "a blue bowl"]),
        ("a red cup and a blue orange", ["a red cup", "a blue orange"]),
        ("rubber sole shoes and fluffy clouds", ["rubber sole shoes", "fluffy clouds"]),
        ("an oblong cucumber and a teardrop plum", ["an oblong cucumber", "a teardrop plum"]),
        ("The red hat was on top of the brown coat rack.", ["The red hat", "top", "the brown coat rack"]),
        ("The bold, vibrant colors of the peonies", ["The bold, vibrant colors", "the peonies"]),
        ("a sleeping cat and a dog sleeping on the rug", ["a sleeping cat", "a dog", "the rug"]),
    ],
)
def test_noun_chunks(prompt: str, chunks: list[str]) -> None:
    assert nlp.noun_chunks(prompt, RULES) == chunks


def test_pairs_relations_and_adjectives() -> None:
    assert nlp.simple_pair("a girl on the top of a frog", RULES) == ("girl", "frog")
    assert nlp.find_relation("a girl on the top of a frog", nlp.POSITION_WORDS) == "on the top of"
    assert nlp.find_relation("a chair hidden by a mouse", nlp.DEPTH_WORDS) == "hidden"
    assert nlp.complex_pair("The fluffy cat is on the left of the soft pillow.", RULES) == ("cat", "pillow")
    assert nlp.complex_pair("The cat sat on the mat.", RULES) == (None, None)
    assert nlp.without_adjectives("The fluffy cat is on the left of the soft pillow.", RULES) == (
        "The cat is on the left of the pillow ."
    )


def test_counted_objects_and_singular() -> None:
    known = {"person", "apple", "traffic light", "knife", "cat"}.__contains__
    assert nlp.counted_objects("two boys and a cat", RULES, known) == [("boy", 2), ("cat", 1)]
    assert nlp.counted_objects("three apples rolled off the counter", RULES, known) == [("apple", 3)]
    assert nlp.counted_objects("two traffic lights", RULES, known) == [("traffic light", 2)]
    # "a picnic" is no object the detector knows: the official word list would not contain it either
    assert nlp.counted_objects("six people gathered for a picnic", RULES, known) == [("person", 6)]
    assert [nlp.singular(w) for w in ("knives", "butterflies", "boxes", "fish", "shoes", "glasses")] == [
        "knife",
        "butterfly",
        "box",
        "fish",
        "shoe",
        "glass",
    ]


def test_class_mapping() -> None:
    vocab = {"person", "boat", "computer mouse", "couch", "giraffe"}
    assert rules.to_class("girls", vocab) == "person"
    assert rules.to_class("ship", vocab) == "boat"
    assert rules.to_class("mouse", vocab) == "computer mouse"
    assert rules.to_class("sofas", vocab) == "couch"
    assert rules.to_class("lamp", vocab) is None
    assert rules.to_class("boy", None) == "person"


# -------------------------------------------------------------------------------------------------- rules


def test_position_score_official_rule() -> None:
    left, right = (0, 100, 100, 200), (300, 100, 400, 200)
    assert rules.position_score("on the left of", left, right) == 1.0
    assert rules.position_score("on the right of", left, right) == 0.0
    assert rules.position_score("on the right of", right, left) == 1.0
    top, bottom = (100, 0, 200, 100), (100, 300, 200, 400)
    assert rules.position_score("on the top of", top, bottom) == 1.0
    assert rules.position_score("on top of", top, bottom) == 1.0  # deviation: official gives 0
    assert rules.position_score("on the bottom of", bottom, top) == 1.0
    assert rules.position_score("on the bottom of", top, bottom) == 0.0
    # overlapping boxes: 0.1 / IoU
    a, b = (0, 0, 100, 100), (50, 0, 150, 100)
    assert rules.position_score("on the left of", a, b) == pytest.approx(0.1 / (1 / 3))
    # "next to": 1 within 150 px on either axis, else 150 / max offset
    assert rules.position_score("next to", (0, 0, 10, 10), (100, 400, 110, 410)) == 1.0
    assert rules.position_score("near", (0, 0, 10, 10), (400, 300, 410, 310)) == pytest.approx(150 / 400)
    assert rules.position_score(None, left, right) == 0.0


def test_pair_score_weights_and_cut() -> None:
    found = [rules.Found("cat", (0, 0, 100, 100), 0.9), rules.Found("dog", (300, 0, 400, 100), 0.8)]
    res = rules.pair_score(found, "cat", "dog", "on the left of")
    assert res.score == pytest.approx(0.25 * 0.9 + 0.25 * 0.8 + 0.5)
    assert rules.pair_score(found, "cat", "dog", "on the right of").score == 0.0  # 0.425 < 0.5 -> 0
    assert rules.pair_score(
        found, "cat", "dog", "on the right of", cut_below_half=False
    ).score == pytest.approx(0.425)
    assert rules.pair_score(found, "cat", "horse", "near", cut_below_half=False).score == pytest.approx(0.225)
    assert rules.pair_score(found, "cow", "horse", "near").score == 0.0


def test_depth_score() -> None:
    depth = np.zeros((100, 100))
    depth[:, :50] = 1.0  # left half near
    a, b = (0, 0, 60, 100), (20, 0, 100, 100)  # IoU = 40 / 100 = 0.4
    assert rules.depth_score("in front of", a, b, depth) == pytest.approx(0.4 / 0.5)
    assert rules.depth_score("behind", a, b, depth) == 0.0
    assert rules.depth_score("hidden", b, a, depth) == pytest.approx(0.8)
    big_a, big_b = (0, 0, 60, 100), (5, 0, 65, 100)  # IoU > 0.5
    assert rules.depth_score("in front of", big_a, big_b, depth) == 1.0
    assert rules.depth_score("in front of", (0, 0, 10, 10), (50, 50, 60, 60), depth) == 0.0  # no overlap
    # the map is indexed [y, x]: a map that is near at the top only
    top = np.zeros((100, 100))
    top[:50] = 1.0
    assert rules.depth_score("in front of", (0, 0, 100, 60), (0, 20, 100, 100), top) > 0


def test_numeracy_score() -> None:
    found = [
        rules.Found("apple", (0, 0, 50, 50), 0.9),
        rules.Found("apple", (1, 1, 50, 50), 0.8),  # duplicate of the first (IoU > 0.9)
        rules.Found("apple", (100, 0, 150, 50), 0.7),
        rules.Found("goldfish", (200, 0, 250, 50), 0.7),
    ]
    score, counts = rules.numeracy_score(found, [("apple", 2), ("fish", 1)])
    assert counts == {"apple": 2, "fish": 1} and score == 1.0
    score, _ = rules.numeracy_score(found, [("apple", 3), (None, 2)])
    assert score == pytest.approx(0.25)
    assert rules.numeracy_score(found, []) == (0.0, {})


def test_three_in_one() -> None:
    assert rules.three_in_one("spatial", 0.4, 0.8, None) == pytest.approx(0.6)
    assert rules.three_in_one("action", 0.4, None, 0.2) == pytest.approx(0.3)
    assert rules.three_in_one("spatialaction", 0.3, 0.6, 0.9) == pytest.approx(0.6)


def test_official_frame_and_flatten() -> None:
    assert rules.official_frame(512, 512) == pytest.approx(479 / 512)
    assert rules.official_frame(1024, 512) == pytest.approx(480 / 1024)
    dets = {
        "cat": [Detection((0, 0, 512, 512), 0.6), Detection((0, 0, 10, 10), 0.4)],
        "dog": [Detection((0, 0, 1, 1), 0.9)],
    }
    found = rules.flatten_detections(dets, 479 / 512, 0.5)
    assert [f.cls for f in found] == ["dog", "cat"] and found[1].box[2] == pytest.approx(479)


# ------------------------------------------------------------------------------------- categories, layout


def test_task_and_prompt_files(shared_benchmarks: Path) -> None:
    data = shared_benchmarks / "t2i-compbench"
    assert list(cats.categories()) == list(cats.CATEGORY_NAMES)
    for cat in cats.categories().values():
        assert len(cats.load_prompts(cat, data)) == 300, cat.name
    splits = cats.load_complex_splits(data)
    kinds = [cats.complex_kind(p, splits) for p in cats.load_prompts("complex", data)]
    assert {k: kinds.count(k) for k in set(kinds)} == {"spatial": 58, "action": 212, "spatialaction": 30}


def test_file_names() -> None:
    name = cats.image_name("a red cup", 123)
    assert name == "a red cup_000123.png"
    assert cats.parse_image_name(name) == ("a red cup", 123)
    assert cats.parse_image_name("grid.png") is None
    assert cats.global_index(3, 7, 10) == 37
    with pytest.raises(RepromptError):
        cats.check_file_safe("a red_cup")
    with pytest.raises(RepromptError):
        cats.get_category("colour")


@pytest.fixture
def data_dir(tmp_path: Path, shared_benchmarks: Path) -> Path:
    """A copy of the prompt files, so tests can use the real prompts."""
    out = tmp_path / "data"
    shutil.copytree(shared_benchmarks / "t2i-compbench", out)
    return out


def _cfg(data_dir: Path, out: Path, **kw) -> CompBenchRunConfig:
    base = dict(categories="spatial,numeracy", limit=3, images=3, progress=False)
    return CompBenchRunConfig(data_dir=str(data_dir), out=str(out), **{**base, **kw})


def test_generate_layout_resume_and_shards(tmp_path: Path, data_dir: Path) -> None:
    from reprompt.backbones import load_backbone

    sketch = load_backbone("sketch")
    out = tmp_path / "run"
    summary = run_generate(_cfg(data_dir, out), backbone=sketch)
    assert summary["spatial"] == {"rendered": 3, "already_done": 0}
    prompts = cats.load_prompts("spatial", data_dir)
    files = sorted(p.name for p in (out / "spatial" / "samples").iterdir())
    assert files == sorted(cats.image_name(prompts[i], i * 3 + n) for i in range(3) for n in range(3))
    recs = read_records(out / "spatial")
    assert [r["seeds"] for r in recs] == [[42, 43, 44]] * 3
    assert recs[1]["indices"] == [3, 4, 5] and recs[0]["scenes"] is not None
    # resume: nothing left to do; a prompt whose record line was lost (killed) is redone
    assert run_generate(_cfg(data_dir, out), backbone=sketch)["spatial"] == {"rendered": 0, "already_done": 3}
    rec_file = out / "spatial" / "records.jsonl"
    lines = rec_file.read_text().splitlines()
    rec_file.write_text("\n".join(lines[:2]) + "\n" + lines[2][:20])  # torn last line
    assert run_generate(_cfg(data_dir, out), backbone=sketch)["spatial"]["rendered"] == 1
    # other settings into the same run folder are refused
    with pytest.raises(RepromptError, match="different run.*images_per_prompt"):
        run_generate(_cfg(data_dir, out, images=2), backbone=sketch)
    # shards split the prompts and write their own record files
    sharded = tmp_path / "sharded"
    for i in range(2):
        run_generate(_cfg(data_dir, sharded, shard=f"{i}/2"), backbone=sketch)
    assert sorted(p.name for p in (sharded / "spatial").glob("records*")) == [
        "records-0-of-2.jsonl",
        "records-1-of-2.jsonl",
    ]
    assert sorted(p.name for p in (sharded / "spatial" / "samples").iterdir()) == files


def test_a_run_folder_from_before_the_shared_runner_resumes(tmp_path: Path, data_dir: Path) -> None:
    """A run folder whose run.json was written before the shared runner resumes, or is refused if the
    settings differ."""
    import json

    from reprompt.backbones import load_backbone

    sketch = load_backbone("sketch")
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    settings = {"task": "t2i-compbench", "task_version": 1, "backbone": "sketch", "model": None, "policy": "none",
                "api_model": None, "images_per_prompt": 2, "seed": 42, "max_new_tokens": 256}  # fmt: skip
    (legacy / "run.json").write_text(json.dumps({"settings": settings, "data_dir": str(data_dir)}))
    with pytest.raises(RepromptError, match="different run.*images_per_prompt: 2 -> 3"):
        run_generate(_cfg(data_dir, legacy, categories="spatial", limit=1, images=3), backbone=sketch)
    assert (
        run_generate(_cfg(data_dir, legacy, categories="spatial", limit=1, images=2), backbone=sketch)[
            "spatial"
        ]["rendered"]
        == 1
    )
    assert json.loads((legacy / "run.json").read_text())["format"] == "reprompt-compbench-run/1"  # upgraded


def test_paired_seeds_across_rewriters(tmp_path: Path, data_dir: Path, tiny_model) -> None:
    from reprompt.backbones import load_backbone
    from reprompt.policy import load_policy

    sketch = load_backbone("sketch")
    run_generate(_cfg(data_dir, tmp_path / "a", categories="spatial", limit=2), backbone=sketch)
    policy = load_policy(str(tiny_model("tiny-qwen2")))
    run_generate(
        _cfg(
            data_dir,
            tmp_path / "b",
            categories="spatial",
            limit=2,
            policy="tiny",
            generation=GenerationOptions(max_new_tokens=8),
        ),
        backbone=sketch,
        rewriter=policy,
    )
    a, b = read_records(tmp_path / "a" / "spatial"), read_records(tmp_path / "b" / "spatial")
    assert [(r["prompt"], r["seeds"], r["files"]) for r in a] == [
        (r["prompt"], r["seeds"], r["files"]) for r in b
    ]
    assert all(r["rewrite"]["completion"] for r in b)


# ----------------------------------------------------------------------------------------------- models


def _tiny_depth(folder: Path) -> Path:
    """A 4-layer ViT DPT (the architecture of Intel/dpt-hybrid-midas without the ResNet stem)."""
    import torch
    from transformers import DPTConfig, DPTForDepthEstimation, DPTImageProcessor

    config = DPTConfig(
        hidden_size=32,
        num_hidden_layers=4,
        num_attention_heads=4,
        intermediate_size=37,
        image_size=32,
        patch_size=8,
        backbone_out_indices=[0, 1, 2, 3],
        neck_hidden_sizes=[8, 16, 32, 32],
        fusion_hidden_size=16,
        reassemble_factors=[4, 2, 1, 0.5],
        is_hybrid=False,
    )
    torch.manual_seed(0)
    DPTForDepthEstimation(config).eval().save_pretrained(folder)
    DPTImageProcessor(size={"height": 32, "width": 32}, keep_aspect_ratio=False).save_pretrained(folder)
    return folder


def _images() -> list[Image.Image]:
    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)) for _ in range(3)]


def test_blip_vqa_tiny(tiny_model) -> None:
    from reprompt.eval.compbench.metrics import BlipVqaScorer

    scorer = BlipVqaScorer(str(tiny_model("tiny-blip-vqa")), batch_size=2)
    assert scorer.enc_id is not None  # BLIP's [ENC] replaces [CLS], as in the official code
    prompts = ["a red cup and a blue orange", "a plain", "three green apples"]
    results = scorer.score(_images(), prompts, RULES)
    assert results[0]["questions"] == ["a red cup?", "a blue orange?"]
    assert results[1] == {"score": 1.0, "questions": [], "p_yes": []}  # no noun phrase: empty product
    for r in results:
        assert all(0 < p < 1 for p in r["p_yes"])
        assert r["score"] == pytest.approx(float(np.prod(r["p_yes"])) if r["p_yes"] else 1.0, rel=1e-5)
    alone = scorer.score(_images()[2:], prompts[2:], RULES)[0]
    assert alone["p_yes"] == pytest.approx(results[2]["p_yes"], abs=1e-5)  # batching changes nothing
    assert BlipVqaScorer(str(tiny_model("tiny-blip-vqa")), image_size=48).score(
        _images()[:1], prompts[:1], RULES
    )


def test_clip_tiny(tiny_model) -> None:
    import torch

    from reprompt.eval.compbench.metrics import ClipScorer

    scorer = ClipScorer(str(tiny_model("tiny-clip")), batch_size=2)
    texts = ["a red cup", "a cat next to a dog", "two boats"]
    sims = scorer.score(_images(), texts)
    assert len(sims) == 3 and all(-1 <= s <= 1 for s in sims)
    inputs = scorer.processor(text=texts[:1], images=_images()[:1], return_tensors="pt", padding=True)
    with torch.no_grad():
        out = scorer.model(**inputs)
    expected = torch.nn.functional.cosine_similarity(out.image_embeds, out.text_embeds).item()
    assert sims[0] == pytest.approx(expected, abs=1e-5)


def test_depth_tiny(tmp_path: Path) -> None:
    from reprompt.eval.compbench.metrics import DepthEstimator

    est = DepthEstimator(str(_tiny_depth(tmp_path / "dpt")), image_size=None)
    maps = est.predict(_images()[:2], [(36, 48), (479, 480)])
    assert [m.shape for m in maps] == [(36, 48), (479, 480)]
    assert all(m.min() >= 0 and m.max() <= 1 for m in maps)


def test_score_run_end_to_end(tmp_path: Path, data_dir: Path, tiny_model) -> None:
    """All 8 categories on sketch images: oracle detector, tiny BLIP/CLIP/depth; resume; official layout."""
    from reprompt.backbones import load_backbone
    from reprompt.eval.compbench.evaluate import EvaluateConfig, evaluate

    run = tmp_path / "run"
    run_generate(_cfg(data_dir, run, categories="all", limit=1, images=2), backbone=load_backbone("sketch"))
    cfg = EvaluateConfig(
        run_dir=str(run),
        data_dir=str(data_dir),
        blip_model=str(tiny_model("tiny-blip-vqa")),
        clip_model=str(tiny_model("tiny-clip")),
        depth_model=str(_tiny_depth(tmp_path / "dpt")),
        depth_image_size=None,
        nlp="rules",
        progress=False,
    )
    summary = evaluate(cfg)
    assert set(summary["scores"]) == set(cats.CATEGORY_NAMES)
    assert all(0 <= s <= 1 or cat in ("non_spatial", "complex") for cat, s in summary["scores"].items())
    assert summary["n_images"]["color"] == 2 and "detector" in summary["deviations"]
    spatial = json.loads((run / "spatial" / "scores.json").read_text())
    assert spatial["models"]["detector"]["name"] == "oracle" and spatial["models"]["nlp"] == "rules"
    assert [r["question_id"] for r in spatial["per_image"]] == [0, 1]
    assert set(spatial["deviations"]) >= {"detector", "on_top_of"}
    complex_ = json.loads((run / "complex" / "scores.json").read_text())
    assert complex_["per_image"][0]["details"]["kind"] in ("spatial", "action", "spatialaction")
    # rescoring reuses saved scores; a lost summary is rebuilt without touching the models
    (run / "compbench_summary.json").unlink()
    assert evaluate(cfg)["scores"] == summary["scores"]
    # the transformers detector path (tiny random Mask2Former: COCO labels, real post-processing)
    m2f = EvaluateConfig(
        **{
            **cfg.__dict__,
            "categories": "spatial,numeracy,3d_spatial",
            "detector": "mask2former",
            "detector_model": str(tiny_model("tiny-mask2former")),
            "threshold": 0.0,
        }
    )
    scores = evaluate(m2f)["scores"]
    assert set(scores) == {"spatial", "numeracy", "3d_spatial"} and all(0 <= s <= 1 for s in scores.values())
    assert (
        json.loads((run / "spatial" / "scores.json").read_text())["models"]["detector"]["name"]
        == "mask2former"
    )
    # a folder in the official layout (no records): prompts come from the file names
    official = tmp_path / "official" / "color" / "samples"
    shutil.copytree(run / "color" / "samples", official)
    cfg2 = EvaluateConfig(
        run_dir=str(tmp_path / "official"),
        categories="color",
        blip_model=cfg.blip_model,
        nlp="rules",
        progress=False,
    )
    assert evaluate(cfg2)["scores"]["color"] == pytest.approx(summary["scores"]["color"], abs=1e-6)


def test_cli_help_is_light() -> None:
    import subprocess
    import sys

    code = (
        "import sys, argparse; from reprompt.cli import compbench as cli; "
        "p = argparse.ArgumentParser(); cli.add_parser(p.add_subparsers()); "
        "print('torch' in sys.modules, 'transformers' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False False"
