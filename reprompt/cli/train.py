"""``reprompt train sft|grpo --config recipe.yaml [--field value ...]``: the paper's two training stages.

Every field of the stage's config (TRL's SFTConfig/GRPOConfig plus reprompt's) can be set in the YAML
recipe or overridden on the command line; ``reprompt train grpo --help`` lists them. For several GPUs,
launch the same command through accelerate:
``accelerate launch --config_file configs/accelerate/8gpu-zero2.yaml -m reprompt.train.grpo --config ...``.
"""

from __future__ import annotations

import argparse

STAGES = {
    "sft": "supervised fine-tuning on teacher completions (TRL SFTTrainer)",
    "grpo": "GRPO against the rendered-image reward (TRL GRPOTrainer)",
}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train the policy: sft, then grpo (YAML recipe + overrides)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        add_help=False,
    )
    p.add_argument(
        "stage", nargs="?", choices=list(STAGES), help="; ".join(f"{k}: {v}" for k, v in STAGES.items())
    )
    p.add_argument("args", nargs=argparse.REMAINDER, help="--config recipe.yaml and field overrides")
    p.add_argument(
        "-h", "--help", action="store_true", help="show help (with a stage: all its config fields)"
    )
    p.set_defaults(func=run, _train_parser=p)


def run(args: argparse.Namespace) -> int:
    if args.stage is None:
        args._train_parser.print_help()
        return 0
    argv = list(args.args) + (["--help"] if args.help else [])
    if args.stage == "sft":
        from reprompt.train import sft

        return sft.main(argv)
    from reprompt.train import grpo

    return grpo.main(argv)
