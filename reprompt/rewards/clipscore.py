"""``clipscore``: CLIP image-text similarity between the image and the ORIGINAL prompt.

``cosine`` returns the raw cosine similarity; ``clipscore`` returns Hessel et al.'s CLIPScore,
``2.5 * max(cos, 0)``. Prompts longer than CLIP's 77 tokens are cut, as CLIP itself does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from reprompt.errors import check_choice, check_range
from reprompt.rewards.base import ImageComponent, Images, Metadata, Scenes, Score
from reprompt.utils.dtypes import Placement
from reprompt.utils.hub import embeddings

if TYPE_CHECKING:
    from PIL import Image

DEFAULT_CLIP = "openai/clip-vit-large-patch14"
STYLES = ("cosine", "clipscore")


@dataclass
class ClipScoreOptions(Placement):
    model: str = field(default=DEFAULT_CLIP, metadata={"help": "CLIP hub id or local folder"})
    style: str = field(default="cosine", metadata={"help": "cosine, or clipscore (2.5 * max(cos, 0))"})
    batch_size: int = field(default=32, metadata={"help": "images per forward pass"})

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice("clipscore style", self.style, STYLES)
        check_range("clipscore batch_size", self.batch_size, 1)


class ClipScore(ImageComponent, name="clipscore", options=ClipScoreOptions):
    options: ClipScoreOptions
    _model: Any = None  # loaded on first use (and dropped when pickled)
    _processor: Any = None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_model"] = state["_processor"] = None
        return state

    def load(self) -> None:
        if self._model is not None:
            return
        from transformers import CLIPModel, CLIPProcessor

        from reprompt.utils.dtypes import resolve_dtype
        from reprompt.utils.hub import from_pretrained

        o = self.options
        self._model = from_pretrained(CLIPModel, o.model, kind="CLIP", dtype=resolve_dtype(o.dtype, o.device))
        self._processor = from_pretrained(CLIPProcessor, o.model, kind="CLIP processor")
        self._model.to(o.device).eval()

    def score_images(
        self, originals: list[str], images: Images, scenes: Scenes, metadata: Metadata
    ) -> list[Score]:
        self.load()
        o = self.options
        cos = clip_similarity(self._model, self._processor, images, originals, o.device, o.batch_size)
        if o.style == "clipscore":
            return [2.5 * max(c, 0.0) for c in cos]
        return list(cos)


def clip_similarity(
    model: Any,
    processor: Any,
    images: Sequence[Image.Image],
    texts: Sequence[str],
    device: str,
    batch_size: int,
) -> list[float]:
    """Cosine similarity of each image's and its text's CLIP embedding, texts cut at CLIP's 77 tokens: the
    one implementation behind the ``clipscore`` reward and T2I-CompBench's CLIP metrics."""
    import torch

    dtype = next(model.parameters()).dtype
    out: list[float] = []
    for start in range(0, len(images), batch_size):
        chunk = [im.convert("RGB") for im in images[start : start + batch_size]]
        tok = processor.tokenizer(
            list(texts[start : start + batch_size]),
            padding=True,
            truncation=True,
            max_length=77,
            return_tensors="pt",
        )
        pixels = processor.image_processor(chunk, return_tensors="pt")["pixel_values"]
        with torch.inference_mode():
            img = embeddings(model.get_image_features(pixel_values=pixels.to(device, dtype))).float()
            text = embeddings(model.get_text_features(**{k: v.to(device) for k, v in tok.items()})).float()
        img = img / img.norm(dim=-1, keepdim=True)
        text = text / text.norm(dim=-1, keepdim=True)
        out.extend((img * text).sum(-1).tolist())
    return out
