"""CLIP zero-shot colour classifier, set up as GenEval's official scorer sets it up.

Official setup (``evaluate_images.py``: open_clip ViT-L-14 ``openai`` + clip_benchmark): each object is
composited through its mask onto a flat #999999 background, cropped to its box, and classified among the
10 GenEval colours. A colour's text embedding is the normalised mean of the normalised embeddings of
three templates: "a photo of a {c} {cls}", "a photo of a {c}-colored {cls}", "a photo of a {c} object".

Here the same weights are loaded through transformers (``openai/clip-vit-large-patch14``). The image
preprocessing (resize 224 bicubic, centre crop, CLIP normalisation) is the same recipe; resampling
code differs from open_clip's torchvision path, so rare near-tie predictions may differ.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from reprompt.geneval.checkpoints import DEFAULT_CLIP
from reprompt.geneval.rules import Detection
from reprompt.geneval.vocabulary import GENEVAL_COLORS
from reprompt.utils.dtypes import resolve_dtype
from reprompt.utils.hub import embeddings, from_pretrained

if TYPE_CHECKING:
    import torch

TEMPLATES: tuple[str, ...] = (
    "a photo of a {c} {cls}",
    "a photo of a {c}-colored {cls}",
    "a photo of a {c} object",
)
BACKGROUND = (153, 153, 153)  # "#999", the official default ``bgcolor``


def object_crop(
    image: Image.Image, det: Detection, background: tuple[int, int, int] = BACKGROUND
) -> Image.Image:
    """The object's pixels on a flat background (if it has a mask), cropped to its box (as GenEval)."""
    image = image.convert("RGB")
    if det.mask is not None:
        mask = np.asarray(det.mask)
        if mask.shape != (image.height, image.width):
            raise ValueError(
                f"mask shape {mask.shape} does not match image size {(image.height, image.width)}"
            )
        blank = Image.new("RGB", image.size, background)
        image = Image.composite(image, blank, Image.fromarray((mask > 0).astype(np.uint8) * 255))
    x1, y1, x2, y2 = (float(v) for v in det.box)
    # PIL rounds float boxes; keep at least one pixel so a degenerate box still yields an image.
    x1, y1 = round(x1), round(y1)
    x2, y2 = max(round(x2), x1 + 1), max(round(y2), y1 + 1)
    return image.crop((x1, y1, x2, y2))


class ClipColorClassifier:
    """Classify detected objects into GenEval's 10 colours with a CLIP model.

    Text embeddings per class name are computed once and cached. Use ``for_image(image)`` to get the
    ``classify_colors`` callable that ``score_detections`` expects.
    """

    def __init__(
        self,
        model_id_or_path: str = DEFAULT_CLIP,
        device: str = "cpu",
        dtype: torch.dtype | str | None = None,
        *,
        batch_size: int = 16,
        background: tuple[int, int, int] = BACKGROUND,
        model: Any = None,
        processor: Any = None,
    ) -> None:
        from transformers import CLIPModel, CLIPProcessor

        self.device = device
        self.dtype = resolve_dtype(dtype or "float32")
        self.batch_size = batch_size
        self.background = background
        self.model = model or from_pretrained(CLIPModel, model_id_or_path, kind="CLIP", dtype=self.dtype)
        self.processor = processor or from_pretrained(CLIPProcessor, model_id_or_path, kind="CLIP processor")
        self.model.to(device).eval()
        self._text: dict[str, torch.Tensor] = {}

    def text_embeddings(self, classname: str) -> torch.Tensor:
        """(10, dim) unit vectors, one per colour: normalised mean over the three templates."""
        if classname not in self._text:
            import torch

            texts = [t.format(c=c, cls=classname) for c in GENEVAL_COLORS for t in TEMPLATES]
            tokens = self.processor.tokenizer(texts, padding=True, return_tensors="pt").to(self.device)
            with torch.no_grad():
                feats = embeddings(self.model.get_text_features(**tokens)).float()
            feats = torch.nn.functional.normalize(feats, dim=-1).view(len(GENEVAL_COLORS), len(TEMPLATES), -1)
            self._text[classname] = torch.nn.functional.normalize(feats.mean(dim=1), dim=-1)
        return self._text[classname]

    def classify(self, image: Image.Image, classname: str, objects: Sequence[Detection]) -> list[str]:
        """One colour name per object, in order."""
        import torch

        if not objects:
            return []
        text = self.text_embeddings(classname)
        crops = [object_crop(image, det, self.background) for det in objects]
        out: list[str] = []
        for start in range(0, len(crops), self.batch_size):
            batch = self.processor.image_processor(
                crops[start : start + self.batch_size], return_tensors="pt"
            )
            pixels = batch["pixel_values"].to(self.device, self.dtype)
            with torch.no_grad():
                feats = embeddings(self.model.get_image_features(pixel_values=pixels)).float()
            logits = torch.nn.functional.normalize(feats, dim=-1) @ text.T
            out.extend(GENEVAL_COLORS[i] for i in logits.argmax(dim=-1).tolist())
        return out

    def for_image(self, image: Image.Image) -> Callable[[str, list[Detection]], list[str]]:
        """The ``classify_colors`` callable for one image."""
        image = image.convert("RGB")

        def classify_colors(classname: str, objects: list[Detection]) -> list[str]:
            return self.classify(image, classname, objects)

        return classify_colors
