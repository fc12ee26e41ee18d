"""The offline SFT teachers and the strategy detector: what the generic teacher writes, how often each
strategy appears, that it never looks at the simulator, and `reprompt data sft --teacher generic`."""

from __future__ import annotations

import ast
import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from reprompt.backbones.sketch_text import count_clip_tokens
from reprompt.data import templates
from reprompt.data.strategies import (
    HIDDEN,
    STRATEGIES,
    applicable,
    detect_strategies,
    extra_objects,
    missing_objects,
    strategy_table,
)
from reprompt.data.teachers import (
    GENERIC_STRATEGIES,
    GenericTeacher,
    GenericTeacherConfig,
    GroundedTeacher,
    load_teacher,
)
from reprompt.errors import ConfigError
from reprompt.format import parse_completion
from reprompt.geneval.vocabulary import COCO_CLASSES, GENEVAL_COLORS

REPO = Path(__file__).resolve().parents[1]
TEACHERS_PY = REPO / "reprompt" / "data" / "teachers.py"


def _template(tag: str, rng: random.Random) -> dict:
    a, b = rng.sample(COCO_CLASSES, 2)
    ca, cb = rng.sample(GENEVAL_COLORS, 2)
    if tag == "single_object":
        return templates.single_object(a)
    if tag == "two_object":
        return templates.two_object(a, b)
    if tag == "counting":
        return templates.counting(a, rng.choice((2, 3, 4)))
    if tag == "colors":
        return templates.colors(a, ca)
    if tag == "position":
        return templates.position(a, rng.choice(templates.RELATIONS), b)
    return templates.color_attr(a, ca, b, cb)


def make_records(n_per_tag: int = 500, seed: int = 0) -> list[dict]:
    """GenEval-template prompts with metadata, ``n_per_tag`` per tag, unique ids (meanings may repeat:
    the teacher draws per record, as for an SFT set)."""
    rng = random.Random(seed)
    tags = ("single_object", "two_object", "counting", "colors", "position", "color_attr")
    records = [_template(tag, rng) for tag in tags for _ in range(n_per_tag)]
    return [{**rec, "id": f"r{i:05d}"} for i, rec in enumerate(records)]


RECORDS = make_records()


@pytest.fixture(scope="module")
def generic_targets() -> list[tuple[dict, str, str, dict]]:
    teacher = GenericTeacher()
    return [(rec, *teacher.plan(rec), teacher.decide(rec)) for rec in RECORDS]


# ------------------------------------------------------------------------------------ the teacher


def test_generic_targets_are_well_formed_complete_and_fit_the_budget(generic_targets) -> None:
    teacher = GenericTeacher()
    outs = teacher.write(RECORDS[::50])
    for out, rec in zip(outs, RECORDS[::50], strict=True):
        parsed = parse_completion(out.completion, rec["prompt"], out.fmt)
        assert parsed.format_ok and parsed.reasoning and not out.error
    lengths = []
    for rec, reasoning, prompt, _ in generic_targets:
        assert missing_objects(prompt, rec) == [], (rec["prompt"], prompt)  # every object is named
        assert reasoning.split()[0] in ("The", "Goal:") and len(reasoning.split()) < 80  # a short plan
        lengths.append(count_clip_tokens(prompt))
    inside = sum(15 <= n <= 77 for n in lengths) / len(lengths)
    assert inside > 0.97, inside  # the SFT builder keeps [15, 77]; almost nothing is dropped
    # varied phrasing: many different openings and tails, not one string per tag
    assert len({p.split(" of ")[0] for _, _, p, _ in generic_targets}) >= 6
    assert len({p.rsplit(". ", 1)[-1] for _, _, p, _ in generic_targets}) > 500


def test_generic_teacher_is_deterministic_and_seeded() -> None:
    recs = RECORDS[::25]
    assert GenericTeacher().write(recs) == GenericTeacher().write(recs)
    assert GenericTeacher(seed=1).write(recs) != GenericTeacher().write(recs)
    # a record's target does not depend on the batch it is written in
    assert GenericTeacher().write(recs[3:4]) == GenericTeacher().write(recs)[3:4]


def test_teacher_decisions_are_exactly_what_the_detector_sees(generic_targets) -> None:
    """Every strategy the teacher chose is detected, and none it did not choose: the detector is right
    on the teacher's own targets and the teacher writes nothing by accident."""
    for rec, _, prompt, decided in generic_targets:
        expected = {name: (decided[name] if ok else None) for name, ok in applicable(rec).items()}
        assert detect_strategies(prompt, rec) == expected, (rec["prompt"], prompt)


def test_strategy_frequencies_match_the_configured_fractions(generic_targets) -> None:
    table = strategy_table((p, rec) for rec, _, p, _ in generic_targets)
    fractions = GenericTeacherConfig().fractions()
    assert set(table) == set(STRATEGIES) == set(fractions) == set(GENERIC_STRATEGIES)
    assert fractions == dict.fromkeys(GENERIC_STRATEGIES[:4], 0.3) | {"mirrored_relation": 0.05}
    for name, row in table.items():
        n, p = row["applicable"], fractions[name]
        assert n >= 500
        tol = 3.5 * (p * (1 - p) / n) ** 0.5 + 0.005  # seeded draws: a fixed outcome, no flakes
        assert row["rate"] == pytest.approx(p, abs=tol), (name, row)
    # the hidden strategy is rare among all targets, not just among position prompts
    hidden = sum(row["used"] for name, row in table.items() if name in HIDDEN)
    assert hidden / len(generic_targets) <= 0.05
    # the props mistake: an extra object named in about its share of targets
    extra = sum(bool(extra_objects(p, rec)) for rec, _, p, _ in generic_targets) / len(generic_targets)
    assert extra == pytest.approx(GenericTeacherConfig().props, abs=0.03)


def test_fractions_are_configurable() -> None:
    cfg = GenericTeacherConfig(strategy_fraction=0.7, exact_counts=0.0, mirrored_relation=0.5, props=0.0)
    assert cfg.fractions() == {
        "absolute_places": 0.7,
        "exact_counts": 0.0,
        "color_clauses": 0.7,
        "one_object_per_sentence": 0.7,
        "mirrored_relation": 0.5,
    }
    teacher = load_teacher("generic", config=cfg)
    rows = [(teacher.plan(rec)[1], rec) for rec in RECORDS[::3]]
    table = strategy_table(rows)
    assert table["absolute_places"]["rate"] == pytest.approx(0.7, abs=0.08)
    assert table["exact_counts"]["used"] == 0
    assert table["mirrored_relation"]["rate"] == pytest.approx(0.5, abs=0.12)
    assert not any(extra_objects(p, rec) for p, rec in rows)
    for bad in ({"strategy_fraction": 1.5}, {"color_clauses": -0.1}, {"max_tokens": 10}):
        with pytest.raises(ConfigError):
            GenericTeacherConfig(**bad)


def test_grounded_teacher_uses_every_strategy_but_never_the_hidden_one() -> None:
    grounded = GroundedTeacher()
    table = strategy_table((grounded.plan(rec)[1], rec) for rec in RECORDS[::2])
    for name, row in table.items():
        assert row["applicable"] > 0
        assert row["rate"] == (0.0 if name in HIDDEN else 1.0), (name, row)


def test_generic_teacher_reports_records_it_cannot_handle() -> None:
    outs = GenericTeacher().write([{"id": "x", "prompt": "a cozy cabin"}, {**RECORDS[0], "id": "y"}])
    assert outs[0].completion == "" and "no GenEval metadata" in outs[0].error
    assert outs[1].completion and outs[1].error is None


# ------------------------------------------------------------------------------------ blindness

FORBIDDEN = (
    "reprompt.backbones",
    "reprompt.rewards",
    "reprompt.data.strategies",
    "reprompt.geneval.rules",
)


def test_teachers_import_nothing_from_the_simulator_or_rewards() -> None:
    """No import (even a lazy one inside a function) reaches the simulator, a reward or the detector."""
    imported = set()
    for node in ast.walk(ast.parse(TEACHERS_PY.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module)
        elif isinstance(node, ast.Import):
            imported.update(a.name for a in node.names)
    assert imported and not [m for m in imported if m.startswith(FORBIDDEN)], imported
    code = (
        "import sys, reprompt.data.teachers as t; t.GenericTeacher().write([{'id': 1, 'tag': 'counting', "
        "'prompt': 'two cats', 'include': [{'class': 'cat', 'count': 2}]}]); "
        "print([m for m in sys.modules if m.startswith(('reprompt.backbones.sketch', 'reprompt.rewards', "
        "'reprompt.data.strategies'))])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == "[]"


# ------------------------------------------------------------------------------------ the detector

META_POS = templates.position("cup", "left of", "dog")  # a cup left of a dog
META_CA = templates.color_attr("car", "red", "dog", "blue")
META_CNT = templates.counting("cup", 4)
META_COL = templates.colors("car", "pink")
META_TWO = templates.two_object("cup", "dog")

# fmt: off
DETECT_CASES = [
    # (a) absolute places, and what is only relative
    ("A cup on the left side of the image and a dog on the right side.", META_POS,
     {"absolute_places": True, "mirrored_relation": False}),
    ("A cup to the left of a dog, in a park.", META_POS, {"absolute_places": False}),
    ("A cup on the left of a dog.", META_POS, {"absolute_places": False}),  # relative: "left of" + object
    ("On the left is a cup; on the right is a dog.", META_POS, {"absolute_places": True}),
    ("A cup in the top-left corner and a dog at the bottom.", META_TWO, {"absolute_places": True}),
    ("A cup to the left of a dog, the cup in the left half of the frame.", META_POS,
     {"absolute_places": False}),  # the dog is not placed
    ("The man left the cup with a dog.", META_TWO, {"absolute_places": False}),  # a verb, not a place
    # hidden: the relation from both sides (and only the requested one)
    ("A cup to the left of a dog. In other words, the dog is to the right of the cup.", META_POS,
     {"mirrored_relation": True, "absolute_places": False}),
    ("A cup left of a dog, with the dog right of the cup.", META_POS, {"mirrored_relation": True}),
    ("A cup left of a dog. The cup is left of the dog.", META_POS, {"mirrored_relation": False}),
    ("A dog left of a cup. The cup is right of the dog.", META_POS, {"mirrored_relation": False}),
    # (b) exact counts
    ("A photo of exactly four cups on a shelf.", META_CNT, {"exact_counts": True}),
    ("A photo of a total of 4 cups.", META_CNT, {"exact_counts": True}),
    ("Four cups on a shelf. All four cups are clean.", META_CNT, {"exact_counts": True}),
    ("Four small cups on a shelf, sharp focus.", META_CNT, {"exact_counts": False}),
    ("Exactly three cups and four saucers.", META_CNT, {"exact_counts": False}),  # the wrong number
    # (c) color clauses and (d) one object per sentence
    ("A red car and a blue dog. The car is red, and the dog is painted blue.", META_CA,
     {"color_clauses": True, "one_object_per_sentence": False}),
    ("A red car in a park. A blue dog sits nearby.", META_CA,
     {"color_clauses": False, "one_object_per_sentence": True}),
    ("A red car. The car is red. A blue dog. The dog is colored blue.", META_CA,
     {"color_clauses": True, "one_object_per_sentence": True}),
    ("A red car next to a blue dog; the car is red and the dog is blue.", META_CA,
     {"color_clauses": True, "one_object_per_sentence": False}),
    ("The car and the dog are red and blue.", META_CA, {"color_clauses": False}),
    ("A glossy pink car in a quiet garden.", META_COL, {"color_clauses": False}),
    ("A pink car in a garden. The car is painted bright pink.", META_COL, {"color_clauses": True}),
    ("A sofa and a cup. The couch is soft.", templates.two_object("couch", "cup"),
     {"one_object_per_sentence": False}),  # "sofa" is a couch: named in both sentences
]
# fmt: on


@pytest.mark.parametrize(("prompt", "meta", "expected"), DETECT_CASES, ids=[c[0][:40] for c in DETECT_CASES])
def test_detect_strategies(prompt: str, meta: dict, expected: dict) -> None:
    found = detect_strategies(prompt, meta)
    assert {k: found[k] for k in expected} == expected
    for name, ok in applicable(meta).items():
        assert (found[name] is None) == (not ok)


def test_detector_lists_missing_and_extra_objects() -> None:
    meta = META_TWO
    assert missing_objects("A cup on a wooden table.", meta) == ["dog"]
    assert extra_objects("A cup and a puppy on a wooden table.", meta) == ["dining table"]
    assert applicable(templates.single_object("cup")) == dict.fromkeys(STRATEGIES, False)


# ------------------------------------------------------------------------------------ the CLI


def test_data_sft_generic_end_to_end_and_blind_to_the_backbone(tmp_path: Path, capsys) -> None:
    """`reprompt data sft --teacher generic`: rows kept with reasoning, metadata and the teacher's name,
    and the same targets whichever simulator calibration measures their length."""
    from reprompt.cli.main import main

    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps(r) + "\n" for r in RECORDS[::250]))
    outs = {}
    for backbone in ("sketch", "sketch-b"):
        out = tmp_path / f"sft-{backbone}.jsonl"
        rc = main(
            [
                "data",
                "sft",
                "--prompts",
                str(prompts),
                "--out",
                str(out),
                "--teacher",
                "generic",
                "--backbone",
                backbone,
            ]
        )
        assert rc == 0
        outs[backbone] = [json.loads(line) for line in out.read_text().splitlines()]
    assert "kept 12 of 12" in capsys.readouterr().out
    rows = outs["sketch"]
    assert [r["teacher"] for r in rows] == ["generic"] * 12
    assert all(r["reasoning"] and r["include"] and 15 <= r["prompt_tokens"] <= 77 for r in rows)
    expected = GenericTeacher().write(RECORDS[::250])
    assert [r["completion"] for r in rows] == [o.completion for o in expected]
    assert [r["completion"] for r in outs["sketch-b"]] == [r["completion"] for r in rows]
