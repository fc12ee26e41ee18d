"""Renders per GRPO step, and what each rule saves (issue 20): counted from the log line of every step.

Trains the same tiny GRPO run (tiny Qwen2 policy primed by a short SFT, so its completions mix well-formed
prompts and fallbacks; sketch simulator; GenEval partial credit + format + length; G=4, 2 prompts per step,
2 images per completion, the paired baseline; 3 epochs) under a ladder of settings, each adding one rule to
the one before:

1. ``render all``: every (prompt, seed) request rendered, a fallback renders the original prompt
   (``dedupe_renders: false``, ``fallback_score: render_original``);
2. ``dedupe``: identical requests of a batch rendered once (a fallback's original is the baseline's image);
3. ``group_worst``: a completion that wrote no prompt renders nothing (the training rule);
4. ``baseline cache``: seeds per prompt (``seed_schedule: per_prompt``), so the paired baseline is the same
   image every epoch and is read from the cache after epoch 1.

Prints a table (renders per step in epoch 1, in epochs 2-3 and overall; baseline renders and cache hits per
step; the share of completions that fell back) and writes JSON.

    OMP_NUM_THREADS=1 python benchmarks/render_counts.py
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import yaml
from training_runs import HERE, REPO

# setting -> the reward-config fields it sets (each row keeps the ones before it)
LADDER: dict[str, dict] = {
    "render all": {
        "dedupe_renders": False,
        "fallback_score": "render_original",
        "seed_schedule": "per_step",
        "baseline_cache": 0,
    },
    "dedupe": {"dedupe_renders": True},
    "group_worst": {"fallback_score": "group_worst"},
    "baseline cache": {"seed_schedule": "per_prompt", "baseline_cache": 1024},
}
KEYS = ("reward/renders", "reward/render_calls", "reward/baseline_render_calls", "reward/render_cache_hits")
PRIME = [
    ("a photo of a cat", "one cat", "A photo of one cat in the center."),
    ("a photo of a dog", "one dog", "A photo of one dog in the center."),
    ("a photo of two cups", "two cups", "A photo of exactly two cups."),
    ("a photo of a red car", "red car", "A photo of a bright red car."),
]
PROMPTS = [
    "a photo of a cat",
    "a photo of a dog",
    "a photo of two cups",
    "a photo of a red car",
    "a photo of three apples",
    "a photo of a bus left of a bench",
    "a photo of a blue bench",
    "a photo of two birds",
]


def prime(root: Path, seed: int) -> Path:
    """The tiny Qwen2 after a short SFT on four prompts (the GRPO tests' starting policy)."""
    from reprompt.testing import build_tiny
    from reprompt.train import sft

    data = root / "prime.jsonl"
    data.write_text(
        "".join(
            json.dumps({"id": f"t{i}", "prompt": p, "reasoning": r, "rewritten": w}) + "\n"
            for i, (p, r, w) in enumerate(PRIME)
        )
    )
    args = [
        "--policy", str(build_tiny("tiny-qwen2", root / "tiny-qwen2")), "--sft_data", str(data),
        "--output_dir", str(root / "primed"), "--max_steps", "120", "--per_device_train_batch_size", "4",
        "--learning_rate", "1e-2", "--warmup_steps", "0", "--lr_scheduler_type", "constant",
        "--save_strategy", "no", "--report_to", "none", "--disable_tqdm", "true", "--system_prompt", "Rewrite.",
        "--few_shot", "false", "--logging_steps", "200", "--seed", str(seed),
    ]  # fmt: skip
    return sft.train(sft.parse(args))


def run(name: str, reward: dict, policy: Path, prompts: Path, root: Path, args: argparse.Namespace) -> dict:
    from reprompt.train import grpo

    cfg = {
        "policy": str(policy),
        "prompts": str(prompts),
        "output_dir": str(root / name.replace(" ", "-")),
        "rewards": reward,
        "num_train_epochs": args.epochs,
        "per_device_train_batch_size": 8,
        "gradient_accumulation_steps": 1,
        "num_generations": 4,
        "max_completion_length": 48,
        "temperature": 1.0,
        "learning_rate": 1e-3,
        "save_strategy": "no",
        "logging_steps": 1,
        "report_to": "none",
        "disable_tqdm": True,
        "heldout_every": 0,
        "samples_every": 0,
        "resume": "never",
        "seed": args.seed,
    }
    path = root / f"{name.replace(' ', '-')}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    t0 = time.perf_counter()
    out = grpo.train(grpo.parse(["--config", str(path)]))
    steps = [h for h in json.loads((out / "log_history.json").read_text()) if "loss" in h]
    per_epoch = len(steps) // args.epochs

    def mean(key: str, rows: list[dict]) -> float:
        return round(sum(r[key] for r in rows) / len(rows), 2) if rows else 0.0

    first, later = steps[:per_epoch], steps[per_epoch:]
    return {
        "steps": len(steps),
        "wall_s": round(time.perf_counter() - t0, 1),
        "renders_per_step_epoch1": mean("reward/renders", first),
        "renders_per_step_later_epochs": mean("reward/renders", later),
        "renders_per_step": mean("reward/renders", steps),
        "completion_renders_per_step": mean("reward/render_calls", steps),
        "baseline_renders_per_step": mean("reward/baseline_render_calls", steps),
        "cache_hits_per_step": mean("reward/render_cache_hits", steps),
        "fallback_share": mean("completions/fallback", steps),
        "per_step": [{k: h[k] for k in ("step", *KEYS, "completions/fallback")} for h in steps],
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--root", default=None, help="work folder (default: a temporary one)")
    p.add_argument("--out", default=str(HERE / "results" / "render_counts.json"))
    args = p.parse_args()

    import torch

    torch.set_num_threads(1)
    from reprompt.data.templates import parse_template

    root = Path(args.root or tempfile.mkdtemp(prefix="render_counts-"))
    root.mkdir(parents=True, exist_ok=True)
    prompts = root / "prompts.jsonl"
    prompts.write_text(
        "".join(json.dumps({"id": f"p{i}", **parse_template(t)}) + "\n" for i, t in enumerate(PROMPTS))
    )
    t0 = time.perf_counter()
    policy = prime(root, args.seed)
    prime_s = time.perf_counter() - t0
    reward: dict = {
        "backbone": "sketch",
        "backbone_options": {"width": 64, "height": 64},
        "components": ["geneval", "format", "length"],
        "weights": {"geneval": 1.0, "format": 0.5, "length": 0.5},
        "options": {"geneval": {"mode": "partial"}},
        "images_per_completion": 2,
        "paired_baseline": True,
    }
    rows = {}
    for name, fields in LADDER.items():
        reward = {**reward, **fields}
        rows[name] = {
            "reward": {k: reward[k] for k in LADDER["render all"]},
            **run(name, reward, policy, prompts, root, args),
        }
    result = {
        "machine": f"{platform.platform()}, {platform.processor() or 'cpu'}, one thread",
        "command": "OMP_NUM_THREADS=1 python benchmarks/render_counts.py"
        + (f" --epochs {args.epochs}" if args.epochs != 3 else "")
        + (f" --seed {args.seed}" if args.seed else ""),
        "setup": f"{len(PROMPTS)} prompts x {args.epochs} epochs, 2 prompts per step, G=4, 2 images per "
        "completion, paired baseline; tiny Qwen2 primed by 120 SFT steps; sketch 64 px",
        "prime_s": round(prime_s, 1),
        "rows": rows,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    base = rows["render all"]["renders_per_step"]
    print(
        f"{'setting':<16}{'epoch 1':>9}{'epochs 2+':>11}{'all':>7}{'baseline':>10}{'cache hits':>12}"
        f"{'fallback':>10}{'vs render all':>15}"
    )
    for name, r in rows.items():
        print(
            f"{name:<16}{r['renders_per_step_epoch1']:>9.1f}{r['renders_per_step_later_epochs']:>11.1f}"
            f"{r['renders_per_step']:>7.1f}{r['baseline_renders_per_step']:>10.1f}{r['cache_hits_per_step']:>12.1f}"
            f"{r['fallback_share']:>10.0%}{r['renders_per_step'] / base - 1:>+15.0%}"
        )
    print(f"renders per optimizer step (mean); wrote {args.out} (repository {REPO.name})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
