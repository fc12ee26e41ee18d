"""``reprompt score``: score completions by hand and print every reward component and the total.

    reprompt score --prompt "a photo of three cats" --completion-file c.txt --backbone sketch \\
        --rewards format,length,geneval --metadata '{"tag": "counting", "include": [{"class": "cat", "count": 3}]}'
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from reprompt.rewards.config import FALLBACK_SCORES


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("score", help="score completions with the reward (each component and the total)")
    p.add_argument("--prompt", help="the user's ORIGINAL prompt")
    p.add_argument("--completion", action="append", default=[], help="a policy completion (repeatable)")
    p.add_argument(
        "--completion-file",
        action="append",
        default=[],
        help="file holding one completion; '-' = stdin (repeatable)",
    )
    p.add_argument("--config", help="reward config YAML (configs/rewards/*.yaml); flags below override it")
    p.add_argument("--rewards", help="comma-separated components, e.g. format,length,geneval")
    p.add_argument("--weights", help="e.g. geneval=2,format=0.5")
    p.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="NAME.KEY=VALUE",
        help="component option, e.g. geneval.mode=strict or vlm_judge.model=FOLDER (repeatable)",
    )
    p.add_argument("--metadata", help="GenEval metadata as JSON, or @file.json")
    p.add_argument(
        "--backbone",
        help="sketch | flux-dev | sd3 | ... | diffusers folder | remote:http://HOST:PORT[,...] (image servers) "
        "(default: config's, else sketch)",
    )
    p.add_argument("--model", help="local folder for a backbone preset")
    p.add_argument("--device", help="backbone device")
    p.add_argument("--width", type=int, help="image width")
    p.add_argument("--height", type=int, help="image height")
    p.add_argument("--steps", type=int, help="denoising steps")
    p.add_argument("--cache", help="diffusers step cache (first-block:0.12, mag, taylorseer:4, none)")
    p.add_argument("--compile", help="torch.compile the transformer (default, max-autotune, ..., none)")
    p.add_argument(
        "--no-render-profile",
        action="store_true",
        help="render at the backbone's full settings, ignoring the config's train-time profile (render:)",
    )
    p.add_argument("--seed", type=int, help="base seed")
    p.add_argument("--images-per-completion", type=int, help="renders per completion")
    p.add_argument(
        "--normalization", choices=("none", "group", "batch"), help="default: none, or the config's"
    )
    p.add_argument(
        "--fallback-score",
        choices=FALLBACK_SCORES,
        help="how a completion with no prompt block is scored (default: the config's, else group_worst, "
        "the training rule: not rendered, the worst score of its group; render_original: what inference "
        "renders)",
    )
    p.add_argument(
        "--baseline", action="store_true", help="also score the original prompt with the same seeds"
    )
    p.add_argument("--save-images", metavar="DIR", help="write the rendered images as PNG")
    p.add_argument("--json", action="store_true", help="print the full result as JSON")
    p.add_argument("--list", action="store_true", help="list the reward components and exit")
    p.set_defaults(func=run)


def _parse_value(text: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def build_config(args: argparse.Namespace) -> Any:
    """RewardConfig from --config plus the flags (flags win)."""
    from reprompt.errors import RepromptError
    from reprompt.rewards.config import RewardConfig, keep_components

    data: dict[str, Any] = (
        RewardConfig.from_yaml(args.config).to_dict() if args.config else {"normalization": "none"}
    )
    if args.rewards:
        data = keep_components(data, [c.strip() for c in args.rewards.split(",") if c.strip()])
    if args.weights:
        for item in args.weights.split(","):
            name, sep, value = item.partition("=")
            if not sep:
                raise RepromptError(f"--weights item {item!r} must look like name=number")
            data.setdefault("weights", {})[name.strip()] = _parse_value(value)
    for item in args.option:
        key, sep, value = item.partition("=")
        name, dot, field = key.partition(".")
        if not sep or not dot:
            raise RepromptError(f"--option {item!r} must look like component.key=value")
        data.setdefault("options", {}).setdefault(name.strip(), {})[field.strip()] = _parse_value(value)
    if args.backbone and args.backbone != data.get("backbone"):
        data["backbone"], data["backbone_options"], data["backbone_model"] = args.backbone, {}, None
    if args.model:
        data["backbone_model"] = args.model
    opts = data.setdefault("backbone_options", {})
    for flag in ("device", "width", "height", "steps", "cache", "compile"):
        if getattr(args, flag) is not None:
            opts[flag] = getattr(args, flag)
    for flag, key in (
        ("seed", "seed"),
        ("images_per_completion", "images_per_completion"),
        ("normalization", "normalization"),
        ("fallback_score", "fallback_score"),
    ):
        if getattr(args, flag) is not None:
            data[key] = getattr(args, flag)
    if args.baseline:
        data["paired_baseline"] = True
    if args.no_render_profile:
        data.pop("render", None)
    return RewardConfig.from_dict(data)


def read_completions(args: argparse.Namespace) -> list[str]:
    from reprompt.errors import RepromptError

    texts = list(args.completion)
    for name in args.completion_file:
        if name == "-":
            texts.append(sys.stdin.read())
            continue
        path = Path(name).expanduser()
        if not path.is_file():
            raise RepromptError(f"completion file {name!r} does not exist")
        texts.append(path.read_text(encoding="utf-8"))
    if not texts:
        raise RepromptError("give a completion: --completion TEXT or --completion-file FILE")
    return texts


def read_metadata(value: str | None) -> Any:
    from reprompt.errors import RepromptError

    if value is None:
        return None
    if value.startswith("@"):
        path = Path(value[1:]).expanduser()
        if not path.is_file():
            raise RepromptError(f"metadata file {value[1:]!r} does not exist")
        value = path.read_text(encoding="utf-8")
    try:
        return json.loads(value)
    except json.JSONDecodeError as e:
        raise RepromptError(f"--metadata is not valid JSON: {e}") from e


def _fmt(v: float | None) -> str:
    return "missing" if v is None else f"{v:+.4f}"


FALLBACK_RULES = {
    "group_worst": "the training rule: a completion with no prompt block is not rendered and gets the "
    "worst score of its group in every component (no safe harbour)",
    "render_original": "a completion with no prompt block renders the original prompt, as inference does",
    "render_a_photo": "a completion with no prompt block renders 'a photo' (the reference code's rule)",
}


def format_result(result: Any, completions: list[str], normalization: str) -> str:
    rule = result.fallback_score
    lines = [f"fallback rule: {rule} ({FALLBACK_RULES.get(rule, 'unknown')})"]
    for i in range(len(result)):
        lines.append(f"completion {i}: {completions[i].strip()[:100]!r}")
        if result.assigned and result.assigned[i]:
            lines.append("  no prompt block: not rendered; scores assigned by the fallback rule")
        else:
            status = (
                "well-formed"
                if result.format_ok[i]
                else (f"fallback, {rule}" if result.fallback[i] else "malformed")
            )
            lines.append(f"  rendered prompt ({status}): {result.prompts[i]}")
        lines.append(f"  seeds: {result.seeds[i]}")
        lines.append(f"  {'component':<14}{'raw':>10}{'normalized':>12}{'weight':>8}")
        for name, col in result.components.items():
            lines.append(
                f"  {name:<14}{_fmt(col[i]):>10}{_fmt(result.normalized[name][i]):>12}{result.weights[name]:>8.3g}"
            )
        if result.baseline:
            for name, col in result.baseline.items():
                lines.append(f"  baseline {name}: {_fmt(col[i])} (gain {_fmt(result.improvement[name][i])})")
        lines.append(f"  total (weighted raw): {_fmt(result.raw_total[i])}")
        lines.append(f"  total (normalization {normalization}): {_fmt(result.total[i])}")
    lines.append(
        f"render calls: {result.render_calls} (+{result.baseline_render_calls} baseline, "
        f"{result.render_cache_hits} from the cache)"
    )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from reprompt.errors import RepromptError

    if args.list:
        from reprompt.rewards import DESCRIPTIONS, component_names

        for name in component_names():
            print(f"{name:<12} {DESCRIPTIONS.get(name, '')}")
        return 0
    if not args.prompt or not args.prompt.strip():
        raise RepromptError('give the original prompt: --prompt "a photo of a cat"')
    completions = read_completions(args)
    metadata = read_metadata(args.metadata)
    config = build_config(args)

    from reprompt.rewards.composite import CompositeReward

    pipeline = CompositeReward.from_config(config)
    result = pipeline.score(
        [args.prompt] * len(completions),
        completions,
        [metadata] * len(completions),
        keep_images=bool(args.save_images),
    )
    if args.save_images and result.images:
        from reprompt.utils.io import atomic_save_image

        for i, row in enumerate(result.images):
            for k, image in enumerate(row):
                atomic_save_image(Path(args.save_images) / f"completion{i}_image{k}.png", image)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print(format_result(result, completions, config.normalization))
    return 0
