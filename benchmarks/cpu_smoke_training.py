"""CPU smoke run of the paper's two-stage training: SmolLM2-135M + the sketch simulator + the verifiable
GenEval reward (oracle scene) + format + length.

Stages (each resumable: rerun the same command after a kill and finished stages are skipped, training
resumes from its last checkpoint, evaluation from its last finished prompt):

1. data: GenEval-style prompts (none of GenEval's test prompts) and grounded-teacher SFT targets;
2. SFT (configs/sft/cpu-smollm2-sketch.yaml), then GRPO from it (configs/grpo/cpu-smollm2-sketch.yaml):
   the main SFT+GRPO run;
3. the reasoning ablation: the same SFT+GRPO with the reason block removed (``PromptSpec(tags="prompt")``);
4. GRPO alone, from the untrained model (prompted as `load_policy('smollm2')` prompts it);
5. GenEval on the sketch backbone (oracle detector), ``--per-tag`` real GenEval prompts per tag x 4 seeds,
   for: no rewrite, SmolLM2 untrained, after SFT, after GRPO alone, after SFT+GRPO, SFT+GRPO without
   reasoning; each against no rewrite as a paired same-seed difference with a stratified bootstrap
   interval (``reprompt.eval.compare``).

    OMP_NUM_THREADS=1 nohup python benchmarks/cpu_smoke_training.py --repro-check > /tmp/cpu_smoke_training.log 2>&1 &

Writes ``benchmarks/results/cpu_smoke_training.json`` and prints a table. Same seeds and config give the same
numbers (``--repro-check`` retrains 3 SFT and 2 GRPO steps twice and re-evaluates one model to show it).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

from training_runs import GENEVAL, HERE, REPO, Timings, finished, geneval_run, heldout_curve, train_curve

SFT_RECIPE = "configs/sft/cpu-smollm2-sketch.yaml"
GRPO_RECIPE = "configs/grpo/cpu-smollm2-sketch.yaml"
NO_REASON_SYSTEM = (
    "Rewrite the image request for a text-to-image model: state the objects, their exact counts, colors and "
    "places. Write the final prompt in <prompt></prompt>."
)
CONDITIONS = {  # name -> policy: a name, or a training output folder under --root
    "none": "none",
    "untrained": "smollm2",
    "sft": "sft",
    "grpo_alone": "grpo-alone",
    "sft_grpo": "grpo",
    "sft_grpo_no_reason": "grpo-noreason",
}
TRAINED = {"sft", "grpo_alone", "sft_grpo", "sft_grpo_no_reason"}


def policy_of(cond: str, root: Path) -> str:
    return str(root / CONDITIONS[cond]) if cond in TRAINED else CONDITIONS[cond]


LABELS = {
    "none": "no rewrite",
    "untrained": "SmolLM2 untrained",
    "sft": "after SFT",
    "grpo_alone": "after GRPO alone",
    "sft_grpo": "after SFT+GRPO",
    "sft_grpo_no_reason": "SFT+GRPO, no reason block",
}


def train(stage: str, module: str, args: list[str], out: Path, timings: Timings, logs: Path) -> None:
    if finished(out):
        print(f"[{stage}] done before: {out}", flush=True)
        return
    cmd = [sys.executable, "-m", module, *args]
    print(f"[{stage}] $ {shlex.join(cmd)}", flush=True)
    t0 = time.perf_counter()
    with open(logs / f"{stage}.log", "a") as log:
        proc = subprocess.run(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    timings.add(stage, time.perf_counter() - t0)
    if proc.returncode != 0:
        raise SystemExit(f"[{stage}] failed ({proc.returncode}); see {logs / f'{stage}.log'}")
    print(f"[{stage}] {timings.data[stage]:.0f} s", flush=True)


def make_data(root: Path, timings: Timings, n_sft: int, n_rl: int, n_heldout: int) -> None:
    from reprompt.backbones import load_backbone
    from reprompt.data import GroundedTeacher, PromptGenConfig, build_sft_data, load_exclusions, split_prompts
    from reprompt.utils.io import atomic_write_text, read_jsonl

    data = root / "data"
    t0 = time.perf_counter()
    if not (data / "heldout_prompts.jsonl").exists():
        keys, texts = load_exclusions([GENEVAL])
        splits, _ = split_prompts(
            # single_object weight 0: with COCO names all 80 single-object prompts are GenEval test prompts
            PromptGenConfig(
                n_sft=n_sft, n_rl=n_rl, n_heldout=n_heldout, seed=0, tag_weights=(0, 1, 1, 1, 1, 1)
            ),
            keys,
            texts,
        )
        for name, rows in splits.items():
            atomic_write_text(data / f"{name}_prompts.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    report = build_sft_data(
        read_jsonl(data / "sft_prompts.jsonl"),
        GroundedTeacher(),
        data / "sft.jsonl",
        token_counter=load_backbone("sketch").count_tokens,
        progress=False,
    )
    timings.add("data", time.perf_counter() - t0)
    print(f"[data] {report.summary()}", flush=True)


def evaluate(name: str, root: Path, per_tag: int, timings: Timings, max_new_tokens: int) -> dict:
    """Generate + score one condition on GenEval (sketch, oracle); resumable."""
    summary, seconds = geneval_run(
        root / "eval" / name, policy_of(name, root), per_tag=per_tag, max_new_tokens=max_new_tokens
    )
    if seconds is not None:
        timings.add(f"eval_{name}", seconds)
        print(f"[eval {name}] {seconds:.0f} s", flush=True)
    return summary


def rewrite_stats(run: Path) -> dict:
    metas = [json.loads(p.read_text()) for p in sorted(run.glob("[0-9]*/metadata.jsonl"))]
    n = len(metas) or 1
    return {
        "format_ok": round(sum(bool(m.get("format_ok", True)) for m in metas) / n, 4),
        "fallback": round(sum(bool(m.get("fallback", False)) for m in metas) / n, 4),
    }


def weights_sha(folder: Path) -> str | None:
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        return None
    h = hashlib.sha256()
    for f in files:
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def repro_check(root: Path, per_tag: int, max_new_tokens: int, main_summary: dict) -> dict:
    """Same seeds and config, same numbers: 3 SFT steps and 2 GRPO steps twice (weights hashes), one evaluation redone."""

    scratch = root / "repro"
    hashes = []
    for k in range(2):
        out = scratch / f"sft-{k}"
        if not finished(out):
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "reprompt.train.sft",
                    "--config",
                    SFT_RECIPE,
                    "--output_dir",
                    str(out),
                    "--sft_data",
                    str(root / "data" / "sft.jsonl"),
                    "--max_steps",
                    "3",
                    "--save_strategy",
                    "no",
                    "--resume",
                    "never",
                ],
                cwd=REPO,
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        hashes.append(weights_sha(out))
    grpo_hashes = []
    for k in range(2):
        out = scratch / f"grpo-{k}"
        if not finished(out):
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "reprompt.train.grpo",
                    "--config",
                    GRPO_RECIPE,
                    "--policy",
                    str(root / "sft"),
                    "--prompts",
                    str(root / "data" / "rl_prompts.jsonl"),
                    "--output_dir",
                    str(out),
                    "--max_steps",
                    "2",
                    "--save_strategy",
                    "no",
                    "--resume",
                    "never",
                    "--heldout_every",
                    "0",
                    "--samples_every",
                    "0",
                ],
                cwd=REPO,
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        grpo_hashes.append(weights_sha(out))
    again, _ = geneval_run(
        scratch / "eval-sft", policy_of("sft", root), per_tag=per_tag, max_new_tokens=max_new_tokens
    )
    same_eval = again["results"] == main_summary["results"]
    return {
        "sft_3_steps_weights": hashes,
        "sft_weights_identical": hashes[0] == hashes[1],
        "grpo_2_steps_weights": grpo_hashes,
        "grpo_weights_identical": grpo_hashes[0] == grpo_hashes[1],
        "eval_sft_repeated": {"overall": again["results"]["overall"], "identical": same_eval},
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", default="runs/cpu-smoke", help="working folder (the recipes' default paths)")
    p.add_argument("--sft-args", default="", help="extra overrides for every SFT run, e.g. '--max_steps 2'")
    p.add_argument("--grpo-args", default="", help="extra overrides for every GRPO run")
    p.add_argument("--per-tag", type=int, default=20, help="GenEval prompts per tag (6 tags; x 4 seeds)")
    p.add_argument("--n-sft", type=int, default=320)
    p.add_argument("--n-rl", type=int, default=200)
    p.add_argument("--n-heldout", type=int, default=48)
    p.add_argument("--max-new-tokens", type=int, default=192, help="policy tokens at evaluation (greedy)")
    p.add_argument("--skip", nargs="*", default=[], choices=list(CONDITIONS), help="conditions to leave out")
    p.add_argument("--repro-check", action="store_true", help="also show that reruns give the same numbers")
    p.add_argument("--json", default=str(HERE / "results" / "cpu_smoke_training.json"))
    args = p.parse_args()

    import torch

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    os.chdir(REPO)
    root = Path(args.root).resolve()
    logs = root / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    timings = Timings(root / "timings.json")
    make_data(root, timings, args.n_sft, args.n_rl, args.n_heldout)

    data = root / "data"
    sft_args = ["--config", SFT_RECIPE, "--sft_data", str(data / "sft.jsonl"), *shlex.split(args.sft_args)]
    grpo_args = [
        "--config",
        GRPO_RECIPE,
        "--prompts",
        str(data / "rl_prompts.jsonl"),
        "--heldout_prompts",
        str(data / "heldout_prompts.jsonl"),
        *shlex.split(args.grpo_args),
    ]
    stages = {
        "sft": ("reprompt.train.sft", [*sft_args, "--output_dir", str(root / "sft")], root / "sft"),
        "grpo": (
            "reprompt.train.grpo",
            [*grpo_args, "--policy", str(root / "sft"), "--output_dir", str(root / "grpo")],
            root / "grpo",
        ),
        "sft_noreason": (
            "reprompt.train.sft",
            [
                *sft_args,
                "--tags",
                "prompt",
                "--system_prompt",
                NO_REASON_SYSTEM,
                "--output_dir",
                str(root / "sft-noreason"),
            ],
            root / "sft-noreason",
        ),
        "grpo_noreason": (
            "reprompt.train.grpo",
            [*grpo_args, "--policy", str(root / "sft-noreason"), "--output_dir", str(root / "grpo-noreason")],
            root / "grpo-noreason",
        ),
        "grpo_alone": (
            "reprompt.train.grpo",
            [*grpo_args, "--policy", "smollm2", "--output_dir", str(root / "grpo-alone")],
            root / "grpo-alone",
        ),
    }
    needs = {
        "sft": ["sft"],
        "sft_grpo": ["sft", "grpo"],
        "sft_grpo_no_reason": ["sft_noreason", "grpo_noreason"],
        "grpo_alone": ["grpo_alone"],
    }
    order = ["none", "sft", "sft_grpo", "untrained", "sft_grpo_no_reason", "grpo_alone"]
    todo = [c for c in order if c not in args.skip]
    summaries = {}
    for cond in todo:
        for stage in needs.get(cond, []):
            module, stage_args, out = stages[stage]
            train(stage, module, stage_args, out, timings, logs)
        summaries[cond] = evaluate(cond, root, args.per_tag, timings, args.max_new_tokens)

    from reprompt.eval.compare import compare_runs

    results: dict = {"conditions": {}}
    for cond, summary in summaries.items():
        scores = dict(summary["results"])
        entry = {
            "label": LABELS[cond],
            "policy": policy_of(cond, root),
            "overall": scores.pop("overall"),
            "tags": scores,
            "n_prompts": summary["n_samples"]["effective"],
            **rewrite_stats(root / "eval" / cond),
        }
        if cond != "none" and "none" in summaries:
            cmp = compare_runs(root / "eval" / "none", root / "eval" / cond, resamples=10_000, seed=0)
            entry["vs_none"] = {
                "overall": cmp["overall"],
                "tags": cmp["tags"],
                "prompts": cmp["prompts"],
                "seeds_match": cmp["seeds_match"],
            }
        if cond in TRAINED:
            trained = Path(policy_of(cond, root))
            entry["weights_sha256"] = weights_sha(trained)
            entry["heldout_curve"] = heldout_curve(trained)
            entry["train_curve"] = train_curve(trained)
        results["conditions"][cond] = entry
    t = timings.data
    results["timings_s"] = t
    results["main_sft_plus_grpo_s"] = round(t.get("sft", 0) + t.get("grpo", 0), 1)
    results["setup"] = {
        "geneval_prompts_per_tag": args.per_tag,
        "images_per_prompt": 4,
        "seed": 42,
        "backbone": "sketch 512²",
        "detector": "oracle",
        "eval_decoding": f"greedy, {args.max_new_tokens} new tokens",
        "sft_recipe": SFT_RECIPE,
        "grpo_recipe": GRPO_RECIPE,
        "n_sft": args.n_sft,
        "n_rl": args.n_rl,
        "sft_args": args.sft_args,
        "grpo_args": args.grpo_args,
        "cpu": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "load_average_at_end": os.getloadavg(),
    }
    if args.repro_check and "sft" in summaries:
        results["reproducibility"] = repro_check(root, args.per_tag, args.max_new_tokens, summaries["sft"])
    Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))
    return 0


def table(results: dict) -> str:
    from reprompt.geneval.vocabulary import GENEVAL_TAGS

    short = {
        "single_object": "single",
        "two_object": "two",
        "counting": "count",
        "colors": "colors",
        "position": "pos",
        "color_attr": "attr",
    }
    head = f"| condition | overall | {' | '.join(short[t] for t in GENEVAL_TAGS)} | vs no rewrite (95% CI) | format ok |"
    lines = [head, "|" + "---|" * (len(GENEVAL_TAGS) + 4)]
    for entry in results["conditions"].values():
        vs = entry.get("vs_none")
        diff = (
            f"{vs['overall']['diff']:+.3f} [{vs['overall']['ci_low']:+.3f}, {vs['overall']['ci_high']:+.3f}]"
            if vs
            else "-"
        )
        tags = " | ".join(f"{entry['tags'].get(t, float('nan')):.3f}" for t in GENEVAL_TAGS)
        lines.append(
            f"| {entry['label']} | {entry['overall']:.3f} | {tags} | {diff} | {entry['format_ok']:.2f} |"
        )
    t = results["timings_s"]
    lines.append("")
    lines.append("wall-clock (s): " + ", ".join(f"{k} {v:.0f}" for k, v in t.items()))
    lines.append(f"main SFT+GRPO run: {results['main_sft_plus_grpo_s'] / 60:.1f} min")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
