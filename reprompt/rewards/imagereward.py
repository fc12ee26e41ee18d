"""``imagereward``: ImageReward-v1.0's human-preference score of an image for the ORIGINAL prompt.

Backends:
- ``transformers`` (default whenever weights are on disk): :class:`ImageRewardModel`, the BLIP
  architecture in transformers, from a converted safetensors folder. An official ``ImageReward.pt``
  (a file path, ``~/.cache/ImageReward/ImageReward.pt`` or the Hugging Face cache of THUDM/ImageReward)
  is converted once to ``$REPROMPT_CACHE/imagereward/<name>``.
- ``package``: the ``image-reward`` package (``pip install reprompt[imagereward]``),
  ``ImageReward.load("ImageReward-v1.0")``; it downloads its own weights.

Scores are ImageReward's standardized outputs (roughly -2.5..2.5; higher is preferred).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reprompt.errors import ModelNotFoundError, check_choice, check_range
from reprompt.rewards.base import ImageComponent, Images, Metadata, Scenes, Score
from reprompt.utils.cache import cache_dir
from reprompt.utils.dtypes import Placement

if TYPE_CHECKING:
    from PIL import Image

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "ImageReward-v1.0"
HUB_REPO, HUB_FILE = "THUDM/ImageReward", "ImageReward.pt"
BACKENDS = ("auto", "transformers", "package")


@dataclass
class ImageRewardOptions(Placement):
    model: str = field(
        default=DEFAULT_MODEL,
        metadata={"help": "ImageReward-v1.0, a converted folder, or an official ImageReward.pt path"},
    )
    backend: str = field(default="auto", metadata={"help": "auto, transformers or package (image-reward)"})
    tokenizer: str = field(
        default="bert-base-uncased", metadata={"help": "BERT tokenizer used when converting a .pt checkpoint"}
    )
    batch_size: int = field(default=16, metadata={"help": "images per forward pass"})

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice("imagereward backend", self.backend, BACKENDS)
        check_range("imagereward batch_size", self.batch_size, 1)


def _find_official_checkpoint(name: str) -> Path | None:
    """The official .pt if it is already on this machine (never downloads)."""
    if name != DEFAULT_MODEL:
        return None
    candidates = [Path("~/.cache/ImageReward/ImageReward.pt").expanduser()]
    try:
        from huggingface_hub import try_to_load_from_cache

        hit = try_to_load_from_cache(HUB_REPO, HUB_FILE)
        if isinstance(hit, str):
            candidates.insert(0, Path(hit))
    except ImportError:
        pass
    return next((c for c in candidates if c.is_file()), None)


def resolve_folder(options: ImageRewardOptions) -> Path | None:
    """A safetensors folder for the transformers backend (converting a .pt on first use), or None."""
    from reprompt.rewards.imagereward_model import CONFIG_FILE, convert_checkpoint

    path = Path(options.model).expanduser()
    if path.is_dir() and (path / CONFIG_FILE).is_file():
        return path
    checkpoint = path if path.is_file() else _find_official_checkpoint(options.model)
    if checkpoint is None:
        return None
    key = (
        options.model
        if options.model == DEFAULT_MODEL
        else hashlib.sha256(str(checkpoint.resolve()).encode()).hexdigest()[:16]
    )
    folder = cache_dir("imagereward") / key
    if not (folder / CONFIG_FILE).is_file():
        logger.warning("converting %s to safetensors in %s (once)", checkpoint, folder)
        convert_checkpoint(checkpoint, folder, tokenizer=options.tokenizer)
    return folder


class ImageRewardScorer(ImageComponent, name="imagereward", options=ImageRewardOptions):
    """ImageReward of each image for its original prompt."""

    options: ImageRewardOptions

    def __init__(self, options: ImageRewardOptions | None = None, name: str | None = None) -> None:
        super().__init__(options, name)
        self._model: Any = None
        self._tokenizer: Any = None
        self.backend = self._pick_backend()

    def _pick_backend(self) -> str:
        o = self.options
        if o.backend != "auto":
            return o.backend
        path = Path(o.model).expanduser()
        if path.exists() or _find_official_checkpoint(o.model) is not None:
            return "transformers"
        try:
            import ImageReward  # noqa: F401

            return "package"
        except ImportError:
            pass
        raise ModelNotFoundError(
            f"no ImageReward weights for {o.model!r}: install the optional extra (pip install "
            "'reprompt[imagereward]', which downloads ImageReward-v1.0), put ImageReward.pt in "
            "~/.cache/ImageReward/, or set options.imagereward.model to a converted folder or a .pt file"
        )

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_model"] = state["_tokenizer"] = None  # reloaded lazily after unpickling
        return state

    def load(self) -> None:
        if self._model is not None:
            return
        from reprompt.utils.dtypes import resolve_dtype

        o = self.options
        dtype = resolve_dtype(o.dtype, o.device)
        if self.backend == "package":
            try:
                import ImageReward as RM
            except ImportError as e:
                raise ModelNotFoundError(
                    "backend 'package' needs: pip install 'reprompt[imagereward]'"
                ) from e
            self._model = RM.load(o.model, device=o.device).eval().to(dtype=dtype)
            self._model.mlp.float()  # the head reads float32 features, as in ImageReward
            self._tokenizer = self._model.blip.tokenizer
            return
        from transformers import AutoTokenizer

        from reprompt.rewards.imagereward_model import ImageRewardModel

        folder = resolve_folder(o)
        if folder is None:
            raise ModelNotFoundError(
                f"ImageReward {o.model!r} is neither a converted folder nor a .pt file, and no official "
                "checkpoint was found in ~/.cache/ImageReward or the Hugging Face cache"
            )
        self._model = ImageRewardModel.from_folder(folder, device=o.device, dtype=dtype)
        self._tokenizer = AutoTokenizer.from_pretrained(folder)

    def score_images(
        self, originals: list[str], images: Images, scenes: Scenes, metadata: Metadata
    ) -> list[Score]:
        import torch

        self.load()
        out: list[Score] = []
        bs = self.options.batch_size
        for start in range(0, len(images), bs):
            texts, chunk = originals[start : start + bs], images[start : start + bs]
            with torch.inference_mode():
                rewards = self._forward(texts, chunk)
            out.extend(float(r) for r in rewards.float().cpu().tolist())
        return out

    def _forward(self, texts: list[str], images: list[Image.Image]) -> Any:
        import torch

        model, device = self._model, self.options.device
        if self.backend == "package":  # the package's own modules, same computation as its score()
            max_length = 35
            pixels = torch.stack([model.preprocess(im.convert("RGB")) for im in images])
            vision, text_encoder = model.blip.visual_encoder, model.blip.text_encoder
            mean, std = model.mean, model.std
        else:
            from reprompt.rewards.imagereward_model import preprocess

            max_length = model.arch.max_length
            pixels = preprocess(images, model.arch)
        tokens = self._tokenizer(
            texts, padding="max_length", truncation=True, max_length=max_length, return_tensors="pt"
        ).to(device)
        pixels = pixels.to(device=device, dtype=next(model.parameters()).dtype)
        if self.backend != "package":
            return model(tokens.input_ids, tokens.attention_mask, pixels)
        embeds = vision(pixels)
        atts = torch.ones(embeds.shape[:-1], dtype=torch.long, device=embeds.device)
        states = text_encoder(
            tokens.input_ids,
            attention_mask=tokens.attention_mask,
            encoder_hidden_states=embeds,
            encoder_attention_mask=atts,
            return_dict=True,
        ).last_hidden_state
        return ((model.mlp(states[:, 0, :].float()) - mean) / std).squeeze(-1)
