"""Random-weight models at the published sizes, for timing and memory checks on a GPU without a model hub.

Qwen2.5-3B-Instruct (the paper's policy), FLUX.1-dev (the paper's backbone: 12B transformer, T5-v1.1-XXL,
CLIP-L, VAE), ImageReward-v1.0 and Qwen2.5-VL-3B-Instruct (a local judge), built from the real configs with
the tiny zoo's wiring. The weights are random, so outputs are noise: only shapes, FLOPs and memory are real.
The tokenizers are the zoo's small trained ones (the real vocabularies are not available offline); the
embedding matrices keep the real vocabulary sizes. A random policy never writes its stop tag, so every
completion runs to the token limit: a worst case for generation time.

Models are built directly on ``device`` in ``dtype`` (seconds on a GPU, no fp32 copy on the host).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = [
    "build_imagereward_v1",
    "build_qwen2_5_3b",
    "build_qwen2_5_vl_3b",
    "flux_dev_pipeline",
    "materialize",
    "parameter_counts",
]


@contextmanager
def materialize(device: str = "cuda", dtype: Any = "bfloat16") -> Iterator[None]:
    """Modules built inside are created on ``device`` with floating tensors in ``dtype``."""
    import torch

    dtype = getattr(torch, dtype) if isinstance(dtype, str) else dtype
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            yield
    finally:
        torch.set_default_dtype(old)


def build_qwen2_5_3b(
    folder: str | Path, seed: int = 0, device: str = "cuda", dtype: Any = "bfloat16"
) -> Path:
    """A Qwen2.5-3B-Instruct-architecture policy saved as a ``from_pretrained`` folder (safetensors)."""
    import torch

    from reprompt.testing import text, tokenizers

    folder = Path(folder)
    tok = tokenizers.qwen2_tokenizer()
    torch.manual_seed(seed)
    with materialize(device, dtype):
        model = text.qwen2_model(tok, text.QWEN2_5_3B)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    del model
    return folder


def flux_dev_pipeline(seed: int = 0, device: str = "cuda", dtype: Any = "bfloat16") -> Any:
    """A FluxPipeline of FLUX.1-dev's sizes, in memory on ``device`` (about 34 GB in bf16)."""
    from reprompt.testing import diffusion

    with materialize(device, dtype):
        pipe = diffusion.flux_pipeline(seed, diffusion.FLUX_DEV)
    return pipe.to(device)


def build_imagereward_v1(folder: str | Path, seed: int = 0, device: str = "cuda") -> Path:
    """An ImageReward-v1.0-architecture reward model (BLIP ViT-L/16 + BERT-base + MLP) in our folder format."""
    from reprompt.testing.imagereward import build_imagereward

    with materialize(device, "float32"):
        build_imagereward(folder, seed)
    return Path(folder)


def build_qwen2_5_vl_3b(
    folder: str | Path, seed: int = 0, device: str = "cuda", dtype: Any = "bfloat16"
) -> Path:
    """A Qwen2.5-VL-3B-Instruct-architecture judge with its processor, saved as a ``from_pretrained`` folder."""
    from reprompt.testing import vision

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with materialize(device, dtype):
        vision.build_qwen2_vl(folder, seed, vision.QWEN2_5_VL_3B)
    return folder


def parameter_counts() -> dict[str, int]:
    """Parameters of each full-size model, counted on the meta device (no memory, no weights)."""
    from reprompt.rewards.imagereward_model import ImageRewardArch, ImageRewardModel
    from reprompt.testing import diffusion, text, tokenizers, vision

    def count(module: Any) -> int:
        return sum(p.numel() for p in module.parameters())

    with materialize("meta", "bfloat16"):
        policy = text.qwen2_model(tokenizers.qwen2_tokenizer(), text.QWEN2_5_3B)
        pipe = diffusion.flux_pipeline(0, diffusion.FLUX_DEV)
        reward = ImageRewardModel(ImageRewardArch())
        judge = vision.qwen2_vl_model(tokenizers.qwen2_tokenizer(vision=True), vision.QWEN2_5_VL_3B)
    counts = {
        "policy (Qwen2.5-3B)": count(policy),
        "flux transformer": count(pipe.transformer),
        "flux T5-XXL encoder": count(pipe.text_encoder_2),
        "flux CLIP-L text": count(pipe.text_encoder),
        "flux VAE": count(pipe.vae),
        "ImageReward-v1.0": count(reward),
        "judge (Qwen2.5-VL-3B)": count(judge),
    }
    return counts
