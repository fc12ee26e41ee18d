"""Rewrite vs render latency on this CPU: SmolLM2-135M (the offline policy) with the sketch simulator and
with the tiny random FLUX.1-dev pipeline from the zoo (64x64 / 2 steps, and the paper's 512x512 / 50 steps).

    OMP_NUM_THREADS=1 python benchmarks/latency_cpu.py --n-prompts 8 --table-prompts 16 --out runs/bench/latency_cpu.json

The policy is timed once (batch 1 and batched, greedy) and paired with each backbone's render time. With
the GenEval metadata present it also rebuilds the paper's accuracy/latency table on the sketch backbone
(backbone alone, one rewrite, the Idea2Img-style loop with K rounds judged by the GenEval oracle). Tiny
FLUX has random weights: its numbers measure the pipeline's work at that size, not a real model's.
Prints tables and writes JSON.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from reprompt.utils.benchmarks import GENEVAL_METADATA, benchmark_path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_METADATA = benchmark_path(*GENEVAL_METADATA)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--policy", default="smollm2")
    ap.add_argument("--n-prompts", type=int, default=8, help="prompts for the latency timings")
    ap.add_argument(
        "--table-prompts", type=int, default=16, help="GenEval prompts for the accuracy table (0: skip)"
    )
    ap.add_argument("--rounds", type=int, default=3, help="K of the iterative baseline")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--max-new-tokens", type=int, default=256)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (the machine is shared)")
    ap.add_argument("--metadata", default=str(DEFAULT_METADATA))
    ap.add_argument("--out", default=str(REPO / "runs" / "bench" / "latency_cpu.json"))
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from reprompt.backbones import load_backbone
    from reprompt.latency.measure import (
        DEFAULT_PROMPTS,
        LatencyConfig,
        accuracy_table,
        environment,
        load_metadata,
        measure_render,
        measure_rewrite,
    )
    from reprompt.policy import GenerationOptions, load_policy
    from reprompt.testing import build_tiny
    from reprompt.utils.io import atomic_write_json

    metas = load_metadata(args.metadata, args.n_prompts) if Path(args.metadata).is_file() else None
    prompts = [m["prompt"] for m in metas] if metas else list(DEFAULT_PROMPTS)[: args.n_prompts]
    options = GenerationOptions(max_new_tokens=args.max_new_tokens)
    policy = load_policy(args.policy)
    print(
        f"timing {args.policy} on {len(prompts)} prompts (batch 1, then batch {args.batch_size}) ...",
        flush=True,
    )
    rewrite = measure_rewrite(policy, prompts, options, args.batch_size, warmup=1)
    rewritten = rewrite.pop("rewrites")

    flux = str(build_tiny("tiny-flux"))
    backbones = {
        "sketch": lambda: load_backbone("sketch"),
        "tiny-flux 64x64, 2 steps": lambda: load_backbone(
            "flux-dev", model=flux, height=64, width=64, steps=2
        ),
        "tiny-flux 512x512, 50 steps": lambda: load_backbone(
            "flux-dev", model=flux, height=512, width=512, steps=50
        ),
    }
    rows = []
    for name, make in backbones.items():
        print(f"timing render: {name} ...", flush=True)
        render = measure_render(make(), rewritten, seed=42, images_per_prompt=1, warmup=1)
        r1, rb = rewrite["batch_1"]["median"], rewrite["batched"]["median"]
        rows.append(
            {
                "backbone": name,
                "render": render,
                "total_per_image_batch_1": r1 + render["median"],
                "rewrite_share_batch_1": r1 / (r1 + render["median"]),
                "total_per_image_batched": rb + render["median"],
                "rewrite_share_batched": rb / (rb + render["median"]),
            }
        )

    table = None
    if metas and args.table_prompts:
        print(
            f"accuracy table on {args.table_prompts} GenEval prompts (sketch, K={args.rounds}) ...",
            flush=True,
        )
        cfg = LatencyConfig(n_prompts=args.table_prompts, iterative_rounds=args.rounds)
        table_metas = load_metadata(args.metadata, args.table_prompts)
        table = accuracy_table(
            policy,
            load_backbone("sketch"),
            table_metas,
            cfg,
            GenerationOptions(max_new_tokens=args.max_new_tokens, batch_size=1),
        )

    report = {
        "policy": args.policy,
        "environment": environment(),
        "prompts": prompts,
        "max_new_tokens": args.max_new_tokens,
        "rewrite": rewrite,
        "backbones": rows,
        "table": table,
    }
    rw = rewrite
    print(
        f"\n{report['environment']['device']}, torch threads {args.threads}; policy {args.policy}, greedy, "
        f"<= {args.max_new_tokens} new tokens (median {rw['completion_tokens']['median']:.0f}), "
        f"{rw['tokens_per_second_batch_1']:.1f} tok/s at batch 1"
    )
    print(
        f"rewrite s/prompt: batch 1 median {rw['batch_1']['median']:.2f} p90 {rw['batch_1']['p90']:.2f}; "
        f"batch {args.batch_size} median {rw['batched']['median']:.2f} p90 {rw['batched']['p90']:.2f}"
    )
    print(
        f"\n{'backbone':30}{'render s/img':>14}{'p90':>8}{'total s/img':>13}{'rewrite share':>15}{'(batched)':>11}"
    )
    for r in rows:
        print(
            f"{r['backbone']:30}{r['render']['median']:>14.3f}{r['render']['p90']:>8.3f}"
            f"{r['total_per_image_batch_1']:>13.2f}{r['rewrite_share_batch_1']:>15.1%}"
            f"{r['rewrite_share_batched']:>11.1%}"
        )
    if table:
        print(f"\n{'method (sketch backbone)':62}{'accuracy':>9}{'s/img':>9}{'rounds':>8}")
        for row in table:
            print(
                f"{row['method']:62}{row['accuracy']:>9.3f}{row['seconds_per_image']:>9.2f}{row['rounds']:>8.2f}"
            )
    atomic_write_json(args.out, report)
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
