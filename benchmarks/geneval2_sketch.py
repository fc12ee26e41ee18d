"""GenEval 2 offline: the sketch simulator judged by the oracle, no rewrite vs rewriters on the same seeds.

    PYTHONPATH=. OMP_NUM_THREADS=1 nice -n 10 python benchmarks/geneval2_sketch.py        # 64 prompts x 4 images
    PYTHONPATH=. OMP_NUM_THREADS=1 python benchmarks/geneval2_sketch.py --per-atom-count 2   # a quick look

Rows: ``none``; ``smollm2-sketch`` (the shipped CPU-trained RePrompt adapter); the untrained SmolLM2-135M asked
as a plain rewriter (``configs/policies/smollm2-plain.yaml``). Each row is one ``reprompt eval geneval2`` run
(``--subset oracle``: the prompts with a question the oracle judge can answer; ``--per-atom-count K``: the first K
of each atom count, a stratified subset; 4 images, seed 42), then ``reprompt eval compare none ROW``. Every step
goes through the command line as a user runs it, so rerunning resumes (finished prompts are skipped) and the
generation wall time of every invocation is read back from the runs' ``logs/``. Writes
``benchmarks/results/geneval2_sketch.json`` and ``.md`` (summarised in benchmarks/RESULTS.md).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
from pathlib import Path

from geneval_sketch import cli, generation_times, rewrite_stats

from reprompt.utils.benchmarks import GENEVAL2_DATA, benchmark_path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
ROWS = {
    "none": [],
    "smollm2-sketch": ["--max-new-tokens", "192", "--batch-size", "32"],
    "configs/policies/smollm2-plain.yaml": ["--max-new-tokens", "128", "--batch-size", "32"],
}
LABELS = {"none": "no rewrite", "configs/policies/smollm2-plain.yaml": "smollm2 (plain)"}


def kept_requests(run: Path) -> dict[str, float]:
    """How often the rewrites keep what the prompt asked for, by the intent guard (pure text: objects, counts,
    colours): the share of rewrites with no finding, and of rewrites that drop or change each kind."""
    from reprompt.guard import check_rewrite

    metas = [json.loads(p.read_text()) for p in sorted(run.glob("[0-9]*/metadata.jsonl"))]
    reports = [check_rewrite(m["prompt"], m["rewritten_prompt"]) for m in metas]
    n = len(reports) or 1
    out = {"keeps_everything": round(sum(r.ok for r in reports) / n, 4)}
    for kind in ("object", "count", "color"):
        out[f"{kind}_dropped_or_changed"] = round(
            sum(any(f.kind == kind for f in r.findings) for r in reports) / n, 4
        )
    return out


def label(row: str) -> str:
    return LABELS.get(row, row)


def folder(root: Path, row: str) -> Path:
    return root / Path(row).stem


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(benchmark_path(*GENEVAL2_DATA)), help="geneval2_data.jsonl")
    p.add_argument("--out-root", default="/tmp/geneval2-sketch", help="run folders go here")
    p.add_argument("--per-atom-count", type=int, default=8, help="the first K prompts of each atom count")
    p.add_argument("--images", type=int, default=4)
    p.add_argument(
        "--rows", default=",".join(ROWS), help="comma-separated policies (the first is the baseline)"
    )
    p.add_argument("--json", default=str(HERE / "results" / "geneval2_sketch.json"))
    p.add_argument("--markdown", default=str(HERE / "results" / "geneval2_sketch.md"))
    args = p.parse_args()

    root = Path(args.out_root)
    root.mkdir(parents=True, exist_ok=True)
    log = root / "benchmark.log"
    rows = args.rows.split(",")
    common = ["--data", args.data, "--subset", "oracle", "--per-atom-count", str(args.per_atom_count)]
    common += ["--images", str(args.images), "--seed", "42", "--backbone", "sketch", "--judge", "oracle"]
    commands, times = {}, {}
    for row in rows:
        argv = [
            "eval",
            "geneval2",
            *common,
            "--out",
            str(folder(root, row)),
            "--policy",
            row,
            *ROWS.get(row, []),
        ]
        commands[row] = "reprompt " + shlex.join([*argv, "--no-progress"])
        times[f"{row}: last invocation (generate + judge; a no-op when resumed)"] = round(
            cli(*argv, "--no-progress", log=log), 1
        )
    base = folder(root, rows[0])
    comparisons = {}
    for row in rows[1:]:
        run = folder(root, row)
        commands[f"compare {row}"] = f"reprompt eval compare {base} {run}"
        times[f"compare {row}"] = round(cli("eval", "compare", str(base), str(run), log=log), 1)
        comparisons[row] = json.loads((run / f"compare-{base.resolve().name}.json").read_text())
    summaries = {row: json.loads((folder(root, row) / "summary.json").read_text()) for row in rows}
    result = {
        "benchmark": "geneval2-sketch-oracle",
        "data": args.data,
        "settings": {
            "backbone": "sketch",
            "judge": "oracle",
            "subset": "oracle",
            "per_atom_count": args.per_atom_count,
            "images": args.images,
            "seed": 42,
            "decoding": "greedy",
            "rows": {row: ROWS.get(row, []) for row in rows},
        },
        "commands": commands,
        "machine": {
            "cpus": os.cpu_count(),
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
            "python": platform.python_version(),
            "load_average": os.getloadavg(),
        },
        "scores": {
            row: {k: s[k] for k in ("results", "skills", "atomicity", "coverage", "n_samples", "complete")}
            for row, s in summaries.items()
        },
        "rewrites": {
            row: {**rewrite_stats(folder(root, row)), **kept_requests(folder(root, row))} for row in rows
        },
        "comparisons": {
            row: {
                **{
                    k: c[k]
                    for k in ("tags", "overall", "metrics", "prompts", "images", "n_prompts", "seeds_match")
                },
                # by index only: GenEval 2's texts (CC BY-NC) stay in the data file
                "worse": [{k: w[k] for k in ("index", "tag", "a", "b")} for w in c["worse"]],
                "better": [{k: w[k] for k in ("index", "tag", "a", "b")} for w in c["better"]],
            }
            for row, c in comparisons.items()
        },
        "wall_seconds": {"generation": {row: generation_times(folder(root, row)) for row in rows}, **times},
    }
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    Path(args.markdown).write_text(markdown(result, rows))
    print(Path(args.markdown).read_text())
    return 0


def markdown(r: dict, rows: list[str]) -> str:
    base, others = rows[0], rows[1:]
    s0 = r["scores"][base]
    cov = s0["coverage"]
    head = f"| | {label(base)} | " + " | ".join(f"{label(o)} | diff [95% CI]" for o in others) + " |"
    lines = [
        "# GenEval 2 on the sketch simulator (oracle judge), with and without rewriting",
        "",
        f"{s0['n_samples']['effective']} GenEval 2 prompts (the first {r['settings']['per_atom_count']} of each atom "
        f"count among those with a question the oracle can answer) x {r['settings']['images']} images, seed 42, "
        "`sketch` backbone, `oracle` judge; greedy rewriting. Paired bootstrap over prompts, stratified by atom count.",
        "",
        head,
        "|---|---:|" + "---:|---|" * len(others),
    ]

    def line(name: str, pick) -> str:
        cells = [f"{pick(others[0])['a']:.3f}"] if others else []
        for o in others:
            d = pick(o)
            cells.append(f"{d['b']:.3f} | {d['diff']:+.3f} [{d['ci_low']:+.3f}, {d['ci_high']:+.3f}]")
        return f"| {name} | " + " | ".join(cells) + " |"

    comps = r["comparisons"]
    lines.append(line("**Soft-TIFA GM** (prompt-level)", lambda o: comps[o]["overall"]))
    lines.append(line("Soft-TIFA AM (atom-level)", lambda o: comps[o]["metrics"]["soft_tifa_am"]))
    for skill in comps[others[0]]["tags"] if others else []:
        answered, total = cov["by_skill"][skill]
        lines.append(
            line(f"{skill} ({answered}/{total} atoms judged)", lambda o, k=skill: comps[o]["tags"][k])
        )
    lines.append("")
    for o in others:
        c, rw = comps[o], r["rewrites"][o]
        lines.append(
            f"- {label(o)}: better on {c['prompts']['won']} prompts, worse on {c['prompts']['lost']}, tied on "
            f"{c['prompts']['tied']}; rewrites well formed {rw['format_ok']:.1%}, fell back {rw['fallback']:.1%}, "
            f"changed the prompt {rw['changed_prompt']:.1%}; by the intent guard, rewrites that keep every object, "
            f"count and colour {rw['keeps_everything']:.1%} (drop or change an object {rw['object_dropped_or_changed']:.1%}, "
            f"a count {rw['count_dropped_or_changed']:.1%}, a colour {rw['color_dropped_or_changed']:.1%}); "
            f"generation {r['wall_seconds']['generation'][o]['seconds_total']:.0f} s."
        )
    why = ", ".join(f"{k} {v}" for k, v in sorted(cov["unanswered"].items(), key=lambda kv: -kv[1]))
    lines += [
        "",
        f"Oracle coverage (baseline run): {cov['answered']} of {cov['atoms']} questions answered; not answered: {why}.",
        "",
        "Commands:",
        "",
        *(f"    {cmd}" for cmd in r["commands"].values()),
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    os.chdir(REPO)
    raise SystemExit(main())
