"""``reprompt eval``: GenEval and GenEval 2 generation and scoring, paired comparison, and T2I-CompBench.

    reprompt eval geneval --metadata evaluation_metadata.jsonl --out runs/none --policy none
    reprompt eval geneval --metadata ... --out runs/smollm2 --policy smollm2      # same seeds: pairs up
    reprompt eval geneval-score runs/smollm2 --detector mask2former
    reprompt eval geneval2 --data geneval2_data.jsonl --out runs/g2-none --policy none   # judge: Qwen3-VL-8B
    reprompt eval compare runs/none runs/smollm2

Only argparse at import time; everything heavy loads inside ``run``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from types import ModuleType
from typing import Any

from reprompt.cli.common import add_group, add_run_args, model_fields, model_spec
from reprompt.cli.options import add_dataclass_args, config_from_args

# ScoreConfig fields whose flags carry the scorer's name, since `eval geneval` also has --device, --batch-size
# (the backbone's and the policy's) and --out (the run folder).
SCORE_RENAMES = {"device": "score_device", "batch_size": "detector_batch_size", "out": "results_dir"}


def _add_score_args(p: argparse.ArgumentParser, skip: tuple[str, ...] = ()) -> None:
    from reprompt.eval.geneval.evaluate import ScoreConfig

    add_dataclass_args(
        p,
        ScoreConfig,
        skip=skip,
        renames=SCORE_RENAMES,
        title="scoring (defaults are GenEval's official options)",
    )


# Per benchmark: the help and description of `eval NAME` (generate, then score) and the help of `eval NAME-score`.
TASK_HELP = {
    "geneval": (
        "generate GenEval images (official layout), then score them",
        "Rewrite each GenEval prompt, render N images with seeds seed+k, write the official folder layout, then "
        "score. Rerun the same command to resume.",
        "score a GenEval run folder (ours or the official layout)",
    ),
    "geneval2": (
        "generate GenEval 2 images, then judge them (Soft-TIFA)",
        "Rewrite each GenEval 2 prompt (from your copy of geneval2_data.jsonl), render N images with seeds seed+k "
        "in GenEval's folder layout, then score with Soft-TIFA (AM and GM, per skill and per atomicity) by a VQA "
        "judge: the official Qwen3-VL-8B-Instruct (local), any image-text-to-text model, an OpenAI-compatible "
        "endpoint, or the sketch simulator's oracle. Rerun to resume.",
        "judge a GenEval 2 run folder (Soft-TIFA)",
    ),
}


def _judge_args(config: type) -> Callable[..., None]:
    def add(p: argparse.ArgumentParser, skip: tuple[str, ...] = ()) -> None:
        add_dataclass_args(p, config, skip=skip, title="judging (Soft-TIFA)")

    return add


def _add_task(
    esub: argparse._SubParsersAction,
    name: str,
    config: type,
    add_score_args: Callable[..., None],
    run: Callable[[argparse.Namespace], int],
    run_score: Callable[[argparse.Namespace], int],
) -> None:
    """A benchmark's two commands: ``NAME`` (generate, then score unless --no-score) and ``NAME-score`` (score
    a run folder), so every task of the runner takes the same run, model and scoring flags."""
    help, description, score_help = TASK_HELP[name]
    g = esub.add_parser(name, help=help, description=description)
    add_run_args(g, config)
    g.add_argument("--no-score", action="store_true", help="only generate")
    add_score_args(g, skip=("progress",))  # one --progress for generating and scoring
    g.set_defaults(func=run)
    s = esub.add_parser(f"{name}-score", help=score_help)
    s.add_argument("run_dir", help="run folder")
    add_score_args(s)
    s.set_defaults(func=run_score)


def add_parser(sub: argparse._SubParsersAction) -> None:
    from reprompt.eval.geneval.generate import GenerateConfig

    esub = add_group(
        sub, "eval", "benchmarks: GenEval, GenEval 2, T2I-CompBench, paired comparison", "BENCHMARK"
    )

    from reprompt.eval.geneval2.evaluate import Geneval2ScoreConfig
    from reprompt.eval.geneval2.generate import Geneval2Config

    _add_task(esub, "geneval", GenerateConfig, _add_score_args, run_geneval, run_score)
    _add_task(esub, "geneval2", Geneval2Config, _judge_args(Geneval2ScoreConfig), run_geneval2, run_score2)

    c = esub.add_parser(
        "compare",
        help="paired comparison of two scored runs (same prompts and seeds)",
        description="B against A (two GenEval or two GenEval 2 runs): per-tag (GenEval 2: per-skill) and "
        "overall differences with a paired bootstrap interval over prompts, prompts won/lost/tied, and the "
        "prompts that got worse.",
    )
    c.add_argument(
        "run_a",
        help="baseline run (e.g. --policy none); several runs of one row, one per training seed, as "
        "comma-separated folders: the interval then covers training seeds, then prompts",
    )
    c.add_argument("run_b", help="run to compare (e.g. --policy smollm2); comma-separated for several seeds")
    c.add_argument(
        "--paired-seeds",
        action="store_true",
        help="with several runs per side: run i of B was trained from run i of A (e.g. GRPO from that SFT "
        "model), so one seed draw serves both",
    )
    c.add_argument("--out", default=None, help="JSON output (default RUN_B/compare-<name of RUN_A>.json)")
    from reprompt.eval.compare import CONFIDENCE, RESAMPLES

    c.add_argument(
        "--resamples", type=int, default=RESAMPLES, help=f"bootstrap resamples (default {RESAMPLES})"
    )
    c.add_argument(
        "--confidence", type=float, default=CONFIDENCE, help=f"interval level (default {CONFIDENCE})"
    )
    c.add_argument("--bootstrap-seed", type=int, default=0)
    c.add_argument("--top", type=int, default=10, help="how many worsened prompts to print")
    c.add_argument("--allow-seed-mismatch", action="store_true", help="compare runs with different seeds")
    c.add_argument("--json", action="store_true", help="print the JSON instead of the table")
    c.set_defaults(func=run_compare)

    from reprompt.cli import compbench

    compbench.add_parser(esub)


def _score_config(args: argparse.Namespace) -> Any:
    from reprompt.eval.geneval.evaluate import ScoreConfig

    return config_from_args(ScoreConfig, args, SCORE_RENAMES)


def run_geneval(args: argparse.Namespace) -> int:
    from reprompt.eval.geneval.generate import GenerateConfig, generate_run

    config = config_from_args(GenerateConfig, args, **model_fields(model_spec(args)))
    score = None if args.no_score else _score_config(args)  # validate scorer flags before generating
    stats = generate_run(config)
    _print_generated(stats)
    if score is None or not _generated_all(stats, args.out, "geneval-score"):
        return 0
    from reprompt.eval.geneval import evaluate

    return _score_and_print(evaluate, args.out, score, score.out)


def _print_generated(stats: Any) -> None:
    print(
        f"generated {stats.done_now} prompts ({stats.already_done} were done) in {stats.seconds_total:.1f} s "
        f"(rewrite {stats.seconds_rewrite:.1f} s, render {stats.seconds_render:.1f} s); "
        f"{stats.remaining} left in this shard"
    )


def _generated_all(stats: Any, out: str, score_command: str) -> bool:
    """True when every prompt of the run (all shards) is finished, so scoring may start now; else says so."""
    from reprompt.eval.geneval.generate import prompt_indices
    from reprompt.eval.runner import read_run_info

    n_selected = (read_run_info(out) or {}).get("selection", {}).get("n_selected", 0)
    if stats.remaining or len(prompt_indices(out)) < n_selected:
        print(
            "not scoring yet: other prompts (or shards) are unfinished; rerun, or score with "
            f"reprompt eval {score_command} {out}"
        )
        return False
    return True


def _score_and_print(evaluate: ModuleType, run_dir: str, config: Any, results_dir: str | None) -> int:
    """Score a run with its task's ``evaluate`` module (``score_run``, ``format_summary``) and print it."""
    summary = evaluate.score_run(run_dir, config)
    print(evaluate.format_summary(summary))
    print(f"wrote {results_dir or run_dir}/results.jsonl and summary.json")
    return 0


def run_score(args: argparse.Namespace) -> int:
    from reprompt.eval.geneval import evaluate

    config = _score_config(args)
    return _score_and_print(evaluate, args.run_dir, config, config.out)


def run_geneval2(args: argparse.Namespace) -> int:
    from reprompt.eval.geneval2.evaluate import Geneval2ScoreConfig
    from reprompt.eval.geneval2.generate import Geneval2Config, generate_run

    spec = model_spec(args)  # every flag checked before a model loads
    config = config_from_args(Geneval2Config, args, **model_fields(spec))
    score = None if args.no_score else config_from_args(Geneval2ScoreConfig, args, progress=args.progress)
    stats = generate_run(config, rewriter=spec.policy.load, backbone=spec.backbone.load)
    _print_generated(stats)
    if score is None or not _generated_all(stats, args.out, "geneval2-score"):
        return 0
    from reprompt.eval.geneval2 import evaluate

    return _score_and_print(evaluate, args.out, score, score.results_dir)


def run_score2(args: argparse.Namespace) -> int:
    from reprompt.eval.geneval2 import evaluate

    config = config_from_args(evaluate.Geneval2ScoreConfig, args)
    return _score_and_print(evaluate, args.run_dir, config, config.results_dir)


def _compare_seeded(args: argparse.Namespace, runs_a: list[str], runs_b: list[str]) -> int:
    import json

    from reprompt.eval.compare import write_comparison
    from reprompt.eval.seeds import compare_seeded, format_seeded

    result = compare_seeded(
        runs_a,
        runs_b,
        paired=args.paired_seeds,
        resamples=args.resamples,
        confidence=args.confidence,
        seed=args.bootstrap_seed,
    )
    if args.out:
        write_comparison(result, args.out)  # type: ignore[arg-type]
    print(json.dumps(result, indent=2) if args.json else format_seeded(result))
    return 0


def run_compare(args: argparse.Namespace) -> int:
    import json

    from reprompt.eval.compare import compare_runs, default_output, format_comparison, write_comparison

    runs_a, runs_b = args.run_a.split(","), args.run_b.split(",")
    if len(runs_a) > 1 or len(runs_b) > 1 or args.paired_seeds:
        return _compare_seeded(args, runs_a, runs_b)
    bootstrap = {"resamples": args.resamples, "confidence": args.confidence, "seed": args.bootstrap_seed}
    result = compare_runs(args.run_a, args.run_b, allow_seed_mismatch=args.allow_seed_mismatch, **bootstrap)
    path = write_comparison(result, args.out or default_output(args.run_a, args.run_b))
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(format_comparison(result, top=args.top))
        print(f"wrote {path}")
    return 0
