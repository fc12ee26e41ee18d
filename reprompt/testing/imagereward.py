"""Random-weight ImageReward models (the real architecture, :mod:`reprompt.rewards.imagereward_model`) for
tests (``tiny-imagereward``) and GPU timing at the real sizes (:mod:`reprompt.testing.full`)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from reprompt.rewards.imagereward_model import ImageRewardArch, ImageRewardModel
from reprompt.testing import tokenizers

TINY_ARCH = ImageRewardArch(
    image_size=32,
    patch_size=8,
    vision_hidden=32,
    vision_layers=2,
    vision_heads=4,
    vision_mlp=64,
    text_hidden=32,
    text_layers=2,
    text_heads=4,
    text_intermediate=64,
    text_max_positions=64,
)


def build_imagereward(
    folder: str | Path, seed: int = 0, arch: ImageRewardArch | None = None, fit_vocab: bool = False
) -> None:
    """A random-weight ImageReward (default: ImageReward-v1.0's sizes) with the tiny BERT tokenizer of :mod:`reprompt.testing.tokenizers`, saved in
    our folder format. The embedding keeps ``arch.text_vocab`` rows (the real 30,524) unless ``fit_vocab``
    sizes it to the small tokenizer."""
    tok = tokenizers.bert_tokenizer()
    tok.add_special_tokens({"bos_token": "[DEC]", "additional_special_tokens": ["[ENC]"]})
    arch = arch or ImageRewardArch()
    vocab = len(tok) if fit_vocab else max(arch.text_vocab, len(tok))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = ImageRewardModel(dataclasses.replace(arch, text_vocab=vocab)).eval()
    model.save(folder, tok)


def build_tiny_imagereward(folder: str | Path, seed: int = 0) -> None:
    """A random ImageReward with the real architecture at toy sizes (32 px, 2+2 layers, width 32).

    Same signature as the other tiny builders, so it can be registered as ``tiny-imagereward``.
    """
    build_imagereward(folder, seed, TINY_ARCH, fit_vocab=True)
