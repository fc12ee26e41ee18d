"""What the CPU training benchmarks (cpu_smoke_training.py, rl_ablation.py) share: stage timings that add up
over resumed invocations, "is this training output final?", the GenEval evaluation of a trained policy, and the
curves read back from a GRPO run folder."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path

from reprompt.utils.benchmarks import GENEVAL_METADATA, benchmark_path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
GENEVAL = benchmark_path(*GENEVAL_METADATA)

TRAIN_KEYS = (
    "step", "reward", "reward_std", "frac_reward_zero_std", "rewards/geneval/mean", "rewards/format/mean",
    "rewards/length/mean", "reward/geneval/mean", "reward/format/mean", "reward/length/mean",
    "reward/improvement/geneval", "reward/geneval/group_std", "reward/geneval/zero_std_groups",
    "completions/format_ok", "completions/fallback", "completions/prompt_tokens", "kl", "clip_ratio/region_mean",
    "step_time", "timing/step_s", "timing/generation_s", "timing/sampling_s", "timing/logprobs_s",
    "timing/reward_s", "timing/train_s",
)  # fmt: skip


class Timings:
    """Wall seconds per stage, summed over invocations (a resumed stage adds up), saved after each."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data: dict[str, float] = json.loads(path.read_text()) if path.exists() else {}

    def add(self, stage: str, seconds: float) -> None:
        """Add ``seconds`` to ``stage``, re-reading the file first: two schedulers may share a root."""
        from reprompt.utils.io import atomic_write_json

        if self.path.exists():
            self.data = {**self.data, **json.loads(self.path.read_text())}
        self.data[stage] = round(self.data.get(stage, 0.0) + seconds, 1)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(self.path, self.data)


def finished(folder: Path) -> bool:
    """A training output is final once its weights and its prompt spec are both saved."""
    return (folder / "reprompt_format.json").exists() and (
        (folder / "model.safetensors").exists() or (folder / "adapter_model.safetensors").exists()
    )


def train_curve(folder: Path, keep: Sequence[str] = TRAIN_KEYS) -> list[dict]:
    """The logged optimizer steps of a run (``log_history.json``), restricted to ``keep``."""
    path = folder / "log_history.json"
    if not path.exists():
        return []
    return [{k: h[k] for k in keep if k in h} for h in json.loads(path.read_text()) if "loss" in h]


def heldout_curve(folder: Path) -> list[dict]:
    """One row per evaluated step (the last one written: a run killed before its first checkpoint and
    restarted evaluates step 0 again)."""
    path = folder / "heldout.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    return sorted({r["step"]: r for r in rows}.values(), key=lambda r: r["step"])


def geneval_run(
    out: Path,
    policy: str,
    *,
    per_tag: int,
    max_new_tokens: int,
    backbone: str = "sketch",
    metadata: Path = GENEVAL,
    rewriter: object | None = None,
) -> tuple[dict, float | None]:
    """GenEval of ``policy`` on ``backbone`` (``per_tag`` prompts per tag x 4 seeds from 42, greedy, oracle
    detector) into ``out``, unless it already holds a summary. ``metadata``: any prompt file in GenEval's
    layout (e.g. the inference family's); ``rewriter``: an already built policy (then ``policy`` only names
    it). Returns the summary and the seconds spent (None when nothing ran)."""
    from reprompt.eval.geneval.evaluate import ScoreConfig, score_run
    from reprompt.eval.geneval.generate import GenerateConfig, generate_run
    from reprompt.policy import GenerationOptions

    seconds = None
    if not (out / "summary.json").exists():
        t0 = time.perf_counter()
        config = GenerateConfig(
            metadata=str(metadata),
            out=str(out),
            policy=policy,
            per_tag=per_tag,
            images=4,
            seed=42,
            backbone=backbone,
            generation=GenerationOptions(max_new_tokens=max_new_tokens, batch_size=16),
            progress=False,
        )
        generate_run(config, rewriter=rewriter)  # type: ignore[arg-type]
        score_run(out, ScoreConfig(detector="oracle"))
        seconds = time.perf_counter() - t0
    return json.loads((out / "summary.json").read_text()), seconds
