"""Evidence that the RL stage learns (issue 10): a known-answer test the SFT teacher cannot pass for it.

The SFT teacher is ``generic`` (reprompt.data.teachers.GenericTeacher): a general-purpose LLM teacher written
out, blind to the sketch simulator; each strategy the simulator happens to reward (absolute places, exact
counts, color clauses, one object per sentence) is in ~30% of its targets, and the hidden one (stating a
relation from both sides) in ~5%. SFT imitates that mix; only the image reward can say which parts pay.

Rows (GenEval, ``--per-tag`` prompts per tag x 4 seeds, sketch + oracle detector; every row paired against
no rewrite and against the row it builds on, stratified bootstrap 95% intervals):

1. no rewrite; 2. generic SFT; 3. generic SFT + GRPO; 4. GRPO alone from the untrained SmolLM2;
5. generic SFT + GRPO without the reason block (its SFT stage is prompt-only too);
6. row 3's policy on the second calibration (``sketch-b``), against rows 1-2 there.

Plus: how often each strategy appears in the greedy outputs of rows 2, 3 (and the others), the held-out
strategy rates over GRPO steps, and plots (training reward, held-out reward, each component per step;
strategy rates before/after) under benchmarks/results/rl_evidence/ (next to the JSON).

    OMP_NUM_THREADS=1 nohup python benchmarks/rl_evidence.py > /tmp/rl_evidence.log 2>&1 &

Resumable: rerun the same command after a kill; finished stages are skipped, training resumes from its last
checkpoint and evaluation from its last finished prompt. ``--only STAGE`` runs one stage (to run
independent stages in two processes on two cores). Same seeds, same numbers.
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

from training_runs import GENEVAL, HERE, REPO, Timings, finished, geneval_run, heldout_curve, train_curve

SFT_RECIPE = "configs/sft/cpu-generic.yaml"
GRPO_RECIPE = "configs/grpo/cpu-generic.yaml"
NO_REASON_SYSTEM = (
    "Rewrite the image request for a text-to-image model. Write the final prompt in <prompt></prompt>."
)

# training stage -> (module, recipe, overrides); {root} is the run folder
TRAINING = {
    "sft": ("reprompt.train.sft", SFT_RECIPE, ["--policy", "{base}", "--output_dir", "{root}/sft"]),
    "sft-noreason": (
        "reprompt.train.sft",
        SFT_RECIPE,
        [
            "--policy",
            "{base}",
            "--output_dir",
            "{root}/sft-noreason",
            "--tags",
            "prompt",
            "--system_prompt",
            NO_REASON_SYSTEM,
        ],
    ),
    "grpo": ("reprompt.train.grpo", GRPO_RECIPE, ["--policy", "{root}/sft", "--output_dir", "{root}/grpo"]),
    "grpo-noreason": (
        "reprompt.train.grpo",
        GRPO_RECIPE,
        ["--policy", "{root}/sft-noreason", "--output_dir", "{root}/grpo-noreason"],
    ),
    # the untrained model, prompted as `load_policy("smollm2")` prompts it (with the worked example)
    "grpo-alone": (
        "reprompt.train.grpo",
        GRPO_RECIPE,
        ["--policy", "{base}", "--output_dir", "{root}/grpo-alone"],
    ),
}
NEEDS = {"grpo": "sft", "grpo-noreason": "sft-noreason"}

# row -> (policy: "none" or a training stage, backbone)
ROWS = {
    "none": ("none", "sketch"),
    "sft": ("sft", "sketch"),
    "sft_grpo": ("grpo", "sketch"),
    "grpo_alone": ("grpo-alone", "sketch"),
    "sft_noreason": ("sft-noreason", "sketch"),
    "sft_grpo_noreason": ("grpo-noreason", "sketch"),
    "none@sketch-b": ("none", "sketch-b"),
    "sft@sketch-b": ("sft", "sketch-b"),
    "sft_grpo@sketch-b": ("grpo", "sketch-b"),
}
LABELS = {
    "none": "1. no rewrite",
    "sft": "2. generic SFT",
    "sft_grpo": "3. generic SFT + GRPO",
    "grpo_alone": "4. GRPO alone (untrained start)",
    "sft_noreason": "   generic SFT, no reason block",
    "sft_grpo_noreason": "5. generic SFT + GRPO, no reason block",
    "none@sketch-b": "1b. no rewrite on sketch-b",
    "sft@sketch-b": "2b. generic SFT on sketch-b",
    "sft_grpo@sketch-b": "6. row 3's policy on sketch-b",
}
# (row, the row it is paired against)
PAIRS = [
    ("sft", "none"),
    ("sft_grpo", "none"),
    ("sft_grpo", "sft"),
    ("grpo_alone", "none"),
    ("sft_noreason", "none"),
    ("sft_grpo_noreason", "none"),
    ("sft_grpo_noreason", "sft_noreason"),
    ("sft_grpo_noreason", "sft_grpo"),
    ("sft@sketch-b", "none@sketch-b"),
    ("sft_grpo@sketch-b", "none@sketch-b"),
    ("sft_grpo@sketch-b", "sft@sketch-b"),
]
STRATEGY_ROWS = ["sft", "sft_grpo", "grpo_alone", "sft_noreason", "sft_grpo_noreason"]


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def make_data(root: Path, args: argparse.Namespace, timings: Timings) -> None:
    data = root / "data"
    if (data / "sft.jsonl").exists() and (data / "heldout_prompts.jsonl").exists():
        return
    t0 = time.perf_counter()
    reprompt = [sys.executable, "-m", "reprompt.cli.main"]
    # single_object: with COCO names all 80 single-object prompts are GenEval test prompts
    run(
        [
            *reprompt,
            "data",
            "prompts",
            "--out",
            str(data),
            "--n-sft",
            str(args.n_sft),
            "--n-rl",
            str(args.n_rl),
            "--n-heldout",
            str(args.n_heldout),
            "--tag-weights",
            "single_object=0",
            "--exclude",
            str(GENEVAL),
        ]
    )
    run(
        [
            *reprompt,
            "data",
            "sft",
            "--prompts",
            str(data / "sft_prompts.jsonl"),
            "--out",
            str(data / "sft.jsonl"),
            "--teacher",
            "generic",
        ]
    )
    timings.add("data", time.perf_counter() - t0)


def run(cmd: list[str], logfile: Path | None = None) -> None:
    log(f"$ {shlex.join(cmd)}")
    if logfile is None:
        proc = subprocess.run(cmd, cwd=REPO)
    else:
        with open(logfile, "a") as f:
            proc = subprocess.run(cmd, cwd=REPO, stdout=f, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        raise SystemExit(
            f"failed ({proc.returncode}): {shlex.join(cmd)}" + (f"; see {logfile}" if logfile else "")
        )


def train(stage: str, root: Path, timings: Timings, extra: list[str], base: str) -> None:
    out = root / stage
    if finished(out):
        return
    if stage in NEEDS and not finished(root / NEEDS[stage]):
        raise SystemExit(f"{stage} needs {NEEDS[stage]} first")
    module, recipe, overrides = TRAINING[stage]
    cmd = [
        sys.executable,
        "-m",
        module,
        "--config",
        recipe,
        *(o.format(root=root, base=base) for o in overrides),
        *extra,
    ]
    if module.endswith("grpo"):
        data = root / "data"
        cmd += [
            "--prompts",
            str(data / "rl_prompts.jsonl"),
            "--heldout_prompts",
            str(data / "heldout_prompts.jsonl"),
        ]
    elif "--sft_data" not in extra:
        cmd += ["--sft_data", str(root / "data" / "sft.jsonl")]
    t0 = time.perf_counter()
    (root / "logs").mkdir(parents=True, exist_ok=True)
    run(cmd, root / "logs" / f"{stage}.log")
    timings.add(stage, time.perf_counter() - t0)
    log(f"[{stage}] {timings.data[stage]:.0f} s in all")


def evaluate(row: str, root: Path, per_tag: int, timings: Timings, max_new_tokens: int = 192) -> dict:
    """Generate + score one row on GenEval (oracle detector); resumable."""
    stage, backbone = ROWS[row]
    out = root / "eval" / row
    if stage != "none" and not (out / "summary.json").exists() and not finished(root / stage):
        raise SystemExit(f"row {row} needs the trained policy {root / stage}")
    policy = "none" if stage == "none" else str(root / stage)
    summary, seconds = geneval_run(
        out, policy, per_tag=per_tag, max_new_tokens=max_new_tokens, backbone=backbone
    )
    if seconds is not None:
        timings.add(f"eval {row}", seconds)
        log(f"[eval {row}] {timings.data[f'eval {row}']:.0f} s")
    return summary


def rewrites(run_dir: Path) -> list[dict]:
    """The greedy rewrite and metadata of every prompt of an evaluation run."""
    rows = []
    for meta in sorted(run_dir.glob("[0-9]*/metadata.jsonl")):
        rows.append(json.loads(meta.read_text()))
    return rows


def strategy_rates(rows: list[dict]) -> dict:
    from reprompt.data.strategies import strategy_table

    return strategy_table((r.get("rewritten_prompt") or r["prompt"], r) for r in rows)


def heldout_strategy_curve(folder: Path, heldout: dict[str, dict]) -> list[dict]:
    """Per held-out evaluation step: the strategy rates of the policy's greedy rewrites (what RL discovered,
    step by step)."""
    from reprompt.data.strategies import strategy_table

    out = []
    for path in sorted((folder / "heldout").glob("step-*.json")):
        rows = json.loads(path.read_text())
        pairs = [(r["enhanced_prompt"], heldout[r["id"]]) for r in rows if r.get("id") in heldout]
        table = strategy_table(pairs)
        out.append(
            {"step": int(path.stem.split("-")[1]), **{k: round(v["rate"], 4) for k, v in table.items()}}
        )
    return out


# ------------------------------------------------------------------------------------------------ report


def plots(results: dict, out: Path) -> list[str]:
    """PNG plots into the folder ``out`` (next to the JSON, same name without .json)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    written = []
    runs = {k: v for k, v in results["training"].items() if v.get("train_curve")}
    if runs:
        fig, axes = plt.subplots(1, 3, figsize=(15, 4))
        for name, r in runs.items():
            c = r["train_curve"]

            def series(key: str, curve: list[dict] = c) -> tuple[list, list]:
                """(steps, values) of the steps that logged ``key`` (rewards are logged on generation steps)."""
                pts = [(h["step"], h[key]) for h in curve if key in h]
                return [p[0] for p in pts], [p[1] for p in pts]

            axes[0].plot(*series("reward/geneval/mean"), label=f"{name}: geneval")
            axes[1].plot(*series("reward/format/mean"), label=f"{name}: format")
            axes[1].plot(*series("reward/length/mean"), "--", label=f"{name}: length")
            hc = r.get("heldout_curve") or []
            axes[2].plot(
                [h["step"] for h in hc],
                [h.get("heldout/geneval", float("nan")) for h in hc],
                "o-",
                label=name,
            )
        axes[0].set_title("training reward: GenEval partial credit (raw mean)")
        axes[1].set_title("training reward: format and length (raw means)")
        axes[2].set_title("held-out strict GenEval (greedy)")
        for ax in axes:
            ax.set_xlabel("optimizer step")
            ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out / "training_curves.png", dpi=110)
        plt.close(fig)
        written.append("training_curves.png")
    strat = results.get("strategies") or {}
    if strat:
        names = list(next(iter(strat.values())))
        fig, ax = plt.subplots(figsize=(9, 4))
        width = 0.8 / len(strat)
        for j, (row, table) in enumerate(strat.items()):
            ax.bar(
                [i + j * width for i in range(len(names))],
                [table[n]["rate"] for n in names],
                width,
                label=row,
            )
        ax.set_xticks([i + 0.4 - width / 2 for i in range(len(names))], names, rotation=15, fontsize=8)
        ax.set_ylabel("share of greedy rewrites using it")
        ax.set_title("strategies in the policy's GenEval rewrites")
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out / "strategies.png", dpi=110)
        plt.close(fig)
        written.append("strategies.png")
    curves = {
        k: v.get("heldout_strategies") for k, v in results["training"].items() if v.get("heldout_strategies")
    }
    if curves:
        fig, axes = plt.subplots(1, len(curves), figsize=(5 * len(curves), 3.6), squeeze=False)
        for ax, (name, curve) in zip(axes[0], curves.items(), strict=True):
            for key in [k for k in curve[0] if k != "step"]:
                ax.plot([c["step"] for c in curve], [c[key] for c in curve], "o-", label=key)
            ax.set_title(f"{name}: strategies on the held-out set")
            ax.set_xlabel("optimizer step")
            ax.set_ylim(0, 1)
            ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out / "strategies_over_steps.png", dpi=110)
        plt.close(fig)
        written.append("strategies_over_steps.png")
    return written


def table(results: dict) -> str:
    lines = [
        "| row | overall | position | counting | color_attr | vs no rewrite | vs the row it builds on |",
        "|---|---:|---:|---:|---:|---|---|",
    ]
    cmp = results["comparisons"]
    builds_on = {"sft_grpo": "sft", "sft_grpo_noreason": "sft_noreason", "sft_grpo@sketch-b": "sft@sketch-b"}
    for row, s in results["rows"].items():
        base = "none@sketch-b" if row.endswith("@sketch-b") else "none"

        def fmt(key: str) -> str:
            c = cmp.get(key)
            return f"{c['diff']:+.3f} [{c['ci_low']:+.3f}, {c['ci_high']:+.3f}]" if c else ""

        t = s["tags"]
        lines.append(
            f"| {LABELS[row]} | {s['overall']:.3f} | {t['position']:.3f} | {t['counting']:.3f} | "
            f"{t['color_attr']:.3f} | {fmt(f'{row} vs {base}') if row != base else ''} | "
            f"{fmt(f'{row} vs {builds_on[row]}') if row in builds_on else ''} |"
        )
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------ main


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", default="runs/rl-evidence")
    p.add_argument("--per-tag", type=int, default=40, help="GenEval prompts per tag (6 tags; 40 -> 240)")
    p.add_argument("--n-sft", type=int, default=480)
    p.add_argument("--n-rl", type=int, default=240)
    p.add_argument("--n-heldout", type=int, default=48)
    p.add_argument("--only", default=None, help="one stage: data, a training stage, eval:<row>, or report")
    p.add_argument("--sft-args", default="", help="extra overrides for the SFT stages (tiny runs)")
    p.add_argument("--grpo-args", default="", help="extra overrides for the GRPO stages (tiny runs)")
    p.add_argument("--base-policy", default="smollm2", help="the untrained policy (SFT start, GRPO alone)")
    p.add_argument("--max-new-tokens", type=int, default=192, help="rewrite budget at evaluation")
    p.add_argument("--out", default=str(HERE / "results" / "rl_evidence.json"))
    args = p.parse_args()
    root = (REPO / args.root).resolve() if not Path(args.root).is_absolute() else Path(args.root)
    timings = Timings(root / "timings.json")
    extra = {"sft": shlex.split(args.sft_args), "grpo": shlex.split(args.grpo_args)}

    if args.only in (None, "data"):
        make_data(root, args, timings)
    for stage in TRAINING:
        if args.only in (None, stage):
            train(
                stage, root, timings, extra["grpo" if stage.startswith("grpo") else "sft"], args.base_policy
            )
    rows = {}
    for row in ROWS:
        if args.only in (None, f"eval:{row}", "report"):
            if args.only == "report" and not (root / "eval" / row / "summary.json").exists():
                continue
            rows[row] = evaluate(row, root, args.per_tag, timings, args.max_new_tokens)
    if args.only not in (None, "report"):
        return 0

    from reprompt.data.prompts import load_prompts
    from reprompt.eval.compare import compare_runs

    comparisons = {}
    for row, base in PAIRS:
        if row in rows and base in rows:
            c = compare_runs(root / "eval" / base, root / "eval" / row, resamples=10_000, seed=0)
            comparisons[f"{row} vs {base}"] = {
                k: round(v, 4) if isinstance(v, float) else v for k, v in c["overall"].items()
            }
            comparisons[f"{row} vs {base}"]["tags"] = {
                t: {
                    "diff": round(d["diff"], 4),
                    "ci_low": round(d["ci_low"], 4),
                    "ci_high": round(d["ci_high"], 4),
                }
                for t, d in c["tags"].items()
            }
    strategies = {row: strategy_rates(rewrites(root / "eval" / row)) for row in STRATEGY_ROWS if row in rows}
    heldout = {r["id"]: r for r in load_prompts(root / "data" / "heldout_prompts.jsonl")}
    training = {}
    for stage in TRAINING:
        folder = root / stage
        if stage.startswith("grpo") and folder.exists():
            training[stage] = {
                "train_curve": train_curve(folder),
                "heldout_curve": heldout_curve(folder),
                "heldout_strategies": heldout_strategy_curve(folder, heldout),
            }
    results = {
        "machine": f"{platform.platform()}, {platform.processor() or 'cpu'}, 2 cores (shared)",
        "command": "OMP_NUM_THREADS=1 python benchmarks/rl_evidence.py",
        "per_tag": args.per_tag,
        "rows": {
            row: {
                "overall": s["results"]["overall"],
                "tags": {t: v for t, v in s["results"].items() if t != "overall"},
            }
            for row, s in rows.items()
        },
        "comparisons": comparisons,
        "strategies": strategies,
        "training": training,
        "timings_s": timings.data,
    }
    results["plots"] = plots(results, Path(args.out).with_suffix(""))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))
    for row, t in strategies.items():
        print(row, {k: f"{v['used']}/{v['applicable']}" for k, v in t.items()})
    log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
