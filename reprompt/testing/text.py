"""Tiny policy LMs: Qwen2 (the paper's Qwen2.5-Instruct family) and Llama (SmolLM2, the offline real LM).

Configs keep the real models' token layout and generation defaults (eos list, sampling defaults, tied
embeddings, Qwen's padded vocabulary), so code written against the real checkpoints meets the same quirks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reprompt.testing import tokenizers


def _pad_to(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


# Qwen2ForCausalLM sizes. The tiny one is the zoo's; QWEN2_5_3B is Qwen2.5-3B(-Instruct)'s published config
# (reprompt.testing.full builds it with random weights for GPU timing).
QWEN2_TINY: dict[str, Any] = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 4096,
}
QWEN2_5_3B: dict[str, Any] = {
    "vocab_size": 151936,
    "hidden_size": 2048,
    "intermediate_size": 11008,
    "num_hidden_layers": 36,
    "num_attention_heads": 16,
    "num_key_value_heads": 2,
    "max_position_embeddings": 32768,
}


def qwen2_model(tok: Any, sizes: dict[str, Any] | None = None) -> Any:
    """Qwen2ForCausalLM wired like Qwen2.5-Instruct for tokenizer ``tok`` (weights from the current RNG,
    on the current default device and dtype)."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    sizes = {**QWEN2_TINY, **(sizes or {})}
    sizes.setdefault("vocab_size", _pad_to(len(tok), 64))
    im_end, eot = tok.convert_tokens_to_ids(["<|im_end|>", "<|endoftext|>"])
    config = Qwen2Config(
        **sizes,
        rope_theta=1000000.0,
        rms_norm_eps=1e-6,
        tie_word_embeddings=True,
        bos_token_id=eot,
        eos_token_id=im_end,
        pad_token_id=eot,
    )
    model = Qwen2ForCausalLM(config).eval()
    model.generation_config = qwen_generation_config(eot, im_end, temperature=0.7, top_p=0.8, top_k=20)
    return model


def qwen_generation_config(
    eot: int, im_end: int, *, temperature: float, top_p: float, top_k: int, repetition_penalty: float = 1.05
) -> Any:
    """The sampling defaults a Qwen model ships (ours ignore them when decoding greedily). Qwen2/2.5 ship a
    repetition penalty of 1.05, Qwen3-VL-Instruct 1.0; the penalty changes even a greedy step's scores."""
    from transformers import GenerationConfig

    return GenerationConfig(
        bos_token_id=eot,
        pad_token_id=eot,
        eos_token_id=[im_end, eot],
        do_sample=True,
        temperature=temperature,
        top_p=top_p,
        top_k=top_k,
        repetition_penalty=repetition_penalty,
    )


def build_qwen2(folder: Path, seed: int, sizes: dict[str, Any] | None = None) -> None:
    """Qwen2ForCausalLM (hidden 64, 2 layers, 4 heads, 2 kv heads unless ``sizes`` says otherwise) +
    Qwen2.5-Instruct-style tokenizer.

    Like the real checkpoints, the embedding matrix is larger than the tokenizer (rounded up to 64 rows), and
    ``generation_config`` samples by default and stops on ``<|im_end|>`` or ``<|endoftext|>``.
    """
    import torch

    tok = tokenizers.qwen2_tokenizer()
    torch.manual_seed(seed)
    model = qwen2_model(tok, sizes)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)


def build_llama(folder: Path, seed: int) -> None:
    """LlamaForCausalLM laid out like SmolLM2-Instruct (ChatML template, bos ``<|im_start|>``, eos = pad =
    ``<|im_end|>``), the architecture of the one real instruct LM available offline."""
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    tok = tokenizers.smollm2_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=8192,
        rope_theta=100000.0,
        rms_norm_eps=1e-5,
        tie_word_embeddings=True,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config).eval()
    model.generation_config = GenerationConfig(
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id
    )
    model.save_pretrained(folder)
    tok.save_pretrained(folder)


# A chat template with Hunyuan-Instruct's thinking switch: with ``enable_thinking`` false the assistant turn opens
# with an empty think block, as Hunyuan-7B-Instruct's template writes it (ChatML markers, since the tiny model
# shares the Qwen2.5 tokenizer). PromptEnhancer-7B's inference script asks with enable_thinking=False.
HUNYUAN_STYLE_CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}"
    "{%- if enable_thinking is defined and not enable_thinking %}{{- '<think>\\n\\n</think>\\n' }}{%- endif %}"
    "{%- endif %}"
)


def build_hunyuan_dense(folder: Path, seed: int) -> None:
    """HunYuanDenseV1ForCausalLM (the architecture of Hunyuan-7B-Instruct and so of PromptEnhancer-7B; hidden 64,
    2 layers) with the Qwen2.5-style tokenizer and a chat template that honours ``enable_thinking``."""
    import torch
    from transformers import GenerationConfig, HunYuanDenseV1Config, HunYuanDenseV1ForCausalLM

    tok = tokenizers.qwen2_tokenizer()
    tok.chat_template = HUNYUAN_STYLE_CHAT_TEMPLATE
    im_end, eot = tok.convert_tokens_to_ids(["<|im_end|>", "<|endoftext|>"])
    torch.manual_seed(seed)
    config = HunYuanDenseV1Config(
        vocab_size=_pad_to(len(tok), 64),
        **{**QWEN2_TINY, "max_position_embeddings": 4096},
        head_dim=16,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
        pad_token_id=eot,
        bos_token_id=eot,
        eos_token_id=im_end,
        eod_token_id=eot,
    )
    model = HunYuanDenseV1ForCausalLM(config).eval()
    model.generation_config = GenerationConfig(
        bos_token_id=eot, pad_token_id=eot, eos_token_id=[im_end, eot], do_sample=False
    )
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
