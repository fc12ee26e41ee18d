"""Rollouts sampled from a copy of the LoRA policy with its adapter merged (``merged_sampling``).

TRL samples a PEFT policy through ``PeftModel.generate``: every token of every completion runs each adapted
layer twice (the frozen weight, then the adapter's two small matmuls, casts and an add). A decode step of a
small model on a CPU is bound by those per-layer calls as much as by the weights it reads, so sampling from
``W + scale * B @ A`` held as one weight is faster (RESULTS §8: `benchmarks/cpu_decode.py`, ``peft-bf16w``
against ``merged-bf16``). This is what TRL's vLLM path does with a PEFT policy (it merges the adapter and
loads the merged weights into vLLM); here the "engine" is a plain transformers copy of the model. The copy is
refreshed from the adapter before every rollout (only the adapted weights change), costs one more copy of the
weights in memory, and samples in the base weights' dtype: the tokens differ from the unmerged model's by
rounding only (the test samples both greedily and compares).
"""

from __future__ import annotations

from copy import deepcopy
from typing import Any

from reprompt.errors import ConfigError


class MergedSampler:
    """A plain copy of ``peft_model``'s base model whose adapted weights are ``W + ΔW`` of the active adapter."""

    def __init__(self, peft_model: Any) -> None:
        import torch
        from peft.tuners.lora.layer import Linear as LoraLinear
        from transformers import AutoModelForCausalLM

        base = peft_model.get_base_model()
        adapter = peft_model.active_adapter
        config = peft_model.peft_config[adapter]
        if getattr(config, "modules_to_save", None) or getattr(config, "use_dora", False):
            raise ConfigError("merged_sampling merges plain LoRA only (no modules_to_save, no DoRA)")
        self.adapter = adapter
        adapted = {
            name: module
            for name, module in base.named_modules()
            if isinstance(module, LoraLinear) and adapter in module.lora_A
        }
        if not adapted:
            raise ConfigError("merged_sampling needs a LoRA policy (use_peft: true)")
        # the frozen weights are shared with the policy (read only); the adapted ones get storage of their own
        state = {}
        for key, value in base.state_dict(keep_vars=True).items():
            if ".lora_" in key:
                continue
            name = key.replace(".base_layer.", ".")
            owner = name.rsplit(".", 1)[0]
            state[name] = value.detach().clone() if owner in adapted else value.detach()
        with torch.device("meta"):
            merged = AutoModelForCausalLM.from_config(base.config, dtype=state[next(iter(state))].dtype)
        merged.load_state_dict(state, strict=True, assign=True)
        # non-persistent buffers (rotary frequencies) are not in the state dict: share the policy's
        for key, buffer in base.named_buffers():
            owner, _, leaf = key.rpartition(".")
            merged.get_submodule(owner.replace(".base_layer", ""))._buffers[leaf] = buffer
        merged.tie_weights()
        merged.requires_grad_(False).eval()
        merged.generation_config = deepcopy(base.generation_config)  # generate() fills unset values from it
        self.layers = [(module, merged.get_submodule(name).weight) for name, module in adapted.items()]
        self.model = merged
        self.refresh()

    def refresh(self) -> None:
        """Write the adapter's current ``W + ΔW`` into the copy (summed in fp32, stored in the copy's dtype)."""
        import torch

        with torch.no_grad():
            for layer, weight in self.layers:
                delta = layer.get_delta_weight(self.adapter).float()
                weight.copy_(layer.base_layer.weight.float() + delta)

    def generate(self, *args: Any, **kwargs: Any) -> Any:
        self.refresh()
        return self.model.generate(*args, **kwargs)
