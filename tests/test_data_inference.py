"""The inference family: prompts whose object, count, color or relation must be resolved before it can be
drawn. Every clue must be invisible to a literal reader (the sketch simulator), every prompt must carry
GenEval-verifiable metadata, and the family must split, exclude and teach like GenEval's templates."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from reprompt.backbones.sketch_text import read_prompt
from reprompt.cli.main import main
from reprompt.data.inference import INFER_COUNTS, INFERENCE_TAGS, InferenceSpace
from reprompt.data.prompts import PromptGenConfig, load_exclusions, split_prompts
from reprompt.data.teachers import GenericTeacher, GroundedTeacher
from reprompt.data.templates import meaning_key
from reprompt.geneval.rules import GenEvalOptions
from reprompt.geneval.vocabulary import FAMILY_TAGS, template_of
from reprompt.utils.benchmarks import GENEVAL_METADATA, benchmark_path

REPO = Path(__file__).resolve().parents[1]
GENEVAL = benchmark_path(*GENEVAL_METADATA)
EVAL_FILE = REPO / "benchmarks" / "data" / "inference_eval.jsonl"
CFG = PromptGenConfig(tags=INFERENCE_TAGS)


@pytest.mark.parametrize("tag", INFERENCE_TAGS)
def test_a_literal_reader_cannot_draw_the_answer(tag):
    """The clue names no COCO object, color, count or relation: the sketch reads only the literal object(s)."""
    space = InferenceSpace(tag, CFG)
    for i in random.Random(tag).sample(range(space.size), 150):
        for text in space.wordings(i):
            r = read_prompt(text)
            objs = [(o.cls, o.count, o.count_explicit, o.color) for o in r.objects]
            relations = [x.relation for x in r.relations if x.relation != "next to"]
            assert not any(o[3] for o in objs), (text, objs)  # no color read
            if tag == "infer_object":
                assert len(objs) == 1, (text, objs)  # only the literal object, not the riddle's answer
            elif tag == "infer_count":  # no number: a vague plural (2-4 drawn) or an invariant noun (1)
                assert len(objs) == 1 and objs[0][1] in (None, 1) and not objs[0][2], (text, objs)
            elif tag == "infer_color":
                assert len(objs) == 1, (text, objs)
            else:
                assert len(objs) == 2 and not relations, (text, objs, relations)


@pytest.mark.parametrize("tag", INFERENCE_TAGS)
def test_every_meaning_is_numbered_once_and_found_from_its_geneval_form(tag):
    space = InferenceSpace(tag, CFG)
    base = FAMILY_TAGS[tag][1]
    for i in random.Random(0).sample(range(space.size), min(space.size, 300)):
        for flip in (False, True):
            meta = space.meta(i, flip)
            assert meta["tag"] == tag and meta["inference"] and meta["prompt"].startswith("a photo of ")
            assert space.index_of(tag, meta["include"]) == i
            assert space.index_of(base, meta["include"]) == i  # the same request in GenEval's template
        assert meta == space.meta(i, flip)  # the wording is a seeded choice per meaning


def test_splits_fill_quotas_stay_disjoint_and_exclude_geneval_test_answers():
    keys, texts = load_exclusions([GENEVAL])
    cfg = PromptGenConfig(n_sft=80, n_rl=40, n_heldout=20, tags=INFERENCE_TAGS)
    splits, report = split_prompts(cfg, keys, texts)
    assert report.produced["sft"] == dict.fromkeys(INFERENCE_TAGS, 20)
    seen = set()
    tests = {meaning_key(json.loads(line)) for line in GENEVAL.read_text().splitlines()}
    for rows in splits.values():
        for r in rows:
            key = meaning_key(r)
            assert key not in seen
            seen.add(key)
            as_geneval = meaning_key({**r, "tag": template_of(r["tag"])})
            assert as_geneval not in tests, r  # resolving the clue never gives a GenEval test prompt
    counts = {
        c["count"]
        for rows in splits.values()
        for r in rows
        for c in r["include"]
        if r["tag"] == "infer_count"
    }
    assert counts <= set(INFER_COUNTS)


def test_position_meanings_keep_their_relation():
    space = InferenceSpace("infer_position", CFG)
    left, right = space.meta(0), space.meta(1)
    assert left["include"][1]["position"][0] != right["include"][1]["position"][0]
    assert meaning_key(left) != meaning_key(right)
    flipped = space.meta(0, flip=True)
    assert meaning_key(flipped) == meaning_key(left)  # "A left of B" is "B right of A"


def test_teachers_state_the_fact_and_the_no_reason_target_is_the_same_prompt():
    space = InferenceSpace("infer_count", CFG)
    rec = {"id": "x", **space.meta(7)}
    fact = rec["inference"][0]["fact"]
    for teacher in (GenericTeacher(), GroundedTeacher()):
        out = teacher.write([rec])[0]
        assert out.completion.startswith(f"<reason>{fact}.")
    with_reason = GenericTeacher().write([rec])[0].completion
    without = GenericTeacher("prompt").write([rec])[0].completion
    assert with_reason.endswith(without)  # matched starts: the same targets, the reason block removed
    plain = {
        "id": "y",
        "tag": "counting",
        "prompt": "a photo of three cups",
        "include": [{"class": "cup", "count": 3}],
    }
    assert not GenericTeacher().write([plain])[0].completion.startswith("<reason>A ")


def test_infer_count_is_scored_with_the_counting_threshold():
    options = GenEvalOptions()
    assert (
        options.threshold_for("infer_count")
        == options.threshold_for("counting")
        == options.counting_threshold
    )
    assert options.threshold_for("infer_color") == options.threshold


def test_the_shipped_evaluation_set_is_the_documented_command(tmp_path, capsys):
    """benchmarks/data/inference_eval.jsonl is `reprompt data prompts ... --tags inference --seed 2026`
    (GenEval's test prompts excluded), ids renamed infer-NNNNN: anyone can rebuild it."""
    argv = ["data", "prompts", "--out", str(tmp_path), "--n-sft", "0", "--n-rl", "0", "--n-heldout", "160"]
    argv += ["--tags", "inference", "--seed", "2026", "--exclude", str(GENEVAL)]
    assert main(argv) == 0
    capsys.readouterr()
    made = [json.loads(line) for line in (tmp_path / "heldout_prompts.jsonl").read_text().splitlines()]
    shipped = [json.loads(line) for line in EVAL_FILE.read_text().splitlines()]
    assert [{**r, "id": f"infer-{i:05d}"} for i, r in enumerate(made)] == shipped
    assert {t: sum(r["tag"] == t for r in shipped) for t in INFERENCE_TAGS} == dict.fromkeys(
        INFERENCE_TAGS, 40
    )


def test_cli_tags_take_family_names(tmp_path, capsys):
    argv = [
        "data",
        "prompts",
        "--out",
        str(tmp_path),
        "--n-sft",
        "20",
        "--n-rl",
        "0",
        "--tags",
        "geneval,inference",
    ]
    argv += ["--tag-weights", "single_object=0"]
    assert main(argv) == 0
    rows = [json.loads(line) for line in (tmp_path / "sft_prompts.jsonl").read_text().splitlines()]
    assert {r["tag"] for r in rows} == set(FAMILY_TAGS) - {"single_object"}
    assert main(["data", "prompts", "--out", str(tmp_path), "--tags", "infer_colour"]) == 2
    assert "did you mean 'infer_color'" in capsys.readouterr().err.lower()
