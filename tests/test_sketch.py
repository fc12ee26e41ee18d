"""The sketch simulator: how it reads prompts, that it is deterministic, and that it fails at its rates."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from reprompt.backbones import SIMULATORS, is_simulator, load_backbone
from reprompt.backbones.base import Backbone
from reprompt.backbones.sketch import CALIBRATIONS, COLOR_RGB, SketchBackbone, SketchConfig, sketch_config
from reprompt.backbones.sketch_text import count_clip_tokens, read_prompt
from reprompt.errors import ConfigError
from reprompt.geneval.detectors import OracleDetector
from reprompt.geneval.rules import relative_position, score_detections
from reprompt.geneval.vocabulary import COCO_CLASSES
from reprompt.utils.english import plural

os.environ.setdefault("OMP_NUM_THREADS", "1")

SMALL = {"width": 64, "height": 64}
NO_FAILURES = {
    "drop_rate": 0.0,
    "drop_rate_per_neighbor": 0.0,
    "count_error_rate": 0.0,
    "count_error_step": 0.0,
    "color_leak_rate": 0.0,
    "color_ignore_rate": 0.0,
    "relation_follow_rate": 1.0,
}


def sketch(**kw) -> SketchBackbone:
    return SketchBackbone(SketchConfig(**(SMALL | kw)))


def objects(prompt: str) -> list[tuple]:
    """(class, count, color, horizontal, vertical) per object group."""
    return [(o.cls, o.count, o.color, o.horizontal, o.vertical) for o in read_prompt(prompt).objects]


def relations(prompt: str) -> list[tuple[str, str, str]]:
    r = read_prompt(prompt)
    return [(r.objects[x.subject].cls, x.relation, r.objects[x.object].cls) for x in r.relations]


# ------------------------------------------------------------------------------------------- reading

READ_CASES = [
    # GenEval templates
    ("a photo of a bench", [("bench", 1, None, None, None)]),
    ("a photo of a toaster and an oven", [("toaster", 1, None, None, None), ("oven", 1, None, None, None)]),
    ("a photo of four handbags", [("handbag", 4, None, None, None)]),
    ("a photo of three benchs", [("bench", 3, None, None, None)]),  # GenEval's naive plurals
    ("a photo of two sheeps", [("sheep", 2, None, None, None)]),
    ("a photo of a blue fire hydrant", [("fire hydrant", 1, "blue", None, None)]),
    (
        "a photo of a green skis and a brown airplane",
        [("skis", 1, "green", None, None), ("airplane", 1, "brown", None, None)],
    ),
    # multi-word classes, longest match first; synonyms
    (
        "a hot dog, a dog and a teddy bear",
        [("hot dog", 1, None, None, None), ("dog", 1, None, None, None), ("teddy bear", 1, None, None, None)],
    ),
    ("a tv remote and a tv", [("tv remote", 1, None, None, None), ("tv", 1, None, None, None)]),
    (
        "two wine glasses on a dining table",
        [("wine glass", 2, None, None, None), ("dining table", 1, None, None, None)],
    ),
    (
        "a sofa, a motorbike and a hair dryer",
        [
            ("couch", 1, None, None, None),
            ("motorcycle", 1, None, None, None),
            ("hair drier", 1, None, None, None),
        ],
    ),
    (
        "two computer mice and 3 cell phones",
        [("computer mouse", 2, None, None, None), ("cell phone", 3, None, None, None)],
    ),
    ("12 knives, twelve forks", [("knife", 12, None, None, None), ("fork", 12, None, None, None)]),
    (
        "a stop sign near a parking meter and a fire hydrant",
        [
            ("stop sign", 1, None, None, None),
            ("parking meter", 1, None, None, None),
            ("fire hydrant", 1, None, None, None),
        ],
    ),
    # plurals without a number are vague; "orange" the color vs the fruit
    ("some apples", [("apple", None, None, None, None)]),
    ("a photo of an orange", [("orange", 1, None, None, None)]),
    (
        "an orange cup next to two oranges",
        [("cup", 1, "orange", None, None), ("orange", 2, None, None, None)],
    ),
    ("The cup is orange.", [("cup", 1, "orange", None, None)]),
    # color binding: before the noun, predicate after it, not across objects
    (
        "a red-colored car and a dog in a blue bowl",
        [("car", 1, "red", None, None), ("dog", 1, None, None, None), ("bowl", 1, "blue", None, None)],
    ),
    ("A car. The car, which is painted bright yellow, is parked.", [("car", 1, "yellow", None, None)]),
    # absolute places
    ("The dog is positioned on the left side of the frame.", [("dog", 1, None, "left", None)]),
    (
        "a toaster in the top-left corner and an oven in the bottom right",
        [("toaster", 1, None, "left", "top"), ("oven", 1, None, "right", "bottom")],
    ),
    (
        "On the left is a dog, and on the right is a cat",
        [("dog", 1, None, "left", None), ("cat", 1, None, "right", None)],
    ),
    (
        "a vase at the top of the image and a clock in the center",
        [("vase", 1, None, None, "top"), ("clock", 1, None, "center", "middle")],
    ),
    # unknown words ignored; a verb "left" is not a place
    (
        "The man left the kitchen with a zebra.",
        [("person", 1, None, None, None), ("zebra", 1, None, None, None)],
    ),
    # long descriptive prompt (an LLM rewrite)
    (
        "In the image, there are exactly three red apples arranged in a row on a plain surface. "
        "A small brown dog is positioned on the left side of the frame, looking at them.",
        [("apple", 3, "red", None, None), ("dog", 1, "brown", "left", None)],
    ),
]


@pytest.mark.parametrize(("prompt", "expected"), READ_CASES, ids=[c[0][:40] for c in READ_CASES])
def test_read_objects(prompt, expected):
    assert objects(prompt) == expected


REL_CASES = [
    ("a photo of a dog right of a teddy bear", [("dog", "right of", "teddy bear")]),
    ("a photo of a wine glass above a kite", [("wine glass", "above", "kite")]),
    ("a photo of a couch below a cup", [("couch", "below", "cup")]),
    ("a photo of a laptop left of a cow", [("laptop", "left of", "cow")]),
    ("To the right of the teddy bear, there is a dog.", [("dog", "right of", "teddy bear")]),
    ("A cat sits on top of the refrigerator.", [("cat", "above", "refrigerator")]),
    ("A teddy bear under an umbrella, with a cell phone beside it.", [("teddy bear", "below", "umbrella")]),
    ("a bus parked next to a microwave", [("bus", "next to", "microwave")]),
    ("a dog on the left side of the image", []),  # absolute, not a relation
    ("a kite seen from above", []),
]


@pytest.mark.parametrize(("prompt", "expected"), REL_CASES, ids=[c[0][:40] for c in REL_CASES])
def test_read_relations(prompt, expected):
    assert relations(prompt) == expected


@pytest.mark.parametrize(
    ("prompt", "explicit"),
    [
        ("a photo of four handbags", False),
        ("exactly four handbags", True),
        ("a total of 4 handbags", True),
        ("Four handbags. All four handbags are black.", True),  # restated
        ("two dogs. The first dog is on the left, the second dog is on the right.", True),  # enumerated
        ("an apple, another apple and another apple", True),
        ("three dogs. The first dog is brown.", False),  # ordinals do not cover 1..3
    ],
)
def test_explicit_count(prompt, explicit):
    (obj,) = read_prompt(prompt).objects
    assert obj.count_explicit is explicit


def test_color_reinforcement_and_leak_exposure():
    car, dog = read_prompt("a photo of a red car and a blue dog").objects
    assert (car.leak_colors, dog.leak_colors) == (("blue",), ("red",))
    assert not car.color_reinforced and car.crowd == 2
    car, dog = read_prompt("A red car. A dog that is vivid blue.").objects
    assert car.leak_colors == dog.leak_colors == () and car.crowd == dog.crowd == 1
    assert dog.color_reinforced and not car.color_reinforced
    (cow,) = read_prompt("a blue cow. The cow is blue.").objects
    assert cow.color_reinforced


def test_tokens_and_truncation():
    bb = SketchBackbone()
    tc = bb.count_tokens("a photo of a dog, left.")
    assert (tc.tokens, tc.limit, tc.encoder, tc.truncated) == (10, 77, "sketch-clip-approx", False)
    filler = "very " * 74  # 74 tokens: "dog" is token 75, the last one read; "cat" is token 76
    r = read_prompt(filler + "dog cat")
    assert r.tokens == 78 and r.truncated
    assert [o.cls for o in r.objects] == ["dog"]
    assert not read_prompt(filler + "dog").truncated
    assert count_clip_tokens("12 dogs!!") == 2 + 2 + 1 + 1  # BOS, EOS, one per digit like CLIP, word, "!!"
    out = sketch().render([filler + "dog cat"], [0])
    assert any("CLIP truncation" in w for w in out.warnings)
    assert [
        o.cls for o in SketchBackbone(SketchConfig(token_limit=None)).read(filler + "dog cat").objects
    ] == [
        "dog",
        "cat",
    ]


def test_every_class_is_read_singular_and_plural():
    for cls in COCO_CLASSES:
        assert objects(f"a photo of a {cls}")[0][:2] == (cls, 1), cls
        assert objects(f"a photo of three {plural(cls)}")[0][:2] == (cls, 3), cls


# ----------------------------------------------------------------------------------- determinism


def scene_key(scene):
    return [(o.cls, o.box, o.color, o.mask.tobytes()) for o in scene]


def test_same_seed_same_image_and_scene():
    prompts = ["a photo of a purple wine glass and a black apple", "three dogs left of a cat"]
    a, b = sketch().render(prompts, [7, 8]), sketch().render(prompts, [7, 8])
    for ia, ib, sa, sb in zip(a.images, b.images, a.scenes, b.scenes, strict=True):
        assert ia.tobytes() == ib.tobytes()
        assert scene_key(sa) == scene_key(sb)


def test_different_seeds_differ():
    out = sketch().render(["a photo of a dog and a cat"] * 8, list(range(8)))
    assert len({im.tobytes() for im in out.images}) == 8


def test_batch_equals_single():
    bb = sketch()
    prompts = ["a photo of four handbags", "", "a red car and a blue dog", "a vase above a couch"]
    seeds = [3, 1, 4, 1]
    batch = bb.render(prompts, seeds)
    for k, (p, s) in enumerate(zip(prompts, seeds, strict=True)):
        single = bb.render([p], [s])
        assert single.images[0].tobytes() == batch.images[k].tobytes()
        assert scene_key(single.scenes[0]) == scene_key(batch.scenes[k])
        assert single.info["events"][0] == batch.info["events"][k]


def test_protocol_and_registry():
    bb = load_backbone("sketch", width=64, height=64)
    assert isinstance(bb, Backbone) and bb.name == "sketch"
    out = bb.render(["a dog"], [0])
    assert out.images[0].size == (64, 64) and out.seeds == [0] and out.prompts == ["a dog"]
    with pytest.raises(ValueError):
        bb.render(["a dog"], [0, 1])


@pytest.mark.parametrize("field_value", [{"drop_rate": 1.5}, {"color_leak_rate": -0.1}, {"width": 2}])
def test_config_rejects_bad_values(field_value):
    with pytest.raises(ConfigError):
        SketchConfig(**field_value)


# ------------------------------------------------------------------------------------- robustness

# fmt: off
ODD = ["", "   \n\n", "!!!???", "asdf qwer", "the the the", "left of above below", "🐶🐱", "ÄÖÜ ça",
       "dog " * 300, "a photo of 0 dogs", "exactly 99999999999999999999 cats",
       "a dog left of a dog"]
# fmt: on


def test_odd_prompts_render_and_warn():
    out = sketch().render(ODD, list(range(len(ODD))))
    assert len(out.images) == len(ODD) and all(im.size == (64, 64) for im in out.images)
    warned = {int(w.split(":")[0].removeprefix("prompt ")) for w in out.warnings}
    for k in (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10):
        assert k in warned, ODD[k]
    assert len(out.scenes[10]) == 16  # clipped to max_per_class
    assert out.scenes[0] == [] and out.images[0].getcolors() == [(64 * 64, SketchConfig().background)]
    for seed in (-1, 2**70):
        assert sketch().render(["a dog"], [seed]).scenes[0][0].cls == "dog"


def test_scene_matches_image():
    bb = sketch(width=96, height=80, draw_labels=False)
    prompts = ["two red apples, a blue cup and three dogs", "a photo of a bus left of a giraffe"]
    out = bb.render(prompts * 5, list(range(10)))
    for im, scene in zip(out.images, out.scenes, strict=True):
        pixels = np.asarray(im)
        for o in scene:
            x1, y1, x2, y2 = o.box
            assert 0 <= x1 < x2 <= 96 and 0 <= y1 < y2 <= 80
            assert o.mask.shape == (80, 96) and o.mask.dtype == bool
            ys, xs = np.nonzero(o.mask)
            assert len(ys) > 0
            assert xs.min() >= int(x1) - 1 and xs.max() <= x2 and ys.min() >= int(y1) - 1 and ys.max() <= y2
            # most visible pixels carry the object's color (the rest is its outline)
            assert (pixels[o.mask] == COLOR_RGB[o.color]).all(axis=1).mean() > 0.5


def test_a_batch_renders_what_one_by_one_renders_512():
    """Image k depends only on (prompt k, seed k): rendered in a batch of 20 or alone, the same pixels. (Its
    speed, < 50 ms per 512x512 image on a CPU, is measured by benchmarks/sketch_calibration.py, not here.)"""
    bb = SketchBackbone()
    prompts = ["a photo of four handbags", "a photo of a purple wine glass and a black apple"] * 10
    batch = bb.render(prompts, list(range(20)))
    assert [im.size for im in batch.images] == [(512, 512)] * 20
    for k in (0, 7, 19):
        assert bb.render([prompts[k]], [k]).images[0].tobytes() == batch.images[k].tobytes()


# ---------------------------------------------------------------------------------- failure modes

N = 400
TOL = 0.06  # about 3.5 binomial standard errors at p = 0.5 and N = 400


def rate(bb, prompt, predicate) -> float:
    out = bb.render([prompt] * N, list(range(N)))
    return float(np.mean([predicate(scene) for scene in out.scenes]))


def classes(scene):
    return [o.cls for o in scene]


def test_drop_rate_depends_on_clause_sharing():
    cfg = {"drop_rate": 0.05, "drop_rate_per_neighbor": 0.2}
    bb = sketch(**cfg)
    assert rate(bb, "a photo of a dog and a cat", lambda s: "dog" not in classes(s)) == pytest.approx(
        0.25, abs=TOL
    )
    assert rate(bb, "A photo of a dog. A cat.", lambda s: "dog" not in classes(s)) == pytest.approx(
        0.05, abs=TOL
    )


def test_count_errors_depend_on_explicitness():
    bb = sketch(count_error_rate=0.2, count_error_step=0.1, drop_rate=0.0)
    off = rate(bb, "a photo of four dogs", lambda s: len(s) != 4)
    assert off == pytest.approx(0.4, abs=TOL)
    assert rate(bb, "a photo of four dogs", lambda s: abs(len(s) - 4) > 1) == 0.0
    assert rate(bb, "a photo of exactly four dogs", lambda s: len(s) != 4) == 0.0
    assert rate(bb, "a photo of a dog", lambda s: len(s) != 1) == 0.0


def test_color_leak_and_ignore():
    bb = sketch(**(NO_FAILURES | {"color_leak_rate": 0.3, "color_ignore_rate": 0.4}))
    dog_color = lambda s: next(o.color for o in s if o.cls == "dog")  # noqa: E731
    leaked = rate(bb, "a photo of a red car and a blue dog", lambda s: dog_color(s) == "red")
    assert leaked == pytest.approx(0.3, abs=TOL)
    assert rate(bb, "A red car. A blue dog.", lambda s: dog_color(s) == "red") == 0.0
    # ignored only when not leaked: 0.7 * 0.4
    assert rate(
        bb, "a photo of a red car and a blue dog", lambda s: dog_color(s) == "brown"
    ) == pytest.approx(0.28, abs=TOL)
    assert rate(bb, "a photo of a blue dog", lambda s: dog_color(s) == "brown") == pytest.approx(0.4, abs=TOL)
    assert rate(bb, "a photo of a bright blue dog", lambda s: dog_color(s) == "brown") == 0.0
    assert rate(bb, "a photo of a brown dog", lambda s: dog_color(s) != "brown") == 0.0  # natural color


def test_relations_followed_at_rate_unless_placed_absolutely():
    bb = sketch(**(NO_FAILURES | {"relation_follow_rate": 0.5}))

    def left(scene):
        dog = next(o for o in scene if o.cls == "dog")
        cat = next(o for o in scene if o.cls == "cat")
        return "left of" in relative_position(dog.box, cat.box)

    out = bb.render(["a photo of a dog left of a cat"] * N, list(range(N)))
    followed = 1 - np.mean([any(e["kind"] == "relation_ignored" for e in ev) for ev in out.info["events"]])
    assert followed == pytest.approx(0.5, abs=TOL)
    assert all(left(s) for s, ev in zip(out.scenes, out.info["events"], strict=True) if not ev)
    placed = (
        "A dog left of a cat. The dog is on the left side of the image. "
        "The cat is on the right side of the image."
    )
    assert rate(bb, placed, left) > 0.97


def test_geneval_plain_vs_explicit_rewrite():
    """End to end with the official rules: defaults miss plain relations/counts, not explicit rewrites."""
    bb = sketch()
    oracle = OracleDetector()
    cases = [
        (
            {
                "tag": "position",
                "include": [
                    {"class": "couch", "count": 1},
                    {"class": "vase", "count": 1, "position": ["above", 0]},
                ],
            },
            "a photo of a vase above a couch",
            "There is exactly one couch at the bottom of the image. "
            "There is exactly one vase at the top of the image.",
        ),
        (
            {
                "tag": "counting",
                "include": [{"class": "clock", "count": 4}],
                "exclude": [{"class": "clock", "count": 5}],
            },
            "a photo of four clocks",
            "A photo of exactly four clocks.",
        ),
        (
            {
                "tag": "color_attr",
                "include": [
                    {"class": "bus", "count": 1, "color": "green"},
                    {"class": "microwave", "count": 1, "color": "purple"},
                ],
            },
            "a photo of a green bus and a purple microwave",
            "A bright green bus on the left side of the image. "
            "A bright purple microwave on the right side of the image.",
        ),
    ]
    for meta, plain, rewrite in cases:
        scores = []
        for prompt in (plain, rewrite):
            out = bb.render([prompt] * 100, list(range(100)))
            dets = oracle.detect(out.images, out.scenes)
            scores.append(
                np.mean(
                    [
                        score_detections(meta, d, classify_colors=oracle.colors_for(s)).correct
                        for d, s in zip(dets, out.scenes, strict=True)
                    ]
                )
            )
        assert scores[0] < 0.75 and scores[1] > 0.93, (plain, scores)


# ------------------------------------------------------------------- hidden strategy, cues, calibrations

CUP_LEFT_OF_DOG = {
    "tag": "position",
    "include": [{"class": "dog", "count": 1}, {"class": "cup", "count": 1, "position": ["left of", 0]}],
}
MIRRORED = "a photo of a cup left of a dog. In other words, the dog is to the right of the cup."


PLAIN_RELATION = "a photo of a dog left of a cat"


def followed(bb, prompt, n=N) -> float:
    """Share of images in which the prompt's relation was laid out (not ignored)."""
    events = bb.render([prompt] * n, list(range(n))).info["events"]
    return 1 - float(np.mean([any(e["kind"] == "relation_ignored" for e in ev) for ev in events]))


def geneval_rate(bb, meta, prompt, n=N) -> float:
    oracle = OracleDetector()
    out = bb.render([prompt] * n, list(range(n)))
    dets = oracle.detect(out.images, out.scenes)
    return float(
        np.mean(
            [
                score_detections(meta, d, classify_colors=oracle.colors_for(s)).correct
                for d, s in zip(dets, out.scenes, strict=True)
            ]
        )
    )


@pytest.mark.parametrize(
    ("prompt", "mirrored"),
    [
        (MIRRORED, [True, True]),
        ("a cup to the left of a dog, with the dog to the right of the cup", [True, True]),
        ("A vase above a couch; the couch sits below the vase.", [True, True]),
        ("a cup left of a dog. The cup is left of the dog.", [False]),  # the same side twice: one relation
        ("a cup left of a dog. The dog is left of the cup.", [False, False]),  # contradictory, not mirrored
        ("a photo of a cup left of a dog", [False]),
    ],
)
def test_mirrored_relations_are_read(prompt, mirrored):
    assert [r.mirrored for r in read_prompt(prompt).relations] == mirrored


@pytest.mark.parametrize(
    ("prompt", "count_cues", "color_cues"),
    [
        ("exactly four blue cups", ("emphasis",), ()),
        ("four cups. All four cups are blue.", ("restated",), ("predicate",)),
        (
            "exactly four cups. The four cups are bright blue.",
            ("emphasis", "restated"),
            ("intensified", "predicate"),
        ),
        ("three cups: the first cup, the second cup and the third cup", ("enumerated",), ()),
        ("a blue cup. The cup is blue.", (), ("repeated", "predicate")),
        ("a bright blue cup", (), ("intensified",)),
        ("two blue cups", (), ()),
    ],
)
def test_count_and_color_cues(prompt, count_cues, color_cues):
    (cup,) = read_prompt(prompt).objects
    assert (cup.count_cues, cup.color_cues) == (count_cues, color_cues)
    assert cup.count_explicit == bool(count_cues)
    assert cup.color_reinforced == bool({"repeated", "intensified"} & set(color_cues))


def test_hidden_strategy_raises_the_geneval_score():
    """Same seeds, same request: stating the relation from both sides gets it drawn far more often, on
    both calibrations; restating it from the same side does not."""
    for name in ("sketch", "sketch-b"):
        bb = load_backbone(name, **SMALL)
        plain = geneval_rate(bb, CUP_LEFT_OF_DOG, "a photo of a cup left of a dog")
        mirrored = geneval_rate(bb, CUP_LEFT_OF_DOG, MIRRORED)
        same_side = geneval_rate(
            bb, CUP_LEFT_OF_DOG, "a photo of a cup left of a dog. The cup is left of the dog."
        )
        assert plain < 0.45 and same_side < 0.45, (name, plain, same_side)
        assert mirrored > max(plain, same_side) + 0.25, (name, plain, same_side, mirrored)


def test_mirrored_rate_follows_its_setting_and_touches_nothing_else():
    kept = {"drop_rate": 0.0, "drop_rate_per_neighbor": 0.0}  # a dropped object has no relation to follow
    never = sketch(**kept, relation_follow_rate_mirrored=0.0)
    always = sketch(**kept, relation_follow_rate_mirrored=1.0)
    assert (followed(never, MIRRORED), followed(always, MIRRORED)) == (0.0, 1.0)
    assert followed(sketch(**kept), MIRRORED) == pytest.approx(
        SketchConfig().relation_follow_rate_mirrored, abs=TOL
    )
    # prompts without a mirrored relation draw the same scenes whatever the setting
    others = [
        "a photo of a cup left of a dog",
        "a photo of a vase above a couch. The vase is above the couch.",
        "A cup on the left side of the image. A dog on the right side of the image. The cup is left of the dog.",
        "a photo of four clocks",
        "a photo of a red car and a blue dog",
        "a dog next to a cat, the cat beside it",
    ]
    seeds = list(range(len(others)))
    a, b = never.render(others * 20, seeds * 20), always.render(others * 20, seeds * 20)
    assert [scene_key(s) for s in a.scenes] == [scene_key(s) for s in b.scenes]
    assert a.info["events"] == b.info["events"]


def test_second_calibration_is_selectable_by_name_and_differs():
    a, b = load_backbone("sketch", **SMALL), load_backbone("sketch-b", **SMALL)
    assert (a.name, b.name) == ("sketch", "sketch-b")
    assert a.config == SketchConfig(**SMALL)
    differs = {
        f
        for f in (
            "relation_follow_rate",
            "count_error_rate",
            "explicit_count_cues",
            "color_reinforcement_cues",
            "absolute_follow_rate",
        )
        if getattr(a.config, f) != getattr(b.config, f)
    }
    assert len(differs) == 5
    assert b.config.relation_follow_rate > a.config.relation_follow_rate
    assert sketch_config("sketch-b", relation_follow_rate=0.5).relation_follow_rate == 0.5  # overrides on top
    assert SketchBackbone(name="sketch-b").config == sketch_config("sketch-b")
    assert set(CALIBRATIONS) == set(SIMULATORS) and all(is_simulator(n) for n in SIMULATORS)
    with pytest.raises(ConfigError, match="Did you mean 'sketch-b'"):
        sketch_config("sketch-c")
    with pytest.raises(ConfigError, match="has no setting 'device'"):
        load_backbone("sketch-b", device="cuda")
    with pytest.raises(ConfigError, match="unknown cues"):
        SketchConfig(explicit_count_cues=("exact",))
    assert SketchConfig(color_reinforcement_cues=["predicate"]).color_reinforcement_cues == ("predicate",)


def test_calibrations_trust_different_cues():
    """sketch trusts "exactly four" and "bright blue"; sketch-b trusts a restated count and a color
    stated after its noun, and follows plain relations more often."""
    kept = {"drop_rate": 0.0, "drop_rate_per_neighbor": 0.0}
    a, b = load_backbone("sketch", **SMALL, **kept), load_backbone("sketch-b", **SMALL, **kept)
    four = lambda s: len(s) == 4  # noqa: E731
    assert rate(a, "a photo of exactly four dogs", four) == 1.0
    implicit_b = 1 - min(b.config.count_error_max, b.config.count_error_rate + 2 * b.config.count_error_step)
    assert rate(b, "a photo of exactly four dogs", four) == pytest.approx(implicit_b, abs=TOL)
    assert rate(b, "Four dogs. All four dogs are asleep.", four) == 1.0
    blue = lambda s: s[0].color == "blue"  # noqa: E731
    assert rate(a, "a photo of a bright blue dog", blue) == 1.0
    assert rate(b, "a photo of a bright blue dog", blue) == pytest.approx(
        1 - b.config.color_ignore_rate, abs=TOL
    )
    assert rate(b, "a photo of a dog. The dog is blue.", blue) == 1.0
    assert followed(b, PLAIN_RELATION) == pytest.approx(b.config.relation_follow_rate, abs=TOL)
    assert followed(a, PLAIN_RELATION) == pytest.approx(a.config.relation_follow_rate, abs=TOL)


def test_huge_count_with_ordinals_reads_in_bounded_memory():
    """Regression: "99999999999999 cats. The first cat" built range(1, count + 1) as a set (MemoryError,
    or the OOM killer without a limit). Read under a 2 GiB address-space limit in a subprocess."""
    code = (
        "import resource; resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30)); "
        "from reprompt.backbones.sketch_text import read_prompt; "
        "(o,) = read_prompt('99999999999999 cats. The first cat is here.').objects; print(o.count, o.count_cues)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-500:]
    assert out.stdout.split() == ["99999999999999", "()"]


def test_labels_name_the_object():
    """A first-time user reads "dog", not "DOG"'s first three letters or "TB" for a teddy bear."""
    from reprompt.backbones.sketch import shape_label

    assert shape_label("dog", 120, 120) == ("dog", 33)
    text, _ = shape_label("teddy bear", 90, 90)
    assert text.replace("\n", " ") == "teddy bear"
    assert shape_label("refrigerator", 30, 30) == ("REF", 8)  # too narrow for the name: abbreviated
    assert shape_label("cat", 10, 10) is None  # too small for any readable text
    bb = sketch(width=256, height=256)
    image = bb.render(["a photo of a teddy bear"], [0]).images[0]
    plain = (
        sketch(width=256, height=256, draw_labels=False).render(["a photo of a teddy bear"], [0]).images[0]
    )
    assert image.tobytes() != plain.tobytes()  # the name is drawn
