"""ImageReward's architecture in transformers, its checkpoint converter, and a tiny random build.

ImageReward (Xu et al., 2023; THUDM/ImageReward, Apache-2.0) is BLIP: a ViT-L/16 image encoder at 224 px
and a BERT-base text encoder whose layers cross-attend to the image tokens, then an MLP head on the text
[CLS] state, standardized with fixed mean/std. transformers' ``BlipVisionModel`` and ``BlipTextModel``
are ports of the same BLIP code, so the official ``ImageReward.pt`` state dict maps onto them by renaming
keys (:func:`convert_state_dict`). Weights are stored as safetensors; a ``.pt`` is read once with
``torch.load(weights_only=True)`` (no arbitrary unpickling) and converted.

Folder layout: ``imagereward_config.json`` (:class:`ImageRewardArch`), ``model.safetensors`` and a
BERT tokenizer with BLIP's ``[DEC]``/``[ENC]`` tokens.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from reprompt.errors import ModelNotFoundError, RepromptError
from reprompt.utils.hub import from_pretrained

if TYPE_CHECKING:
    from PIL import Image

CONFIG_FILE = "imagereward_config.json"
WEIGHTS_FILE = "model.safetensors"
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass
class ImageRewardArch:
    """Sizes of an ImageReward model; the defaults are ImageReward-v1.0 (BLIP ViT-L + BERT-base)."""

    image_size: int = field(
        default=224, metadata={"help": "input resolution (resize short side + center crop)"}
    )
    patch_size: int = field(default=16, metadata={"help": "ViT patch size"})
    vision_hidden: int = field(default=1024, metadata={"help": "ViT width"})
    vision_layers: int = field(default=24, metadata={"help": "ViT depth"})
    vision_heads: int = field(default=16, metadata={"help": "ViT attention heads"})
    vision_mlp: int = field(default=4096, metadata={"help": "ViT MLP width"})
    vision_eps: float = field(default=1e-6, metadata={"help": "ViT LayerNorm epsilon (BLIP: 1e-6)"})
    text_vocab: int = field(default=30524, metadata={"help": "bert-base-uncased + [DEC] + [ENC]"})
    text_hidden: int = field(default=768, metadata={"help": "BERT width"})
    text_layers: int = field(default=12, metadata={"help": "BERT depth"})
    text_heads: int = field(default=12, metadata={"help": "BERT attention heads"})
    text_intermediate: int = field(default=3072, metadata={"help": "BERT MLP width"})
    text_max_positions: int = field(default=512, metadata={"help": "BERT position embeddings"})
    text_eps: float = field(default=1e-12, metadata={"help": "BERT LayerNorm epsilon"})
    pad_token_id: int = field(default=0, metadata={"help": "[PAD] id"})
    mlp_hidden: list[int] = field(
        default_factory=lambda: [1024, 128, 64, 16], metadata={"help": "head widths"}
    )
    max_length: int = field(default=35, metadata={"help": "prompt tokens read (ImageReward pads/cuts to 35)"})
    reward_mean: float = field(default=0.16717362830052426, metadata={"help": "standardization mean"})
    reward_std: float = field(default=1.0333394966054072, metadata={"help": "standardization std"})
    image_mean: list[float] = field(default_factory=lambda: list(CLIP_MEAN), metadata={"help": "pixel mean"})
    image_std: list[float] = field(default_factory=lambda: list(CLIP_STD), metadata={"help": "pixel std"})


class RewardHead(nn.Module):
    """ImageReward's MLP: linear layers with dropout between the first ones and no activation
    (as released). Indices 0, 2, 4, 6, 7 of ``layers`` are the linear layers, matching the checkpoint."""

    def __init__(self, input_size: int, hidden: list[int]) -> None:
        super().__init__()
        dims = [input_size, *hidden, 1]
        drops = [0.2, 0.2, 0.1]
        modules: list[nn.Module] = []
        for i in range(len(dims) - 1):
            modules.append(nn.Linear(dims[i], dims[i + 1]))
            if i < len(drops) and i < len(dims) - 2:
                modules.append(nn.Dropout(drops[i]))
        self.layers = nn.Sequential(*modules)
        for name, p in self.layers.named_parameters():
            if "weight" in name:
                nn.init.normal_(p, mean=0.0, std=1.0 / (input_size + 1))
            else:
                nn.init.zeros_(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class ImageRewardModel(nn.Module):
    """``forward(input_ids, attention_mask, pixel_values) -> (B,)`` standardized rewards."""

    def __init__(self, arch: ImageRewardArch) -> None:
        from transformers import BlipTextConfig, BlipTextModel, BlipVisionConfig, BlipVisionModel

        super().__init__()
        self.arch = arch
        self.vision = BlipVisionModel(
            BlipVisionConfig(
                hidden_size=arch.vision_hidden,
                intermediate_size=arch.vision_mlp,
                num_hidden_layers=arch.vision_layers,
                num_attention_heads=arch.vision_heads,
                image_size=arch.image_size,
                patch_size=arch.patch_size,
                layer_norm_eps=arch.vision_eps,
                hidden_act="gelu",
                initializer_range=0.02,
            )
        )
        self.text = BlipTextModel(
            BlipTextConfig(
                vocab_size=arch.text_vocab,
                hidden_size=arch.text_hidden,
                encoder_hidden_size=arch.vision_hidden,
                intermediate_size=arch.text_intermediate,
                num_hidden_layers=arch.text_layers,
                num_attention_heads=arch.text_heads,
                max_position_embeddings=arch.text_max_positions,
                layer_norm_eps=arch.text_eps,
                hidden_act="gelu",
                pad_token_id=arch.pad_token_id,
                bos_token_id=None,  # encoder use only: no generation tokens
                eos_token_id=None,
                sep_token_id=None,
                is_decoder=True,  # builds the cross-attention layers; forward runs bidirectionally
                use_cache=False,
            ),
            add_pooling_layer=False,
        )
        self.mlp = RewardHead(arch.text_hidden, list(arch.mlp_hidden))

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, pixel_values: torch.Tensor
    ) -> torch.Tensor:
        image_embeds = self.vision(pixel_values=pixel_values).last_hidden_state
        image_atts = torch.ones(image_embeds.shape[:-1], dtype=torch.long, device=image_embeds.device)
        out = self.text(
            input_ids=input_ids,
            attention_mask=attention_mask,
            encoder_hidden_states=image_embeds,
            encoder_attention_mask=image_atts,
            is_decoder=False,
        )
        features = out.last_hidden_state[:, 0, :].float()
        rewards = self.mlp(features).squeeze(-1)
        return (rewards - self.arch.reward_mean) / self.arch.reward_std

    # --------------------------------------------------------------------------------------- io
    def save(self, folder: str | Path, tokenizer: Any) -> None:
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / CONFIG_FILE).write_text(json.dumps(dataclasses.asdict(self.arch), indent=2) + "\n")
        state = {k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}
        save_file(state, str(folder / WEIGHTS_FILE), metadata={"format": "pt", "model": "imagereward"})
        tokenizer.save_pretrained(folder)

    @classmethod
    def from_folder(
        cls, folder: str | Path, device: str = "cpu", dtype: torch.dtype | None = None
    ) -> ImageRewardModel:
        from safetensors.torch import load_file

        folder = Path(folder)
        if not (folder / CONFIG_FILE).is_file() or not (folder / WEIGHTS_FILE).is_file():
            raise ModelNotFoundError(
                f"{folder} is not an ImageReward folder ({CONFIG_FILE} + {WEIGHTS_FILE})"
            )
        arch = ImageRewardArch(**json.loads((folder / CONFIG_FILE).read_text()))
        model = cls(arch)
        model.load_state_dict(load_file(str(folder / WEIGHTS_FILE)), strict=True)
        model = model.to(device=device, dtype=dtype or torch.float32).eval()
        model.mlp.float()  # the head reads float32 features, as in ImageReward
        return model


# ------------------------------------------------------------------------------------ preprocessing


def preprocess(images: list[Image.Image], arch: ImageRewardArch) -> torch.Tensor:
    """ImageReward's transform: resize the short side (bicubic), center crop, CLIP normalization."""
    import numpy as np
    from PIL import Image as PILImage

    size = arch.image_size
    out = []
    for image in images:
        w, h = image.size
        if w <= h:
            new_w, new_h = size, int(size * h / w)
        else:
            new_w, new_h = int(size * w / h), size
        image = image.resize((new_w, new_h), PILImage.Resampling.BICUBIC)
        left, top = int(round((new_w - size) / 2.0)), int(round((new_h - size) / 2.0))
        image = image.crop((left, top, left + size, top + size)).convert("RGB")
        pixels = np.asarray(image, dtype=np.float32) / 255.0
        arr = (pixels - np.asarray(arch.image_mean, dtype=np.float32)) / np.asarray(
            arch.image_std, dtype=np.float32
        )
        out.append(torch.from_numpy(arr.transpose(2, 0, 1).copy()))
    return torch.stack(out)


# ------------------------------------------------------------------------------------- conversion

_VISION_RULES = [
    (r"^blip\.visual_encoder\.cls_token$", "vision.embeddings.class_embedding"),
    (r"^blip\.visual_encoder\.pos_embed$", "vision.embeddings.position_embedding"),
    (r"^blip\.visual_encoder\.patch_embed\.proj\.(weight|bias)$", r"vision.embeddings.patch_embedding.\1"),
    (r"^blip\.visual_encoder\.blocks\.(\d+)\.norm1\.", r"vision.encoder.layers.\1.layer_norm1."),
    (r"^blip\.visual_encoder\.blocks\.(\d+)\.norm2\.", r"vision.encoder.layers.\1.layer_norm2."),
    (r"^blip\.visual_encoder\.blocks\.(\d+)\.attn\.qkv\.", r"vision.encoder.layers.\1.self_attn.qkv."),
    (
        r"^blip\.visual_encoder\.blocks\.(\d+)\.attn\.proj\.",
        r"vision.encoder.layers.\1.self_attn.projection.",
    ),
    (r"^blip\.visual_encoder\.blocks\.(\d+)\.mlp\.(fc1|fc2)\.", r"vision.encoder.layers.\1.mlp.\2."),
    (r"^blip\.visual_encoder\.norm\.", "vision.post_layernorm."),
    (r"^blip\.text_encoder\.", "text."),
    (r"^mlp\.layers\.", "mlp.layers."),
]
# In the checkpoint but unused for scoring (ITC projections) or buffers the model rebuilds.
_IGNORED = re.compile(r"^blip\.(vision_proj|text_proj)\.|position_ids$")


def convert_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename an official ImageReward state dict's keys to :class:`ImageRewardModel`'s."""
    out: dict[str, torch.Tensor] = {}
    unknown = []
    for key, value in state.items():
        if _IGNORED.search(key):
            continue
        for pattern, repl in _VISION_RULES:
            if re.search(pattern, key):
                out[re.sub(pattern, repl, key)] = value
                break
        else:
            unknown.append(key)
    if unknown:
        raise RepromptError(f"not an ImageReward checkpoint: unexpected keys such as {unknown[:3]}")
    return out


def arch_from_state_dict(state: dict[str, torch.Tensor], **overrides: Any) -> ImageRewardArch:
    """Infer sizes from an official checkpoint's tensor shapes (heads assume 64-dim heads, as BLIP)."""
    try:
        pos = state["blip.visual_encoder.pos_embed"]
        patch = state["blip.visual_encoder.patch_embed.proj.weight"]
        words = state["blip.text_encoder.embeddings.word_embeddings.weight"]
        positions = state["blip.text_encoder.embeddings.position_embeddings.weight"]
        inter = state["blip.text_encoder.encoder.layer.0.intermediate.dense.weight"]
        fc1 = state["blip.visual_encoder.blocks.0.mlp.fc1.weight"]
    except KeyError as e:
        raise RepromptError(f"not an ImageReward checkpoint: missing {e}") from e

    def count(prefix: str) -> int:
        pat = re.compile(re.escape(prefix) + r"(\d+)\.")
        return 1 + max(int(m.group(1)) for k in state if (m := pat.match(k)))

    grid = round((pos.shape[1] - 1) ** 0.5)
    mlp = [state[f"mlp.layers.{i}.weight"].shape[0] for i in (0, 2, 4, 6)]
    arch = ImageRewardArch(
        image_size=grid * patch.shape[-1],
        patch_size=patch.shape[-1],
        vision_hidden=pos.shape[-1],
        vision_layers=count("blip.visual_encoder.blocks."),
        vision_heads=pos.shape[-1] // 64,
        vision_mlp=fc1.shape[0],
        text_vocab=words.shape[0],
        text_hidden=words.shape[1],
        text_layers=count("blip.text_encoder.encoder.layer."),
        text_heads=words.shape[1] // 64,
        text_intermediate=inter.shape[0],
        text_max_positions=positions.shape[0],
        mlp_hidden=mlp,
    )
    return dataclasses.replace(arch, **overrides)


def blip_tokenizer(name_or_path: str = "bert-base-uncased") -> Any:
    """BERT uncased tokenizer with BLIP's extra tokens ([DEC] as bos, [ENC]), as ImageReward builds it."""
    from transformers import BertTokenizer

    tok = from_pretrained(BertTokenizer, name_or_path, kind="BERT tokenizer that ImageReward uses")
    if "[DEC]" not in tok.get_vocab():
        tok.add_special_tokens({"bos_token": "[DEC]"})
    if "[ENC]" not in tok.get_vocab():
        tok.add_special_tokens({"additional_special_tokens": ["[ENC]"]})
    return tok


def convert_checkpoint(
    checkpoint: str | Path, folder: str | Path, tokenizer: str | Any = "bert-base-uncased", **arch: Any
) -> Path:
    """Convert an official ``ImageReward.pt`` into a safetensors folder (atomically) and return it.

    The ``.pt`` is read with ``torch.load(weights_only=True)``: tensors only, no code is unpickled.
    """
    checkpoint, folder = Path(checkpoint).expanduser(), Path(folder).expanduser()
    if not checkpoint.is_file():
        raise ModelNotFoundError(f"ImageReward checkpoint {str(checkpoint)!r} not found")
    try:
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    except Exception as e:  # weights_only refuses anything that is not plain tensors/containers
        raise RepromptError(f"{checkpoint} is not a plain tensor state dict ({type(e).__name__}: {e})") from e
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    model = ImageRewardModel(arch_from_state_dict(state, **arch))
    model.load_state_dict(convert_state_dict(state), strict=True)
    tok = blip_tokenizer(tokenizer) if isinstance(tokenizer, str) else tokenizer
    if len(tok) > model.arch.text_vocab:
        raise RepromptError(
            f"tokenizer has {len(tok)} tokens but the checkpoint only {model.arch.text_vocab}"
        )
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        model.save(tmp, tok)
        if folder.exists():
            shutil.rmtree(folder)
        tmp.rename(folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder
