"""The intent guard on a real policy: violations before/after it, and its GenEval effect.

    OMP_NUM_THREADS=1 python benchmarks/guard_eval.py                      # everything (hours on 2 CPU cores)
    python benchmarks/guard_eval.py --part freeform --modes warn,retry,fallback
    python benchmarks/guard_eval.py --part geneval --modes off              # one GenEval run (run modes in parallel)
    python benchmarks/guard_eval.py --part report                           # only the tables from what exists

Free-form part: the hand-written prompts of ``benchmarks/data/guard_prompts.txt`` (names, quoted text,
counts, colors, scenes) rewritten by the policy under each guard mode; per prompt the findings on the
policy's greedy rewrite (before) and on the prompt finally used (after). Results are appended per batch to
``runs/guard/freeform-<mode>.jsonl``, so a killed run resumes.

GenEval part: the machinery of ``reprompt eval geneval`` (``generate_run``, then ``reprompt eval
geneval-score --detector oracle``) on the 553 prompts with the sketch backbone, once per guard mode
(resumable folders ``runs/guard/geneval-<mode>``, the official layout), then ``reprompt eval compare`` of
each mode against ``off``. Violations before = the guard on the ``off`` run's rewrites; after = the guard
on the prompts each run rendered.

Greedy decoding is deterministic (batched = one by one, ``tests/test_policy.py``), so every guard mode
starts from the same greedy rewrites: :class:`SharedGreedy` computes each prompt's greedy completion once
(kept in ``runs/guard/greedy-<policy>.jsonl``, which also makes a killed run resume) and hands it to every
mode; the sampled candidates of ``retry`` are always generated for real. On the 2-core CPU this turns three
~25-minute rewriting passes into one.

Prints tables and writes ``benchmarks/results/guard_eval.json``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from reprompt.utils.benchmarks import GENEVAL_METADATA, benchmark_path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
DEFAULT_METADATA = benchmark_path(*GENEVAL_METADATA)
FREEFORM = REPO / "benchmarks" / "data" / "guard_prompts.txt"
KINDS = ("object", "count", "color", "quoted", "name")


def read_prompts(path: Path) -> list[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(ln) for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]


def violations(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Guard findings over (original, rendered prompt) pairs: prompts with any, and per kind."""
    from reprompt.guard import check_rewrite

    per_kind: Counter[str] = Counter()
    bad = 0
    for original, prompt in pairs:
        report = check_rewrite(original, prompt)
        bad += not report.ok
        per_kind.update({f.kind for f in report.findings})
    return {"prompts": len(pairs), "violating": bad, "per_kind": {k: per_kind[k] for k in KINDS}}


# ------------------------------------------------------------------------------------ shared greedy


def shared_policy(args: argparse.Namespace) -> Any:
    from reprompt.policy import load_policy

    return SharedGreedy(load_policy(args.policy), Path(args.runs) / f"greedy-{args.policy}.jsonl")


def _make_shared_greedy() -> type:
    from reprompt.policy.base import GenerationOptions, Rewriter

    class _SharedGreedy(Rewriter):
        """The real policy, with greedy completions computed once per (conversation, decoding settings)
        and stored in a JSONL file; sampling calls (the retry candidates) always go to the model."""

        def __init__(self, inner: Rewriter, path: Path) -> None:
            self.inner, self.path = inner, path
            self.spec, self.name = inner.spec, inner.name
            self.model = getattr(inner, "model", None)  # run.json records the model's revision
            self.cache = {r["key"]: [tuple(c) for c in r["value"]] for r in read_jsonl(path)}

        def generate(self, messages: list[list[dict[str, str]]], options: GenerationOptions) -> Any:
            if options.temperature > 0:
                return self.inner.generate(messages, options)
            keys = [json.dumps([m, options.max_new_tokens, options.repetition_penalty]) for m in messages]
            todo = [(k, m) for k, m in zip(keys, messages, strict=True) if k not in self.cache]
            if todo:
                results = self.inner.generate([m for _, m in todo], options)
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with self.path.open("a", encoding="utf-8") as f:
                    for (k, _), value in zip(todo, results, strict=True):
                        self.cache[k] = value
                        f.write(json.dumps({"key": k, "value": value}, ensure_ascii=False) + "\n")
            return [self.cache[k] for k in keys]

    return _SharedGreedy


def SharedGreedy(inner: Any, path: Path) -> Any:  # noqa: N802 (a class built lazily: no torch at import)
    return _make_shared_greedy()(inner, path)


# ------------------------------------------------------------------------------------------ free-form


def run_freeform(args: argparse.Namespace, modes: list[str]) -> dict[str, Any]:
    from reprompt.policy import GenerationOptions

    prompts = read_prompts(Path(args.prompts))[: args.limit]
    policy = None
    out: dict[str, Any] = {}
    for mode in modes:
        path = Path(args.runs) / f"freeform-{mode}.jsonl"
        done = {r["original"] for r in read_jsonl(path)}
        todo = [p for p in prompts if p not in done]
        if todo:
            policy = policy or shared_policy(args)
            options = GenerationOptions(
                max_new_tokens=args.max_new_tokens, batch_size=args.batch_size, guard=mode
            )
            print(f"free-form, guard {mode}: {len(todo)} prompts to rewrite", flush=True)
            path.parent.mkdir(parents=True, exist_ok=True)
            for start in range(0, len(todo), args.batch_size):
                chunk = todo[start : start + args.batch_size]
                t = time.perf_counter()
                rewrites = policy.rewrite(chunk, options=options)
                with path.open("a", encoding="utf-8") as f:
                    for rw in rewrites:
                        f.write(json.dumps(rw.to_dict(), ensure_ascii=False) + "\n")
                print(f"  {start + len(chunk)}/{len(todo)} ({time.perf_counter() - t:.0f} s)", flush=True)
        rows = [r for r in read_jsonl(path) if r["original"] in set(prompts)]
        out[mode] = summarize_freeform(rows)
    return out


def summarize_freeform(rows: list[dict[str, Any]]) -> dict[str, Any]:
    before: Counter[str] = Counter()
    actions: Counter[str] = Counter()
    for r in rows:
        guard = r.get("guard") or {}
        before.update({f["kind"] for f in guard.get("findings", [])})
        actions[guard.get("action", "none")] += 1
    # "before" is the policy's own rewrite (re-checked here, so the off mode counts too)
    pre = violations(
        [
            (
                r["original"],
                (
                    r["guard"]["rejected"][0]["prompt"]
                    if r.get("guard") and r["guard"]["rejected"]
                    else r["prompt"]
                ),
            )
            for r in rows
        ]
    )
    post = violations([(r["original"], r["prompt"]) for r in rows])
    return {
        "before": pre,
        "after": post,
        "actions": dict(actions),
        "rendered_original": sum(r["prompt"] == r["original"] for r in rows),
        "format_fallback": sum(
            bool(r["fallback"]) and (r.get("guard") or {}).get("action") != "fallback" for r in rows
        ),
    }


# -------------------------------------------------------------------------------------------- GenEval


def geneval_dir(args: argparse.Namespace, mode: str) -> Path:
    return Path(args.runs) / f"geneval-{mode}"


def run_geneval(args: argparse.Namespace, modes: list[str]) -> None:
    from reprompt.backbones import load_backbone
    from reprompt.eval.geneval.generate import GenerateConfig, generate_run
    from reprompt.model_spec import PolicyChoice
    from reprompt.policy import GenerationOptions

    policy, backbone = shared_policy(args), load_backbone("sketch")
    kwargs = PolicyChoice(args.policy).load_kwargs()  # the default loading options, as run.json records them
    for mode in modes:
        folder = geneval_dir(args, mode)
        options = GenerationOptions(
            max_new_tokens=args.max_new_tokens, batch_size=args.batch_size, guard=mode
        )
        config = GenerateConfig(
            metadata=args.metadata,
            out=str(folder),
            policy=args.policy,
            policy_kwargs=kwargs,
            generation=options,
            backbone="sketch",
            limit=args.limit,
            progress=False,
        )
        t = time.perf_counter()
        stats = generate_run(config, rewriter=policy, backbone=backbone)
        print(
            f"geneval, guard {mode}: {stats.done_now} prompts generated in {time.perf_counter() - t:.0f} s, "
            f"{stats.remaining} left",
            flush=True,
        )
        cmd = [
            sys.executable,
            "-m",
            "reprompt.cli.main",
            "eval",
            "geneval-score",
            str(folder),
            "--detector",
            "oracle",
            "--no-progress",
        ]
        subprocess.run(cmd, check=True, cwd=REPO, stdout=subprocess.DEVNULL)


def geneval_report(args: argparse.Namespace, modes: list[str]) -> dict[str, Any]:
    from reprompt.eval.geneval.generate import prompt_indices, read_prompt_metadata

    out: dict[str, Any] = {}
    runs = {m: geneval_dir(args, m) for m in modes if (geneval_dir(args, m) / "summary.json").exists()}
    if "off" not in runs:
        return out
    base = {i: read_prompt_metadata(runs["off"], i) for i in prompt_indices(runs["off"])}
    out["off"] = {"before": violations([(m["prompt"], m["rewritten_prompt"]) for m in base.values()])}
    for mode, folder in runs.items():
        metas = {i: read_prompt_metadata(folder, i) for i in prompt_indices(folder)}
        summary = json.loads((folder / "summary.json").read_text())
        entry = out.setdefault(mode, {})
        entry["after"] = violations([(m["prompt"], m["rewritten_prompt"]) for m in metas.values()])
        entry["overall"] = summary["results"]["overall"]
        entry["tags"] = {k: v for k, v in summary["results"].items() if k != "overall"}
        entry["guard_fallbacks"] = sum(
            str(m.get("rewrite_issue") or "").startswith("intent guard") for m in metas.values()
        )
        entry["rendered_original"] = sum(m["rewritten_prompt"] == m["prompt"] for m in metas.values())
        if mode != "off":
            cmp_path = Path(args.runs) / f"compare-off-vs-{mode}.json"
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "reprompt.cli.main",
                    "eval",
                    "compare",
                    str(runs["off"]),
                    str(folder),
                    "--out",
                    str(cmp_path),
                ],
                check=True,
                cwd=REPO,
                stdout=subprocess.DEVNULL,
            )
            cmp = json.loads(cmp_path.read_text())
            entry["vs_off"] = {"overall": cmp["overall"], "tags": cmp["tags"]}
    return out


# ---------------------------------------------------------------------------------------------- report


def print_tables(report: dict[str, Any]) -> None:
    for part in ("freeform", "geneval"):
        res = report.get(part) or {}
        if not res:
            continue
        print(
            f"\n{part}: prompts with a violation (per kind: prompts with at least one finding of that kind)"
        )
        print(f"{'guard':10}{'stage':8}{'prompts':>8}{'violating':>10}" + "".join(f"{k:>8}" for k in KINDS))
        for mode, r in res.items():
            for stage in ("before", "after"):
                if stage in r:
                    v = r[stage]
                    print(
                        f"{mode:10}{stage:8}{v['prompts']:>8}{v['violating']:>10}"
                        + "".join(f"{v['per_kind'][k]:>8}" for k in KINDS)
                    )
        if part == "geneval":
            print(f"\n{'guard':10}{'overall':>9}{'vs off':>9}{'95% CI':>20}{'originals rendered':>20}")
            for mode, r in res.items():
                if "overall" not in r:
                    continue
                d = r.get("vs_off", {}).get("overall")
                diff = f"{d['diff']:+.3f}" if d else ""
                ci = f"[{d['ci_low']:+.3f}, {d['ci_high']:+.3f}]" if d else ""
                print(f"{mode:10}{r['overall']:>9.3f}{diff:>9}{ci:>20}{r['rendered_original']:>20}")
        else:
            for mode, r in res.items():
                print(
                    f"{mode:10} actions {r['actions']}, original rendered for {r['rendered_original']} prompts"
                )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", default="all", choices=("all", "freeform", "geneval", "report"))
    ap.add_argument(
        "--modes", default=None, help="guard modes (default: warn,retry,fallback / off,retry,fallback)"
    )
    ap.add_argument("--policy", default="smollm2-sketch")
    ap.add_argument("--prompts", default=str(FREEFORM))
    ap.add_argument("--metadata", default=str(DEFAULT_METADATA))
    ap.add_argument("--limit", type=int, default=None, help="only the first N prompts (a quick check)")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--max-new-tokens", type=int, default=256)
    ap.add_argument("--runs", default=str(REPO / "runs" / "guard"), help="run folders and logs")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "guard_eval.json"))
    args = ap.parse_args()

    out_path = Path(args.out)
    report: dict[str, Any] = json.loads(out_path.read_text()) if out_path.exists() else {}
    if args.part in ("all", "freeform"):
        modes = (args.modes or "warn,retry,fallback").split(",")
        report["freeform"] = {**report.get("freeform", {}), **run_freeform(args, modes)}
    if args.part in ("all", "geneval"):
        run_geneval(args, (args.modes or "off,retry,fallback").split(","))
    if args.part in ("all", "geneval", "report"):
        found = geneval_report(args, ["off", "warn", "retry", "fallback"])
        if found:
            report["geneval"] = found
    report["settings"] = {
        "policy": args.policy,
        "max_new_tokens": args.max_new_tokens,
        "batch_size": args.batch_size,
        "limit": args.limit,
        "machine": "2-core CPU, shared with other jobs",
    }
    print_tables(report)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {out_path}")


if __name__ == "__main__":
    main()
