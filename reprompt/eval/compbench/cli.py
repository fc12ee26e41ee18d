"""``reprompt eval compbench {generate,score}``: mounted by the eval command via :func:`add_parser`.

Flags are generated from the :class:`GenerateConfig`/:class:`EvaluateConfig` dataclasses (help written once).
Those modules import only the standard library and reprompt's light modules; torch, transformers and
diffusers load inside ``run``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from typing import Any

_TYPES = {"str": str, "int": int, "float": float, "str | None": str, "int | None": int, "float | None": float}


# GenerateConfig fields that the shared --policy/--backbone flag groups (reprompt.cli.common) provide.
_SHARED = {
    "backbone": "backbone", "model": "model", "policy": "policy", "api_model": "api_model", "api_base": "api_base",
    "max_new_tokens": "max_new_tokens", "rewrite_batch_size": "batch_size", "device": "device", "dtype": "dtype",
}  # fmt: skip


def add_dataclass_args(
    parser: argparse.ArgumentParser, cls: Any, positional: tuple[str, ...] = (), skip: tuple[str, ...] = ()
) -> None:
    """One flag per dataclass field (``--field-name``), with the field's help and default."""
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        help_text = f.metadata.get("help", "").replace("%", "%%")
        if f.name in positional:
            parser.add_argument(f.name, help=help_text)
            continue
        flag = "--" + f.name.replace("_", "-")
        has_default = f.default is not dataclasses.MISSING
        if f.type == "bool":
            parser.add_argument(
                flag, action=argparse.BooleanOptionalAction, default=f.default, help=help_text
            )
            continue
        kw: dict[str, Any] = {"type": _TYPES[str(f.type)], "help": help_text}
        if has_default:
            kw["default"] = f.default
            if f.default is not None:
                kw["help"] = f"{help_text} (default: {f.default})"
        else:
            kw["required"] = True
        parser.add_argument(flag, **kw)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``compbench`` with ``generate`` and ``score`` sub-commands to an ``eval`` sub-parser set."""
    from reprompt.eval.compbench.evaluate import EvaluateConfig
    from reprompt.eval.compbench.generate import GenerateConfig

    parser = subparsers.add_parser(
        "compbench",
        help="T2I-CompBench: render the 8 categories and score them",
        description="T2I-CompBench (val splits, 10 images per prompt, official file names) with transformers "
        "scorers. Deviations from the official tools are listed in each scores.json.",
    )
    sub = parser.add_subparsers(dest="compbench_command", metavar="STEP", required=True)
    from reprompt.cli.common import add_backbone_args, add_policy_args

    gen = sub.add_parser("generate", help="render images in the official layout (resumable, shardable)")
    add_dataclass_args(gen, GenerateConfig, skip=tuple(_SHARED))
    add_backbone_args(gen)
    add_policy_args(gen, default="none")
    gen.set_defaults(func=run_generate)
    score = sub.add_parser(
        "score", help="score a run folder (per-category scores.json + compbench_summary.json)"
    )
    add_dataclass_args(score, EvaluateConfig, positional=("run_dir",))
    score.set_defaults(func=run_score)
    return parser


def _config(cls: Any, args: argparse.Namespace, renames: dict[str, str] | None = None) -> Any:
    renames = renames or {}
    values = {f.name: getattr(args, renames.get(f.name, f.name)) for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in values.items()})


def run_generate(args: argparse.Namespace) -> int:
    from reprompt.cli.common import backbone_from_args, generation_options, policy_from_args
    from reprompt.eval.compbench.generate import GenerateConfig, generate

    cfg = _config(GenerateConfig, args, _SHARED)
    summary = generate(
        cfg,
        rewriter=lambda: policy_from_args(args),
        backbone=lambda: backbone_from_args(args),
        options=generation_options(args),
    )
    print(json.dumps(summary, indent=2))
    return 0


def run_score(args: argparse.Namespace) -> int:
    from reprompt.eval.compbench.evaluate import EvaluateConfig, evaluate

    summary = evaluate(_config(EvaluateConfig, args))
    width = max((len(k) for k in summary["scores"]), default=8)
    for name, score in summary["scores"].items():
        print(f"{name:<{width}}  {score:.4f}  ({summary['n_images'][name]} images)")
    if summary["mean_over_categories"] is not None:
        print(f"{'mean':<{width}}  {summary['mean_over_categories']:.4f}")
    print(f"wrote {summary['run_dir']}/compbench_summary.json")
    return 0
