"""Stage 2: GRPO against the rendered-image reward (TRL ``GRPOTrainer``).

parse -> build -> train -> save. Prompts are conversational (``PromptSpec.messages``, the function
inference uses) with the user's prompt and its GenEval metadata as extra columns for the rewards. The
rewards come from :mod:`reprompt.rewards` in-process, or from a reward service. Resumes from the last
complete checkpoint after a kill; saves the PromptSpec with every checkpoint and the final model.

    reprompt train grpo --config configs/grpo/qwen2.5-3b_flux-dev.yaml [--learning_rate 1e-6 ...]
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from trl import GRPOTrainer, TrlParser

from reprompt.errors import ConfigError
from reprompt.rewards.config import RewardConfig
from reprompt.train.callbacks import MetricsSink, StepTimer
from reprompt.train.common import stage_main, train_stage
from reprompt.train.config import HELDOUT_FALLBACK, RepromptGRPOConfig, default_heldout_rewards

logger = logging.getLogger(__name__)


class RePromptGRPOTrainer(GRPOTrainer):
    """GRPOTrainer whose log lines also carry our callbacks' metrics (the held-out reward, the step-time
    split). The public ``log`` is overridden; generation is shaped through ``generation_kwargs`` and the
    public ``tokenizer`` argument of ``generate`` (:func:`stop_at_prompt_close`). One private method is
    overridden, and only with ``share_prompt_pass`` on: TRL's log-prob pass, to run each distinct prompt once
    (:mod:`reprompt.train.shared_prompt`); a test checks that TRL still calls it and that it agrees with TRL's."""

    sink: MetricsSink | None = None

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if self.sink is not None and self.model.training:
            logs.update(self.sink.drain())
        super().log(logs, start_time)

    def _get_per_token_logps_and_entropies(
        self,
        model: Any,
        input_ids: Any,
        attention_mask: Any,
        logits_to_keep: int,
        batch_size: int | None = None,
        compute_entropy: bool = False,
        compute_aux_loss: bool = False,
        **inputs: Any,
    ) -> tuple[Any, Any, Any]:
        """TRL's pass, or with ``share_prompt_pass`` (text only, no MoE loss) one pass per distinct prompt
        of each chunk of ``batch_size`` rows."""
        own = (
            model,
            input_ids,
            attention_mask,
            logits_to_keep,
            batch_size,
            compute_entropy,
            compute_aux_loss,
        )
        if not getattr(self.args, "share_prompt_pass", False) or compute_aux_loss:
            return super()._get_per_token_logps_and_entropies(*own, **inputs)
        if any(v is not None for v in inputs.values()):  # images: TRL's pass slices them per chunk
            return super()._get_per_token_logps_and_entropies(*own, **inputs)
        import torch

        from reprompt.train.shared_prompt import shared_prompt_logps

        size = batch_size or input_ids.size(0)
        logps, entropies = [], []
        for start in range(0, input_ids.size(0), size):
            ids, mask = input_ids[start : start + size], attention_mask[start : start + size]
            shared = shared_prompt_logps(model, ids, mask, logits_to_keep, self.accelerator.autocast())
            if shared is None:  # nothing to share in this chunk
                lp, ent, _ = super()._get_per_token_logps_and_entropies(
                    model, ids, mask, logits_to_keep, None, compute_entropy
                )
                shared = (lp, ent)
            logps.append(shared[0])
            entropies.append(shared[1])
        entropy = torch.cat(entropies) if compute_entropy else None
        return torch.cat(logps), entropy, None


def stop_generation_kwargs(cfg: RepromptGRPOConfig, spec: Any, tokenizer: Any) -> dict[str, Any]:
    """Sampling stops at the close of the prompt block, as inference does (``RePrompter.generate``): text
    after ``</prompt>`` is never used, so training must neither sample nor penalise it. With transformers
    the finished rows are padded with EOS, so TRL's mask ends each completion right after the stop."""
    stop = spec.fmt.prompt_close
    if cfg.use_vllm:
        return {"stop": [stop], "include_stop_str_in_output": True}
    return {"stop_strings": [stop], "pad_token_id": tokenizer.eos_token_id}


def stop_at_prompt_close(
    trainer: GRPOTrainer, tokenizer: Any, timer: StepTimer | None = None, merged: bool = False
) -> None:
    """Give the policy's ``generate`` the tokenizer that transformers needs for ``stop_strings`` (TRL does
    not pass it), and time the sampling of completions for the step-time split. ``merged``: rollouts are
    sampled from a merged copy of the LoRA policy (:class:`~reprompt.train.merged_sampler.MergedSampler`)."""
    model = trainer.model
    inner = model.generate
    if merged:
        from reprompt.train.merged_sampler import MergedSampler

        sampler = MergedSampler(model)

    def generate(*args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("tokenizer", tokenizer)
        rollout = kwargs.get("generation_config") is trainer.generation_config
        start = time.perf_counter()
        out = (sampler.generate if merged and rollout else inner)(*args, **kwargs)
        if rollout and timer is not None:
            timer.sampling_call(time.perf_counter() - start)
        return out

    model.generate = generate


def make_parser() -> TrlParser:
    return TrlParser((RepromptGRPOConfig,))


def parse(argv: Sequence[str] | None = None) -> RepromptGRPOConfig:
    from reprompt.train.common import parse_config

    return parse_config(make_parser(), list(argv) if argv is not None else None)


def build_dataset(records: list[dict[str, Any]], spec: Any) -> Any:
    """Columns: ``prompt`` (chat messages), ``original`` (the user's prompt), ``metadata`` (GenEval JSON
    or ""; a string so Arrow does not add null keys to clauses)."""
    from datasets import Dataset

    from reprompt.train.callbacks import _metadata

    return Dataset.from_list(
        [
            {"prompt": spec.messages(r["prompt"]), "original": r["prompt"], "metadata": _metadata(r) or ""}
            for r in records
        ]
    )


def build_scorer(cfg: RepromptGRPOConfig, spec: Any) -> Any:
    """The composite reward (in-process) or the reward service client."""
    if cfg.reward_service:
        from reprompt.serving.reward_client import RewardClient

        client = RewardClient(cfg.reward_service, token_env=cfg.reward_service_token_env)
        tags = (client.info() or {}).get("tags") if hasattr(client, "info") else None
        if tags is not None and tags != spec.fmt.name:
            raise ConfigError(
                f"the reward service parses {tags!r} completions but the policy writes {spec.fmt.name!r}: "
                f"start the service with `tags: {spec.fmt.name}` in its reward config"
            )
        return client
    from reprompt.rewards import build_rewards

    if not isinstance(cfg.rewards, RewardConfig):  # RepromptGRPOConfig parses it once
        raise ConfigError("set rewards (a mapping or a YAML path), or reward_service URLs")
    # the reward parses what the policy writes: its tags are the policy's
    return build_rewards(replace(cfg.rewards, tags=spec.fmt.name))


def build_heldout(cfg: RepromptGRPOConfig, scorer: Any, spec: Any, sink: MetricsSink) -> Any:
    """The held-out reward callback, or None when there is no held-out set. Its reward is built on its own
    (never the training reward: a guard that scores what training optimises guards nothing)."""
    if not cfg.heldout_prompts or not cfg.heldout_every:
        return None
    from reprompt.data.prompts import load_prompts
    from reprompt.rewards import build_rewards
    from reprompt.train.callbacks import HeldoutRewardCallback

    records = load_prompts(cfg.heldout_prompts)[: cfg.heldout_max]
    backbone = getattr(scorer, "backbone", None)
    heldout: Any  # a reward client or a composite reward: both score the same way
    if cfg.heldout_service:
        from reprompt.serving.reward_client import RewardClient

        heldout = RewardClient(cfg.heldout_service, token_env=cfg.reward_service_token_env)
        if set(heldout.component_names) == set(getattr(scorer, "component_names", [])) and (
            heldout.info() == (scorer.info() if hasattr(scorer, "info") else None)
        ):
            raise ConfigError(
                "heldout_service serves the training reward itself: point it at a held-out reward"
            )
        served = (heldout.info() or {}).get("fallback_score", HELDOUT_FALLBACK)
        if served != HELDOUT_FALLBACK:
            raise ConfigError(
                f"heldout_service scores fallbacks with {served!r}; the held-out guard measures what a user "
                f"gets, so its service needs `fallback_score: {HELDOUT_FALLBACK}`"
            )
    elif isinstance(cfg.heldout_rewards, RewardConfig):  # parsed once by RepromptGRPOConfig
        # reuse the training backbone already in memory unless the held-out reward names another one
        reuse = backbone is not None and cfg.heldout_rewards.backbone == getattr(backbone, "name", None)
        heldout = build_rewards(
            replace(cfg.heldout_rewards, tags=spec.fmt.name), backbone=backbone if reuse else None
        )
    elif backbone is not None:  # the default guard renders with HELDOUT_RENDER too
        heldout = build_rewards(
            replace(default_heldout_rewards(backbone.name), tags=spec.fmt.name), backbone=backbone
        )
    else:
        raise ConfigError(
            "the held-out guard needs its own reward when training scores through a reward service: set "
            "heldout_service (a second `reprompt serve-rewards` running configs/rewards/heldout.yaml), or "
            "heldout_rewards with its own backbone, or heldout_every: 0"
        )
    return HeldoutRewardCallback(
        records,
        spec,
        heldout,
        sink,
        every=cfg.heldout_every,
        max_new_tokens=cfg.max_completion_length or 256,
        batch_size=cfg.heldout_batch_size,
    )


def build_trainer(
    cfg: RepromptGRPOConfig, scorer: Any | None = None
) -> tuple[RePromptGRPOTrainer, Any, dict[str, Any]]:
    """(trainer, spec, run record) ready to train. ``scorer``: a composite reward built by the caller (e.g.
    around a backbone already in memory) instead of the one ``cfg`` describes."""
    from transformers import AutoTokenizer

    from reprompt.data.prompts import load_prompts
    from reprompt.rewards.trl import OutageGuard, failure_components, make_trl_reward_funcs
    from reprompt.train.callbacks import RewardObserver, SamplesWriter, observe
    from reprompt.train.common import (
        EpochSeededData,
        SaveSpecCallback,
        peft_config,
        policy_init_kwargs,
        prepare_policy,
        run_record,
    )

    policy = prepare_policy(cfg)
    spec = policy.spec
    assert cfg.prompts is not None  # RepromptGRPOConfig requires it
    records = load_prompts(cfg.prompts)[: cfg.max_prompts]
    if not records:
        raise ConfigError(f"{cfg.prompts} has no prompts")
    given = scorer is not None
    if scorer is None:
        scorer = build_scorer(cfg, spec)
    info = scorer.info() if hasattr(scorer, "info") else {}
    cfg._check_std_floor((info or {}).get("std_floor"))
    guard = OutageGuard(failure_components(scorer), cfg.max_missing_fraction, cfg.max_missing_steps)
    funcs, weights = make_trl_reward_funcs(scorer, guard)
    samples = SamplesWriter(
        scorer, Path(cfg.output_dir) / "samples", cfg.samples_every, cfg.samples_per_table, spec.fmt
    )
    sink = MetricsSink()
    timer = StepTimer(sink)
    reward_funcs: list[Any] = list(funcs)
    reward_funcs[0] = observe(funcs[0], RewardObserver(samples, timer))
    if cfg.reward_weights is None:
        cfg.reward_weights = weights
    if len(cfg.reward_weights) != len(funcs):
        raise ConfigError(
            f"reward_weights has {len(cfg.reward_weights)} values for {len(funcs)} reward components"
        )
    record = run_record(cfg, spec, policy.path)
    if given:
        record["rewards"] = info or {"scorer": type(scorer).__name__}
    elif isinstance(cfg.rewards, RewardConfig):
        record["rewards"] = cfg.rewards.to_dict()
    else:
        record["rewards"] = {"service": cfg.reward_service}
    cfg.model_init_kwargs = policy_init_kwargs(cfg) if isinstance(policy.model, str) else None
    tokenizer = AutoTokenizer.from_pretrained(policy.tokenizer, trust_remote_code=False)
    cfg.generation_kwargs = {**stop_generation_kwargs(cfg, spec, tokenizer), **(cfg.generation_kwargs or {})}
    callbacks: list[Any] = [timer, SaveSpecCallback(spec, record), EpochSeededData(cfg.seed)]
    heldout = build_heldout(cfg, scorer, spec, sink)
    if heldout is not None:
        callbacks.append(heldout)
    trainer = RePromptGRPOTrainer(
        model=policy.model,
        reward_funcs=reward_funcs,
        args=cfg,
        train_dataset=build_dataset(records, spec),
        processing_class=tokenizer,
        peft_config=peft_config(cfg, policy),
        callbacks=callbacks,
    )
    trainer.sink = sink
    stop_at_prompt_close(trainer, tokenizer, timer, merged=cfg.merged_sampling)
    return trainer, spec, record


train = functools.partial(train_stage, build_trainer=build_trainer)
"""``train(cfg)``: train (resuming when asked) and save the final policy with its PromptSpec; returns the folder."""
main = functools.partial(stage_main, "GRPO", parse, train)
"""``main(argv)``: parse the recipe and flags, train, say where the policy went."""


if __name__ == "__main__":  # pragma: no cover
    from reprompt.errors import run_or_exit

    raise SystemExit(run_or_exit(main))
