"""The sketch simulator: how it reads prompts, that it is deterministic, and that it fails at its rates."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

from reprompt.backbones import load_backbone
from reprompt.backbones.base import Backbone
from reprompt.backbones.sketch import COLOR_RGB, SketchBackbone, SketchConfig
from reprompt.backbones.sketch_text import COCO_CLASSES, count_clip_tokens, plural, read_prompt
from reprompt.errors import ConfigError
from reprompt.eval.geneval.detectors import OracleDetector
from reprompt.eval.geneval.rules import relative_position, score_detections

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

ODD = ["", "   \n\n", "!!!???", "asdf qwer", "the the the", "left of above below", "🐶🐱", "ÄÖÜ ça",
       "dog " * 300, "a photo of 0 dogs", "exactly 99999999999999999999 cats",
       "a dog left of a dog"]  # fmt: skip


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


def test_render_time_512():
    bb = SketchBackbone()
    prompts = ["a photo of four handbags", "a photo of a purple wine glass and a black apple"]
    bb.render(prompts, [0, 1])
    t0 = time.perf_counter()
    bb.render(prompts * 10, list(range(20)))
    assert (time.perf_counter() - t0) / 20 < 0.05


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
