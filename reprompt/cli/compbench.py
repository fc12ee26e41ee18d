"""``reprompt eval compbench {generate,score}``: mounted by the eval command via :func:`add_parser`.

Flags are generated from the :class:`CompBenchRunConfig`/:class:`EvaluateConfig` dataclasses (help written
once); the policy and backbone flag groups are the ones every command shares. Those modules import only the
standard library and reprompt's light modules; torch, transformers and diffusers load inside ``run``.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from reprompt.cli.options import add_dataclass_args, config_from_args


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``compbench`` with ``generate`` and ``score`` sub-commands to an ``eval`` sub-parser set."""
    from reprompt.cli.common import add_run_args
    from reprompt.eval.compbench.evaluate import EvaluateConfig
    from reprompt.eval.compbench.generate import CompBenchRunConfig

    parser = subparsers.add_parser(
        "compbench",
        help="T2I-CompBench: render the 8 categories and score them",
        description="T2I-CompBench (val splits, 10 images per prompt, official file names) with transformers "
        "scorers. Deviations from the official tools are listed in each scores.json.",
    )
    sub = parser.add_subparsers(dest="compbench_command", metavar="STEP", required=True)
    gen = sub.add_parser("generate", help="render images in the official layout (resumable, shardable)")
    add_run_args(gen, CompBenchRunConfig)
    gen.set_defaults(func=run_generate)
    score = sub.add_parser(
        "score", help="score a run folder (per-category scores.json + compbench_summary.json)"
    )
    add_dataclass_args(score, EvaluateConfig, positional=("run_dir",))
    score.set_defaults(func=run_score)
    return parser


def run_generate(args: argparse.Namespace) -> int:
    from reprompt.cli.common import model_fields, model_spec
    from reprompt.eval.compbench.generate import CompBenchRunConfig, run_generate

    spec = model_spec(args)  # every flag checked before a model loads
    config = config_from_args(CompBenchRunConfig, args, **model_fields(spec))
    summary = run_generate(config, rewriter=spec.policy.load, backbone=spec.backbone.load)
    print(json.dumps(summary, indent=2))
    return 0


def run_score(args: argparse.Namespace) -> int:
    from reprompt.eval.compbench.evaluate import EvaluateConfig, evaluate

    summary = evaluate(config_from_args(EvaluateConfig, args))
    width = max((len(k) for k in summary["scores"]), default=8)
    for name, score in summary["scores"].items():
        print(f"{name:<{width}}  {score:.4f}  ({summary['n_images'][name]} images)")
    if summary["mean_over_categories"] is not None:
        print(f"{'mean':<{width}}  {summary['mean_over_categories']:.4f}")
    print(f"wrote {summary['run_dir']}/compbench_summary.json")
    return 0
