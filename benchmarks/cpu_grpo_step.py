"""Where a CPU GRPO step goes, and what each cut buys (issue 17, lab speed).

Runs a few GRPO steps of SmolLM2-135M (from one SFT start) under a ladder of settings, each adding one cut
to the one before, and reads the step timer every GRPO run logs (``timing/*_s``: sampling, the old-policy
and reference log-prob passes, the policy update):

1. ``previous``: the previous lab recipe: full fine-tune, fp32, 4 prompts x G=4 per step, two optimisation
   passes per generation batch (so an old-policy log-prob pass, and a reuse step without generation);
2. ``lora``: a LoRA adapter (r=16 on q, k, v, o) instead of all weights;
3. ``one-pass``: one optimisation pass per generation batch (no old-policy pass; the epsilon clip is then
   inactive);
4. ``bf16``: bf16 autocast (this CPU has AVX512-BF16);
5. ``lab``: 2 prompts x G=4 per step (configs/grpo/cpu-lab-lora.yaml: the lab's recipe);
6. ``bf16-weights``: the policy's weights held in bf16 (``--dtype bfloat16``; the LoRA adapter stays fp32),
   so sampling, which runs outside autocast, reads half the bytes per token too.

Prints a table (median seconds per step and per 60-step run, the split, completions per second) and writes
JSON. One thread per run (the lab runs two at a time, one per core).

    OMP_NUM_THREADS=1 python benchmarks/cpu_grpo_step.py --policy runs/lab/sft-reason-s0 --steps 4
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

from training_runs import HERE, REPO

RECIPE = "configs/grpo/cpu-lab-lora.yaml"
# setting -> (its overrides of the lab recipe, completions per optimizer step)
_SIXTEEN = ["--per_device_train_batch_size", "8", "--gradient_accumulation_steps", "2"]
LADDER: dict[str, tuple[list[str], int]] = {
    "previous": (["--use_peft", "false", "--bf16", "false", "--num_iterations", "2", *_SIXTEEN], 16),
    "lora": (["--bf16", "false", "--num_iterations", "2", *_SIXTEEN], 16),
    "one-pass": (["--bf16", "false", "--num_iterations", "1", *_SIXTEEN], 16),
    "bf16": (["--bf16", "true", "--num_iterations", "1", *_SIXTEEN], 16),
    "lab": ([], 8),
    "bf16-weights": (["--dtype", "bfloat16"], 8),
}
KEYS = ("step_s", "sampling_s", "logprobs_s", "train_s", "reward_s")


def run(name: str, args: argparse.Namespace, root: Path) -> dict:
    out = root / name
    cmd = [
        sys.executable, "-m", "reprompt.train.grpo", "--config", RECIPE, "--policy", args.policy,
        "--prompts", args.prompts, "--heldout_prompts", args.prompts, "--heldout_every", "0", "--samples_every", "0", "--save_strategy", "no",
        "--output_dir", str(out), "--max_steps", str(args.steps), "--resume", "never", *LADDER[name][0],
    ]  # fmt: skip
    t0 = time.perf_counter()
    with open(root / f"{name}.log", "w") as f:
        proc = subprocess.run(cmd, cwd=REPO, stdout=f, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        raise SystemExit(f"{name} failed; see {root / f'{name}.log'}: {shlex.join(cmd)}")
    history = [h for h in json.loads((out / "log_history.json").read_text()) if "timing/step_s" in h]
    steps = history[1:] or history  # the first step also warms up
    generating = [h for h in steps if h.get("timing/sampling_s", 0) > 0]
    row = {
        "wall_s": round(time.perf_counter() - t0, 1),
        "steps_timed": len(steps),
        "completions_per_step": LADDER[name][1],
    }
    for key in KEYS:
        values = [h.get(f"timing/{key}", 0.0) for h in steps]
        row[key] = round(statistics.median(values), 2)
    row["generating_step_s"] = (
        round(statistics.median(h["timing/step_s"] for h in generating), 2) if generating else None
    )
    row["mean_step_s"] = round(statistics.fmean(h["timing/step_s"] for h in steps), 2)
    row["run_60_min"] = round(60 * row["mean_step_s"] / 60, 1)  # 60 steps x mean seconds, in minutes
    row["completions_per_s"] = round(LADDER[name][1] / row["mean_step_s"], 3)
    return row


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--policy", default="runs/lab/sft-reason-s0", help="the SFT start (a LoRA adapter folder)")
    p.add_argument("--prompts", default="runs/lab/data/rl_prompts.jsonl")
    p.add_argument(
        "--steps", type=int, default=4, help="optimizer steps per setting (the first is not timed)"
    )
    p.add_argument("--only", default=None, help="comma-separated settings of the ladder")
    p.add_argument("--root", default="/tmp/cpu_grpo_step")
    p.add_argument("--out", default=str(HERE / "results" / "cpu_grpo_step.json"))
    args = p.parse_args()
    root = Path(args.root)
    root.mkdir(parents=True, exist_ok=True)
    names = args.only.split(",") if args.only else list(LADDER)
    command = "OMP_NUM_THREADS=1 python " + shlex.join(["benchmarks/cpu_grpo_step.py", *sys.argv[1:]])
    rows = {name: {**run(name, args, root), "command": command} for name in names}
    out = Path(args.out)
    # an --only run adds its rows to the ladder measured before (each row names the command that made it)
    kept = json.loads(out.read_text()).get("rows", {}) if args.only and out.exists() else {}
    result = {
        "machine": f"{platform.platform()}, {platform.processor() or 'cpu'}, one thread per run",
        "command": command,
        "rows": {**kept, **rows},
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"{'setting':<10}{'step s':>8}{'sampling':>10}{'log-probs':>10}{'update':>8}{'compl/s':>9}{'60 steps, min':>15}"
    )
    for name, r in result["rows"].items():
        print(
            f"{name:<10}{r['mean_step_s']:>8.1f}{r['sampling_s']:>10.1f}{r['logprobs_s']:>10.1f}"
            f"{r['train_s']:>8.1f}{r['completions_per_s']:>9.3f}{r['run_60_min']:>15.1f}"
        )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
