"""``reprompt eval``: GenEval generation and scoring, paired comparison, and T2I-CompBench.

    reprompt eval geneval --metadata evaluation_metadata.jsonl --out runs/none --policy none
    reprompt eval geneval --metadata ... --out runs/smollm2 --policy smollm2      # same seeds: pairs up
    reprompt eval geneval-score runs/smollm2 --detector mask2former
    reprompt eval compare runs/none runs/smollm2

Only argparse at import time; everything heavy loads inside ``run``.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
from typing import Any

from reprompt.cli.common import add_backbone_args, add_policy_args, backbone_kwargs, policy_kwargs


def _add_score_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("scoring (defaults are GenEval's official options)")
    g.add_argument(
        "--detector",
        default="auto",
        choices=("auto", "oracle", "mask2former", "mmdet"),
        help="auto: oracle for runs with scene sidecars (sketch), else mask2former",
    )
    g.add_argument(
        "--detector-model",
        default=None,
        help="Mask2Former id or folder (default facebook/mask2former-swin-small-coco-instance)",
    )
    g.add_argument("--mmdet-config", default=None, help="GenEval's mmdet config (detector mmdet)")
    g.add_argument("--mmdet-checkpoint", default=None, help="GenEval's mmdet checkpoint (detector mmdet)")
    g.add_argument(
        "--colors",
        default="auto",
        choices=("auto", "oracle", "clip"),
        help="colour classifier: auto = the drawn colours for oracle, CLIP otherwise",
    )
    g.add_argument("--clip-model", default="openai/clip-vit-large-patch14", help="CLIP id or folder")
    g.add_argument("--score-device", default="cpu", help="device for the detector and CLIP")
    g.add_argument("--detector-batch-size", type=int, default=4, help="images per detector call")
    g.add_argument("--threshold", type=float, default=0.3, help="detection score threshold (official 0.3)")
    g.add_argument("--counting-threshold", type=float, default=0.9, help="counting tag threshold (0.9)")
    g.add_argument("--max-objects", type=int, default=16, help="detections kept per class (16)")
    g.add_argument("--max-overlap", type=float, default=1.0, help="NMS IoU; 1.0 disables NMS (official)")
    g.add_argument("--position-threshold", type=float, default=0.1, help="relation dead zone (0.1)")
    g.add_argument("--results-dir", default=None, help="where results.jsonl/summary.json go (default: run)")
    g.add_argument("--force", action="store_true", help="discard earlier results and rescore everything")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="benchmarks: GenEval, T2I-CompBench, paired comparison")
    esub = p.add_subparsers(dest="eval_command", metavar="BENCHMARK")
    p.set_defaults(func=lambda args: p.print_help() or 0)

    g = esub.add_parser(
        "geneval",
        help="generate GenEval images (official layout), then score them",
        description="Rewrite each GenEval prompt, render N images with seeds seed+k, write the "
        "official folder layout, then score. Rerun the same command to resume.",
    )
    g.add_argument("--metadata", required=True, help="GenEval evaluation_metadata.jsonl")
    g.add_argument("--out", required=True, help="run folder")
    g.add_argument("--images", type=int, default=4, help="images per prompt (GenEval: 4)")
    g.add_argument("--seed", type=int, default=42, help="image k of every prompt uses seed + k (default 42)")
    g.add_argument("--limit", type=int, default=None, help="only the first N prompts (after --per-tag)")
    g.add_argument("--per-tag", type=int, default=None, help="only the first K prompts of each tag")
    g.add_argument("--shard", default=None, help="i/n: this process does every n-th prompt (0-based i)")
    g.add_argument(
        "--scenes",
        default="rle",
        choices=("rle", "boxes", "none"),
        help="simulator scene sidecars: with RLE masks, boxes only, or none",
    )
    g.add_argument("--stop-after", type=int, default=None, help="finish at most N prompts, then exit")
    g.add_argument("--no-score", action="store_true", help="only generate")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_backbone_args(g)
    add_policy_args(g, default="none")
    _add_score_args(g)
    g.set_defaults(func=run_geneval)

    s = esub.add_parser("geneval-score", help="score a GenEval run folder (ours or the official layout)")
    s.add_argument("run_dir", help="run folder")
    s.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_score_args(s)
    s.set_defaults(func=run_score)

    c = esub.add_parser(
        "compare",
        help="paired comparison of two scored runs (same prompts and seeds)",
        description="B against A: per-tag and overall differences with a paired bootstrap "
        "interval over prompts, prompts won/lost/tied, and the prompts that got worse.",
    )
    c.add_argument("run_a", help="baseline run (e.g. --policy none)")
    c.add_argument("run_b", help="run to compare (e.g. --policy smollm2)")
    c.add_argument("--out", default=None, help="JSON output (default RUN_B/compare-<name of RUN_A>.json)")
    c.add_argument("--resamples", type=int, default=10_000, help="bootstrap resamples")
    c.add_argument("--confidence", type=float, default=0.95, help="interval level")
    c.add_argument("--bootstrap-seed", type=int, default=0)
    c.add_argument("--top", type=int, default=10, help="how many worsened prompts to print")
    c.add_argument("--allow-seed-mismatch", action="store_true", help="compare runs with different seeds")
    c.add_argument("--json", action="store_true", help="print the JSON instead of the table")
    c.set_defaults(func=run_compare)

    if importlib.util.find_spec("reprompt.eval.compbench") and importlib.util.find_spec(
        "reprompt.eval.compbench.cli"
    ):
        importlib.import_module("reprompt.eval.compbench.cli").add_parser(esub)


def _score_config(args: argparse.Namespace) -> Any:
    from reprompt.eval.geneval.evaluate import ScoreConfig

    return ScoreConfig(
        detector=args.detector,
        detector_model=args.detector_model,
        mmdet_config=args.mmdet_config,
        mmdet_checkpoint=args.mmdet_checkpoint,
        colors=args.colors,
        clip_model=args.clip_model,
        device=args.score_device,
        batch_size=args.detector_batch_size,
        threshold=args.threshold,
        counting_threshold=args.counting_threshold,
        max_objects=args.max_objects,
        max_overlap=args.max_overlap,
        position_threshold=args.position_threshold,
        out=args.results_dir,
        force=args.force,
        progress=not args.no_progress,
    )


def run_geneval(args: argparse.Namespace) -> int:
    from reprompt.cli.common import generation_options
    from reprompt.eval.geneval.generate import GenerateConfig, generate_run

    config = GenerateConfig(
        metadata=args.metadata,
        out=args.out,
        policy=args.policy,
        policy_kwargs=policy_kwargs(args),
        generation=generation_options(args),
        backbone=args.backbone,
        backbone_kwargs=backbone_kwargs(args),
        images=args.images,
        seed=args.seed,
        limit=args.limit,
        per_tag=args.per_tag,
        shard=args.shard,
        scenes=args.scenes,
        stop_after=args.stop_after,
        progress=not args.no_progress,
    )
    score = None if args.no_score else _score_config(args)  # validate scorer flags before generating
    stats = generate_run(config)
    print(
        f"generated {stats.done_now} prompts ({stats.already_done} were done) in {stats.seconds_total:.1f} s "
        f"(rewrite {stats.seconds_rewrite:.1f} s, render {stats.seconds_render:.1f} s); "
        f"{stats.remaining} left in this shard"
    )
    if score is None:
        return 0
    from reprompt.eval.geneval.generate import prompt_indices, read_run_info

    info = read_run_info(args.out) or {}
    n_selected = info.get("selection", {}).get("n_selected", 0)
    if stats.remaining or len(prompt_indices(args.out)) < n_selected:
        print(
            "not scoring yet: other prompts (or shards) are unfinished; rerun, or score with "
            f"reprompt eval geneval-score {args.out}"
        )
        return 0
    return _score_and_print(args.out, score)


def _score_and_print(run_dir: str, config: Any) -> int:
    from reprompt.eval.geneval.evaluate import format_summary, score_run

    summary = score_run(run_dir, config)
    print(format_summary(summary))
    print(f"wrote {config.out or run_dir}/results.jsonl and summary.json")
    return 0


def run_score(args: argparse.Namespace) -> int:
    return _score_and_print(args.run_dir, _score_config(args))


def run_compare(args: argparse.Namespace) -> int:
    import json

    from reprompt.eval.compare import compare_runs, default_output, format_comparison, write_comparison

    result = compare_runs(
        args.run_a,
        args.run_b,
        resamples=args.resamples,
        confidence=args.confidence,
        seed=args.bootstrap_seed,
        allow_seed_mismatch=args.allow_seed_mismatch,
    )
    path = write_comparison(result, args.out or default_output(args.run_a, args.run_b))
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(format_comparison(result, top=args.top))
        print(f"wrote {path}")
    return 0
