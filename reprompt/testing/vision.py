"""Tiny scoring models: CLIP, Mask2Former (GenEval's detector), BLIP-VQA, Qwen2.5-VL (VLM judge) and Qwen3-VL
(GenEval 2's VQA judge).

Each folder holds the model and its processor, saved with ``save_pretrained``, so reward and evaluation code
loads it through the same ``from_pretrained`` calls it uses for the real checkpoints. Image sizes are shrunk
(32-64 px inputs) to keep a forward pass in the milliseconds on CPU.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from reprompt.geneval.vocabulary import COCO_CLASSES  # one list for the detector and its tiny twin
from reprompt.testing import text, tokenizers

# The towers of the tiny CLIP and BLIP: 2 layers of width 32 (4 heads); images of 32 px in 8-px patches.
TINY_TEXT_TOWER = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
}
TINY_VISION_TOWER = {**TINY_TEXT_TOWER, "image_size": 32, "patch_size": 8}

__all__ = [
    "COCO_CLASSES",
    "build_blip_vqa",
    "build_clip",
    "build_mask2former",
    "build_qwen2_vl",
    "build_qwen3_vl",
]

# OpenAI CLIP normalisation, shared by CLIP, BLIP and Qwen2-VL image processors.
_CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
_CLIP_STD = [0.26862954, 0.26130258, 0.27577711]


def build_clip(folder: Path, seed: int) -> None:
    """CLIPModel (ViT text and vision towers, 32 px images, 8 px patches) + CLIPProcessor."""
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

    tok = tokenizers.clip_tokenizer()
    config = CLIPConfig(
        text_config={
            **TINY_TEXT_TOWER,
            "vocab_size": len(tok),
            "max_position_embeddings": 77,
            "bos_token_id": tok.bos_token_id,
            "eos_token_id": tok.eos_token_id,
            "pad_token_id": tok.pad_token_id,
        },
        vision_config=TINY_VISION_TOWER,
        projection_dim=32,
    )
    torch.manual_seed(seed)
    model = CLIPModel(config).eval()
    image_processor = CLIPImageProcessor(
        size={"shortest_edge": 32},
        crop_size={"height": 32, "width": 32},
        image_mean=_CLIP_MEAN,
        image_std=_CLIP_STD,
    )
    model.save_pretrained(folder)
    CLIPProcessor(image_processor=image_processor, tokenizer=tok).save_pretrained(folder)


def build_mask2former(folder: Path, seed: int) -> None:
    """Mask2FormerForUniversalSegmentation for COCO instance segmentation: 80 classes named as in GenEval, a
    4-stage Swin backbone (16-128 channels), 20 queries; Mask2FormerImageProcessor resizing to 64-128 px."""
    import torch
    from transformers import (
        Mask2FormerConfig,
        Mask2FormerForUniversalSegmentation,
        Mask2FormerImageProcessor,
        SwinConfig,
    )

    backbone = SwinConfig(
        image_size=64,
        patch_size=4,
        embed_dim=16,
        depths=[1, 1, 1, 1],
        num_heads=[1, 2, 2, 4],
        window_size=4,
        drop_path_rate=0.0,
        out_features=["stage1", "stage2", "stage3", "stage4"],
    )
    config = Mask2FormerConfig(
        backbone_config=backbone,
        feature_size=32,
        mask_feature_size=32,
        hidden_dim=32,
        encoder_feedforward_dim=64,
        encoder_layers=1,
        decoder_layers=3,
        num_attention_heads=4,
        dim_feedforward=64,
        num_queries=20,
        id2label=dict(enumerate(COCO_CLASSES)),
        label2id={name: i for i, name in enumerate(COCO_CLASSES)},
    )
    torch.manual_seed(seed)
    model = Mask2FormerForUniversalSegmentation(config).eval()
    processor = Mask2FormerImageProcessor(
        size={"shortest_edge": 64, "longest_edge": 128},
        size_divisor=32,
        ignore_index=255,
        do_reduce_labels=False,
        num_labels=len(COCO_CLASSES),
    )
    model.save_pretrained(folder)
    processor.save_pretrained(folder)


def build_blip_vqa(folder: Path, seed: int) -> None:
    """BlipForQuestionAnswering (32 px images) + BlipProcessor with an uncased WordPiece tokenizer that, like
    Salesforce's, adds ``[DEC]`` (the answer decoder's start token) and ``[ENC]``."""
    import torch
    from transformers import BlipConfig, BlipForQuestionAnswering, BlipImageProcessor, BlipProcessor

    tok = tokenizers.bert_tokenizer()
    tok.add_special_tokens({"bos_token": "[DEC]", "additional_special_tokens": ["[ENC]"]})
    config = BlipConfig(
        text_config={
            **TINY_TEXT_TOWER,
            "vocab_size": len(tok),
            "encoder_hidden_size": 32,
            "max_position_embeddings": 512,
            "bos_token_id": tok.bos_token_id,
            "eos_token_id": tok.sep_token_id,
            "pad_token_id": tok.pad_token_id,
            "sep_token_id": tok.sep_token_id,
        },
        # BLIP's default initializer range, 1e-10, would give a constant vision tower
        vision_config={**TINY_VISION_TOWER, "initializer_range": 0.02},
        projection_dim=32,
        image_text_hidden_size=32,
    )
    torch.manual_seed(seed)
    model = BlipForQuestionAnswering(config).eval()
    image_processor = BlipImageProcessor(
        size={"height": 32, "width": 32}, image_mean=_CLIP_MEAN, image_std=_CLIP_STD
    )
    model.save_pretrained(folder)
    BlipProcessor(image_processor=image_processor, tokenizer=tok).save_pretrained(folder)


_TINY_VISION: dict[str, Any] = {
    "depth": 2,
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_heads": 2,
    "out_hidden_size": 64,
}
"""The tiny Qwen-VL vision towers' shared sizes (2 layers, width 32, projected to the tiny LM's 64)."""

# Qwen2.5-VL sizes: the zoo's tiny one (images capped at 64 merged tokens, ``max_pixels`` 224x224, to keep
# tests fast) and Qwen2.5-VL-3B-Instruct's published config with its processor's pixel range, which
# reprompt.testing.full builds with random weights for GPU timing.
QWEN2_5_VL_TINY: dict[str, Any] = {
    "text": {**text.QWEN2_TINY, "mrope_section": [2, 3, 3]},
    "vision": {
        **_TINY_VISION,
        "window_size": 112,
        "fullatt_block_indexes": [1],
    },
    "pixels": {"min_pixels": 56 * 56, "max_pixels": 224 * 224},
}
QWEN2_5_VL_3B: dict[str, Any] = {
    "text": {**text.QWEN2_5_3B, "max_position_embeddings": 128000, "mrope_section": [16, 24, 24]},
    "vision": {
        "depth": 32,
        "hidden_size": 1280,
        "intermediate_size": 3420,
        "num_heads": 16,
        "out_hidden_size": 2048,
        "window_size": 112,
        "fullatt_block_indexes": [7, 15, 23, 31],
    },
    "pixels": {"min_pixels": 56 * 56, "max_pixels": 28 * 28 * 1280},
    "tie_word_embeddings": True,
}


def _qwen_vl_config(
    config_cls: Any, tok: Any, sizes: dict[str, Any], patch_size: int, rope_theta: float, **rope: Any
) -> tuple[Any, int, int]:
    """A Qwen-VL config (``config_cls``) for ``tok`` (the Qwen2.5 tokenizer with the vision tokens) at
    ``sizes``, its M-RoPE at ``rope_theta`` (``rope``: more rope parameters); with the LM's end-of-text and
    end-of-turn ids."""
    ids = {t: tok.convert_tokens_to_ids(t) for t in tokenizers.QWEN_SPECIAL_TOKENS}
    eot, im_end = ids["<|endoftext|>"], ids["<|im_end|>"]
    lm = {"vocab_size": -(-len(tok) // 64) * 64, **sizes["text"]}
    mrope = lm.pop("mrope_section")
    config = config_cls(
        text_config={
            **lm,
            "rms_norm_eps": 1e-6,
            "rope_parameters": {
                "rope_type": "default",
                "rope_theta": rope_theta,
                "mrope_section": mrope,
                **rope,
            },
            "bos_token_id": eot,
            "eos_token_id": im_end,
            "pad_token_id": eot,
        },
        vision_config={
            "patch_size": patch_size,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            **sizes["vision"],
        },
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=sizes.get("tie_word_embeddings", False),
    )
    return config, eot, im_end


def qwen2_vl_model(tok: Any, sizes: dict[str, Any] | None = None) -> Any:
    """Qwen2_5_VLForConditionalGeneration for ``tok`` (the Qwen2.5 tokenizer with the vision tokens) at
    ``sizes`` (default :data:`QWEN2_5_VL_TINY`), on the current default device and dtype."""
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    config, eot, im_end = _qwen_vl_config(Qwen2_5_VLConfig, tok, sizes or QWEN2_5_VL_TINY, 14, 1000000.0)
    model = Qwen2_5_VLForConditionalGeneration(config).eval()
    model.generation_config = text.qwen_generation_config(eot, im_end, temperature=0.1, top_p=0.001, top_k=1)
    return model


def build_qwen2_vl(folder: Path, seed: int, sizes: dict[str, Any] | None = None) -> None:
    """Qwen2_5_VLForConditionalGeneration (default: 2-layer vision tower, 2-layer Qwen2 LM with M-RoPE) + its
    processor: the Qwen2.5 tokenizer with the vision tokens and Qwen2-VL's chat template."""
    import torch

    tok = tokenizers.qwen2_tokenizer(vision=True)
    sizes = sizes or QWEN2_5_VL_TINY
    torch.manual_seed(seed)
    model = qwen2_vl_model(tok, sizes)
    _save_qwen_vl(
        folder, model, tok, sizes["pixels"], 14, (_CLIP_MEAN, _CLIP_STD), "Qwen2VL", "Qwen2_5_VLProcessor"
    )


def _save_qwen_vl(
    folder: Path,
    model: Any,
    tok: Any,
    pixels: dict[str, int],
    patch_size: int,
    norm: tuple[list[float], list[float]],
    video: str,
    processor_class: str,
) -> None:
    """Save a tiny Qwen-VL with its processor files. ``processor_config.json`` is written by hand: without
    torchvision (this CPU stack) transformers can build neither the ``{video}VideoProcessor`` nor, therefore,
    the processor; the file is what ``{processor_class}.save_pretrained`` writes, and loaders fall back to the
    image processor it names."""
    from transformers import Qwen2VLImageProcessor

    patches = {"patch_size": patch_size, "temporal_patch_size": 2, "merge_size": 2}
    mean, std = norm
    image_processor = Qwen2VLImageProcessor(**pixels, **patches, image_mean=mean, image_std=std)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)  # also writes chat_template.jinja, which the processor shares
    video_processor = {
        "video_processor_type": f"{video}VideoProcessor",
        "size": {"shortest_edge": pixels["min_pixels"], "longest_edge": pixels["max_pixels"]},
        **patches,
        "image_mean": mean,
        "image_std": std,
    }
    processor = {
        "image_processor": image_processor.to_dict(),
        "video_processor": video_processor,
        "processor_class": processor_class,
    }
    (folder / "processor_config.json").write_text(json.dumps(processor, indent=2, sort_keys=True) + "\n")


# Qwen3-VL (GenEval 2's official judge is Qwen3-VL-8B-Instruct): the zoo's tiny one. Qwen3-VL's vision tower
# uses 16-px patches, learned position embeddings and "deepstack" features from some vision layers.
QWEN3_VL_TINY: dict[str, Any] = {
    "text": {**text.QWEN2_TINY, "head_dim": 16, "mrope_section": [2, 3, 3]},
    "vision": {
        **_TINY_VISION,
        "num_position_embeddings": 64,
        "deepstack_visual_indexes": [0],
    },
    "pixels": {"min_pixels": 64 * 64, "max_pixels": 256 * 256},
}


def build_qwen3_vl(folder: Path, seed: int) -> None:
    """Qwen3VLForConditionalGeneration (2-layer vision tower, 2-layer Qwen3 LM with interleaved M-RoPE) + its
    processor files: the Qwen2.5 tokenizer with the vision tokens and the Qwen2-VL chat template (the same image
    placeholders Qwen3-VL's template writes), and Qwen2-VL's image processor at 16-px patches."""
    import torch
    from transformers import (
        Qwen3VLConfig,
        Qwen3VLForConditionalGeneration,
    )

    tok = tokenizers.qwen2_tokenizer(vision=True)
    sizes = QWEN3_VL_TINY
    torch.manual_seed(seed)
    config, eot, im_end = _qwen_vl_config(Qwen3VLConfig, tok, sizes, 16, 5000000.0, mrope_interleaved=True)
    model = Qwen3VLForConditionalGeneration(config).eval()
    # Qwen3-VL-Instruct's shipped config: no repetition penalty (GenEval 2's official generate() reads it)
    model.generation_config = text.qwen_generation_config(
        eot, im_end, temperature=0.7, top_p=0.8, top_k=20, repetition_penalty=1.0
    )
    half = [0.5, 0.5, 0.5]  # Qwen3-VL normalises with mean = std = 0.5
    _save_qwen_vl(folder, model, tok, sizes["pixels"], 16, (half, half), "Qwen3VL", "Qwen3VLProcessor")
