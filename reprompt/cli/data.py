"""``reprompt data prompts|sft``: GenEval-style training prompts, and SFT targets written by a teacher."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from reprompt.cli.common import add_backbone_args
from reprompt.errors import RepromptError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="make training data: GenEval-style prompts and SFT targets")
    dsub = p.add_subparsers(dest="data_command", metavar="{prompts,sft}", required=True)

    pp = dsub.add_parser(
        "prompts",
        help="generate GenEval-style prompts with metadata (SFT / RL / held-out splits)",
        description="Fill GenEval's six templates from an object vocabulary; every prompt carries "
        "include/exclude metadata. Writes sft_prompts.jsonl, rl_prompts.jsonl (and heldout_prompts.jsonl).",
    )
    pp.add_argument("--out", required=True, help="output folder")
    pp.add_argument("--n-sft", type=int, default=8000, help="SFT prompts (paper: 8000)")
    pp.add_argument("--n-rl", type=int, default=1000, help="RL prompts (paper: 1000)")
    pp.add_argument("--n-heldout", type=int, default=0, help="held-out prompts (held-out reward, eval)")
    pp.add_argument("--seed", type=int, default=0)
    pp.add_argument("--tags", default=None, help="comma-separated templates (default: all six)")
    pp.add_argument("--tag-weights", default=None, help="comma-separated relative frequencies, one per tag")
    pp.add_argument("--counts", default="2,3,4", help="numbers for the counting template (GenEval: 2,3,4)")
    pp.add_argument("--vocab-file", default=None, help="extra object names, one per line")
    pp.add_argument("--vocab-only", action="store_true", help="use only --vocab-file, not COCO's 80 classes")
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
        help="grounded (offline, from metadata) | openai | smollm2 | a local folder | a hub id",
    )
    ps.add_argument("--out-tags", default="reason/prompt", help="tag format of the stored completions")
    ps.add_argument("--limit", type=int, default=None, help="use only the first N prompts")
    ps.add_argument("--min-tokens", type=int, default=15, help="shortest prompt kept (backbone tokens)")
    ps.add_argument("--max-tokens", type=int, default=77, help="longest prompt kept (backbone tokens)")
    ps.add_argument("--teacher-seed", type=int, default=0, help="phrasing seed of the grounded teacher")
    ps.add_argument("--batch-size", type=int, default=8, help="prompts per teacher call")
    g = ps.add_argument_group("policy teacher (any --teacher but grounded)")
    g.add_argument("--teacher-tags", default=None, help="the teacher's own tag format (default: its spec)")
    g.add_argument("--max-new-tokens", type=int, default=512)
    g.add_argument("--temperature", type=float, default=0.0, help="0 = greedy")
    g.add_argument("--teacher-device", default="cpu")
    g.add_argument("--teacher-dtype", default="auto")
    g.add_argument("--api-base", default="http://127.0.0.1:8000/v1", help="OpenAI-compatible base URL")
    g.add_argument("--api-model", default=None, help="model name at the endpoint")
    g.add_argument("--api-key-env", default="OPENAI_API_KEY", help="environment variable holding the key")
    add_backbone_args(ps)
    ps.set_defaults(func=run_sft)
    p.set_defaults(func=lambda args: p.print_help() or 0)


def _ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise RepromptError(f"expected comma-separated integers, got {text!r}") from None


def run_prompts(args: argparse.Namespace) -> int:
    from reprompt.data.prompts import PromptGenConfig, load_exclusions, load_vocabulary, split_prompts
    from reprompt.utils.io import atomic_write_json, atomic_write_text

    if args.vocab_only and not args.vocab_file:
        raise RepromptError("--vocab-only needs --vocab-file")
    kw = {}
    if args.tags:
        kw["tags"] = tuple(t.strip() for t in args.tags.split(",") if t.strip())
    if args.tag_weights:
        try:
            kw["tag_weights"] = tuple(float(w) for w in args.tag_weights.split(","))
        except ValueError:
            raise RepromptError(f"--tag-weights must be numbers, got {args.tag_weights!r}") from None
    cfg = PromptGenConfig(
        n_sft=args.n_sft,
        n_rl=args.n_rl,
        n_heldout=args.n_heldout,
        seed=args.seed,
        counts=_ints(args.counts),
        vocabulary=load_vocabulary(args.vocab_file, extend=not args.vocab_only),
        **kw,
    )
    keys, texts = load_exclusions(args.exclude)
    splits, gen = split_prompts(cfg, keys, texts)
    out = Path(args.out)
    for name, rows in splits.items():
        if rows:
            atomic_write_text(out / f"{name}_prompts.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    summary = {
        "seed": cfg.seed,
        "counts": {k: len(v) for k, v in splits.items()},
        "per_tag": gen.per_tag,
        "exhausted_templates": gen.exhausted,
        "excluded_files": args.exclude,
        "excluded_prompts": len(keys),
        "draws_rejected_as_test_prompts": gen.excluded_hits,
        "vocabulary_size": len(cfg.vocabulary),
    }
    atomic_write_json(out / "prompts_summary.json", summary)
    print(json.dumps(summary, indent=2))
    return 0


def run_sft(args: argparse.Namespace) -> int:
    from reprompt.cli.common import backbone_from_args
    from reprompt.data.prompts import load_prompts
    from reprompt.data.sft_data import build_sft_data
    from reprompt.data.teachers import GroundedTeacher, PolicyTeacher

    records = load_prompts(args.prompts)
    if args.limit is not None:
        records = records[: args.limit]
    if not records:
        raise RepromptError(f"{args.prompts} has no prompts")
    backbone = backbone_from_args(args)
    if args.teacher == "grounded":
        teacher = GroundedTeacher(args.out_tags, seed=args.teacher_seed)
    else:
        from reprompt.format import PromptSpec
        from reprompt.policy import GenerationOptions, load_policy

        policy = load_policy(
            args.teacher,
            prompt_spec=PromptSpec(tags=args.teacher_tags) if args.teacher_tags else None,
            device=args.teacher_device,
            dtype=args.teacher_dtype,
            api_base=args.api_base,
            api_model=args.api_model,
            api_key_env=args.api_key_env,
        )
        options = GenerationOptions(
            max_new_tokens=args.max_new_tokens, temperature=args.temperature, batch_size=args.batch_size
        )
        teacher = PolicyTeacher(policy, options)
    report = build_sft_data(
        records,
        teacher,
        args.out,
        tags=args.out_tags,
        token_counter=backbone.count_tokens,
        min_tokens=args.min_tokens,
        max_tokens=args.max_tokens,
        batch_size=args.batch_size,
        progress=sys.stderr.isatty(),
    )
    print(report.summary())
    return 0 if report.kept else 1
