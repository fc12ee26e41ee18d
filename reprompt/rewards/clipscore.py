"""``clipscore``: CLIP image-text similarity between the image and the ORIGINAL prompt.

``cosine`` returns the raw cosine similarity; ``clipscore`` returns Hessel et al.'s CLIPScore,
``2.5 * max(cos, 0)``. Prompts longer than CLIP's 77 tokens are cut, as CLIP itself does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from reprompt.errors import ConfigError
from reprompt.rewards.base import ImageComponent, Score
from reprompt.rewards.config import build_options

if TYPE_CHECKING:
    from PIL import Image

DEFAULT_CLIP = "openai/clip-vit-large-patch14"
STYLES = ("cosine", "clipscore")


@dataclass
class ClipScoreOptions:
    model: str = field(default=DEFAULT_CLIP, metadata={"help": "CLIP hub id or local folder"})
    style: str = field(default="cosine", metadata={"help": "cosine, or clipscore (2.5 * max(cos, 0))"})
    device: str = field(default="cpu", metadata={"help": "cpu, cuda, ..."})
    dtype: str = field(default="auto", metadata={"help": "auto, float32, bfloat16, float16"})
    batch_size: int = field(default=32, metadata={"help": "images per forward pass"})

    def __post_init__(self) -> None:
        if self.style not in STYLES:
            raise ConfigError(f"clipscore style must be one of {STYLES}, got {self.style!r}")
        if self.batch_size < 1:
            raise ConfigError("clipscore batch_size must be >= 1")


class ClipScore(ImageComponent):
    def __init__(self, options: ClipScoreOptions | None = None, name: str = "clipscore") -> None:
        self.options = options or ClipScoreOptions()
        self.name = self.__name__ = name
        self._model: Any = None
        self._processor: Any = None

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
        self, originals: list[str], images: list[Image.Image], scenes: list[Any], metadata: list[Any]
    ) -> list[Score]:
        import torch

        self.load()
        o, model = self.options, self._model
        out: list[Score] = []
        for start in range(0, len(images), o.batch_size):
            texts = originals[start : start + o.batch_size]
            chunk = [im.convert("RGB") for im in images[start : start + o.batch_size]]
            text_in = self._processor.tokenizer(
                texts, padding=True, truncation=True, max_length=77, return_tensors="pt"
            ).to(o.device)
            pixels = self._processor.image_processor(chunk, return_tensors="pt")["pixel_values"]
            pixels = pixels.to(o.device, next(model.parameters()).dtype)
            with torch.inference_mode():
                t = _pooled(model.get_text_features(**text_in)).float()
                v = _pooled(model.get_image_features(pixel_values=pixels)).float()
            cos = torch.nn.functional.cosine_similarity(t, v, dim=-1)
            if o.style == "clipscore":
                cos = 2.5 * cos.clamp(min=0)
            out.extend(float(x) for x in cos.cpu().tolist())
        return out


def _pooled(output: Any) -> Any:
    # transformers 5.x returns an output object whose pooler_output is the projected embedding.
    return output if hasattr(output, "dim") else output.pooler_output


def build_clipscore(options: dict[str, Any] | None, **_: Any) -> ClipScore:
    return ClipScore(build_options(ClipScoreOptions, options, "clipscore"))
