"""Is falling back a safe harbour? The same sampled completions scored under each ``fallback_score`` rule.

Samples G completions per prompt from the untrained SmolLM2 (prompted as the lab's GRPO-alone row starts:
short system prompt, one worked example; temperature 1, as in training) on RL prompts of both families,
then scores the same completions under ``group_worst`` (the training rule: a completion with no prompt
block is not rendered and gets the worst score of its group), ``render_original`` (inference's rule, the
harbour) and ``render_a_photo`` (the reference code's rule), with the lab's reward (GenEval partial credit on
the sketch simulator + 0.5 format + 0.5 length, each normalized within its group). Reports, per rule: the
share of parsed completions whose advantage (total minus the group mean, the sign GRPO acts on) is
negative, the mean advantage of fallbacks and of parsed completions, how often a fallback outscores a
parsed completion of its group, and the renders. One command, writes JSON:

    OMP_NUM_THREADS=1 python benchmarks/fallback_rules.py --prompts 32
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

from training_runs import HERE, REPO

RULES = ("group_worst", "render_original", "render_a_photo")
SYSTEM = (
    "Rewrite the image request for a text-to-image model. First plan in <reason></reason>, then write the "
    "final prompt in <prompt></prompt>."
)


def reward_config(rule: str) -> dict:
    return {
        "backbone": "sketch",
        "backbone_options": {"width": 256, "height": 256},
        "components": ["geneval", "format", "length"],
        "weights": {"geneval": 1.0, "format": 0.5, "length": 0.5},
        "normalization": "group",
        "images_per_completion": 2,
        "fallback_score": rule,
        "options": {"geneval": {"mode": "partial", "detector": "oracle"}},
    }


def sample(policy: str, prompts: list[str], g: int, max_new_tokens: int, seed: int) -> list[str]:
    from reprompt.format import PromptSpec
    from reprompt.policy import GenerationOptions, load_policy
    from reprompt.train.common import worked_examples

    spec = PromptSpec(tags="reason/prompt", system=SYSTEM, examples=worked_examples("reason/prompt"))
    rewriter = load_policy(policy, prompt_spec=spec)
    options = GenerationOptions(
        max_new_tokens=max_new_tokens, temperature=1.0, num_candidates=g, seed=seed, batch_size=16
    )
    return [rw.completion for rw in rewriter.rewrite(prompts, options=options)]


def analyse(result, groups: list[int]) -> dict:
    adv = []
    for i, t in enumerate(result.total):
        members = [result.total[j] for j in range(len(groups)) if groups[j] == groups[i]]
        adv.append(t - sum(members) / len(members))
    parsed = [i for i, f in enumerate(result.fallback) if not f]
    fallen = [i for i, f in enumerate(result.fallback) if f]
    outscored = sum(
        1
        for i in fallen
        for j in parsed
        if groups[i] == groups[j] and result.total[i] > result.total[j] + 1e-9
    )
    pairs = sum(1 for i in fallen for j in parsed if groups[i] == groups[j])
    return {
        "parsed": len(parsed),
        "fallbacks": len(fallen),
        "parsed_with_negative_advantage": round(sum(adv[i] < -1e-9 for i in parsed) / max(len(parsed), 1), 4),
        "mean_advantage_parsed": round(sum(adv[i] for i in parsed) / max(len(parsed), 1), 4),
        "mean_advantage_fallback": round(sum(adv[i] for i in fallen) / max(len(fallen), 1), 4),
        "fallback_outscores_parsed_pairs": f"{outscored}/{pairs}",
        "render_calls": result.render_calls,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--policy", default="smollm2")
    p.add_argument("--prompts", type=int, default=32, help="RL prompts (both families, interleaved)")
    p.add_argument("--g", type=int, default=4, help="completions per prompt")
    p.add_argument("--max-new-tokens", type=int, default=144)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data", default=None, help="RL prompt file (default: generated as the lab does)")
    p.add_argument("--out", default=str(HERE / "results" / "fallback_rules.json"))
    args = p.parse_args()

    from reprompt.data.prompts import PromptGenConfig, load_prompts, split_prompts
    from reprompt.rewards.composite import CompositeReward
    from reprompt.rewards.config import RewardConfig

    if args.data:
        records = load_prompts(args.data)[: args.prompts]
    else:
        cfg = PromptGenConfig(
            n_sft=0, n_rl=args.prompts, n_heldout=0, tags=tuple(t for t in _tags() if t != "single_object")
        )
        records = split_prompts(cfg)[0]["rl"]
    t0 = time.perf_counter()
    completions = sample(args.policy, [r["prompt"] for r in records], args.g, args.max_new_tokens, args.seed)
    sample_s = time.perf_counter() - t0
    originals = [r["prompt"] for r in records for _ in range(args.g)]
    metadata = [
        {k: r[k] for k in ("tag", "include", "exclude", "prompt") if k in r}
        for r in records
        for _ in range(args.g)
    ]
    groups = [i for i in range(len(records)) for _ in range(args.g)]
    rules = {}
    for rule in RULES:
        reward = CompositeReward.from_config(RewardConfig.from_dict(reward_config(rule)))
        rules[rule] = analyse(reward.score(originals, completions, metadata), groups)
    out = {
        "machine": f"{platform.platform()}, {platform.processor() or 'cpu'}",
        "command": f"OMP_NUM_THREADS=1 python benchmarks/fallback_rules.py --prompts {args.prompts}",
        "policy": args.policy,
        "prompts": len(records),
        "g": args.g,
        "sampling_s": round(sample_s, 1),
        "rules": rules,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    head = f"{'rule':<16}{'parsed':>7}{'fallback':>9}{'parsed adv<0':>14}{'adv parsed':>11}{'adv fallback':>13}{'fb > parsed':>12}{'renders':>9}"
    print(head)
    for rule, r in rules.items():
        print(
            f"{rule:<16}{r['parsed']:>7}{r['fallbacks']:>9}{r['parsed_with_negative_advantage']:>14.2f}"
            f"{r['mean_advantage_parsed']:>+11.3f}{r['mean_advantage_fallback']:>+13.3f}"
            f"{r['fallback_outscores_parsed_pairs']:>12}{r['render_calls']:>9}"
        )
    print(f"wrote {args.out} (repository {REPO.name})")
    return 0


def _tags() -> tuple[str, ...]:
    from reprompt.geneval.vocabulary import FAMILY_TAGS

    return tuple(FAMILY_TAGS)


if __name__ == "__main__":
    raise SystemExit(main())
