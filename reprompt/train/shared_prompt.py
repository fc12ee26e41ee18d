"""One forward pass per distinct prompt in GRPO's log-prob and update passes (``share_prompt_pass``).

GRPO scores G completions of every prompt, and TRL runs each ``prompt + completion`` row through the model
whole, so a prompt's tokens go forward (and backward) G times. Here each distinct prompt goes once, with the
gradient kept, and its KV cache is indexed out to the rows that share it; the completions then run on that
cache through TRL's own fused LM head. The loss is the same function of the same weights (only the order of
float sums changes: the tests compare log-probs and gradients with TRL's pass); what it saves grows with the
prompt's share of the tokens and with G. Prefix sharing for GRPO is known in the field as e.g. "Prefix
Grouper" (arXiv 2506.05433). Measured on the lab's CPU runs in RESULTS §8.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any


def distinct_rows(keys: Any) -> tuple[Any, Any] | None:
    """``(first, inverse)``: for each distinct row of ``keys`` the index of its first occurrence, and for each
    row the position of its distinct row; None when every row is distinct (nothing to share)."""
    import torch

    distinct, inverse = torch.unique(keys, dim=0, return_inverse=True)
    n = keys.size(0)
    if distinct.size(0) == n:
        return None
    first = torch.full((distinct.size(0),), n, dtype=torch.long, device=keys.device)
    first = first.scatter_reduce(0, inverse, torch.arange(n, device=keys.device), reduce="amin")
    return first, inverse


def shared_prompt_logps(
    model: Any,
    input_ids: Any,
    attention_mask: Any,
    logits_to_keep: int,
    autocast: AbstractContextManager[Any],
) -> tuple[Any, Any] | None:
    """Per-token log-probs and entropies of the last ``logits_to_keep`` tokens of each row, as TRL's
    ``model(..., labels=labels, fused_lm_head=True)`` gives them, with one pass per distinct prompt.

    The prompt pass stops one token short; that last prompt token opens the completion pass, so the fused head
    (which scores position t+1 from position t) scores every completion token. Returns None when there is
    nothing to share (every prompt distinct, or a prompt of one token): the caller runs TRL's own pass.
    """
    import torch

    prompt_len = input_ids.size(1) - logits_to_keep
    if prompt_len < 2:
        return None
    rows = distinct_rows(torch.cat([input_ids[:, :prompt_len], attention_mask[:, :prompt_len]], dim=1))
    if rows is None:
        return None
    first, inverse = rows
    # TRL's labels: the completion's own tokens, padding ignored
    labels = input_ids.masked_fill(attention_mask == 0, -100)
    labels[:, :prompt_len] = -100
    with autocast:
        prefix = model(
            input_ids=input_ids[first, : prompt_len - 1],
            attention_mask=attention_mask[first, : prompt_len - 1],
            use_cache=True,
            logits_to_keep=1,  # the logits are not used: the completion pass scores every completion token
        )
        cache = prefix.cache
        cache.batch_select_indices(inverse)  # each row gets its prompt's keys and values (gradient kept)
        out = model(
            input_ids=input_ids[:, prompt_len - 1 :],
            attention_mask=attention_mask,
            cache=cache,
            labels=labels[:, prompt_len - 1 :],
            fused_lm_head=True,
        )
    entropy = out.entropy[:, -logits_to_keep:] if out.entropy is not None else None  # a ref model has none
    return out.log_probs[:, -logits_to_keep:], entropy
