"""Tiny text-to-image pipelines: FLUX.1-dev, SD3, PixArt-Sigma and SDXL with random weights.

Each keeps its real model's wiring (text encoders, VAE scale factor 8, latent channels, VAE scaling/shift,
scheduler kind and settings, tokenizer lengths), so a 64x64, 2-step render runs the same code path as a real
512x512 one, in a fraction of a second on CPU. Component sizes follow diffusers' own ``get_dummy_components``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reprompt.testing import tokenizers


def _clip_text(
    tok: Any,
    hidden: int,
    projection: bool,
    *,
    layers: int = 2,
    heads: int = 4,
    mlp: int | None = None,
    vocab: int | None = None,
) -> Any:
    """CLIP text encoder (2 layers unless told) whose special ids match ``tok``; with ``projection`` it also
    returns ``text_embeds`` (CLIPTextModelWithProjection, as SD3 and SDXL's second encoder use)."""
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    config = CLIPTextConfig(
        vocab_size=vocab or len(tok),
        hidden_size=hidden,
        intermediate_size=mlp or 2 * hidden,
        projection_dim=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        max_position_embeddings=77,
        hidden_act="quick_gelu",
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    return (CLIPTextModelWithProjection if projection else CLIPTextModel)(config).eval()


def _t5_encoder(
    tok: Any,
    d_model: int,
    *,
    layers: int = 2,
    heads: int = 4,
    d_kv: int = 8,
    d_ff: int | None = None,
    vocab: int | None = None,
) -> Any:
    """T5 v1.1-style encoder (gated-gelu, untied), 2 layers unless told."""
    from transformers import T5Config, T5EncoderModel

    config = T5Config(
        vocab_size=vocab or len(tok),
        d_model=d_model,
        d_kv=d_kv,
        d_ff=d_ff or 2 * d_model,
        num_layers=layers,
        num_heads=heads,
        feed_forward_proj="gated-gelu",
        tie_word_embeddings=False,
        dropout_rate=0.0,
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
        decoder_start_token_id=tok.pad_token_id,
    )
    return T5EncoderModel(config).eval()


def _vae(
    latent_channels: int,
    scaling_factor: float,
    shift_factor: float | None,
    quant_conv: bool,
    *,
    channels: tuple[int, ...] = (8, 16, 32, 32),
    layers_per_block: int = 1,
    groups: int = 4,
) -> Any:
    """AutoencoderKL with 4 blocks, i.e. the real 8x spatial downsampling, with 8-32 channels unless told."""
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=channels,
        layers_per_block=layers_per_block,
        latent_channels=latent_channels,
        norm_num_groups=groups,
        sample_size=64,
        scaling_factor=scaling_factor,
        shift_factor=shift_factor,
        use_quant_conv=quant_conv,
        use_post_quant_conv=quant_conv,
    ).eval()


# FluxPipeline component sizes: the zoo's tiny ones, and FLUX.1-dev's published ones (transformer 19 double +
# 38 single blocks, CLIP ViT-L/14 text, T5-v1.1-XXL encoder, the 16-channel VAE), which
# reprompt.testing.full builds with random weights for GPU timing.
FLUX_TINY: dict[str, dict[str, Any]] = {
    "transformer": {
        "num_layers": 1,
        "num_single_layers": 1,
        "attention_head_dim": 16,
        "num_attention_heads": 2,
        "joint_attention_dim": 32,  # T5 d_model
        "pooled_projection_dim": 32,  # CLIP pooled output
        "axes_dims_rope": (4, 6, 6),
    },
    "clip": {"hidden": 32},
    "t5": {"d_model": 32},
    "vae": {},
}
FLUX_DEV: dict[str, dict[str, Any]] = {
    "transformer": {
        "num_layers": 19,
        "num_single_layers": 38,
        "attention_head_dim": 128,
        "num_attention_heads": 24,
        "joint_attention_dim": 4096,
        "pooled_projection_dim": 768,
        "axes_dims_rope": (16, 56, 56),
    },
    "clip": {"hidden": 768, "layers": 12, "heads": 12, "mlp": 3072, "vocab": 49408},
    "t5": {"d_model": 4096, "layers": 24, "heads": 64, "d_kv": 64, "d_ff": 10240, "vocab": 32128},
    "vae": {"channels": (128, 256, 512, 512), "layers_per_block": 2, "groups": 32},
}


def flux_pipeline(seed: int, sizes: dict[str, dict[str, Any]] | None = None) -> Any:
    """A FluxPipeline wired like FLUX.1-dev (guidance-distilled transformer, CLIP-L with 77 tokens and T5 with
    512, 16-channel VAE, dynamic-shift flow-matching scheduler), at ``sizes`` (default :data:`FLUX_TINY`),
    built on the current default device and dtype."""
    import torch
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel

    sizes = sizes or FLUX_TINY
    tok, tok_2 = tokenizers.clip_tokenizer(), tokenizers.t5_tokenizer(model_max_length=512)
    torch.manual_seed(seed)
    text_encoder = _clip_text(tok, projection=False, **sizes["clip"])
    text_encoder_2 = _t5_encoder(tok_2, **sizes["t5"])
    transformer = FluxTransformer2DModel(
        patch_size=1,
        in_channels=64,
        guidance_embeds=True,
        **sizes["transformer"],  # 16 latent channels, 2x2
    ).eval()
    vae = _vae(16, scaling_factor=0.3611, shift_factor=0.1159, quant_conv=False, **sizes["vae"])
    scheduler = FlowMatchEulerDiscreteScheduler(
        shift=3.0,
        use_dynamic_shifting=True,
        base_shift=0.5,
        max_shift=1.15,
        base_image_seq_len=256,
        max_image_seq_len=4096,
    )
    return FluxPipeline(
        scheduler=scheduler,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tok,
        text_encoder_2=text_encoder_2,
        tokenizer_2=tok_2,
        transformer=transformer,
    )


def build_flux(folder: Path, seed: int) -> None:
    """FluxPipeline like FLUX.1-dev with tiny components (1 double + 1 single block, width 32)."""
    flux_pipeline(seed).save_pretrained(folder)


def build_sd3(folder: Path, seed: int) -> None:
    """StableDiffusion3Pipeline: CLIP-L and CLIP-G (with projection; G pads with "!"), T5 (d_model 96 so the
    concatenated CLIP states fit, as in the real model), 1-block MMDiT, 16-channel VAE. Default size 64 px."""
    import torch
    from diffusers import FlowMatchEulerDiscreteScheduler, SD3Transformer2DModel, StableDiffusion3Pipeline

    tok, tok_2 = tokenizers.clip_tokenizer(), tokenizers.clip_tokenizer(pad_token="!")
    tok_3 = tokenizers.t5_tokenizer(model_max_length=512)
    torch.manual_seed(seed)
    text_encoder = _clip_text(tok, hidden=32, projection=True)
    text_encoder_2 = _clip_text(tok_2, hidden=48, projection=True)
    text_encoder_3 = _t5_encoder(tok_3, d_model=96)
    transformer = SD3Transformer2DModel(
        sample_size=8,  # latent size: pipeline default height/width = 8 * 8 = 64
        patch_size=2,
        in_channels=16,
        out_channels=16,
        num_layers=1,
        attention_head_dim=8,
        num_attention_heads=4,
        joint_attention_dim=96,
        caption_projection_dim=32,
        pooled_projection_dim=32 + 48,
        pos_embed_max_size=64,  # up to 1024 px
    ).eval()
    vae = _vae(16, scaling_factor=1.5305, shift_factor=0.0609, quant_conv=False)
    pipe = StableDiffusion3Pipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0),
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tok,
        text_encoder_2=text_encoder_2,
        tokenizer_2=tok_2,
        text_encoder_3=text_encoder_3,
        tokenizer_3=tok_3,
        transformer=transformer,
    )
    pipe.save_pretrained(folder)


def build_pixart_sigma(folder: Path, seed: int) -> None:
    """PixArtSigmaPipeline: T5 (300 tokens), 1-block DiT predicting noise and variance, SDXL's 4-channel VAE,
    DPM-Solver++. ``sample_size`` 32 is PixArt's 256-px bin, so the default resolution binning works."""
    import torch
    from diffusers import DPMSolverMultistepScheduler, PixArtSigmaPipeline, PixArtTransformer2DModel

    tok = tokenizers.t5_tokenizer(model_max_length=300)
    torch.manual_seed(seed)
    text_encoder = _t5_encoder(tok, d_model=32)
    transformer = PixArtTransformer2DModel(
        sample_size=32,
        num_layers=1,
        patch_size=2,
        attention_head_dim=8,
        num_attention_heads=2,
        cross_attention_dim=16,
        caption_channels=32,  # T5 d_model
        in_channels=4,
        out_channels=8,  # learned sigma
        attention_bias=True,
        activation_fn="gelu-approximate",
        num_embeds_ada_norm=1000,
        norm_type="ada_norm_single",
        norm_elementwise_affine=False,
        norm_eps=1e-6,
    ).eval()
    vae = _vae(4, scaling_factor=0.13025, shift_factor=None, quant_conv=True)
    scheduler = DPMSolverMultistepScheduler(beta_start=0.0001, beta_end=0.02, beta_schedule="linear")
    pipe = PixArtSigmaPipeline(
        tokenizer=tok, text_encoder=text_encoder, vae=vae, transformer=transformer, scheduler=scheduler
    )
    pipe.save_pretrained(folder)


def build_sdxl(folder: Path, seed: int) -> None:
    """StableDiffusionXLPipeline: CLIP-L (hidden states) + CLIP-G (with projection, pads with "!"), a 2-level
    UNet with text-time conditioning, 4-channel VAE, Euler scheduler. Default size 64 px."""
    import torch
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel

    tok, tok_2 = tokenizers.clip_tokenizer(), tokenizers.clip_tokenizer(pad_token="!")
    torch.manual_seed(seed)
    text_encoder = _clip_text(tok, hidden=32, projection=False)
    text_encoder_2 = _clip_text(tok_2, hidden=48, projection=True)
    unet = UNet2DConditionModel(
        sample_size=8,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        block_out_channels=(16, 32),
        layers_per_block=1,
        attention_head_dim=(2, 4),
        transformer_layers_per_block=(1, 1),
        use_linear_projection=True,
        norm_num_groups=4,
        cross_attention_dim=32 + 48,  # both encoders' penultimate hidden states, concatenated
        addition_embed_type="text_time",
        addition_time_embed_dim=8,
        projection_class_embeddings_input_dim=6 * 8 + 48,  # 6 size/crop ids + CLIP-G pooled projection
    ).eval()
    vae = _vae(4, scaling_factor=0.13025, shift_factor=None, quant_conv=True)
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        steps_offset=1,
        timestep_spacing="leading",
        prediction_type="epsilon",
    )
    pipe = StableDiffusionXLPipeline(
        vae=vae,
        text_encoder=text_encoder,
        text_encoder_2=text_encoder_2,
        tokenizer=tok,
        tokenizer_2=tok_2,
        unet=unet,
        scheduler=scheduler,
    )
    pipe.save_pretrained(folder)
