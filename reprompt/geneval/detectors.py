"""Object detectors for GenEval: ``detect(images, scenes=None) -> [{class: [Detection, ...]}, ...]``.

Detectors return ALL their detections, unsorted and unthresholded (beyond a tiny score floor), keyed by
GenEval's 80 class names; ``rules.score_detections`` applies the official thresholds. Backends:

- ``oracle``: the scene a simulator backbone (e.g. ``sketch``) drew; also knows the drawn colours.
- ``mask2former``: transformers' Mask2Former (default ``facebook/mask2former-swin-small-coco-instance``):
  the same architecture (Mask2Former, Swin-S backbone, COCO instance segmentation) as GenEval's mmdet model,
  but another checkpoint (Meta's release converted to transformers, not mmdet's training run), so its
  detections and GenEval numbers can differ from the official tool's. Parity with mmdet has not been
  measured here (no weights offline); report which detector a number came from.
- ``mmdet``: GenEval's own mmdet 2.x setup, when ``mmdet`` is installed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from reprompt.errors import RepromptError, did_you_mean
from reprompt.geneval.checkpoints import DEFAULT_MASK2FORMER
from reprompt.geneval.rules import Detection
from reprompt.geneval.vocabulary import COCO_CLASSES
from reprompt.utils.dtypes import resolve_dtype
from reprompt.utils.hub import from_pretrained

if TYPE_CHECKING:
    import torch
    from PIL import Image

    from reprompt.geneval.scene import SceneObject

Detections = dict[str, list[Detection]]


@runtime_checkable
class Detector(Protocol):
    name: str

    def detect(self, images: list[Image.Image], scenes: list | None = None) -> list[Detections]: ...


# --------------------------------------------------------------------------------------------- oracle


class OracleDetector:
    """Reads back what a simulator drew: exact boxes, masks and colours (an upper bound, no model).

    Scores are the scene objects' own ``score`` (1.0 unless the simulator models uncertainty).
    """

    name = "oracle"

    def detect(self, images: list[Image.Image], scenes: list | None = None) -> list[Detections]:
        if scenes is None or any(scene is None for scene in scenes):
            raise RepromptError(
                "the oracle detector needs a simulator backbone such as sketch (it reads the drawn scene); "
                "use detector 'mask2former' for real images. A render farm (remote:...) sends scenes only "
                "from reprompt serve --backbone sketch servers; other image servers send pixels only"
            )
        if len(scenes) != len(images):
            raise ValueError(f"got {len(images)} images but {len(scenes)} scenes")
        return [self._detections(scene) for scene in scenes]

    @staticmethod
    def _detections(scene: Sequence[SceneObject]) -> Detections:
        out: Detections = {}
        for obj in scene:
            det = Detection(box=tuple(float(v) for v in obj.box), score=float(obj.score), mask=obj.mask)  # type: ignore[arg-type]
            out.setdefault(obj.cls, []).append(det)
        return out

    def colors_for(self, scene: Sequence[SceneObject]) -> OracleColors:
        """The ``classify_colors`` callable for one scene: returns the colours that were drawn."""
        return OracleColors(scene)


class OracleColors:
    """``classify_colors`` from a drawn scene; objects are matched by class and box."""

    def __init__(self, scene: Sequence[SceneObject]) -> None:
        self._colors: dict[tuple[str, tuple[float, ...]], str] = {}
        for obj in scene:
            self._colors.setdefault((obj.cls, tuple(float(v) for v in obj.box)), obj.color or "unknown")

    def __call__(self, classname: str, objects: list[Detection]) -> list[str]:
        return [self._colors.get((classname, tuple(float(v) for v in d.box)), "unknown") for d in objects]


# ---------------------------------------------------------------------------------------- mask2former

# Other spellings of GenEval's names (compared lower-case, without spaces, "_" or "-"): COCO's
# instance labels use "mouse"/"remote"/"keyboard"; VOC-style and older label sets use the rest.
_ALIASES = {
    "mouse": "computer mouse",
    "remote": "tv remote",
    "keyboard": "computer keyboard",
    "tvmonitor": "tv",
    "television": "tv",
    "motorbike": "motorcycle",
    "aeroplane": "airplane",
    "sofa": "couch",
    "hairdryer": "hair drier",
    "doughnut": "donut",
    "mobilephone": "cell phone",
}
_KEYS = {name.replace(" ", ""): name for name in COCO_CLASSES} | _ALIASES


def coco_name(label: str) -> str | None:
    """Map a detector's label to GenEval's class name, or None (e.g. panoptic "stuff" such as "sky-other")."""
    key = re.sub(r"[\s_\-]+", "", label.lower())
    return _KEYS.get(key)


def label_mapping(id2label: dict[int, str]) -> dict[int, str]:
    """Model label id -> GenEval class name.

    Labels are mapped by name (``coco_name``), which covers COCO instance (80) and panoptic (133)
    label sets. A model whose labels are generic ("LABEL_0", ...) with 80 or 133 labels is mapped by
    index: COCO's thing classes come first, in the same order, in both.
    """
    mapping = {int(i): name for i, label in id2label.items() if (name := coco_name(str(label)))}
    if not mapping and len(id2label) in (80, 133):
        mapping = {i: COCO_CLASSES[i] for i in range(80)}
    if not mapping:
        raise RepromptError(
            f"none of the detector's {len(id2label)} labels is a COCO class; use a COCO model"
        )
    return mapping


class Mask2FormerDetector:
    """transformers Mask2Former, post-processed like mmdet's Mask2Former (what GenEval runs).

    Per image: the top ``max_per_image`` (query, class) pairs by class probability; mask logits are
    upsampled to the network input, the padding is cut, then resized to the original image and
    thresholded at 0; score = class probability x mean mask probability inside the mask; box = the
    mask's extent (x2, y2 exclusive). This differs from ``post_process_instance_segmentation``, which
    resizes through a fixed 384x384 grid and drops scores under 0.5.

    Resolution: the checkpoint's image processor config decides the input size. GenEval's mmdet config
    tests at 1333x800; pass ``processor_kwargs={"size": {"shortest_edge": 800, "longest_edge": 1333}}``
    to match it more closely.
    """

    name = "mask2former"

    def __init__(
        self,
        model_id_or_path: str = DEFAULT_MASK2FORMER,
        device: str = "cpu",
        dtype: torch.dtype | str | None = None,
        *,
        batch_size: int = 4,
        max_per_image: int = 100,
        score_floor: float = 0.0,
        return_masks: bool = True,
        processor_kwargs: dict[str, Any] | None = None,
        model: Any = None,
        processor: Any = None,
    ) -> None:
        from transformers import AutoImageProcessor, Mask2FormerForUniversalSegmentation

        self.device, self.dtype = device, resolve_dtype(dtype or "float32")
        self.batch_size, self.max_per_image = batch_size, max_per_image
        self.score_floor, self.return_masks = score_floor, return_masks
        self.model = model or from_pretrained(
            Mask2FormerForUniversalSegmentation, model_id_or_path, kind="Mask2Former", dtype=self.dtype
        )
        self.processor = processor or from_pretrained(
            AutoImageProcessor, model_id_or_path, kind="Mask2Former processor", **(processor_kwargs or {})
        )
        self.model.to(device).eval()
        self.labels = label_mapping(self.model.config.id2label)

    def detect(self, images: list[Image.Image], scenes: list | None = None) -> list[Detections]:
        """Detections for each image (``scenes`` is ignored: a real detector looks at pixels)."""
        import torch

        out: list[Detections] = []
        for start in range(0, len(images), self.batch_size):
            batch = [im.convert("RGB") for im in images[start : start + self.batch_size]]
            inputs = self.processor(images=batch, return_tensors="pt")
            pixel_values = inputs["pixel_values"].to(self.device, self.dtype)
            pixel_mask = inputs.get("pixel_mask")
            with torch.no_grad():
                outputs = self.model(pixel_values=pixel_values)
            for i, image in enumerate(batch):
                valid = pixel_mask[i] if pixel_mask is not None else torch.ones(pixel_values.shape[-2:])
                out.append(
                    self._postprocess(
                        outputs.class_queries_logits[i].float(),
                        outputs.masks_queries_logits[i].float(),
                        valid,
                        (image.height, image.width),
                    )
                )
        return out

    def _postprocess(
        self,
        class_logits: torch.Tensor,
        mask_logits: torch.Tensor,
        valid: torch.Tensor,
        size: tuple[int, int],
    ) -> Detections:
        import torch.nn.functional as F

        probs = class_logits.softmax(-1)[:, :-1]  # (queries, classes); the last class is "no object"
        num_classes = probs.shape[1]
        k = min(self.max_per_image, probs.numel())
        scores, flat = probs.flatten().topk(k)
        labels, queries = flat % num_classes, flat // num_classes
        # Network input size, then cut batch padding, then the original image size (as mmdet does).
        masks = F.interpolate(
            mask_logits[queries][None], size=valid.shape[-2:], mode="bilinear", align_corners=False
        )
        rows, cols = int(valid.any(dim=1).sum()), int(valid.any(dim=0).sum())
        masks = F.interpolate(masks[:, :, :rows, :cols], size=size, mode="bilinear", align_corners=False)[0]
        binary = masks > 0
        mask_scores = (masks.sigmoid() * binary).flatten(1).sum(1) / (binary.flatten(1).sum(1) + 1e-6)
        scores = scores * mask_scores
        label_ids, score_list = labels.tolist(), scores.tolist()
        nonempty = binary.flatten(1).any(1).tolist()
        keep = [
            j
            for j in range(k)
            if nonempty[j] and score_list[j] > self.score_floor and label_ids[j] in self.labels
        ]
        boxes = masks_to_boxes(binary[keep]).tolist()
        masks_np = binary[keep].cpu().numpy() if self.return_masks else None
        result: Detections = {}
        for n, j in enumerate(keep):
            mask = None if masks_np is None else masks_np[n]
            det = Detection(box=tuple(boxes[n]), score=score_list[j], mask=mask)
            result.setdefault(self.labels[label_ids[j]], []).append(det)
        return result


def masks_to_boxes(masks: torch.Tensor) -> torch.Tensor:
    """(N, H, W) bool -> (N, 4) boxes: x1, y1 = first set column/row, x2, y2 = last + 1 (mmdet's mask2bbox)."""
    import torch

    n, h, w = masks.shape
    boxes = torch.zeros((n, 4), dtype=torch.float32, device=masks.device)
    cols, rows = masks.any(dim=1), masks.any(dim=2)  # (N, W), (N, H)
    has = cols.any(dim=1)
    ar_w, ar_h = torch.arange(w, device=masks.device), torch.arange(h, device=masks.device)
    boxes[:, 0] = torch.where(cols, ar_w, w).min(dim=1).values
    boxes[:, 1] = torch.where(rows, ar_h, h).min(dim=1).values
    boxes[:, 2] = torch.where(cols, ar_w, -1).max(dim=1).values + 1
    boxes[:, 3] = torch.where(rows, ar_h, -1).max(dim=1).values + 1
    boxes[~has] = 0
    return boxes


# --------------------------------------------------------------------------------------------- mmdet


class MMDetDetector:
    """GenEval's own detector stack (mmdet 2.x ``init_detector``/``inference_detector``; 3.x output also read)."""

    name = "mmdet"

    def __init__(self, config: str, checkpoint: str, device: str = "cuda") -> None:
        try:
            from mmdet.apis import inference_detector, init_detector
        except ImportError as err:
            raise RepromptError(
                "the mmdet detector needs mmdet 2.x, as in GenEval: pip install -U openmim && "
                "mim install 'mmcv-full>=1.4,<1.8' 'mmdet<3'. Detector 'mask2former' needs only transformers."
            ) from err
        self._infer = inference_detector
        self.model = init_detector(config, checkpoint, device=device)

    def detect(self, images: list[Image.Image], scenes: list | None = None) -> list[Detections]:
        out: list[Detections] = []
        for image in images:
            bgr = np.ascontiguousarray(np.asarray(image.convert("RGB"))[:, :, ::-1])  # mmdet reads BGR
            out.append(from_mmdet(self._infer(self.model, bgr)))
        return out


def from_mmdet(result: Any) -> Detections:
    """mmdet output -> detections: 2.x ``(bbox, segm)`` per-class lists, or 3.x ``pred_instances``."""
    dets: Detections = {}
    if hasattr(result, "pred_instances"):  # mmdet 3.x DetDataSample
        inst = result.pred_instances
        masks = inst.masks.cpu().numpy() if "masks" in inst else None
        for j, (box, score, label) in enumerate(
            zip(inst.bboxes.tolist(), inst.scores.tolist(), inst.labels.tolist(), strict=True)
        ):
            mask = None if masks is None else masks[j]
            dets.setdefault(COCO_CLASSES[label], []).append(Detection(tuple(box), float(score), mask))
        return dets
    bbox = result[0] if isinstance(result, tuple) else result
    segm = result[1] if isinstance(result, tuple) and len(result) > 1 else None
    for index, classname in enumerate(COCO_CLASSES):
        for j, row in enumerate(bbox[index]):
            mask = None if segm is None else np.asarray(segm[index][j])
            det = Detection(box=tuple(map(float, row[:4])), score=float(row[4]), mask=mask)  # type: ignore[arg-type]
            dets.setdefault(classname, []).append(det)
    return dets


# ------------------------------------------------------------------------------------------ registry

DETECTORS: dict[str, type] = {
    "oracle": OracleDetector,
    "mask2former": Mask2FormerDetector,
    "mmdet": MMDetDetector,
}


def load_detector(name: str, **kwargs: Any) -> Detector:
    """Build a detector by name; ``kwargs`` go to its constructor (e.g. ``model_id_or_path``, ``device``)."""
    if name not in DETECTORS:
        raise RepromptError(
            f"unknown detector {name!r}; choose from {sorted(DETECTORS)}."
            + did_you_mean(name, list(DETECTORS))
        )
    return DETECTORS[name](**kwargs)
