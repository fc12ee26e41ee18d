"""GenEval scoring rules: one hand-built case per official decision, plus all 553 real prompts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reprompt.errors import ConfigError
from reprompt.eval.geneval.evaluate import summarize
from reprompt.geneval.rules import (
    Detection,
    GenEvalOptions,
    box_iou,
    detections_from_boxes,
    filter_detections,
    relative_position,
    score_detections,
)
from reprompt.geneval.scoring import make_record
from reprompt.geneval.vocabulary import COCO_CLASSES, GENEVAL_COLORS, GENEVAL_TAGS


def single(cls: str = "dog") -> dict:
    return {"tag": "single_object", "include": [{"class": cls, "count": 1}], "prompt": f"a photo of a {cls}"}


def counting(cls: str, n: int) -> dict:
    return {
        "tag": "counting",
        "include": [{"class": cls, "count": n}],
        "exclude": [{"class": cls, "count": n + 1}],
        "prompt": f"a photo of {n} {cls}s",
    }


def position(cls: str, rel: str, target: str) -> dict:
    return {
        "tag": "position",
        "include": [{"class": target, "count": 1}, {"class": cls, "count": 1, "position": [rel, 0]}],
        "prompt": f"a photo of a {cls} {rel} a {target}",
    }


def colors_of(mapping: dict[str, list[str]]):
    """classify_colors that answers from a fixed {class: [colour per object, by rank]} table."""
    calls = []

    def classify(classname: str, objects: list[Detection]) -> list[str]:
        calls.append((classname, [d.score for d in objects]))
        return mapping[classname][: len(objects)]

    classify.calls = calls  # type: ignore[attr-defined]
    return classify


BOX = (10, 10, 50, 50)


# ----------------------------------------------------------------------------------------- vocabulary


def test_vocabulary():
    assert len(COCO_CLASSES) == 80 and len(set(COCO_CLASSES)) == 80
    assert COCO_CLASSES[0] == "person" and COCO_CLASSES[-1] == "toothbrush"
    assert len(GENEVAL_COLORS) == 10 and len(GENEVAL_TAGS) == 6


def test_classes_match_benchmark_file(shared_benchmarks: Path):
    path = shared_benchmarks / "geneval" / "object_names.txt"
    assert tuple(line.strip() for line in path.read_text().splitlines() if line.strip()) == COCO_CLASSES


# ------------------------------------------------------------------------------- detection filtering


def test_single_object_pass_and_fail():
    res = score_detections(single("dog"), detections_from_boxes({"dog": [BOX]}))
    assert res.correct and res.reason == "" and (res.clauses_passed, res.clauses_total) == (1, 1)
    res = score_detections(single("dog"), detections_from_boxes({"cat": [BOX]}))
    assert not res.correct and res.reason == "expected dog>=1, found 0" and res.partial == 0.0


def test_threshold_is_strictly_above_0_3():
    assert not score_detections(single(), detections_from_boxes({"dog": [(*BOX, 0.3)]})).correct
    assert score_detections(single(), detections_from_boxes({"dog": [(*BOX, 0.31)]})).correct
    assert not score_detections(single(), detections_from_boxes({"dog": [(*BOX, 0.1)]})).correct
    custom = GenEvalOptions(threshold=0.05)
    assert score_detections(single(), detections_from_boxes({"dog": [(*BOX, 0.1)]}), options=custom).correct


def test_counting_uses_0_9_threshold_and_is_exact():
    dogs = [(0, 0, 10, 10, 0.95), (20, 0, 30, 10, 0.8), (40, 0, 50, 10, 0.95), (60, 0, 70, 10, 0.96)]
    dets = detections_from_boxes({"dog": dogs})
    assert score_detections(counting("dog", 3), dets).correct  # the 0.8 dog does not count
    res = score_detections(counting("dog", 4), dets)
    assert not res.correct and res.reason == "expected dog>=4, found 3" and res.partial == 0.5
    res = score_detections(counting("dog", 2), dets)
    assert not res.correct and res.reason == "expected dog<3, found 3"
    assert (res.clauses_passed, res.clauses_total) == (1, 2)
    # Outside the counting tag the 0.3 threshold applies: the same image has 4 dogs.
    assert len(filter_detections(dets, "two_object")["dog"]) == 4


def test_exclude_clause_fails_at_count():
    meta = {
        "tag": "single_object",
        "include": [{"class": "dog", "count": 1}],
        "exclude": [{"class": "cat", "count": 1}],
        "prompt": "a dog and no cat",
    }
    assert score_detections(meta, detections_from_boxes({"dog": [BOX], "cat": [(*BOX, 0.2)]})).correct
    res = score_detections(meta, detections_from_boxes({"dog": [BOX], "cat": [BOX]}))
    assert not res.correct and res.reason == "expected cat<1, found 1" and res.partial == 0.5


def test_max_16_objects_per_class():
    dets = detections_from_boxes({"dog": [(i, 0, i + 5, 5, 0.95) for i in range(20)]})
    assert len(filter_detections(dets, "counting")["dog"]) == 16
    # 20 dogs but only 16 kept, so "fewer than 17 dogs" holds (as in the official scorer).
    assert score_detections(counting("dog", 16), dets).correct
    assert not score_detections(counting("dog", 16), dets, options=GenEvalOptions(max_objects=32)).correct


def test_sorting_keeps_the_most_confident():
    dets = detections_from_boxes({"dog": [(0, 0, 1, 1, s) for s in (0.4, 0.9, 0.5, 0.7)]})
    kept = filter_detections(dets, "single_object", GenEvalOptions(max_objects=2))
    assert [d.score for d in kept["dog"]] == [0.9, 0.7]


def test_nms_off_by_default_and_optional():
    dets = detections_from_boxes(
        {"dog": [(0, 0, 100, 100, 0.9), (1, 1, 100, 100, 0.8), (200, 0, 300, 100, 0.7)]}
    )
    assert len(filter_detections(dets, "single_object")["dog"]) == 3
    kept = filter_detections(dets, "single_object", GenEvalOptions(max_overlap=0.5))
    assert [d.score for d in kept["dog"]] == [0.9, 0.7]
    assert box_iou((0, 0, 9, 9), (0, 0, 9, 9)) == 1.0 and box_iou((0, 0, 9, 9), (20, 20, 29, 29)) == 0.0


def test_options_are_validated():
    with pytest.raises(ConfigError, match=r"GenEvalOptions.threshold must be between 0.0 and 1.0, got 1.5"):
        GenEvalOptions(threshold=1.5)
    with pytest.raises(ConfigError, match="GenEvalOptions.max_objects must be >= 1, got 0"):
        GenEvalOptions(max_objects=0)


# -------------------------------------------------------------------------------------------- colours


def colors_meta(cls: str, color: str, count: int = 1) -> dict:
    return {
        "tag": "colors",
        "include": [{"class": cls, "count": count, "color": color}],
        "prompt": f"a photo of a {color} {cls}",
    }


def test_color_pass_and_fail():
    dets = detections_from_boxes({"car": [BOX]})
    assert score_detections(colors_meta("car", "red"), dets, colors_of({"car": ["red"]})).correct
    res = score_detections(colors_meta("car", "red"), dets, colors_of({"car": ["blue"]}))
    assert not res.correct and res.reason == "expected red car>=1, found 0 red; and 1 blue"


def test_color_needs_count_of_target_among_top_count_objects():
    dets = detections_from_boxes({"car": [(0, 0, 5, 5, 0.5), (0, 0, 5, 5, 0.9), (0, 0, 5, 5, 0.7)]})
    classify = colors_of({"car": ["red", "blue", "red"]})
    res = score_detections(colors_meta("car", "red", count=2), dets, classify)
    # Only the top-2 objects (0.9, 0.7) are classified; one is blue, so 1 red < 2.
    assert classify.calls == [("car", [0.9, 0.7])]
    assert not res.correct and res.reason == "expected red car>=2, found 1 red; and 1 red, 1 blue"
    assert score_detections(
        colors_meta("car", "red", count=2), dets, colors_of({"car": ["red", "red"]})
    ).correct


def test_color_not_classified_when_object_missing():
    classify = colors_of({"car": ["red"]})
    res = score_detections(colors_meta("car", "red"), {}, classify)
    assert not res.correct and res.reason == "expected car>=1, found 0" and classify.calls == []


def test_color_without_classifier_is_an_error():
    with pytest.raises(ValueError, match="classify_colors"):
        score_detections(colors_meta("car", "red"), detections_from_boxes({"car": [BOX]}))
    with pytest.raises(ValueError, match="2 colours for 1"):
        score_detections(
            colors_meta("car", "red"), detections_from_boxes({"car": [BOX]}), lambda c, o: ["a", "b"]
        )


# ------------------------------------------------------------------------------------------- position

CENTER = (200, 200, 240, 240)
PLACES = {
    "left of": (100, 200, 140, 240),
    "right of": (300, 200, 340, 240),
    "above": (200, 100, 240, 140),
    "below": (200, 300, 240, 340),
}


@pytest.mark.parametrize("rel", list(PLACES))
def test_every_relation(rel):
    assert relative_position(PLACES[rel], CENTER) == {rel}
    dets = detections_from_boxes({"teddy bear": [CENTER], "dog": [PLACES[rel]]})
    assert score_detections(position("dog", rel, "teddy bear"), dets).correct
    for other in PLACES:
        if other != rel:
            res = score_detections(position("dog", other, "teddy bear"), dets)
            assert not res.correct and res.reason == f"expected dog {other} target, found {rel} target"
            assert res.partial == 0.5


def test_diagonal_holds_two_relations():
    assert relative_position((300, 300, 340, 340), CENTER) == {"right of", "below"}
    # Mostly to the right: dy/|offset| <= 0.5 so only "right of".
    assert relative_position((300, 230, 340, 270), CENTER) == {"right of"}


def test_position_dead_zone():
    # Centres 7 px apart; 0.1 x (40 + 40) = 8 px dead zone: no relation at all.
    dog = (207, 200, 247, 240)
    assert relative_position(dog, CENTER) == set()
    res = score_detections(
        position("dog", "right of", "teddy bear"),
        detections_from_boxes({"teddy bear": [CENTER], "dog": [dog]}),
    )
    assert not res.correct and res.reason == "expected dog right of target, found  target"
    # With no dead zone the same boxes are "right of".
    assert relative_position(dog, CENTER, threshold=0.0) == {"right of"}
    assert relative_position(CENTER, CENTER) == set()


def test_position_missing_target_group():
    dets = detections_from_boxes({"dog": [PLACES["right of"]]})
    res = score_detections(position("dog", "right of", "teddy bear"), dets)
    assert not res.correct
    assert res.reason == "expected teddy bear>=1, found 0\nno target for dog to be right of"
    assert (res.clauses_passed, res.clauses_total) == (0, 2)


def test_position_target_failed_its_color():
    meta = {
        "tag": "position",
        "include": [
            {"class": "teddy bear", "count": 1, "color": "red"},
            {"class": "dog", "count": 1, "position": ["right of", 0]},
        ],
        "prompt": "a dog right of a red teddy bear",
    }
    dets = detections_from_boxes({"teddy bear": [CENTER], "dog": [PLACES["right of"]]})
    assert score_detections(meta, dets, colors_of({"teddy bear": ["red"]})).correct
    res = score_detections(meta, dets, colors_of({"teddy bear": ["brown"]}))
    assert res.reason.endswith("no target for dog to be right of") and res.clauses_passed == 0


def test_position_every_object_against_every_target():
    meta = position("dog", "right of", "teddy bear")
    meta["include"][1]["count"] = 2
    both_right = detections_from_boxes(
        {"teddy bear": [CENTER], "dog": [PLACES["right of"], (400, 200, 440, 240)]}
    )
    assert score_detections(meta, both_right).correct
    one_left = detections_from_boxes({"teddy bear": [CENTER], "dog": [PLACES["right of"], PLACES["left of"]]})
    res = score_detections(meta, one_left)
    assert not res.correct and res.reason == "expected dog right of target, found left of target"
    # A second, lower-scored teddy bear is not part of the target group (top `count` only).
    extra = detections_from_boxes(
        {"teddy bear": [CENTER, (500, 200, 540, 240, 0.5)], "dog": [PLACES["right of"]]}
    )
    assert score_detections(position("dog", "right of", "teddy bear"), extra).correct


def test_position_bad_metadata():
    meta = position("dog", "beside", "teddy bear")
    with pytest.raises(ValueError, match="relation"):
        score_detections(meta, detections_from_boxes({"teddy bear": [CENTER], "dog": [CENTER]}))
    meta = {
        "tag": "position",
        "include": [{"class": "dog", "count": 1, "position": ["left of", 0]}],
        "prompt": "",
    }
    with pytest.raises(ValueError, match="must come before"):
        score_detections(meta, detections_from_boxes({"dog": [CENTER]}))


# ---------------------------------------------------------------------------------------- partial


def test_partial_credit_counts_clauses():
    meta = {
        "tag": "two_object",
        "include": [{"class": "dog", "count": 1}, {"class": "cat", "count": 1}],
        "prompt": "a dog and a cat",
    }
    res = score_detections(meta, detections_from_boxes({"dog": [BOX]}))
    assert not res.correct and res.partial == 0.5 and (res.clauses_passed, res.clauses_total) == (1, 2)
    res = score_detections(meta, detections_from_boxes({"dog": [BOX], "cat": [BOX]}))
    assert res.correct and res.partial == 1.0
    assert res.details == {"dog": [[10.0, 10.0, 50.0, 50.0, 1.0]], "cat": [[10.0, 10.0, 50.0, 50.0, 1.0]]}


# ------------------------------------------------------------------------------ all 553 real prompts

SIZE = 512
OFFSETS = {"left of": (-150, 0), "right of": (150, 0), "above": (0, -150), "below": (0, 150)}


def perfect_detections(meta: dict) -> tuple[dict[str, list[Detection]], dict[str, list[str]]]:
    """Detections (and colours) an ideal generator's image would give for ``meta``."""
    dets: dict[str, list[Detection]] = {}
    colors: dict[str, list[str]] = {}
    anchors: list[tuple[float, float]] = []
    for i, req in enumerate(meta["include"]):
        if "position" in req:
            dx, dy = OFFSETS[req["position"][0]]
            ax, ay = anchors[req["position"][1]]
            cx, cy = ax + dx, ay + dy
        else:
            cx, cy = SIZE / 2 + 60 * i, SIZE / 2
        anchors.append((cx, cy))
        boxes = [(cx - 20 + 5 * k, cy - 20, cx + 20 + 5 * k, cy + 20) for k in range(req["count"])]
        dets[req["class"]] = [Detection(box=b, score=0.95) for b in boxes]
        colors[req["class"]] = [req.get("color", "white")] * req["count"]
    return dets, colors


def load_metadata(benchmarks: Path) -> list[dict]:
    path = benchmarks / "geneval" / "evaluation_metadata.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_all_real_prompts_score_correct_on_perfect_detections(shared_benchmarks: Path):
    rows = load_metadata(shared_benchmarks)
    assert len(rows) == 553
    records = []
    for k, meta in enumerate(rows):
        assert meta["tag"] in GENEVAL_TAGS
        assert all(req["class"] in COCO_CLASSES for req in meta["include"] + meta.get("exclude", []))
        dets, colors = perfect_detections(meta)
        res = score_detections(meta, dets, colors_of(colors))
        assert res.correct and res.partial == 1.0, (meta["prompt"], res.reason)
        # Dropping the last include clause's objects must fail it.
        dets.pop(meta["include"][-1]["class"])
        broken = score_detections(meta, dets, colors_of(colors))
        assert not broken.correct and broken.partial < 1.0, meta["prompt"]
        records.append(make_record(f"{k:05d}/samples/0000.png", meta, res))
        records.append(make_record(f"{k:05d}/samples/0001.png", meta, broken))
    summary = summarize(records)
    assert summary["n_images"] == 1106 and summary["n_prompts"] == 553
    assert summary["tags"] == {t: 0.5 for t in GENEVAL_TAGS} and summary["overall"] == 0.5
    assert summary["correct_images"] == 0.5 and summary["correct_prompts"] == 1.0
    assert summary["missing_tags"] == []


# ---------------------------------------------------------------------------- records and summary


def test_record_schema_and_summary():
    meta = single("dog")
    res = score_detections(meta, detections_from_boxes({"dog": [(*BOX, 0.5)], "cat": [(*BOX, 0.1)]}))
    rec = make_record("00000/samples/0000.png", meta, res)
    assert set(rec) == {"filename", "tag", "prompt", "correct", "reason", "metadata", "details"}
    assert json.loads(rec["metadata"]) == meta and json.loads(rec["details"]) == {
        "dog": [[10, 10, 50, 50, 0.5]]
    }
    records = [
        {"tag": "single_object", "correct": True, "metadata": "a"},
        {"tag": "single_object", "correct": False, "metadata": "a"},
        {"tag": "counting", "correct": False, "metadata": "b"},
        {"tag": "counting", "correct": False, "metadata": "b"},
        {"tag": "counting", "correct": True, "metadata": "c"},
        {"tag": "counting", "correct": False, "metadata": "c"},
    ]
    s = summarize(records)
    assert s["tags"] == {"single_object": 0.5, "counting": 0.25}
    assert s["overall"] == pytest.approx(0.375)  # unweighted over tags, not over images (2/6)
    assert s["correct_images"] == pytest.approx(2 / 6) and s["correct_prompts"] == pytest.approx(2 / 3)
    assert s["tag_counts"] == {"single_object": [1, 2], "counting": [1, 4]}
    assert "position" in s["missing_tags"]
    assert summarize([])["overall"] == 0.0


def test_relative_position_matches_vectorised_formula():
    """Random boxes: the scalar implementation equals the numpy form of the documented rule."""
    np = pytest.importorskip("numpy")
    rng = np.random.default_rng(0)
    for _ in range(2000):
        a, b = np.sort(rng.uniform(0, 100, (2, 2, 2)), axis=1)  # [[x1, y1], [x2, y2]] per box
        offset = a.mean(0) - b.mean(0)
        revised = np.maximum(np.abs(offset) - 0.1 * ((a[1] - a[0]) + (b[1] - b[0])), 0) * np.sign(offset)
        expected = set()
        if not np.all(np.abs(revised) < 1e-3):
            dx, dy = revised / np.linalg.norm(offset)
            expected = {
                n
                for n, hold in zip(RELATION_NAMES, (dx < -0.5, dx > 0.5, dy < -0.5, dy > 0.5), strict=True)
                if hold
            }
        assert relative_position(a.ravel(), b.ravel()) == expected


RELATION_NAMES = ("left of", "right of", "above", "below")
