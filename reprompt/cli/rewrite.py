"""``reprompt rewrite "…"``: show the reasoning and the enhanced prompt."""

from __future__ import annotations

import argparse
import json
import sys

from reprompt.cli.common import add_policy_args, generation_options, policy_choice, read_prompts


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("rewrite", help="rewrite prompts with the policy (reasoning + enhanced prompt)")
    p.add_argument("prompt", nargs="?", help="the prompt to rewrite")
    p.add_argument("--file", help="a text file with one prompt per line")
    p.add_argument("--json", action="store_true", help="print one JSON record per rewrite")
    p.add_argument(
        "--backbone",
        default="sketch",
        help="measure the rewrite in this backbone's text-encoder tokens (default sketch)",
    )
    p.add_argument("--model", default=None, help="local folder for a backbone preset")
    add_policy_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from reprompt.backbones.base import BackboneOptions
    from reprompt.model_spec import BackboneChoice

    prompts = read_prompts(args.prompt, args.file)
    options = generation_options(args)  # every flag checked before a model loads
    backbone = BackboneChoice(args.backbone, BackboneOptions(model=args.model))
    choice = policy_choice(args)
    counter = backbone.load().count_tokens
    policy = choice.load()
    rewrites = policy.rewrite(prompts, options=options, token_counter=counter, progress=len(prompts) > 1)
    for rw in rewrites:
        if args.json:
            print(json.dumps(rw.to_dict(), ensure_ascii=False))
            continue
        print(format_rewrite(rw))
    sys.stdout.flush()
    return 0


def format_rewrite(rw) -> str:
    """Human-readable view of one rewrite, with a clear note when it fell back."""
    lines = [f"original : {rw.original}"]
    if rw.reasoning:
        lines.append(f"reasoning: {rw.reasoning}")
    note = ""
    if rw.fallback:
        note = f"  [fallback to the original: {rw.issue}]"
    elif not rw.format_ok:
        note = f"  [recovered: {rw.issue}]"
    lines.append(f"rewritten: {rw.prompt}{note}")
    if getattr(rw, "guard", None) is not None:
        lines.append(f"guard    : {rw.guard.summary()}")
    if rw.prompt_tokens is not None:
        cut = " (the backbone will truncate it)" if rw.truncated else ""
        lines.append(
            f"length   : {rw.prompt_tokens}/{rw.token_limit} tokens{cut}; "
            f"{rw.completion_tokens} tokens generated in {rw.seconds:.1f} s"
        )
    return "\n".join(lines) + "\n"
