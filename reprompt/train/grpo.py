"""Stage 2: GRPO against the rendered-image reward (TRL ``GRPOTrainer``).

parse -> build -> train -> save. Prompts are conversational (``PromptSpec.messages``, the function
inference uses) with the user's prompt and its GenEval metadata as extra columns for the rewards. The
rewards come from :mod:`reprompt.rewards` in-process, or from a reward service. Resumes from the last
complete checkpoint after a kill; saves the PromptSpec with every checkpoint and the final model.

    reprompt train grpo --config configs/grpo/qwen2.5-3b_flux-dev.yaml [--learning_rate 1e-6 ...]
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from trl import GRPOTrainer, TrlParser

from reprompt.train.config import DEFAULT_HELDOUT_REWARDS, RepromptGRPOConfig
from reprompt.train.monitor import MetricsSink, StepTimer

logger = logging.getLogger(__name__)


class RePromptGRPOTrainer(GRPOTrainer):
    """GRPOTrainer whose log lines also carry our callbacks' metrics (e.g. the held-out reward), and whose
    sampling time (TRL's ``_generate``: the policy writing completions, without the log-prob passes) is
    reported to the step timer."""

    sink: MetricsSink | None = None
    timer: StepTimer | None = None

    def _generate(self, prompts: list) -> Any:
        start = time.perf_counter()
        out = super()._generate(prompts)
        if self.timer is not None:
            self.timer.sampling_call(time.perf_counter() - start)
        return out

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if self.sink is not None and self.model.training:
            logs.update(self.sink.drain())
        super().log(logs, start_time)


def make_parser() -> TrlParser:
    return TrlParser((RepromptGRPOConfig,))


def parse(argv: Sequence[str] | None = None) -> RepromptGRPOConfig:
    from reprompt.train.common import parse_config

    return parse_config(make_parser(), list(argv) if argv is not None else None)


def build_dataset(records: list[dict[str, Any]], spec: Any) -> Any:
    """Columns: ``prompt`` (chat messages), ``original`` (the user's prompt), ``metadata`` (GenEval JSON
    or ""; a string so Arrow does not add null keys to clauses)."""
    from datasets import Dataset

    from reprompt.train.monitor import _metadata

    return Dataset.from_list(
        [
            {"prompt": spec.messages(r["prompt"]), "original": r["prompt"], "metadata": _metadata(r) or ""}
            for r in records
        ]
    )


def reward_dict(config: dict[str, Any] | str, spec: Any) -> dict[str, Any]:
    """A reward config as a mapping whose ``tags`` are the policy's: the reward parses what it writes."""
    from reprompt.rewards.config import RewardConfig

    cfg = RewardConfig.from_yaml(config) if isinstance(config, str) else RewardConfig.from_dict(dict(config))
    return {**cfg.to_dict(), "tags": spec.fmt.name}


def build_scorer(cfg: RepromptGRPOConfig, spec: Any) -> Any:
    """The reward pipeline (in-process) or the reward service client."""
    from reprompt.errors import ConfigError

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

    return build_rewards(reward_dict(cfg.reward_config(), spec))


def build_heldout(cfg: RepromptGRPOConfig, scorer: Any, spec: Any, sink: MetricsSink) -> Any:
    """The held-out reward callback, or None when there is no held-out set."""
    if not cfg.heldout_prompts or not cfg.heldout_every:
        return None
    from reprompt.data.prompts import load_prompts
    from reprompt.rewards import build_rewards
    from reprompt.train.monitor import HeldoutRewardCallback

    records = load_prompts(cfg.heldout_prompts)[: cfg.heldout_max]
    backbone = getattr(scorer, "backbone", None)
    if cfg.heldout_rewards is not None:
        heldout = build_rewards(reward_dict(cfg.heldout_rewards, spec), backbone=backbone)
    elif backbone is not None:
        heldout = build_rewards({**DEFAULT_HELDOUT_REWARDS, "tags": spec.fmt.name}, backbone=backbone)
    else:  # reward service: score the held-out set with the service's own reward
        heldout = scorer
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
    """(trainer, spec, run record) ready to train. ``scorer``: a reward pipeline built by the caller (e.g.
    around a backbone already in memory) instead of the one ``cfg`` describes."""
    from transformers import AutoTokenizer

    from reprompt.data.prompts import load_prompts
    from reprompt.errors import ConfigError
    from reprompt.rewards.trl import make_trl_reward_funcs
    from reprompt.train.common import (
        SaveSpecCallback,
        peft_config,
        policy_init_kwargs,
        resolve_policy,
        resolve_spec,
        run_record,
    )
    from reprompt.train.monitor import RewardObserver, SamplesWriter, observe

    path = resolve_policy(cfg.policy)
    spec = resolve_spec(cfg, path)
    records = load_prompts(cfg.prompts)[: cfg.max_prompts]
    if not records:
        raise ConfigError(f"{cfg.prompts} has no prompts")
    given = scorer is not None
    if scorer is None:
        scorer = build_scorer(cfg, spec)
    funcs, weights = make_trl_reward_funcs(scorer)
    backbone = getattr(scorer, "backbone", None)
    samples = SamplesWriter(
        scorer, Path(cfg.output_dir) / "samples", cfg.samples_every, cfg.samples_per_table, spec.fmt
    )
    sink = MetricsSink()
    timer = StepTimer(sink)
    funcs[0] = observe(
        funcs[0], RewardObserver(spec.fmt, getattr(backbone, "count_tokens", None), samples, timer)
    )
    if cfg.reward_weights is None:
        cfg.reward_weights = weights
    if len(cfg.reward_weights) != len(funcs):
        raise ConfigError(
            f"reward_weights has {len(cfg.reward_weights)} values for {len(funcs)} reward components"
        )
    record = run_record(cfg, spec, path)
    if given:
        record["rewards"] = scorer.info() if hasattr(scorer, "info") else {"scorer": type(scorer).__name__}
    else:
        record["rewards"] = (
            cfg.reward_config() if cfg.rewards is not None else {"service": cfg.reward_service}
        )
    cfg.model_init_kwargs = policy_init_kwargs(cfg)
    tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=False)
    callbacks: list[Any] = [timer, SaveSpecCallback(spec, record)]
    heldout = build_heldout(cfg, scorer, spec, sink)
    if heldout is not None:
        callbacks.append(heldout)
    trainer = RePromptGRPOTrainer(
        model=path,
        reward_funcs=funcs,
        args=cfg,
        train_dataset=build_dataset(records, spec),
        processing_class=tokenizer,
        peft_config=peft_config(cfg),
        callbacks=callbacks,
    )
    trainer.sink, trainer.timer = sink, timer
    return trainer, spec, record


def train(cfg: RepromptGRPOConfig) -> Path:
    """Train (resuming when asked) and save the final policy with its PromptSpec; returns the folder."""
    from reprompt.train.common import train_and_save

    trainer, spec, record = build_trainer(cfg)
    return train_and_save(trainer, cfg, spec, record)


def main(argv: Sequence[str] | None = None) -> int:
    out = train(parse(argv))
    print(f"saved the GRPO policy to {out} (load it with RePrompter.from_pretrained({str(out)!r}))")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
