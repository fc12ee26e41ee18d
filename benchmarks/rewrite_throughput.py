"""Rewriting throughput of a policy on the GenEval prompts: batched vs one prompt at a time.

    python benchmarks/rewrite_throughput.py --policy smollm2 --batch-size 32 --single-limit 64

Greedy decoding with a fixed ``--max-new-tokens``. The batched pass rewrites every prompt; the
one-at-a-time pass rewrites the first ``--single-limit`` prompts (one-at-a-time over all 553 takes hours
on a 2-core CPU); rates are per prompt and per generated token, so they compare directly. Also checks that
batched and one-at-a-time greedy outputs agree on the shared prompts. Prints a table, writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

from reprompt.utils.benchmarks import GENEVAL_METADATA, benchmark_path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_METADATA = benchmark_path(*GENEVAL_METADATA)


def run_pass(policy, prompts, batch_size, max_new_tokens):
    from reprompt.policy import GenerationOptions

    opts = GenerationOptions(max_new_tokens=max_new_tokens, batch_size=batch_size)
    t0 = time.perf_counter()
    out = policy.rewrite(prompts, options=opts, progress=True)
    secs = time.perf_counter() - t0
    toks = sum(r.completion_tokens for r in out)
    return out, {
        "batch_size": batch_size,
        "prompts": len(prompts),
        "seconds": round(secs, 2),
        "prompts_per_s": round(len(prompts) / secs, 3),
        "tokens": toks,
        "tokens_per_s": round(toks / secs, 2),
        "format_ok_rate": round(sum(r.format_ok for r in out) / len(out), 3),
        "fallback_rate": round(sum(r.fallback for r in out) / len(out), 3),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--policy", default="smollm2")
    ap.add_argument("--metadata", default=str(DEFAULT_METADATA))
    ap.add_argument("--limit", type=int, default=None, help="use the first N prompts for the batched pass")
    ap.add_argument("--single-limit", type=int, default=64, help="prompts for the one-at-a-time pass")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--max-new-tokens", type=int, default=128)
    ap.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "2")))
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "rewrite_throughput.json"))
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from reprompt.policy import load_policy

    prompts = [json.loads(line)["prompt"] for line in Path(args.metadata).read_text().splitlines() if line]
    prompts = prompts[: args.limit] if args.limit else prompts
    t0 = time.perf_counter()
    policy = load_policy(args.policy)
    load_s = time.perf_counter() - t0
    policy.rewrite(prompts[:2], max_new_tokens=4)  # warm-up

    single_out, single = run_pass(policy, prompts[: args.single_limit], 1, args.max_new_tokens)
    batched_out, batched = run_pass(policy, prompts, args.batch_size, args.max_new_tokens)
    shared = len(single_out)
    agree = sum(a.completion == b.completion for a, b in zip(single_out, batched_out[:shared], strict=True))
    result = {
        "policy": args.policy,
        "max_new_tokens": args.max_new_tokens,
        "threads": args.threads,
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}",
        "load_seconds": round(load_s, 2),
        "single": single,
        "batched": batched,
        "speedup_prompts_per_s": round(batched["prompts_per_s"] / single["prompts_per_s"], 2),
        "greedy_agreement_on_shared_prompts": f"{agree}/{shared}",
    }
    print(f"\n{'mode':10} {'batch':>5} {'prompts':>7} {'sec':>8} {'prompts/s':>9} {'tok/s':>7} {'fmt ok':>6}")
    for name in ("single", "batched"):
        r = result[name]
        print(
            f"{name:10} {r['batch_size']:>5} {r['prompts']:>7} {r['seconds']:>8} {r['prompts_per_s']:>9} "
            f"{r['tokens_per_s']:>7} {r['format_ok_rate']:>6}"
        )
    print(
        f"speedup (prompts/s): {result['speedup_prompts_per_s']}x; greedy agreement {result['greedy_agreement_on_shared_prompts']}"
    )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
