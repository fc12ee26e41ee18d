"""``reprompt bench latency``: what rewriting costs next to rendering, and what it buys.

    reprompt bench latency --policy smollm2 --backbone sketch
    reprompt bench latency --policy smollm2 --backbone sketch --metadata evaluation_metadata.jsonl --n-prompts 24

Only argparse at import time; everything heavy loads inside ``run``.
"""

from __future__ import annotations

import argparse
from typing import Any

from reprompt.cli.common import add_backbone_args, add_group, add_policy_args


def add_parser(sub: Any) -> None:
    from reprompt.cli.options import add_dataclass_args
    from reprompt.latency.measure import LatencyConfig

    bsub = add_group(sub, "bench", "benchmarks of the toolkit: latency", "BENCH")
    lat = bsub.add_parser(
        "latency",
        help="rewrite vs render seconds (median, p90), rewrite share, and the iterative baseline",
        description="Times the policy (batch 1 and batched) and the backbone on the same prompts. With "
        "--metadata (GenEval) it also scores one image per prompt for: the backbone alone, one rewrite, "
        "and an Idea2Img-style render -> judge -> revise loop of K rounds.",
    )
    add_dataclass_args(lat, LatencyConfig)
    lat.add_argument(
        "--metadata", default=None, help="GenEval evaluation_metadata.jsonl (enables the accuracy table)"
    )
    lat.add_argument(
        "--prompts-file", default=None, help="prompts to time, one per line (default: built-in list)"
    )
    lat.add_argument(
        "--detector", default=None, help="scorer for the accuracy table (default: oracle for sketch)"
    )
    lat.add_argument("--out", default=None, help="write the report as JSON here")
    add_backbone_args(lat)
    add_policy_args(lat, default="smollm2")
    lat.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import dataclasses

    from reprompt.backbones import is_simulator
    from reprompt.cli.common import model_spec, read_prompts
    from reprompt.latency.measure import (
        LatencyConfig,
        build_judge,
        format_report,
        load_metadata,
        run_benchmark,
    )
    from reprompt.utils.io import atomic_write_json

    cfg = LatencyConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(LatencyConfig)})
    spec = model_spec(args)  # every flag checked before a model loads
    metadatas = load_metadata(args.metadata, cfg.n_prompts) if args.metadata else None
    judge = build_judge(cfg) if metadatas and cfg.iterative_rounds else None  # the judge too
    prompts = read_prompts(None, args.prompts_file) if args.prompts_file else None
    detector = args.detector or ("oracle" if is_simulator(args.backbone) and metadatas else None)
    report = run_benchmark(
        spec.policy.load(),
        spec.backbone.load(),
        cfg,
        prompts=prompts,
        metadatas=metadatas,
        options=spec.generation,
        detector=detector,
        names=(args.policy, args.backbone),
        judge=judge,
    )
    print(format_report(report))
    if args.out:
        atomic_write_json(args.out, report)
        print(f"wrote {args.out}")
    return 0
