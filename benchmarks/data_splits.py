"""Per-split, per-template counts of `reprompt data prompts` for the README's data command and its variants.

    python benchmarks/data_splits.py --out benchmarks/results/data_splits.json

Runs the CLI itself (in this process, into a temporary folder) for: the README command with COCO names
(which must fail: all 80 single-object prompts are GenEval test prompts), the same with --allow-short,
with --vocab lvis, and with the reference RL prompts as the RL split (--rl-from). Prints one table per
run (prompts made/asked per split and template, and each template's available/total meanings) and
writes the summaries as JSON. No model is loaded; each run takes about a second.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import tempfile
from pathlib import Path

from reprompt.utils.benchmarks import benchmark_path

REPO = Path(__file__).resolve().parents[1]
SHARED = benchmark_path()
GENEVAL = SHARED / "geneval" / "evaluation_metadata.jsonl"
REFERENCE_RL = SHARED / "reprompt-rl-prompts" / "generation_prompts_1k_filterd.txt"

BASE = ["--n-sft", "8000", "--n-heldout", "200", "--exclude", str(GENEVAL)]
# fmt: off
RUNS = {
    "coco (README command)": [*BASE, "--n-rl", "1000"],
    "coco --allow-short": [*BASE, "--n-rl", "1000", "--allow-short"],
    "lvis --allow-short": [*BASE, "--n-rl", "1000", "--vocab", "lvis", "--allow-short"],
    "lvis --rl-from reference --allow-short": [
        *BASE, "--vocab", "lvis", "--rl-from", str(REFERENCE_RL), "--allow-short",
    ],
}
# fmt: on


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "data_splits.json"))
    args = ap.parse_args()

    from reprompt.cli.main import main as cli
    from reprompt.utils.io import atomic_write_json

    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, flags in RUNS.items():
            out = Path(tmp) / name.replace(" ", "_")
            stdout, stderr = io.StringIO(), io.StringIO()
            with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
                rc = cli(["data", "prompts", "--out", str(out), *flags])
            summary_path = out / "prompts_summary.json"
            summary = json.loads(summary_path.read_text()) if rc == 0 else None
            results[name] = {
                "command": ["reprompt", "data", "prompts", "--out", "OUT", *flags],
                "rc": rc,
                "summary": summary,
                "error": stderr.getvalue().strip() if rc else None,
            }
            print(f"## {name}: rc={rc}")
            print(stdout.getvalue().rstrip() if rc == 0 else stderr.getvalue().rstrip())
            print()
    atomic_write_json(args.out, results)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
