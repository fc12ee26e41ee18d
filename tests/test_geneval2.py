"""GenEval 2 on the one benchmark runner: the data file (read from the shared benchmark folder, never copied),
Soft-TIFA as the official scripts define it, the oracle judge on sketch scenes, the local VQA judge on a tiny
Qwen3-VL (checked against the official one-question-at-a-time computation), the OpenAI-compatible judge on a
local server, resume and shards, compare and report, and the command line."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
from PIL import Image

from reprompt.errors import RemoteServiceError, RepromptError
from reprompt.eval.geneval2.data import SKILLS, Atom, parse_line, read_data_file
from reprompt.eval.geneval2.evaluate import Geneval2ScoreConfig, score_run
from reprompt.eval.geneval2.generate import Geneval2Config, generate_run, select_prompts
from reprompt.eval.geneval2.oracle import OracleJudge, read_question
from reprompt.eval.registry import AGGREGATIONS, load_task
from reprompt.geneval.scene import SceneObject
from reprompt.geneval.vocabulary import COCO_CLASSES, GENEVAL_COLORS
from reprompt.utils.english import CARDINALS


@pytest.fixture(scope="module")
def data_file(shared_benchmarks: Path) -> Path:
    path = shared_benchmarks / "geneval2" / "geneval2_data.jsonl"
    if not path.exists():
        pytest.skip(f"GenEval 2 data not found at {path}")
    return path


@pytest.fixture(scope="module")
def prompts(data_file: Path):
    return read_data_file(data_file)


def _kinds(prompt) -> list[str]:
    """What the oracle makes of each question of a prompt: a query kind, or why it cannot answer."""
    return [r if isinstance(r, str) else r.kind for r in map(read_question, prompt.atoms)]


# ------------------------------------------------------------------------------------------------ data


def test_the_data_file_reads_as_published(prompts):
    assert len(prompts) == 800
    counts = {n: sum(p.atom_count == n for p in prompts) for n in range(3, 11)}
    assert counts == dict.fromkeys(range(3, 11), 100)
    assert {a.skill for p in prompts for a in p.atoms} == set(SKILLS)
    assert all(p.index == i for i, p in enumerate(prompts))
    first = prompts[0]
    assert first.line()["vqa_list"][0] == [first.atoms[0].question, first.atoms[0].answer]


def test_answers_are_spelled_as_the_official_script_sums_them():
    count = Atom("How many cows are in the image?", "seven", "count")
    assert count.answers() == ("seven", "Seven", " seven", " Seven", "7", " 7")
    assert Atom("How many cows are in the image?", "twelve", "count").answers()[-2:] == ("other", " other")
    assert Atom("Are the cows black?", "Yes", "attribute").answers() == ("Yes", "yes", " yes", " Yes")
    assert count.vqa_text() == "How many cows are in the image? Answer in one word."


def test_malformed_lines_name_file_line_and_field(tmp_path: Path):
    bad = tmp_path / "bad.jsonl"
    line = {"prompt": "a cat", "atom_count": 1, "vqa_list": [["Is there a cat?", "Yes"]], "skills": ["smell"]}
    bad.write_text(json.dumps(line) + "\n")
    with pytest.raises(RepromptError, match=r"bad.jsonl:1: skills\[0\] is 'smell'"):
        read_data_file(bad)
    bad.write_text('{"prompt": "a cat"}\n')
    with pytest.raises(RepromptError, match="missing atom_count, vqa_list, skills"):
        read_data_file(bad)
    with pytest.raises(RepromptError, match="not found"):
        read_data_file(tmp_path / "nothing.jsonl")
    with pytest.raises(RepromptError, match="same, non-zero length"):
        parse_line({**line, "skills": []}, 0, "x")


# --------------------------------------------------------------------------------------------- metrics


def test_soft_tifa_metrics_are_the_official_means():
    from statistics import geometric_mean as gmean  # scipy.stats.gmean's value (the official code's)

    gm = AGGREGATIONS["geometric_mean"]
    assert gm([0.2, 0.8, 0.5]) == pytest.approx(gmean([0.2, 0.8, 0.5]))
    assert gm([0.3, 0.0]) == 0.0 and gm([]) == 0.0
    task = load_task("geneval2")
    # two images: official per-prompt AM / GM, averaged; per skill: pooled over every atom of the skill
    scores = {
        "a.png": [(0.9, "object"), (0.5, "count"), (0.2, "count")],
        "b.png": [(1.0, "object"), (0.4, "count")],
    }
    items = [{"value": v, "image": f, "skill": s} for f, atoms in scores.items() for v, s in atoms]
    got = task.compute(items, names=["soft_tifa_am", "soft_tifa_gm", "skill"])
    assert got["soft_tifa_am"] == pytest.approx((1.6 / 3 + 1.4 / 2) / 2)
    assert got["soft_tifa_gm"] == pytest.approx((gmean([0.9, 0.5, 0.2]) + gmean([1.0, 0.4])) / 2)
    assert got["skill"] == pytest.approx({"object": 0.95, "count": 1.1 / 3})
    assert [m.name for m in task.metrics] == ["soft_tifa_am", "soft_tifa_gm", "skill", "atomicity"]


# --------------------------------------------------------------------------------------------- oracle


def test_the_oracle_reads_what_a_sketch_scene_can_answer(prompts):
    # (the data's texts stay in the data file: prompts are chosen by what the oracle makes of them)
    p = next(p for p in prompts if {"count", "color", "presence", "unknown object"} <= set(_kinds(p)))
    for atom, read in zip(p.atoms, map(read_question, p.atoms), strict=True):
        if isinstance(read, str):
            continue
        assert read.cls in COCO_CLASSES
        if read.kind == "count":
            assert read.value == CARDINALS[atom.answer]
        if read.kind == "color":
            assert read.value in GENEVAL_COLORS and read.value in atom.question
    reasons: dict[str, set[str]] = {}
    for prompt in prompts:
        for atom, kind in zip(prompt.atoms, _kinds(prompt), strict=True):
            reasons.setdefault(atom.skill, set()).add(kind)
    assert "unread" not in set().union(*reasons.values())  # every question of the file is understood
    assert reasons["verb"] == {"verb"}
    assert reasons["position"] == {"relation", "depth", "unknown object"}
    assert reasons["attribute"] == {"color", "material", "texture", "unknown object"}
    assert reasons["count"] == {"count", "unknown object"} and reasons["object"] == {
        "presence",
        "unknown object",
    }


def _objects(cls: str, n: int, color: str, x: float, y: float) -> list[SceneObject]:
    return [SceneObject(cls, (x + 30 * k, y, x + 30 * k + 20, y + 20), color) for k in range(n)]


def _two_object_prompt(prompts):
    """A prompt the oracle answers entirely: two classes, each counted and coloured, one left/right relation."""
    for p in prompts:
        reads = [read_question(a) for a in p.atoms]
        if any(isinstance(r, str) for r in reads):
            continue
        classes = {r.cls for r in reads}
        relations = [r for r in reads if r.kind == "relation" and r.value in ("left of", "right of")]
        colors = {r.cls for r in reads if r.kind == "color"}
        if len(classes) == 2 and len(relations) == 1 and colors == classes:
            return p, reads, relations[0]
    raise AssertionError("no such prompt")


def test_the_oracle_answers_from_the_drawn_scene(prompts):
    p, reads, rel = _two_object_prompt(prompts)
    count = {r.cls: r.value for r in reads if r.kind == "count"}
    color = {r.cls: r.value for r in reads if r.kind == "color"}
    left, right = (rel.cls, rel.other) if rel.value == "left of" else (rel.other, rel.cls)

    def scene(left_x: float, right_x: float, extra: int = 0, recolor: str | None = None) -> list[SceneObject]:
        other = next(c for c in GENEVAL_COLORS if c != color[right])
        return _objects(left, count[left] + extra, color[left], left_x, 200) + _objects(
            right, count[right], other if recolor else color[right], right_x, 200
        )

    judge = OracleJudge()
    image = Image.new("RGB", (8, 8))
    rows = judge.score([image] * 3, [p.atoms] * 3, [scene(20, 300), scene(300, 20), scene(20, 300, 1, "x")])
    by_kind = [[(r.kind, r.cls, s) for r, (s, _) in zip(reads, row, strict=True)] for row in rows]
    assert all(s == 1.0 for _, _, s in by_kind[0])  # drawn as asked: every atom holds
    assert [(k, s) for k, _, s in by_kind[1] if s != 1.0] == [("relation", 0.0)]  # the two sides swapped
    wrong = {(k, c) for k, c, s in by_kind[2] if s == 0.0}
    assert wrong == {("count", left), ("color", right)}  # one more object, and the other one recoloured
    with pytest.raises(RepromptError, match="scenes"):
        judge.score([image], [p.atoms], None)


# ------------------------------------------------------------------------------------ runner + scoring


def test_selection_by_subset_and_atom_count(prompts):
    full = select_prompts(prompts, "oracle-full")
    any_ = select_prompts(prompts, "oracle")
    assert 0 < len(full) < len(any_) < len(prompts)
    assert all(not isinstance(read_question(a), str) for p in full for a in p.atoms)
    strat = select_prompts(prompts, "oracle", per_atom_count=2)
    assert len(strat) == 16 and {p.atom_count for p in strat} == set(range(3, 11))
    assert [p.index for p in strat] == sorted(p.index for p in strat)


def _records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "results.jsonl").read_text().splitlines()]


def test_a_sketch_run_end_to_end(data_file: Path, tmp_path: Path):
    run = tmp_path / "none"
    cfg = dict(data=str(data_file), subset="oracle", per_atom_count=1, images=2, progress=False)
    first = generate_run(Geneval2Config(out=str(run), stop_after=3, **cfg))
    assert (first.done_now, first.remaining) == (3, 5)
    rest = generate_run(Geneval2Config(out=str(run), **cfg))
    assert (rest.already_done, rest.done_now, rest.remaining) == (3, 5, 0)
    info = json.loads((run / "run.json").read_text())
    assert info["task"] == "geneval2" and info["selection"]["n_selected"] == 8
    assert info["data_file"] == str(data_file.resolve()) and len(info["data_sha256"]) == 64
    with pytest.raises(RepromptError, match="different run"):
        generate_run(Geneval2Config(out=str(run), seed=1, **cfg))

    summary = score_run(run, Geneval2ScoreConfig(progress=False))
    assert summary["scorer"]["judge"] == "oracle" and summary["complete"]
    # the reported numbers, recomputed from the per-image records by the official definitions
    from statistics import geometric_mean

    def gmean(values: list[float]) -> float:  # scipy.stats.gmean: 0 as soon as one value is 0
        return 0.0 if 0.0 in values else geometric_mean(values)

    answered = [
        [(s, k) for s, k in zip(r["scores"], r["skills"], strict=True) if s is not None]
        for r in _records(run)
    ]
    assert summary["results"]["soft_tifa_am"] == pytest.approx(
        sum(sum(s for s, _ in a) / len(a) for a in answered) / 16
    )
    assert summary["results"]["soft_tifa_gm"] == pytest.approx(
        sum(gmean([s for s, _ in a]) for a in answered) / 16
    )
    for skill, value in summary["skills"].items():
        pooled = [s for a in answered for s, k in a if k == skill]
        assert value == pytest.approx(sum(pooled) / len(pooled))
    cov = summary["coverage"]
    assert cov["atoms"] == sum(len(r["scores"]) for r in _records(run)) and cov["images_judged"] == 16
    assert cov["answered"] + sum(cov["unanswered"].values()) == cov["atoms"]
    assert sorted(summary["atomicity"], key=int) == [str(n) for n in range(3, 11)]

    # scoring resumes, and refuses other judge settings
    again = score_run(run, Geneval2ScoreConfig(progress=False))
    assert again["results"] == summary["results"]
    with pytest.raises(RepromptError, match="other settings"):
        score_run(run, Geneval2ScoreConfig(progress=False, judge="local", judge_model=str(tmp_path)))

    # two shards make the same run as one process
    sharded = tmp_path / "sharded"
    for shard in ("0/2", "1/2"):
        generate_run(Geneval2Config(out=str(sharded), shard=shard, **cfg))
    assert score_run(sharded, Geneval2ScoreConfig(progress=False))["results"] == summary["results"]


def _break(run: Path, index: int, k: int) -> None:
    path = run / f"{index:05d}" / "scenes" / f"{k:04d}.json"
    scene = json.loads(path.read_text())
    scene["objects"] = []
    path.write_text(json.dumps(scene))


def test_compare_and_report_pair_geneval2_runs(data_file: Path, tmp_path: Path):
    from reprompt.eval.compare import compare_runs, format_comparison
    from reprompt.eval.report import build_report

    a, b = tmp_path / "a", tmp_path / "b"
    generate_run(
        Geneval2Config(
            out=str(a), data=str(data_file), subset="oracle-full", limit=10, images=2, progress=False
        )
    )
    base = score_run(a, Geneval2ScoreConfig(progress=False))
    victim, k = next((s, im["image_index"]) for s in base["samples"] for im in s["images"] if im["gm"] == 1.0)
    shutil.copytree(a, b, ignore=shutil.ignore_patterns("results.jsonl", "summary.json", "scoring.json"))
    _break(b, victim["index"], k)  # B's image k of that prompt shows nothing: every atom of it fails
    score_run(b, Geneval2ScoreConfig(progress=False))

    r = compare_runs(a, b, resamples=500)
    assert r["task"] == "geneval2" and r["group_label"] == "skill" and r["headline"] == "soft_tifa_gm"
    assert r["overall"]["diff"] == pytest.approx(-0.5 / 10)  # the prompt's GM falls by 0.5, over 10 prompts
    assert r["prompts"] == {"won": 0, "lost": 1, "tied": 9} and r["images"]["lost"] == 1
    assert r["tags"]["object"]["diff"] < 0 and "soft_tifa_am" in r["metrics"]
    assert r["worse"][0]["index"] == victim["index"] and "expected" in r["worse"][0]["reasons_b"][0]
    text = format_comparison(r)
    assert "Soft-TIFA GM" in text and "skill" in text.splitlines()[2]

    page = build_report(b, a, thumb=48).read_text()
    assert "GenEval 2 report" in page and "Soft-TIFA GM" in page and "judge oracle" in page


# ------------------------------------------------------------------------------------------ VLM judges


def _official_probability(vlm, image: Image.Image, atom: Atom) -> float:
    """The official evaluation.py's computation, one question at a time through generate(output_scores)."""
    import torch

    inputs = vlm.inputs(vlm.chat_texts([atom.vqa_text()]), [image])
    out = vlm.model.generate(
        **inputs, max_new_tokens=1, do_sample=False, output_scores=True, return_dict_in_generate=True
    )
    probs = torch.nn.functional.softmax(out.scores[0], dim=-1)
    return sum(probs[0, vlm.tokenizer.encode(a)[0]].item() for a in atom.answers())


def test_the_local_judge_is_the_official_computation_on_a_tiny_qwen3_vl(tiny_model, prompts, tmp_path: Path):
    from reprompt.eval.geneval2.vqa import LocalVQAJudge

    folder = tiny_model("tiny-qwen3-vl")
    chosen = [prompts[0], prompts[1]]
    images = [Image.new("RGB", (64, 64), (200, 30, 30)), Image.new("RGB", (96, 64), (30, 30, 200))]
    judge = LocalVQAJudge(str(folder), batch_size=3)
    rows = judge.score(images, [p.atoms for p in chosen])
    vlm = LocalVQAJudge(str(folder)).vlm  # its own copy of the model
    for image, prompt, row in zip(images, chosen, rows, strict=True):
        assert [why for _, why in row] == [None] * len(prompt.atoms)
        for atom, (score, _) in list(zip(prompt.atoms, row, strict=True))[:3]:
            assert score == pytest.approx(_official_probability(vlm, image, atom), rel=1e-4, abs=1e-7)
    # a random 1.2k-token model spreads its mass: four yes-spellings get about 4/vocabulary
    assert 0 < rows[0][1][0] < 0.05


def test_a_run_judged_by_a_local_vlm(tiny_model, data_file: Path, tmp_path: Path, capsys):
    from reprompt.cli.main import main

    run = tmp_path / "run"
    argv = ["eval", "geneval2", "--data", str(data_file), "--out", str(run), "--limit", "2", "--no-progress"]
    judge = [
        "--judge",
        "local",
        "--judge-model",
        str(tiny_model("tiny-qwen3-vl")),
        "--width",
        "64",
        "--height",
        "64",
    ]
    assert main([*argv, *judge]) == 0
    out = capsys.readouterr().out
    assert "Soft-TIFA GM" in out and "tiny-qwen3-vl" in out
    summary = json.loads((run / "summary.json").read_text())
    assert summary["coverage"]["answered"] == summary["coverage"]["atoms"]  # a VLM answers every question
    assert summary["scorer"]["model"].endswith("tiny-qwen3-vl")


def _logprob_server_reply(body: dict) -> dict:
    """An endpoint whose first-token candidates are the same for every question."""
    top = [{"token": "Yes", "logprob": math.log(0.6)}, {"token": " yes", "logprob": math.log(0.1)}]
    top += [{"token": "No", "logprob": math.log(0.2)}, {"token": "7", "logprob": math.log(0.05)}]
    return {
        "content": "Yes",
        "logprobs": {"content": [{"token": "Yes", "logprob": math.log(0.6), "top_logprobs": top}]},
    }


def test_the_openai_judge_reads_first_token_probabilities(tmp_path: Path):
    from reprompt.eval.geneval2.judges import JudgeConfig, build_judge
    from tests.fake_openai import FakeOpenAI

    atoms = [
        Atom("Is the car white?", "Yes", "attribute"),
        Atom("How many cows are in the image?", "seven", "count"),
    ]
    image = Image.new("RGB", (32, 32), (255, 255, 255))
    with FakeOpenAI(_logprob_server_reply) as srv:
        srv.fail_first = 1  # a 503 first: retried
        judge = build_judge(
            JudgeConfig(judge="openai", judge_model="qwen3-vl", judge_api_base=srv.base_url, judge_retries=2),
            has_scenes=False,
        )
        object.__setattr__(judge.client.options, "backoff", 0.01)
        rows = judge.score([image], [atoms])
        request = srv.requests[-1]
    assert rows[0][0][0] == pytest.approx(0.7) and rows[0][1][0] == pytest.approx(0.05)
    assert request["logprobs"] is True and request["top_logprobs"] == 20 and request["max_tokens"] == 1
    parts = request["messages"][0]["content"]
    assert parts[0]["type"] == "image_url" and parts[1]["text"].endswith("? Answer in one word.")

    with FakeOpenAI("Yes") as srv:  # a server without logprobs: an error that names the fix
        judge = build_judge(JudgeConfig(judge="openai", judge_model="m", judge_api_base=srv.base_url), False)
        with pytest.raises(RemoteServiceError, match="must return logprobs"):
            judge.score([image], [atoms[:1]])


def test_command_line_errors_are_one_line(data_file: Path, tmp_path: Path, capsys):
    from reprompt.cli.main import main

    base = ["eval", "geneval2", "--out", str(tmp_path / "x")]
    assert main([*base, "--data", str(tmp_path / "none.jsonl")]) == 2
    assert "geneval2_data.jsonl" in capsys.readouterr().err
    assert main([*base, "--data", str(data_file), "--judge-model", " "]) == 2
    assert "--judge-model" in capsys.readouterr().err
    assert main(["eval", "geneval2-score", str(tmp_path / "missing")]) == 2
