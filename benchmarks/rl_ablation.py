"""The lab ablation (issue 17): which recipe to run, with training seeds.

Rows, each with and without the reason block: **base** (the untrained SmolLM2, prompted with a short system
prompt and one worked example), **SFT** (a LoRA adapter on the generic teacher's targets), **GRPO alone**
(from the base, prompted as the base row), **SFT + GRPO**. The no-reason SFT trains the same teacher targets
with the reason block removed (matched starts); every GRPO uses the same recipe (configs/grpo/cpu-lab-lora.yaml:
dr_grpo loss, so the reason block does not halve the prompt's share of the update; no safe harbour for a
completion that writes no prompt). One extra run compares the loss normalisations on one pair (SFT + GRPO
with a reason block, seed 0, ``loss_type: grpo``); two more measure the lab-speed cut (the two reason-block GRPO
rows at seed 0 with bf16 weights, ``--dtype bfloat16``: wall clock and results against fp32). Every trained
row has ``--seeds`` training seeds.

Evaluated on two prompt families, 4 images per prompt (seeds 42-45), sketch + oracle detector, greedy:
GenEval (``--per-tag`` prompts per tag) and the inference family (benchmarks/data/inference_eval.jsonl:
clues a literal reader cannot draw). Intervals resample training seeds, then prompts
(:mod:`reprompt.eval.seeds`). Also: strategy tables, how often a rewrite resolves the clue, example rewrites,
held-out curves, plots, the SHA-256 of every trained adapter, and the seed-0 adapter of each trained row
copied to benchmarks/adapters/ (re-evaluable: ``reprompt eval geneval --policy benchmarks/adapters/<row>``).

    OMP_NUM_THREADS=1 nohup python benchmarks/rl_ablation.py --jobs 2 > /tmp/rl_ablation.log 2>&1 &

Resumable: rerun the same command after a kill; finished stages are skipped, training resumes from its
last checkpoint and evaluation from its last finished prompt (``--stages`` schedules a subset: what fits a
session, e.g. ``--stages alone-reason-s1,eval:alone-reason-s1``). Resumable across machines too: after every
finished stage its record (an evaluation's scored summary and rewrites; a training run's curves, held-out
guard and weights hash, never images or weights) is written to ``--archive`` (benchmarks/results/rl_ablation/
runs, committed), and a fresh ``--root`` is filled from it, so the rows grow over several sessions. The data
stage is regenerated and must hash as archived. A training run known only from its record is trained again
only when a stage still to run starts from its weights. ``--jobs 2`` runs two stages at a time (one
per core); ``--only STAGE`` runs one (``data``, a training stage such as ``grpo-reason-s1``,
``eval:<policy>``, ``report``).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import platform
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from training_runs import GENEVAL, HERE, REPO, Timings, finished, geneval_run, heldout_curve, train_curve

SFT_RECIPE = "configs/sft/cpu-lab-lora.yaml"
GRPO_RECIPE = "configs/grpo/cpu-lab-lora.yaml"
INFERENCE = HERE / "data" / "inference_eval.jsonl"
FAMILIES = {"geneval": GENEVAL, "inference": INFERENCE}
REASON_SYSTEM = (
    "Rewrite the image request for a text-to-image model. First plan in <reason></reason>, then write the "
    "final prompt in <prompt></prompt>."
)
NO_REASON_SYSTEM = (
    "Rewrite the image request for a text-to-image model. Write the final prompt in <prompt></prompt>."
)
VARIANTS = {"reason": ("reason/prompt", REASON_SYSTEM), "noreason": ("prompt", NO_REASON_SYSTEM)}
ADAPTERS = HERE / "adapters"
ARCHIVE = HERE / "results" / "rl_ablation" / "runs"
LOSS_ROW = "grpo-reason-grpoloss"
"""SFT + GRPO with the reason block under TRL's ``grpo`` loss (a mean over each completion's own tokens), paired
with the ``dr_grpo`` row by training seed."""
# The lab-speed cuts (issue 17), each adding to the one before: the two slowest rows again at the first seed,
# paired with the fp32 run of the same seed (what the cuts cost in results). bf16w: the policy's weights held in
# bf16 (the LoRA adapter stays fp32); shared: one forward per distinct prompt in the log-prob and update passes
# (share_prompt_pass); merged: rollouts sampled from a merged copy of the LoRA policy (merged_sampling).
BF16_WEIGHTS = ["--dtype", "bfloat16"]
SHARED = [*BF16_WEIGHTS, "--share_prompt_pass", "true"]
MERGED = [*SHARED, "--merged_sampling", "true"]
SPEED_RUNS: dict[str, tuple[str, list[str]]] = {
    "grpo-reason-bf16w": ("grpo-reason", BF16_WEIGHTS),
    "alone-reason-bf16w": ("alone-reason", BF16_WEIGHTS),
    "grpo-reason-shared": ("grpo-reason", SHARED),
    "alone-reason-shared": ("alone-reason", SHARED),
    "grpo-reason-merged": ("grpo-reason", MERGED),
    "alone-reason-merged": ("alone-reason", MERGED),
}
# Runs kept from before the recipe's learning rate went from 1e-4 to 2e-4 (seed 0), evaluated when present:
# the evidence for that change (RESULTS §8). Each is compared with the row it would have replaced.
SIDE_RUNS = {"grpo-reason-lr1e-4-s0": "sft-reason-s0", "alone-reason-lr1e-4-s0": "base-reason"}


@dataclass
class Stage:
    """One unit of work: a training run (a module and its flags) or an evaluation; ``needs`` must finish first."""

    name: str
    cmd: list[str] = field(default_factory=list)
    needs: list[str] = field(default_factory=list)
    output: Path | None = None

    def done(self, root: Path, archived: set[str] = frozenset()) -> bool:  # type: ignore[assignment]
        """Finished here, or (a training run) finished in an earlier session: in ``archived``."""
        if self.name.startswith("eval:"):
            return self.output is not None and all(
                (self.output / f / "summary.json").exists() for f in FAMILIES
            )
        if self.name == "data":
            return (root / "data" / "sft-noreason.jsonl").exists()
        return finished(root / self.name) or self.name in archived


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def plan(args: argparse.Namespace, root: Path) -> dict[str, Stage]:
    """Every stage of the ablation in the order to start them: seed 0 of every row first."""
    py = [sys.executable]
    data = root / "data"
    reprompt = [*py, "-m", "reprompt.cli.main"]
    stages: dict[str, Stage] = {}
    prompts_cmd = [
        *reprompt, "data", "prompts", "--out", str(data), "--n-sft", str(args.n_sft), "--n-rl", str(args.n_rl),
        "--n-heldout", str(args.n_heldout), "--tags", "geneval,inference", "--tag-weights", "single_object=0",
        "--exclude", str(GENEVAL), "--exclude", str(INFERENCE),
    ]  # fmt: skip
    sft_cmds = [
        [*reprompt, "data", "sft", "--prompts", str(data / "sft_prompts.jsonl"), "--out", str(data / name),
         "--teacher", "generic", "--out-tags", tags]
        for name, tags in (("sft.jsonl", "reason/prompt"), ("sft-noreason.jsonl", "prompt"))
    ]  # fmt: skip
    stages["data"] = Stage("data", [*py, "-c", _chain([prompts_cmd, *sft_cmds])])
    sft_extra, grpo_extra = shlex.split(args.sft_args), shlex.split(args.grpo_args)
    trained: list[str] = []
    for seed in args.seeds:
        for v, (tags, system) in VARIANTS.items():
            sft = f"sft-{v}-s{seed}"
            sft_data = data / ("sft.jsonl" if v == "reason" else "sft-noreason.jsonl")
            stages[sft] = Stage(
                sft,
                [*py, "-m", "reprompt.train.sft", "--config", SFT_RECIPE, "--policy", args.base_policy,
                 "--sft_data", str(sft_data), "--tags", tags, "--system_prompt", system,
                 "--output_dir", str(root / sft), "--seed", str(seed), *sft_extra],
                ["data"],
            )  # fmt: skip
            grpo_common = [
                "--prompts", str(data / "rl_prompts.jsonl"), "--heldout_prompts", str(data / "heldout_prompts.jsonl"),
                "--seed", str(seed), *grpo_extra,
            ]  # fmt: skip
            grpo = f"grpo-{v}-s{seed}"
            stages[grpo] = Stage(
                grpo,
                [*py, "-m", "reprompt.train.grpo", "--config", GRPO_RECIPE, "--policy", str(root / sft),
                 "--output_dir", str(root / grpo), *grpo_common],
                [sft],
            )  # fmt: skip
            alone = f"alone-{v}-s{seed}"
            stages[alone] = Stage(
                alone,
                [*py, "-m", "reprompt.train.grpo", "--config", GRPO_RECIPE, "--policy", args.base_policy,
                 "--tags", tags, "--system_prompt", system, "--few_shot", "true",
                 "--output_dir", str(root / alone), *grpo_common],
                ["data"],
            )  # fmt: skip
            trained += [sft, grpo, alone]
        loss = f"{LOSS_ROW}-s{seed}"  # the loss pair: SFT + GRPO reason under TRL's `grpo` loss, every seed
        start = stages[f"grpo-reason-s{seed}"]
        stages[loss] = Stage(
            loss, [*start.cmd, "--loss_type", "grpo", "--output_dir", str(root / loss)], start.needs
        )
        trained.append(loss)
        if seed == args.seeds[0]:
            for name, (row, flags) in SPEED_RUNS.items():
                fast, start = f"{name}-s{seed}", stages[f"{row}-s{seed}"]
                stages[fast] = Stage(
                    fast, [*start.cmd, *flags, "--output_dir", str(root / fast)], list(start.needs)
                )
                trained.append(fast)
    # each evaluation right after what it evaluates, so a policy is scored as soon as it exists
    ordered: dict[str, Stage] = {"data": stages.pop("data")}
    side = [name for name in SIDE_RUNS if finished(root / name)]
    for policy in ["none", *(f"base-{v}" for v in VARIANTS), *trained, *side]:
        if policy in stages:
            ordered[policy] = stages.pop(policy)
        name = f"eval:{policy}"  # both families in one process: one model load
        ordered[name] = Stage(
            name,
            [*py, str(Path(__file__).resolve()), *_passthrough(args), "--only", name],
            [policy] if policy in ordered else ["data"],
            root / "eval" / policy,
        )
    stages = ordered
    return stages


def select(stages: dict[str, Stage], names: str | None) -> dict[str, Stage]:
    """The named stages and, transitively, the stages they need (in plan order); all of them for None."""
    if names is None:
        return stages
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    if unknown := [n for n in wanted if n not in stages]:
        raise SystemExit(f"unknown stage(s) {', '.join(unknown)}; stages: {', '.join(stages)}")
    keep: set[str] = set()
    while wanted:
        name = wanted.pop()
        if name not in keep:
            keep.add(name)
            wanted += [n for n in stages[name].needs if n in stages]
    return {n: s for n, s in stages.items() if n in keep}


def _chain(cmds: list[list[str]]) -> str:
    """A Python one-liner that runs commands in order and stops at the first failure."""
    return (
        "import subprocess, sys\n"
        f"for c in {cmds!r}:\n"
        "    r = subprocess.run(c)\n"
        "    r.returncode and sys.exit(r.returncode)\n"
    )


def _passthrough(args: argparse.Namespace) -> list[str]:
    return [
        "--root", str(args.root), "--per-tag", str(args.per_tag), "--base-policy", args.base_policy,
        "--max-new-tokens", str(args.max_new_tokens), "--seeds", ",".join(map(str, args.seeds)),
    ]  # fmt: skip


def schedule(stages: dict[str, Stage], root: Path, jobs: int, timings: Timings, archive_dir: Path) -> None:
    """Run every unfinished stage, ``jobs`` at a time, each as soon as what it needs has finished; archive
    each finished one."""
    (root / "logs").mkdir(parents=True, exist_ok=True)
    archived = usable_records(stages, root, archive_dir)
    pending = [s for s in stages.values() if not s.done(root, archived)]
    running: dict[str, tuple[subprocess.Popen, float]] = {}
    while pending or running:
        for name, (proc, t0) in list(running.items()):
            code = proc.poll()
            if code is None:
                continue
            del running[name]
            timings.add(name, time.perf_counter() - t0)
            if code != 0:
                raise SystemExit(f"{name} failed ({code}); see {root / 'logs' / _logname(name)}")
            log(f"done {name} ({time.perf_counter() - t0:.0f} s)")
            archive(root, archive_dir, timings)
        ready = [s for s in pending if all(stages[n].done(root, archived) for n in s.needs if n in stages)]
        while ready and len(running) < jobs:
            stage = ready.pop(0)
            pending.remove(stage)
            log(f"start {stage.name}: {shlex.join(stage.cmd)[:300]}")
            with open(root / "logs" / _logname(stage.name), "a") as f:
                proc = subprocess.Popen(stage.cmd, cwd=REPO, stdout=f, stderr=subprocess.STDOUT)
            running[stage.name] = (proc, time.perf_counter())
        if pending and not ready and not running:
            raise SystemExit(f"stuck: {[s.name for s in pending]} wait for stages that cannot run")
        time.sleep(2)


def _logname(stage: str) -> str:
    return stage.replace(":", "_") + ".log"


# ------------------------------------------------------------------------------------------------ evaluation


def base_rewriter(base: str, variant: str) -> object:
    """The untrained policy prompted exactly as GRPO alone starts: short system prompt, one worked example."""
    from reprompt.format import PromptSpec
    from reprompt.policy import load_policy
    from reprompt.train.common import worked_examples

    tags, system = VARIANTS[variant]
    return load_policy(base, prompt_spec=PromptSpec(tags=tags, system=system, examples=worked_examples(tags)))


def evaluate(name: str, root: Path, args: argparse.Namespace) -> None:
    """One policy on both families (its model loaded once)."""
    policy = name.removeprefix("eval:")
    if policy == "none":
        rewriter, path = None, "none"
    elif policy.startswith("base-"):
        rewriter, path = base_rewriter(args.base_policy, policy.removeprefix("base-")), policy
    else:
        from reprompt.policy import load_policy

        rewriter, path = load_policy(str(root / policy)), str(root / policy)
    for family, metadata in FAMILIES.items():
        _, seconds = geneval_run(
            root / "eval" / policy / family,
            path,
            per_tag=args.per_tag,
            max_new_tokens=args.max_new_tokens,
            metadata=metadata,
            rewriter=rewriter,
        )
        if seconds is not None:
            log(f"[{name} {family}] {seconds:.0f} s")


# ------------------------------------------------------------------------------------------------ archive


def _gz_json(path: Path, obj: object) -> None:
    """Byte-stable gzip (no timestamp, sorted keys), written atomically: re-archiving an unchanged run is a no-op."""
    from reprompt.utils.io import atomic_write_bytes

    data = gzip.compress(json.dumps(obj, sort_keys=True).encode(), mtime=0)
    if not path.exists() or path.read_bytes() != data:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, data)


def data_hashes(root: Path) -> dict[str, str]:
    return {p.name: _sha256(p) for p in sorted((root / "data").glob("*.jsonl"))}


def archive(root: Path, dest: Path, timings: Timings) -> None:
    """Write the record of every finished stage in ``root`` to ``dest``: per evaluated family, the scored
    summary and the per-prompt rewrites (``eval/<policy>/<family>.json.gz``); per training run, its curves,
    held-out guard, prompt spec and weights hash (``train/<stage>.json.gz``); the data hashes; the timings."""
    from reprompt.utils.io import atomic_write_json

    if (root / "data").is_dir():
        atomic_write_json(dest / "data.json", data_hashes(root))
    for summary in sorted(root.glob("eval/*/*/summary.json")):
        run = summary.parent
        path = dest / "eval" / run.parent.name / f"{run.name}.json.gz"
        record = {"summary": json.loads(summary.read_text()), "rewrites": rewrites(run)}
        if path.exists():  # kept: the weights it evaluated (absent from records made before they named them)
            evaluated = json.loads(gzip.decompress(path.read_bytes())).get("weights_sha256")
        else:  # a new evaluation: of the trained run's weights in the root now (none for an untrained row)
            evaluated = _sha256(_weights(policy)) if finished(policy := root / run.parent.name) else None
        _gz_json(path, {**record, "weights_sha256": evaluated} if evaluated else record)
    for run in sorted(p for p in root.iterdir() if p.is_dir() and finished(p)):
        record = {
            "weights_sha256": _sha256(_weights(run)),
            "reprompt_format": json.loads((run / "reprompt_format.json").read_text()),
            "train_curve": train_curve(run),
            "heldout": heldout_curve(run),
        }
        path = dest / "train" / f"{run.name}.json.gz"
        if path.exists():
            old = json.loads(gzip.decompress(path.read_bytes()))
            if old["weights_sha256"] == record["weights_sha256"]:
                record = old
            elif record["weights_sha256"] in evaluated_weights(dest, run.name):
                # trained again, and this run is the one evaluated: its record replaces the first run's
                log(f"{run.name}: trained again to other weights, and these are the ones evaluated")
                record["replaced_sha256"] = sorted({*old.get("replaced_sha256", []), old["weights_sha256"]})
            else:
                # trained again (for a stage that starts from it): its evaluation and curves are the first run's
                log(f"warning: {run.name} trained again to other weights than its archived record")
                old["retrained_sha256"] = sorted({*old.get("retrained_sha256", []), record["weights_sha256"]})
                record = old
        _gz_json(path, record)
    atomic_write_json(dest / "timings.json", timings.data)


def _weights(run: Path) -> Path:
    return next(run / n for n in ("adapter_model.safetensors", "model.safetensors") if (run / n).exists())


def evaluated_weights(dest: Path, name: str) -> set[str]:
    """The weights hashes the archived evaluations of run ``name`` name (none for evaluations archived before
    they named them)."""
    records = (
        json.loads(gzip.decompress(p.read_bytes())) for p in sorted((dest / "eval" / name).glob("*.json.gz"))
    )
    return {sha for r in records if (sha := r.get("weights_sha256"))}


def restore(dest: Path, root: Path, timings: Timings) -> None:
    """Fill a fresh ``root`` from ``dest``: every archived evaluation (its summary and per-prompt rewrites,
    as the report reads them) and the timings. Regenerated data must hash as archived."""
    if (dest / "data.json").exists() and (root / "data").is_dir():
        want, have = json.loads((dest / "data.json").read_text()), data_hashes(root)
        if want != have:
            bad = sorted(k for k in want.keys() | have.keys() if want.get(k) != have.get(k))
            raise SystemExit(
                f"the regenerated data differs from the archived runs' ({', '.join(bad)}): the code that writes "
                f"prompts or SFT targets changed; run the ablation at the commit the archive was made with"
            )
    for path in sorted(dest.glob("eval/*/*.json.gz")):
        run = root / "eval" / path.parent.name / path.name.removesuffix(".json.gz")
        if (run / "summary.json").exists():
            continue
        record = json.loads(gzip.decompress(path.read_bytes()))
        for meta in record["rewrites"]:
            (run / f"{meta['index']:05d}").mkdir(parents=True, exist_ok=True)
            (run / f"{meta['index']:05d}" / "metadata.jsonl").write_text(json.dumps(meta) + "\n")
        (run / "summary.json").write_text(json.dumps(record["summary"]) + "\n")
    if (dest / "timings.json").exists():
        for stage, seconds in json.loads((dest / "timings.json").read_text()).items():
            timings.data.setdefault(stage, seconds)


def restore_adapters(adapters: Path, dest: Path, root: Path, seed: int, base_policy: str) -> list[str]:
    """Put each committed seed-0 adapter (``adapters/<row>``) back as its run in a fresh ``root`` when it is the
    archived run, weight for weight: stages that start from it (the loss and speed runs) then start from the
    weights that were evaluated, not from a retraining (seed 0 was trained in an environment whose SFT today's
    retraining does not reproduce, RESULTS §8). The adapter's base is set to ``base_policy``. Returns the runs restored."""
    records, restored = train_records(dest), []
    for row in ROWS:
        src, run = adapters / row, root / f"{row}-s{seed}"
        record = records.get(run.name)
        if finished(run) or record is None or not (src / "adapter_model.safetensors").exists():
            continue
        if _sha256(src / "adapter_model.safetensors") != record["weights_sha256"]:
            continue
        run.mkdir(parents=True, exist_ok=True)
        config = json.loads((src / "adapter_config.json").read_text())
        (run / "adapter_config.json").write_text(
            json.dumps({**config, "base_model_name_or_path": base_policy})
        )
        for name in (
            "reprompt_format.json",
            "adapter_model.safetensors",
        ):  # weights last: finished() sees them
            shutil.copyfile(src / name, run / name)
        restored.append(run.name)
    return restored


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def train_records(dest: Path) -> dict[str, dict]:
    """Every archived training run's record, by stage name."""
    return {
        p.name.removesuffix(".json.gz"): json.loads(gzip.decompress(p.read_bytes()))
        for p in sorted(dest.glob("train/*.json.gz"))
    }


def usable_records(stages: dict[str, Stage], root: Path, dest: Path) -> set[str]:
    """Training runs that count as done from their archived record alone: those no unfinished stage
    starts from (a stage that needs a run's weights gets it trained again)."""
    archived = {name for name in train_records(dest) if name in stages}
    while True:
        pending = {n for n, s in stages.items() if not s.done(root, archived)}
        need = {n for p in pending for n in stages[p].needs if n in archived and not finished(root / n)}
        if not need:
            return archived
        archived -= need


# ------------------------------------------------------------------------------------------------ report

# row -> (label, policy stage prefix or fixed policy, variant)
ROWS = {
    "none": "no rewrite",
    "base-reason": "base (untrained), reason",
    "base-noreason": "base (untrained), no reason",
    "sft-reason": "SFT, reason",
    "sft-noreason": "SFT, no reason",
    "alone-reason": "GRPO alone, reason",
    "alone-noreason": "GRPO alone, no reason",
    "grpo-reason": "SFT + GRPO, reason",
    "grpo-noreason": "SFT + GRPO, no reason",
}
# (B, A, paired by seed): B - A
COMPARISONS = [
    *((row, "none", False) for row in ROWS if row != "none"),
    ("grpo-reason", "sft-reason", True),
    ("grpo-noreason", "sft-noreason", True),
    ("alone-reason", "base-reason", False),
    ("alone-noreason", "base-noreason", False),
    *((f"{stage}-reason", f"{stage}-noreason", False) for stage in ("base", "sft", "alone", "grpo")),
]


UNTRAINED = ("none", "base-reason", "base-noreason")
"""Rows evaluated once (no training seeds)."""


def row_runs(row: str, root: Path, family: str, seeds: list[int]) -> list[Path]:
    if row in UNTRAINED:
        runs = [root / "eval" / row / family]
    else:
        runs = [root / "eval" / f"{row}-s{s}" / family for s in seeds]
    return [r for r in runs if (r / "summary.json").exists()]


def paired_runs(a: str, b: str, root: Path, family: str, seeds: list[int]) -> tuple[list[Path], list[Path]]:
    """The runs of rows ``a`` and ``b`` for a paired comparison: of trained rows, only the training seeds that
    both have finished, in the same order (so run i of ``a`` and of ``b`` share seed i); untrained rows as
    they are."""
    if a in UNTRAINED or b in UNTRAINED:
        return row_runs(a, root, family, seeds), row_runs(b, root, family, seeds)
    common = [s for s in seeds if row_runs(a, root, family, [s]) and row_runs(b, root, family, [s])]
    return row_runs(a, root, family, common), row_runs(b, root, family, common)


def resolved(rewrite: str, meta: dict) -> bool:
    """Does a rewrite of an inference prompt name the answer the clue stands for (the object, the count,
    the color, or a relation word for the right side)?"""
    from reprompt.backbones.sketch_text import read_prompt

    reading = read_prompt(rewrite)
    inc = meta["include"]
    tag = meta["tag"]
    if tag == "infer_object":
        return {c["class"] for c in inc} <= {o.cls for o in reading.objects}
    if tag == "infer_count":
        return any(o.cls == inc[0]["class"] and o.count == inc[0]["count"] for o in reading.objects)
    if tag == "infer_color":
        return any(o.cls == inc[0]["class"] and o.color == inc[0]["color"] for o in reading.objects)
    rel = inc[1]["position"][0]
    side = {"left of": ("left",), "right of": ("right",), "above": ("above", "top", "over", "upper"),
            "below": ("below", "bottom", "under", "beneath", "lower")}[rel]  # fmt: skip
    text = reading.read_text
    return any(w in text.split() for w in side)


def rewrites(run: Path) -> list[dict]:
    return [json.loads(m.read_text()) for m in sorted(run.glob("[0-9]*/metadata.jsonl"))]


def report(root: Path, args: argparse.Namespace, timings: Timings) -> dict:
    from reprompt.data.strategies import strategy_table
    from reprompt.eval.seeds import compare_seeded, summarize_seeded

    seeds = list(args.seeds)
    results: dict = {
        "machine": f"{platform.platform()}, {platform.processor() or 'cpu'}, 2 cores (shared)",
        "command": "OMP_NUM_THREADS=1 python benchmarks/rl_ablation.py --jobs 2",
        "seeds": seeds,
        "per_tag": args.per_tag,
        "rows": {},
        "comparisons": {},
        "loss_pair": {},
        "speed_pairs": {},
        "strategies": {},
        "resolved": {},
        "examples": {},
        "training": {},
        "weights_sha256": {},
        "timings_s": timings.data,
    }
    for family in FAMILIES:
        results["rows"][family] = {
            row: summarize_seeded(runs) for row in ROWS if (runs := row_runs(row, root, family, seeds))
        }
        cmp = {}
        for b, a, paired in COMPARISONS:
            if paired:
                runs_a, runs_b = paired_runs(a, b, root, family, seeds)
            else:
                runs_a, runs_b = row_runs(a, root, family, seeds), row_runs(b, root, family, seeds)
            if runs_a and runs_b:
                cmp[f"{b} vs {a}"] = compare_seeded(runs_a, runs_b, paired=paired)
        results["comparisons"][family] = cmp
        runs_a, runs_b = paired_runs("grpo-reason", LOSS_ROW, root, family, seeds)
        if runs_a:
            results["loss_pair"][family] = compare_seeded(runs_a, runs_b, paired=True)
        s0 = seeds[0]
        results["speed_pairs"][family] = {
            f"{name}-s{s0} vs {row}-s{s0}": compare_seeded([a], [b], paired=True)
            for name, (row, _) in SPEED_RUNS.items()
            if ((a := root / "eval" / f"{row}-s{s0}" / family) / "summary.json").exists()
            and ((b := root / "eval" / f"{name}-s{s0}" / family) / "summary.json").exists()
        }
        strat, res, ex = {}, {}, {}
        for row in ROWS:
            runs = row_runs(row, root, family, seeds)
            if not runs:
                continue
            metas = [m for run in runs for m in rewrites(run)]
            if family == "geneval":
                table = strategy_table((m.get("rewritten_prompt") or m["prompt"], m) for m in metas)
                strat[row] = {k: {"used": v["used"], "applicable": v["applicable"]} for k, v in table.items()}
            else:
                by_tag: dict[str, list[bool]] = {}
                for m in metas:
                    by_tag.setdefault(m["tag"], []).append(
                        resolved(m.get("rewritten_prompt") or m["prompt"], m)
                    )
                res[row] = {t: round(sum(v) / len(v), 3) for t, v in by_tag.items()}
            first = rewrites(runs[0])
            ex[row] = [
                {
                    "prompt": m["prompt"],
                    "reasoning": m.get("reasoning", ""),
                    "rewrite": m.get("rewritten_prompt"),
                    "fallback": m.get("fallback"),
                }
                for m in first[:: max(len(first) // 3, 1)][:3]
            ]
        if strat:
            results["strategies"] = strat
        if res:
            results["resolved"] = res
        results["examples"][family] = ex
        results.setdefault("lr_side", {})[family] = {
            f"{name} vs {base}": compare_seeded([root / "eval" / base / family], [run], paired=True)
            for name, base in SIDE_RUNS.items()
            if ((run := root / "eval" / name / family) / "summary.json").exists()
            and (root / "eval" / base / family / "summary.json").exists()
        }
    records = train_records(args.archive)  # this session's runs and earlier ones
    for stage, record in records.items():
        results["weights_sha256"][stage] = record["weights_sha256"]
        if stage.startswith(("grpo-", "alone-")):
            results["training"][stage] = {
                "train_curve": record["train_curve"],
                "heldout_curve": record["heldout"],
            }
    results["data_sha256"] = data_hashes(root)
    carried = args.archive / "carried.json"  # comparisons of runs whose evaluations predate the archive
    for key, value in (json.loads(carried.read_text()) if carried.exists() else {}).items():
        if key != "note" and not any(results.get(key, {}).values()):
            results[key] = value
            results.setdefault("carried_from_archive", []).append(key)
    results["step_seconds"] = step_split(results["training"])
    results["prompt_token_share"] = prompt_token_share(root / "data" / "sft.jsonl", args.base_policy)
    results["adapters"] = copy_adapters(root, seeds[0], Path(args.adapters), records)
    results["plots"] = plots(results, Path(args.out).with_suffix(""))
    return _relative(results, root)


def _relative(obj: Any, root: Path) -> Any:
    """Run folders named relative to the root (``eval/none/geneval``): the same report from any machine."""
    if isinstance(obj, dict):
        return {k: _relative(v, root) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_relative(v, root) for v in obj]
    if isinstance(obj, str) and obj.startswith(f"{root}/"):
        return obj.removeprefix(f"{root}/")
    return obj


def prompt_token_share(sft_data: Path, policy: str) -> dict:
    """How much of a reason-block SFT target is its prompt block, in the policy's tokens: the share of the
    update ``loss_type: grpo`` (a per-completion token mean) leaves to the prompt."""
    import re
    import statistics

    from transformers import AutoTokenizer

    from reprompt.policy import resolve_policy_source

    if not sft_data.exists():
        return {}
    tok = AutoTokenizer.from_pretrained(resolve_policy_source(policy).model, trust_remote_code=False)
    shares, lengths = [], []
    for line in sft_data.read_text().splitlines():
        text = json.loads(line)["completion"]
        block = re.search(r"<prompt>.*?</prompt>", text, re.S)
        if block is None:
            continue
        n = len(tok(text)["input_ids"])
        shares.append(len(tok(block.group(0))["input_ids"]) / n)
        lengths.append(n)
    if not shares:
        return {}
    return {
        "targets": len(shares),
        "mean": round(statistics.mean(shares), 3),
        "median": round(statistics.median(shares), 3),
        "mean_tokens": round(statistics.mean(lengths), 1),
    }


def step_split(training: dict) -> dict:
    """Median seconds per GRPO step, and its split, per trained stage (from the logged step timer)."""
    import statistics

    out = {}
    for stage, r in training.items():
        curve = r["train_curve"]
        keys = (
            "timing/step_s",
            "timing/sampling_s",
            "timing/logprobs_s",
            "timing/train_s",
            "timing/reward_s",
        )
        out[stage] = {
            k.removeprefix("timing/"): round(statistics.median(v), 2)
            for k in keys
            if (v := [h[k] for h in curve if k in h])
        }
    return out


def copy_adapters(root: Path, seed: int, dest: Path, records: dict[str, dict]) -> dict:
    """The seed-0 adapter of every trained row, with its prompt spec, into ``dest/<row>`` (the base model is
    named ``smollm2``, as the shipped smollm2-sketch adapter does, so the folder loads anywhere). Only the
    weights that were evaluated: a run trained again to other weights than its archived record is not copied."""
    copied = {}
    for row in ROWS:
        src, out = root / f"{row}-s{seed}", dest / row
        record = records.get(src.name)
        weights = src / "adapter_model.safetensors"
        evaluated = weights.exists() and (record is None or _sha256(weights) == record["weights_sha256"])
        if weights.exists() and not evaluated:
            log(f"warning: {src.name} holds other weights than the evaluated run's; {out} kept as it is")
        if not evaluated:
            if (out / "adapter_model.safetensors").exists():  # copied in an earlier session
                copied[row] = {"from": src.name, "sha256": _sha256(out / "adapter_model.safetensors")}
            continue
        out.mkdir(parents=True, exist_ok=True)
        for name in ("adapter_model.safetensors", "reprompt_format.json"):
            shutil.copyfile(src / name, out / name)
        config = json.loads((src / "adapter_config.json").read_text())
        config["base_model_name_or_path"] = "smollm2"
        (out / "adapter_config.json").write_text(json.dumps(config, indent=2) + "\n")
        copied[row] = {"from": src.name, "sha256": _sha256(out / "adapter_model.safetensors")}
    return copied


def plots(results: dict, out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    written = []
    families = [f for f in FAMILIES if results["rows"].get(f)]
    if families:
        fig, axes = plt.subplots(1, len(families), figsize=(7 * len(families), 4.2), squeeze=False)
        for ax, family in zip(axes[0], families, strict=True):
            rows = results["rows"][family]
            names = list(rows)
            vals = [rows[r]["overall"]["score"] for r in names]
            err = [
                [v - rows[r]["overall"]["ci_low"] for r, v in zip(names, vals, strict=True)],
                [rows[r]["overall"]["ci_high"] - v for r, v in zip(names, vals, strict=True)],
            ]
            colors = ["#888" if "noreason" in r or r == "none" else "#2a6" for r in names]
            ax.bar(range(len(names)), vals, yerr=err, color=colors, capsize=3)
            for i, r in enumerate(names):
                for v in rows[r]["per_seed"]:
                    ax.plot(i, v, "k.", ms=4)
            ax.set_xticks(range(len(names)), [ROWS[r] for r in names], rotation=35, ha="right", fontsize=8)
            ax.set_ylim(0, 1)
            ax.set_title(
                f"{family}: overall (mean over seeds; 95% CI over seeds, then prompts; dots: seeds)",
                fontsize=9,
            )
        fig.tight_layout()
        fig.savefig(out / "rows.png", dpi=110)
        plt.close(fig)
        written.append("rows.png")
    training = results["training"]
    if training:
        fig, axes = plt.subplots(1, 2, figsize=(13, 4))
        for stage, r in sorted(training.items()):
            style = "-" if "noreason" not in stage else "--"
            hc = r["heldout_curve"]
            axes[0].plot(
                [h["step"] for h in hc],
                [h.get("heldout/geneval", float("nan")) for h in hc],
                style,
                marker="o",
                ms=3,
                label=stage,
            )
            c = [h for h in r["train_curve"] if "reward/geneval/mean" in h]
            axes[1].plot(
                [h["step"] for h in c], [h["reward/geneval/mean"] for h in c], style, lw=0.8, label=stage
            )
        axes[0].set_title("held-out strict GenEval (greedy; both families' prompts)")
        axes[1].set_title("training reward: GenEval partial credit of the rendered completions")
        for ax in axes:
            ax.set_xlabel("optimizer step")
            ax.legend(fontsize=6, ncol=2)
        fig.tight_layout()
        fig.savefig(out / "training_curves.png", dpi=110)
        plt.close(fig)
        written.append("training_curves.png")
    return written


def table(results: dict) -> str:
    lines = []
    for family, rows in results["rows"].items():
        cmp = results["comparisons"][family]
        lines += [
            f"### {family}",
            "",
            "| row | overall [95% CI] | per seed | vs no rewrite |",
            "|---|---|---|---|",
        ]
        for row, s in rows.items():
            o = s["overall"]
            vs = cmp.get(f"{row} vs none", {}).get("overall")
            lines.append(
                f"| {ROWS[row]} | {o['score']:.3f} [{o['ci_low']:.3f}, {o['ci_high']:.3f}] | "
                f"{', '.join(f'{v:.3f}' for v in s['per_seed'])} | "
                + (f"{vs['diff']:+.3f} [{vs['ci_low']:+.3f}, {vs['ci_high']:+.3f}]" if vs else "")
                + " |"
            )
        lines.append("")
        for key, c in cmp.items():
            if not key.endswith("vs none"):
                o = c["overall"]
                lines.append(f"- {key}: {o['diff']:+.3f} [{o['ci_low']:+.3f}, {o['ci_high']:+.3f}]")
        if c := results.get("loss_pair", {}).get(family):
            o, n = c["overall"], len(c.get("runs_b", []))
            lines.append(
                f"- loss pair, {LOSS_ROW} vs grpo-reason ({n} seed{'s' * (n != 1)}): "
                f"{o['diff']:+.3f} [{o['ci_low']:+.3f}, {o['ci_high']:+.3f}]"
            )
        for key, c in results.get("speed_pairs", {}).get(family, {}).items():
            o = c["overall"]
            lines.append(f"- speed cut, {key}: {o['diff']:+.3f} [{o['ci_low']:+.3f}, {o['ci_high']:+.3f}]")
        lines.append("")
    wall = results.get("timings_s", {})
    for stage, split in results.get("step_seconds", {}).items():
        if any(stage.startswith(name) for name in SPEED_RUNS) or any(
            stage == f"{row}-s{s}" for row, _ in SPEED_RUNS.values() for s in range(3)
        ):
            took = f"{wall[stage]:,.0f} s wall" if stage in wall else "wall clock not recorded"
            lines.append(
                f"- {stage}: {took}, median step {split.get('step_s', 0):.1f} s "
                f"(sampling {split.get('sampling_s', 0):.1f}, log-probs {split.get('logprobs_s', 0):.1f}, "
                f"update {split.get('train_s', 0):.1f})"
            )
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------ main


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", default="runs/lab")
    p.add_argument("--seeds", default="0,1,2", help="training seeds of every trained row")
    p.add_argument("--per-tag", type=int, default=30, help="prompts per tag in each family's evaluation")
    p.add_argument("--n-sft", type=int, default=480)
    p.add_argument("--n-rl", type=int, default=240)
    p.add_argument("--n-heldout", type=int, default=36)
    p.add_argument("--jobs", type=int, default=2, help="stages at a time (one core each)")
    p.add_argument("--only", default=None, help="one stage: data, a training stage, eval:<policy>, report")
    p.add_argument(
        "--stages",
        default=None,
        help="schedule only these stages (comma-separated) and what they need, e.g. the runs that fit a session",
    )
    p.add_argument("--sft-args", default="", help="extra overrides for the SFT stages (tiny runs)")
    p.add_argument("--grpo-args", default="", help="extra overrides for the GRPO stages (tiny runs)")
    p.add_argument("--base-policy", default="smollm2", help="the untrained policy")
    p.add_argument("--max-new-tokens", type=int, default=160, help="rewrite budget at evaluation")
    p.add_argument("--adapters", default=str(ADAPTERS), help="where the seed-0 adapters are copied")
    p.add_argument("--archive", default=str(ARCHIVE), help="the finished stages' records (committed)")
    p.add_argument("--out", default=str(HERE / "results" / "rl_ablation.json"))
    args = p.parse_args()
    args.seeds = [int(s) for s in str(args.seeds).split(",") if s.strip()]
    root = (REPO / args.root).resolve() if not Path(args.root).is_absolute() else Path(args.root)
    args.root = root
    args.adapters, args.archive = Path(args.adapters), Path(args.archive)
    timings = Timings(root / "timings.json")
    stages = plan(args, root)

    if args.only and args.only.startswith("eval:"):
        evaluate(args.only, root, args)
        return 0
    if args.only and args.only != "report":
        stage = stages[args.only]
        if not stage.done(root):
            subprocess.run(stage.cmd, cwd=REPO, check=True)
        return 0
    if not stages["data"].done(root):
        subprocess.run(stages["data"].cmd, cwd=REPO, check=True)
    restore(args.archive, root, timings)
    for run in restore_adapters(Path(args.adapters), args.archive, root, args.seeds[0], args.base_policy):
        log(f"restored {run} from {args.adapters} (the archived run's weights)")
    if args.only is None:
        schedule(select(stages, args.stages), root, args.jobs, timings, args.archive)
    archive(root, args.archive, timings)
    results = report(root, args, timings)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))
    log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
