"""``reprompt report RUN_DIR [--compare BASELINE]``: one self-contained HTML page of a scored run."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="self-contained HTML report of a scored GenEval run",
        description="Summary table, per-tag bar chart and every prompt's images with the rewrite, its "
        "reasoning and the scorer's reasons. With --compare, the baseline's images sit next to this "
        "run's (same seeds) and regressions/improvements can be filtered.",
    )
    p.add_argument("run_dir", help="scored run folder (reprompt eval geneval / geneval-score)")
    p.add_argument(
        "--compare", default=None, metavar="BASELINE", help="scored baseline run (e.g. --policy none)"
    )
    p.add_argument("--out", default=None, help="HTML file (default RUN_DIR/report.html)")
    p.add_argument("--thumb", type=int, default=160, help="thumbnail size in pixels")
    p.add_argument("--max-prompts", type=int, default=None, help="only the first N prompts")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from reprompt.eval.report import build_report

    path = build_report(args.run_dir, args.compare, args.out, thumb=args.thumb, max_prompts=args.max_prompts)
    size = path.stat().st_size / 1e6
    print(f"wrote {path} ({size:.1f} MB)")
    return 0
