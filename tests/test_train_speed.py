"""The lab-speed cuts of GRPO (issue 17). ``share_prompt_pass``: one forward per distinct prompt gives TRL's
log-probs, entropies and gradients (the tiny Qwen2 with a LoRA adapter, left-padded prompts of two lengths,
padded completions). ``merged_sampling``: the merged copy is the LoRA policy (same logits, same greedy tokens),
follows the adapter as it trains, and never writes into the frozen weights. The GRPO steps with each cut are in
``test_train_grpo.py``."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path

import pytest

G, COMPLETION = 3, 6


@pytest.fixture(scope="module")
def lora(tiny_model):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM
    from trl.trainer.utils import add_fused_lm_head

    base = AutoModelForCausalLM.from_pretrained(tiny_model("tiny-qwen2"), dtype=torch.float32)
    add_fused_lm_head(base, temperature=0.9, outputs=("log_probs", "entropy"))  # as GRPOTrainer does
    torch.manual_seed(0)
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    return get_peft_model(base, config).train()


def _batch(vocab: int):
    """Two prompts (the second left-padded by two), each with G completions; two completions end early."""
    import torch

    g = torch.Generator().manual_seed(1)
    prompts = torch.randint(3, vocab, (2, 9), generator=g)
    prompt_mask = torch.ones_like(prompts)
    prompt_mask[1, :2] = 0
    completions = torch.randint(3, vocab, (2 * G, COMPLETION), generator=g)
    completion_mask = torch.ones_like(completions)
    completion_mask[0, 3:] = 0
    completion_mask[4, 1:] = 0
    ids = torch.cat([prompts.repeat_interleave(G, 0), completions], 1)
    mask = torch.cat([prompt_mask.repeat_interleave(G, 0), completion_mask], 1)
    return ids, mask, completion_mask.bool()


def _trl_pass(model, ids, mask):
    """What ``GRPOTrainer._get_per_token_logps_and_entropies`` runs for one chunk."""
    labels = ids.masked_fill(mask == 0, -100)
    labels[:, :-COMPLETION] = -100
    out = model(input_ids=ids, attention_mask=mask, labels=labels, fused_lm_head=True)
    return out.log_probs[:, -COMPLETION:], out.entropy[:, -COMPLETION:]


def test_one_pass_per_prompt_gives_trls_log_probs_entropies_and_gradients(lora) -> None:
    import torch

    from reprompt.train.shared_prompt import shared_prompt_logps

    ids, mask, scored = _batch(lora.config.vocab_size)
    params = [p for p in lora.parameters() if p.requires_grad]
    ref_logps, ref_entropy = _trl_pass(lora, ids, mask)
    ref_grads = torch.autograd.grad(ref_logps[scored].sum(), params)
    shared = shared_prompt_logps(lora, ids, mask, COMPLETION, nullcontext())
    assert shared is not None
    logps, entropy = shared
    assert logps.shape == ref_logps.shape == (2 * G, COMPLETION)
    torch.testing.assert_close(logps[scored], ref_logps[scored], rtol=0, atol=1e-5)
    torch.testing.assert_close(entropy[scored], ref_entropy[scored], rtol=0, atol=1e-5)
    grads = torch.autograd.grad(logps[scored].sum(), params)
    for got, want in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
    assert any(g.abs().sum() > 0 for g in grads)


def test_nothing_to_share_leaves_the_pass_to_trl(lora) -> None:
    from reprompt.train.shared_prompt import distinct_rows, shared_prompt_logps

    ids, mask, _ = _batch(lora.config.vocab_size)
    rows = [0, G]  # one completion of each prompt: every prompt distinct
    assert shared_prompt_logps(lora, ids[rows], mask[rows], COMPLETION, nullcontext()) is None
    first, inverse = distinct_rows(ids[:, :-COMPLETION])
    assert sorted(first.tolist()) == [0, G]
    assert inverse.tolist() == [inverse[0].item()] * G + [inverse[G].item()] * G


def test_share_prompt_pass_refuses_activation_checkpointing(tmp_path: Path) -> None:
    import yaml

    from reprompt.errors import ConfigError
    from reprompt.train import grpo

    prompts = tmp_path / "p.txt"
    prompts.write_text("a photo of a cat\n")
    cfg = {
        "prompts": str(prompts),
        "rewards": {"backbone": "sketch", "components": ["format"]},
        "share_prompt_pass": True,
        "activation_checkpointing": True,
    }
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    with pytest.raises(ConfigError, match="activation_checkpointing: false"):
        grpo.parse(["--config", str(path)])


def test_the_merged_copy_samples_the_lora_policy_and_follows_its_adapter(lora) -> None:
    import torch

    from reprompt.train.merged_sampler import MergedSampler

    ids, mask, _ = _batch(lora.config.vocab_size)
    prompts, prompt_mask = ids[::G, :-COMPLETION], mask[::G, :-COMPLETION]
    q = lora.get_base_model().model.layers[0].self_attn.q_proj
    frozen = q.base_layer.weight.detach().clone()
    sampler = MergedSampler(lora)
    assert len(sampler.layers) == 2 * lora.config.num_hidden_layers  # q_proj and v_proj of every layer
    gen = dict(max_new_tokens=8, do_sample=False, pad_token_id=0)
    for step in range(2):
        if step:  # a training step moved the adapter: the next rollout (generate) refreshes the copy first
            sampler.refresh()
        with torch.no_grad():
            want = lora(input_ids=prompts, attention_mask=prompt_mask).logits
            got = sampler.model(input_ids=prompts, attention_mask=prompt_mask).logits
            torch.testing.assert_close(got, want, rtol=0, atol=1e-4)
            lora.eval()
            tokens = lora.generate(input_ids=prompts, attention_mask=prompt_mask, **gen)
            lora.train()
            assert torch.equal(sampler.generate(input_ids=prompts, attention_mask=prompt_mask, **gen), tokens)
            q.lora_B["default"].weight.add_(0.5)
    assert torch.equal(q.base_layer.weight, frozen)  # the frozen weights were never written
    shared = sampler.model.model.layers[0].mlp.up_proj.weight
    assert shared.data_ptr() == lora.get_base_model().model.layers[0].mlp.up_proj.weight.data_ptr()
