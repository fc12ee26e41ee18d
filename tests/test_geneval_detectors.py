"""GenEval detectors and colour classifier: oracle, label mapping, and tiny Mask2Former + CLIP end to end."""

from __future__ import annotations

import importlib.util
import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from reprompt.errors import RepromptError
from reprompt.geneval.detectors import DETECTORS, coco_name, label_mapping, load_detector
from reprompt.geneval.rules import Detection, GenEvalResult
from reprompt.geneval.scene import SceneObject
from reprompt.geneval.scoring import make_record, score_image, score_images
from reprompt.geneval.vocabulary import COCO_CLASSES, GENEVAL_COLORS

# --------------------------------------------------------------------------------------------- registry


def test_registry_and_unknown_name():
    from reprompt.geneval.scorer import DETECTOR_CHOICES

    # every detector the scorer config (and so the CLI) offers is registered, under its own name
    assert set(DETECTORS) == set(DETECTOR_CHOICES) - {"auto"}
    assert all(cls.name == key for key, cls in DETECTORS.items())
    with pytest.raises(RepromptError, match="Did you mean 'oracle'"):
        load_detector("oracel")


@pytest.mark.skipif(importlib.util.find_spec("mmdet") is not None, reason="mmdet is installed")
def test_mmdet_missing_says_how_to_install():
    with pytest.raises(RepromptError, match="mim install"):
        load_detector("mmdet", config="x.py", checkpoint="x.pth")


def test_mmdet_outputs_are_converted():
    from types import SimpleNamespace

    import torch

    from reprompt.geneval.detectors import from_mmdet

    bbox = [np.zeros((0, 5), dtype=np.float32) for _ in COCO_CLASSES]
    segm = [[] for _ in COCO_CLASSES]
    bbox[16] = np.array([[1, 2, 3, 4, 0.9], [5, 6, 7, 8, 0.2]], dtype=np.float32)
    segm[16] = [np.ones((10, 10), dtype=bool), np.zeros((10, 10), dtype=bool)]
    dets = from_mmdet((bbox, segm))
    assert list(dets) == ["dog"] and [d.box for d in dets["dog"]] == [(1, 2, 3, 4), (5, 6, 7, 8)]
    assert dets["dog"][0].score == pytest.approx(0.9) and dets["dog"][0].mask.shape == (10, 10)

    class Instances(SimpleNamespace):
        def __contains__(self, key):
            return hasattr(self, key)

    inst = Instances(
        bboxes=torch.tensor([[1.0, 2, 3, 4]]), scores=torch.tensor([0.5]), labels=torch.tensor([17])
    )
    dets = from_mmdet(SimpleNamespace(pred_instances=inst))
    assert list(dets) == ["horse"] and dets["horse"][0].box == (1, 2, 3, 4) and dets["horse"][0].mask is None


def test_label_mapping():
    assert coco_name("mouse") == "computer mouse" and coco_name("remote") == "tv remote"
    assert coco_name("keyboard") == "computer keyboard" and coco_name("tvmonitor") == "tv"
    assert coco_name("dining table") == "dining table" and coco_name("diningtable") == "dining table"
    assert coco_name("Teddy_Bear") == "teddy bear" and coco_name("hair dryer") == "hair drier"
    assert coco_name("sky-other-merged") is None and coco_name("wall") is None
    every = {i: name for i, name in enumerate(COCO_CLASSES)}
    assert label_mapping(every) == every
    generic = {i: f"LABEL_{i}" for i in range(133)}
    assert label_mapping(generic) == every
    with pytest.raises(RepromptError, match="COCO"):
        label_mapping({0: "LABEL_0", 1: "LABEL_1"})


def test_masks_to_boxes_is_exclusive_at_the_far_edge():
    import torch

    from reprompt.geneval.detectors import masks_to_boxes

    masks = torch.zeros((2, 10, 20), dtype=torch.bool)
    masks[0, 2:5, 3:8] = True
    assert masks_to_boxes(masks).tolist() == [[3, 2, 8, 5], [0, 0, 0, 0]]


# ----------------------------------------------------------------------------------------------- oracle


def scene() -> list[SceneObject]:
    mask = np.zeros((64, 64), dtype=bool)
    mask[20:40, 5:25] = True
    return [
        SceneObject(cls="teddy bear", box=(40.0, 20.0, 60.0, 40.0), color="brown"),
        SceneObject(cls="dog", box=(5.0, 20.0, 25.0, 40.0), color="red", mask=mask),
    ]


def test_oracle_detects_and_knows_colours():
    oracle = load_detector("oracle")
    image = Image.new("RGB", (64, 64))
    with pytest.raises(RepromptError, match="sketch"):
        oracle.detect([image])
    (dets,) = oracle.detect([image], [scene()])
    assert set(dets) == {"teddy bear", "dog"} and dets["dog"][0].score == 1.0
    assert dets["dog"][0].mask is not None and dets["dog"][0].box == (5.0, 20.0, 25.0, 40.0)
    colors = oracle.colors_for(scene())
    assert colors("dog", dets["dog"]) == ["red"] and colors("teddy bear", dets["teddy bear"]) == ["brown"]
    assert pickle.loads(pickle.dumps(colors))("dog", dets["dog"]) == ["red"]


def test_oracle_scoring_end_to_end():
    oracle, image = load_detector("oracle"), Image.new("RGB", (64, 64))
    left = {
        "tag": "position",
        "include": [
            {"class": "teddy bear", "count": 1},
            {"class": "dog", "count": 1, "position": ["left of", 0]},
        ],
        "prompt": "a photo of a dog left of a teddy bear",
    }
    red = {
        "tag": "color_attr",
        "include": [
            {"class": "dog", "count": 1, "color": "red"},
            {"class": "teddy bear", "count": 1, "color": "red"},
        ],
        "prompt": "a photo of a red dog and a red teddy bear",
    }
    assert score_image(left, image, scene(), detector=oracle).correct
    res = score_image(red, image, scene(), detector=oracle)
    assert not res.correct and res.reason == "expected red teddy bear>=1, found 0 red; and 1 brown"
    # An explicit classifier (a plain callable here) overrides the oracle's colours.
    assert score_image(
        red, image, scene(), detector=oracle, color_classifier=lambda c, objs: ["red"] * len(objs)
    ).correct
    results = score_images([left, red], [image, image], [scene(), scene()], detector=oracle)
    assert [r.correct for r in results] == [True, False]


# ------------------------------------------------------------------------------ tiny Mask2Former + CLIP


def images() -> list[Image.Image]:
    rng = np.random.default_rng(0)
    return [
        Image.fromarray(rng.integers(0, 255, (48, 72, 3), dtype=np.uint8)),
        Image.fromarray(rng.integers(0, 255, (48, 72, 3), dtype=np.uint8)),
        Image.fromarray(rng.integers(0, 255, (80, 56, 3), dtype=np.uint8)),
    ]


@pytest.fixture(scope="module")
def mask2former(tiny_model):
    return load_detector("mask2former", model_id_or_path=str(tiny_model("tiny-mask2former")), batch_size=2)


@pytest.fixture(scope="module")
def clip(tiny_model):
    from reprompt.geneval.colors import ClipColorClassifier

    return ClipColorClassifier(str(tiny_model("tiny-clip")))


def test_mask2former_detections_are_well_formed(mask2former):
    imgs = images()
    batch = mask2former.detect(imgs)
    assert len(batch) == 3
    for image, dets in zip(imgs, batch, strict=True):
        assert dets and set(dets) <= set(COCO_CLASSES)
        assert sum(map(len, dets.values())) <= 100
        for det in (d for ds in dets.values() for d in ds):
            x1, y1, x2, y2 = det.box
            assert 0 <= x1 < x2 <= image.width and 0 <= y1 < y2 <= image.height
            assert 0.0 < det.score <= 1.0
            assert det.mask.shape == (image.height, image.width) and det.mask.dtype == bool
            ys, xs = np.nonzero(det.mask)
            assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == det.box
    # Same-size images: the batch result equals the single-image result.
    (alone,) = mask2former.detect([imgs[1]])
    assert {k: [round(d.score, 5) for d in v] for k, v in alone.items()} == {
        k: [round(d.score, 5) for d in v] for k, v in batch[1].items()
    }


def test_clip_colour_classifier(clip):
    from reprompt.geneval.colors import object_crop

    image = Image.new("RGB", (64, 48), (200, 10, 10))
    mask = np.zeros((48, 64), dtype=bool)
    mask[10:20, 5:30] = True
    dets = [
        Detection((5, 10, 30, 20), 0.9, mask),
        Detection((0, 0, 64, 48), 0.5),
        Detection((3, 3, 3, 3), 0.4),
    ]
    colors = clip.for_image(image)("dog", dets)
    assert len(colors) == 3 and set(colors) <= set(GENEVAL_COLORS)
    assert tuple(clip.text_embeddings("dog").shape)[0] == 10 and "dog" in clip._text
    crop = object_crop(image, Detection((0, 0, 64, 48), 0.9, mask))
    assert (
        crop.size == (64, 48)
        and crop.getpixel((0, 0)) == (153, 153, 153)
        and crop.getpixel((10, 15)) == (200, 10, 10)
    )
    assert object_crop(image, dets[2]).size == (1, 1)
    with pytest.raises(ValueError, match="mask shape"):
        object_crop(image, Detection((0, 0, 4, 4), 0.9, np.zeros((4, 4), dtype=bool)))


def test_mask2former_and_clip_end_to_end(mask2former, clip):
    from reprompt.geneval.rules import GenEvalOptions

    image = images()[0]
    (dets,) = mask2former.detect([image])
    first, second = sorted(dets, key=lambda c: -max(d.score for d in dets[c]))[:2]
    meta = {
        "tag": "color_attr",
        "include": [
            {"class": first, "count": 1, "color": "red"},
            {"class": second, "count": 1, "color": "blue"},
        ],
        "prompt": f"a photo of a red {first} and a blue {second}",
    }
    # A random model's scores are tiny: a zero threshold makes every clause reach the colour check.
    options = GenEvalOptions(threshold=0.0)
    res = score_image(meta, image, detector=mask2former, color_classifier=clip, options=options)
    assert isinstance(res, GenEvalResult) and res.clauses_total == 2
    assert res.correct == (res.reason == "") and first in res.details and second in res.details
    # Both objects were found, so any failure is a colour one.
    assert all(line.startswith(("expected red", "expected blue")) for line in res.reason.splitlines())
    rec = make_record("00000/samples/0000.png", meta, res)
    assert rec["tag"] == "color_attr" and rec["correct"] is res.correct
    with pytest.raises(ValueError, match="classify_colors"):
        score_image(meta, image, detector=mask2former, options=options)


def test_load_missing_model_names_the_fix(tmp_path: Path):
    from reprompt.errors import ModelNotFoundError

    with pytest.raises(ModelNotFoundError, match="local folder"):
        load_detector("mask2former", model_id_or_path=str(tmp_path / "nope"))
