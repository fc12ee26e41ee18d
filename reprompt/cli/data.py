"""``reprompt data prompts|sft``: GenEval-style training prompts, and SFT targets written by a teacher."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from reprompt.cli.common import add_backbone_args
from reprompt.cli.options import add_dataclass_args, config_from_args, config_values
from reprompt.errors import RepromptError

TEACHER_LOAD_FLAGS = {"device": "teacher_device", "dtype": "teacher_dtype"}
"""PolicyLoadOptions fields whose flags name the teacher (``data sft``)."""
PROMPT_FLAGS_BY_HAND = ("n_rl", "tags", "tag_weights", "counts", "vocabulary", "colors")
"""PromptGenConfig fields whose flags need a conversion from text (declared by hand in add_parser)."""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="make training data: GenEval-style prompts and SFT targets")
    dsub = p.add_subparsers(dest="data_command", metavar="{prompts,sft}", required=True)

    pp = dsub.add_parser(
        "prompts",
        help="generate GenEval-style prompts with metadata (SFT / RL / held-out splits)",
        description="Fill GenEval's six templates from an object vocabulary; every prompt carries "
        "include/exclude metadata. Each split gets an explicit quota per template (equal shares by "
        "default); a quota the vocabulary cannot meet fails with the fixes (or, with --allow-short, warns). "
        "Writes sft_prompts.jsonl, rl_prompts.jsonl, heldout_prompts.jsonl and prompts_summary.json "
        "(asked vs produced per split and template), and prints the same table.",
    )
    from reprompt.data.prompts import PromptGenConfig
    from reprompt.policy.base import PolicyLoadOptions

    pp.add_argument("--out", required=True, help="output folder")
    # the plain fields come from PromptGenConfig (one home for their defaults and help); the others need a
    # conversion from text (lists, tag=weight pairs, a vocabulary name) and are declared below
    add_dataclass_args(pp, PromptGenConfig, skip=PROMPT_FLAGS_BY_HAND)
    defaults = PromptGenConfig()
    pp.add_argument(
        "--n-rl",
        type=int,
        default=None,
        help=f"RL prompts (default {defaults.n_rl}, the paper's count; not with --rl-from)",
    )
    pp.add_argument(
        "--rl-from",
        default=None,
        help="write the RL split from this prompt file (JSONL or a text list in GenEval's templates, e.g. "
        "$REPROMPT_BENCHMARKS/reprompt-rl-prompts/generation_prompts_1k_filterd.txt) instead of generating "
        "it; its test prompts (--exclude) and repeats are dropped and reported, and SFT / held-out avoid "
        "its prompts",
    )
    pp.add_argument(
        "--tags",
        default=None,
        help="comma-separated templates or families (default: geneval, GenEval's six). inference: the "
        "family whose clues must be resolved (infer_object, infer_count, infer_color, infer_position)",
    )
    pp.add_argument(
        "--tag-weights",
        default=None,
        help="share of every split per template (default equal): one number per --tags entry "
        "(1,1,2,1,1,1) or tag=weight pairs (single_object=0,counting=2; others stay 1)",
    )
    pp.add_argument(
        "--counts",
        default=",".join(map(str, defaults.counts)),
        help="numbers for the counting template, comma-separated (GenEval: 2,3,4)",
    )
    pp.add_argument(
        "--vocab",
        default="coco",
        choices=("coco", "lvis"),
        help="object vocabulary. coco (default): COCO's 80 classes, which a COCO detector (GenEval) and "
        "the sketch oracle can verify; with GenEval's test set excluded, all 80 single-object prompts are "
        "test prompts. lvis: COCO + 783 LVIS v1 names (CC BY 4.0): many more prompts, but non-COCO "
        "objects cannot be verified by a COCO detector or the sketch oracle (use judge/preference rewards)",
    )
    pp.add_argument("--vocab-file", default=None, help="extra object names, one per line")
    pp.add_argument("--vocab-only", action="store_true", help="use only --vocab-file, not the --vocab names")
    pp.add_argument(
        "--exclude",
        action="append",
        default=[],
        help="test-set file (GenEval evaluation_metadata.jsonl or a prompt list) whose prompts "
        "must never be emitted; repeatable",
    )
    pp.set_defaults(func=run_prompts)

    ps = dsub.add_parser(
        "sft",
        help="write SFT targets (reasoning + prompt) with a teacher; filtered, resumable",
        description="Run a teacher over prompts and keep well-formed completions whose prompt length fits "
        "the backbone. `--teacher grounded` works offline from GenEval metadata; any policy name "
        "(openai, a local folder, a hub id) uses that model. Rerun the same command to resume.",
    )
    ps.add_argument("--prompts", required=True, help="prompt file: JSONL with metadata or a text list")
    ps.add_argument("--out", required=True, help="output JSONL (dropped rows go to <out>.dropped.jsonl)")
    ps.add_argument(
        "--teacher",
        default="grounded",
        help="grounded (offline, from metadata: every strategy the sketch simulator rewards) | generic "
        "(offline, from metadata: a general LLM teacher's style, helpful strategies in ~30%% of targets) | "
        "openai | smollm2 | a local folder | a hub id",
    )
    ps.add_argument("--out-tags", default="reason/prompt", help="tag format of the stored completions")
    ps.add_argument("--limit", type=int, default=None, help="use only the first N prompts")
    from reprompt.format.length import LengthBounds

    # the length window of the length reward (reprompt.format.length: one home for both)
    add_dataclass_args(ps, LengthBounds)
    ps.add_argument("--teacher-seed", type=int, default=0, help="seed of the grounded / generic teacher")
    ps.add_argument("--batch-size", type=int, default=8, help="prompts per teacher call")
    g = ps.add_argument_group("policy teacher (any --teacher but grounded or generic)")
    g.add_argument("--teacher-tags", default=None, help="the teacher's own tag format (default: its spec)")
    g.add_argument("--max-new-tokens", type=int, default=512)
    g.add_argument("--temperature", type=float, default=0.0, help="0 = greedy")
    add_dataclass_args(g, PolicyLoadOptions, renames=TEACHER_LOAD_FLAGS, skip=("trust_remote_code",))
    add_backbone_args(ps)
    ps.set_defaults(func=run_sft)
    p.set_defaults(func=lambda args: p.print_help() or 0)


def _ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise RepromptError(f"expected comma-separated integers, got {text!r}") from None


def _tag_weights(text: str, tags: tuple[str, ...]) -> tuple[float, ...]:
    """``1,1,2,1,1,1`` (one per tag) or ``single_object=0,counting=2`` (others 1) -> one weight per tag."""
    items = [x.strip() for x in text.split(",") if x.strip()]
    try:
        if not any("=" in x for x in items):
            return tuple(float(x) for x in items)
        pairs = dict((k.strip(), float(v)) for k, v in (x.split("=", 1) for x in items))
    except ValueError:
        raise RepromptError(
            f"--tag-weights must be numbers (1,1,2,1,1,1) or tag=number pairs (counting=2), got {text!r}"
        ) from None
    unknown = sorted(set(pairs) - set(tags))
    if unknown:
        raise RepromptError(f"--tag-weights names {', '.join(unknown)}, not among the tags {', '.join(tags)}")
    return tuple(pairs.get(t, 1.0) for t in tags)


def run_prompts(args: argparse.Namespace) -> int:
    from reprompt.data.prompts import PromptGenConfig, load_exclusions, load_prompts, split_prompts
    from reprompt.data.templates import load_vocabulary
    from reprompt.utils.io import atomic_write_json, atomic_write_text

    if args.vocab_only and not args.vocab_file:
        raise RepromptError("--vocab-only needs --vocab-file")
    if args.rl_from and args.n_rl is not None:
        raise RepromptError(
            "--n-rl and --rl-from conflict: with --rl-from the RL split is the file's prompts"
        )
    kw: dict[str, Any] = {}
    if args.tags:
        from reprompt.geneval.vocabulary import FAMILY_TAGS

        families = {f for f, _ in FAMILY_TAGS.values()}
        names = [t.strip() for t in args.tags.split(",") if t.strip()]
        kw["tags"] = tuple(
            dict.fromkeys(
                t
                for name in names
                for t in (
                    [k for k, (f, _) in FAMILY_TAGS.items() if f == name] if name in families else [name]
                )
            )
        )
    if args.tag_weights:
        from reprompt.geneval.vocabulary import GENEVAL_TAGS

        kw["tag_weights"] = _tag_weights(args.tag_weights, kw.get("tags", GENEVAL_TAGS))
    if args.rl_from:
        kw["n_rl"] = 0
    elif args.n_rl is not None:
        kw["n_rl"] = args.n_rl
    cfg = PromptGenConfig(
        **config_values(PromptGenConfig, args, skip=PROMPT_FLAGS_BY_HAND),
        counts=_ints(args.counts),
        vocabulary=load_vocabulary(args.vocab_file, extend=not args.vocab_only, base=args.vocab),
        **kw,
    )
    keys, texts = load_exclusions(args.exclude, cfg.vocabulary)
    fixed = {"rl": load_prompts(args.rl_from, cfg.vocabulary)} if args.rl_from else None
    splits, report = split_prompts(cfg, keys, texts, fixed=fixed)
    out = Path(args.out)
    for name, rows in splits.items():
        if rows:
            atomic_write_text(out / f"{name}_prompts.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    summary = {
        "seed": cfg.seed,
        "counts": {k: len(v) for k, v in splits.items()},
        "per_tag": report.per_tag,
        **report.to_dict(),
        "vocabulary": args.vocab_file if args.vocab_only else args.vocab,
        "vocabulary_file": args.vocab_file,
        "vocabulary_size": len(cfg.vocabulary),
        "excluded_files": args.exclude,
        "excluded_prompts": len(keys),
        "rl_from": args.rl_from,
    }
    atomic_write_json(out / "prompts_summary.json", summary)
    print(report.table())
    for name, info in report.fixed.items():
        print(
            f"{name} split from {args.rl_from}: kept {info['rows_kept']} of {info['rows_read']} "
            f"({len(info['dropped_as_test_prompts'])} test prompts and {len(info['dropped_as_repeats'])} "
            f"repeats dropped, {info['untagged']} without GenEval metadata)"
        )
        for prompt in info["dropped_as_test_prompts"]:
            print(f"  dropped as a test prompt: {prompt}")
    print(f"wrote {', '.join(f'{n}_prompts.jsonl ({len(r)})' for n, r in splits.items() if r)} to {out}")
    return 0


def run_sft(args: argparse.Namespace) -> int:
    from reprompt.cli.common import backbone_choice
    from reprompt.data.prompts import load_prompts
    from reprompt.data.sft_data import build_sft_data
    from reprompt.data.teachers import GenericTeacher, GroundedTeacher, PolicyTeacher, Teacher

    records = load_prompts(args.prompts)
    if args.limit is not None:
        records = records[: args.limit]
    if not records:
        raise RepromptError(f"{args.prompts} has no prompts")
    from reprompt.format.length import LengthBounds

    bb = backbone_choice(args)  # every flag checked before a model loads
    bounds = config_from_args(LengthBounds, args)
    teacher: Teacher
    if args.teacher == "grounded":
        teacher = GroundedTeacher(args.out_tags, seed=args.teacher_seed)
    elif args.teacher == "generic":
        teacher = GenericTeacher(args.out_tags, seed=args.teacher_seed)
    else:
        from reprompt.format import PromptSpec
        from reprompt.policy import GenerationOptions, load_policy
        from reprompt.policy.base import PolicyLoadOptions

        options = GenerationOptions(
            max_new_tokens=args.max_new_tokens, temperature=args.temperature, batch_size=args.batch_size
        )
        policy = load_policy(
            args.teacher,
            prompt_spec=PromptSpec(tags=args.teacher_tags) if args.teacher_tags else None,
            **config_values(PolicyLoadOptions, args, TEACHER_LOAD_FLAGS, skip=("trust_remote_code",)),
        )
        teacher = PolicyTeacher(policy, options)
    backbone = bb.load()
    report = build_sft_data(
        records,
        teacher,
        args.out,
        tags=args.out_tags,
        token_counter=backbone.count_tokens,
        min_tokens=bounds.min_tokens,
        max_tokens=bounds.max_tokens,
        batch_size=args.batch_size,
        progress=sys.stderr.isatty(),
    )
    print(report.summary())
    return 0 if report.kept else 1
