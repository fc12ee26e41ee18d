"""Tiny policy LMs: Qwen2 (the paper's Qwen2.5-Instruct family) and Llama (SmolLM2, the offline real LM).

Configs keep the real models' token layout and generation defaults (eos list, sampling defaults, tied
embeddings, Qwen's padded vocabulary), so code written against the real checkpoints meets the same quirks.
"""

from __future__ import annotations

from pathlib import Path

from reprompt.zoo import tokenizers


def _pad_to(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


def build_qwen2(folder: Path, seed: int) -> None:
    """Qwen2ForCausalLM (hidden 64, 2 layers, 4 heads, 2 kv heads) + Qwen2.5-Instruct-style tokenizer.

    Like the real checkpoints, the embedding matrix is larger than the tokenizer (rounded up to 64 rows), and
    ``generation_config`` samples by default and stops on ``<|im_end|>`` or ``<|endoftext|>``.
    """
    import torch
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    tok = tokenizers.qwen2_tokenizer()
    im_end, eot = tok.convert_tokens_to_ids(["<|im_end|>", "<|endoftext|>"])
    config = Qwen2Config(
        vocab_size=_pad_to(len(tok), 64),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        rope_theta=1000000.0,
        rms_norm_eps=1e-6,
        tie_word_embeddings=True,
        bos_token_id=eot,
        eos_token_id=im_end,
        pad_token_id=eot,
    )
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config).eval()
    model.generation_config = GenerationConfig(
        bos_token_id=eot,
        pad_token_id=eot,
        eos_token_id=[im_end, eot],
        do_sample=True,
        temperature=0.7,
        top_p=0.8,
        top_k=20,
        repetition_penalty=1.05,
    )
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
