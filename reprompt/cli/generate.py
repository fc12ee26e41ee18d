"""``reprompt generate "…"``: rewrite, render original and rewrite with the same seeds, compare."""

from __future__ import annotations

import argparse

from reprompt.cli.common import add_backbone_args, add_policy_args, model_spec


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("generate", help="rewrite a prompt and render original vs rewrite side by side")
    p.add_argument("prompt", help="what you want to see")
    p.add_argument("--out", default="out", help="output folder (default ./out)")
    p.add_argument("--seed", type=int, default=0, help="seed of image 0; image k uses seed+k")
    p.add_argument("--images", type=int, default=1, help="images per prompt")
    p.add_argument("--no-rewrite", action="store_true", help="render the prompt as given (no policy)")
    add_backbone_args(p)
    add_policy_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from reprompt.cli.rewrite import format_rewrite
    from reprompt.errors import check_range
    from reprompt.pipeline import RePromptPipeline
    from reprompt.policy.base import check_prompt

    check_range("--images", args.images, 1, 64)
    if args.no_rewrite:
        args.policy = "none"
    prompt = check_prompt(args.prompt)
    spec = model_spec(args)  # every flag checked before a model loads
    pipe = RePromptPipeline(spec.policy.load(), spec.backbone.load())
    result = pipe(prompt, seed=args.seed, num_images=args.images, options=spec.generation)
    record = result.save(args.out)
    if pipe.rewrites:
        print(format_rewrite(result.rewrite))
        if len(result.candidates) > 1:
            print(
                f"candidate: {result.rewrite.candidate + 1} of {len(result.candidates)} (all in record.json)"
            )
    for w in result.warnings:
        print(f"warning: {w}")
    main_file = record["files"].get("comparison") or record["files"]["rewritten"][0]
    print(f"wrote {args.out}/{main_file} and {args.out}/record.json")
    return 0
