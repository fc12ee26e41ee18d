"""Run by ``accelerate launch`` in tests/test_train_multiprocess.py: the recipes' own code path
(``build_trainer`` + ``train_and_save``) with the scorer recording, per process, every batch it scores."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def main(stage: str, config: str, record: str) -> None:
    from reprompt.train.common import train_and_save

    rank = int(os.environ.get("RANK", "0"))
    if stage == "sft":
        from reprompt.train import sft

        cfg = sft.parse(["--config", config])
        trainer, spec, rec = sft.build_trainer(cfg)
        train_and_save(trainer, cfg, spec, rec)
        _record_end(record, rank)
        return
    from reprompt.train import grpo
    from reprompt.train.common import prepare_policy

    cfg = grpo.parse(["--config", config])
    pipeline = grpo.build_scorer(cfg, prepare_policy(cfg).spec)
    inner_score = pipeline.score
    log = Path(record) / f"rank{rank}.jsonl"

    def score(originals, completions, metadata=None, seeds=None, round=0, keep_images=False):  # noqa: ANN001, A002
        out = inner_score(originals, completions, metadata, seeds, round, keep_images)
        with open(log, "a") as f:
            f.write(json.dumps({"round": round, "originals": list(originals), "seeds": out.seeds}) + "\n")
        return out

    pipeline.score = score
    trainer, spec, rec = grpo.build_trainer(cfg, scorer=pipeline)
    train_and_save(trainer, cfg, spec, rec)
    _record_end(record, rank)


def _record_end(record: str, rank: int) -> None:
    """Whether the process group is still up once training has returned (it must not be: a group left to
    interpreter exit can abort a finished rank)."""
    import torch.distributed as dist

    alive = dist.is_initialized()
    (Path(record) / f"end-rank{rank}.json").write_text(json.dumps({"process_group_alive": alive}))


if __name__ == "__main__":
    main(*sys.argv[1:4])
