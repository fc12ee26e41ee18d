"""Stage 1: supervised fine-tuning on teacher completions (TRL ``SFTTrainer``).

parse -> build -> train -> save. The dataset is conversational prompt/completion: the prompt is
``PromptSpec.messages(prompt)``, the very function inference calls, and the completion is the assistant
turn, so loss falls on the assistant tokens only and the model sees at training time exactly the tokens
it sees at inference. The PromptSpec is saved with every checkpoint and with the final model.

    reprompt train sft --config configs/sft/qwen2.5-3b.yaml [--learning_rate 2e-5 ...]
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from typing import Any

from trl import TrlParser

from reprompt.train.common import stage_main, train_stage
from reprompt.train.config import RepromptSFTConfig

logger = logging.getLogger(__name__)


def make_parser() -> TrlParser:
    return TrlParser((RepromptSFTConfig,))


def parse(argv: Sequence[str] | None = None) -> RepromptSFTConfig:
    from reprompt.train.common import parse_config

    return parse_config(make_parser(), list(argv) if argv is not None else None)


def build_dataset(cfg: RepromptSFTConfig, spec: Any) -> Any:
    """The conversational prompt/completion dataset for ``spec`` (see ``sft_examples``)."""
    from datasets import Dataset

    from reprompt.data.sft_data import sft_examples
    from reprompt.errors import ConfigError
    from reprompt.utils.io import read_jsonl

    assert cfg.sft_data is not None  # RepromptSFTConfig requires it
    rows = read_jsonl(cfg.sft_data)
    if cfg.max_examples is not None:
        rows = rows[: cfg.max_examples]
    if not rows:
        raise ConfigError(f"{cfg.sft_data} has no rows")
    return Dataset.from_list(sft_examples(rows, spec))


def build_trainer(cfg: RepromptSFTConfig) -> tuple[Any, Any, dict[str, Any]]:
    """(trainer, spec, run record) ready to train."""
    from transformers import AutoTokenizer
    from trl import SFTTrainer

    from reprompt.train import common

    policy = common.prepare_policy(cfg)
    spec = policy.spec
    record = common.run_record(cfg, spec, policy.path)
    tokenizer = AutoTokenizer.from_pretrained(policy.tokenizer, trust_remote_code=False)
    if tokenizer.chat_template is None:
        from reprompt.errors import ConfigError

        raise ConfigError(f"{cfg.policy!r} has no chat template: train an instruct/chat model")
    cfg.model_init_kwargs = common.policy_init_kwargs(cfg) if isinstance(policy.model, str) else None
    trainer = SFTTrainer(
        model=policy.model,
        args=cfg,
        train_dataset=build_dataset(cfg, spec),
        processing_class=tokenizer,
        peft_config=common.peft_config(cfg, policy),
        callbacks=[common.SaveSpecCallback(spec, record)],
    )
    return trainer, spec, record


train = functools.partial(train_stage, build_trainer=build_trainer)
"""``train(cfg)``: train (resuming when asked) and save the final policy with its PromptSpec; returns the folder."""
main = functools.partial(stage_main, "SFT", parse, train)
"""``main(argv)``: parse the recipe and flags, train, say where the policy went."""


if __name__ == "__main__":  # pragma: no cover
    from reprompt.errors import run_or_exit

    raise SystemExit(run_or_exit(main))
