"""FLUX.1-dev render time per image against its compute floor: plain, a step cache, compiled, both.

    python benchmarks/gpu_render.py --out $OUT/gpu_render.json          # on a GPU machine (H100/H200)
    python benchmarks/gpu_render.py --tiny --compile backend=eager      # the same code paths on CPU, shrunk

The GPU half of the standing order: rendering is most of a GRPO step (RESULTS §7: 81%) and of a served
request. Builds FLUX.1-dev's architecture with random weights (``reprompt.testing.full``; latency depends on
shapes, not values) at 512², guidance 3.5, bf16, text length 512, and renders through reprompt's own
``DiffusersBackbone`` with per-call ``RenderSettings`` (what ``--steps``, ``--cache`` and ``--compile`` do on
every command), timing whole pipeline calls (text encoders, the denoising steps, VAE decode):

- ``plain``: the pipeline as diffusers runs it;
- ``cache``: diffusers' step cache ``--cache`` (First-Block-Cache at 0.12 by default; it renders one image
  per pipeline call, so every row here is batch 1 unless ``--batch`` says otherwise);
- ``compiled``: the transformer under ``torch.compile`` (``--compile``, mode ``default``); the first call
  compiles, recorded apart from the timed calls;
- ``both``: the cache and the compiled transformer (compiles again: the cache's hooks change the graph).

Each variant is timed at every ``--steps-list`` value (50 and 28). With RANDOM weights a data-dependent cache
(First-Block-Cache) skips as often as random features happen to allow, not as often as the real model would:
each cache row records the share of steps in which the last transformer block computed (an untimed eager
call with a counter on it), so its time can be read against that share. Quality cannot be measured on random
weights: RESULTS §7 lists each cache setting's published quality change with its source.

Floor: the transformer's matmul FLOPs, 2 × parameters × tokens × steps, tokens = (side/16)² image tokens +
512 text tokens (1,536 at 512²: ~1.8 PFLOP per image at 50 steps for 11.9B parameters), divided by
``--peak-tflops`` (989, the H100/H200 SXM dense bf16 peak). Attention's own FLOPs (~5% at 1,536 tokens), the
text encoders and the VAE come on top, so no plain render reaches 100% of it; a cache that skips blocks can.
``floor_fraction`` is against the floor at the row's own steps, ``of_50_step_floor`` against the 50-step
floor (what the paper's setting costs at best). Prints a table and writes JSON after every row.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from gpu_latency import build_flux, n_params, summary, timed

TEXT_TOKENS = 512  # FLUX.1-dev's T5 sequence length (max_sequence_length)
PROMPT = "a photo of a purple umbrella and a green clock"
VARIANTS = ("plain", "cache", "compiled", "both")


def floor_seconds(transformer_params: int, side: int, steps: int, peak_tflops: float) -> dict[str, float]:
    """Per-image compute floor of the transformer's matmuls (attention, encoders and VAE not counted)."""
    tokens = (side // 16) ** 2 + TEXT_TOKENS
    flops = 2.0 * transformer_params * tokens * steps
    return {"tokens": tokens, "pflop_per_image": flops / 1e15, "floor_s": flops / (peak_tflops * 1e12)}


def ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def settings_of(variant: str, steps: int, cache: str, compile: str) -> Any:
    from reprompt.backbones.base import RenderSettings

    return RenderSettings(
        steps=steps,
        cache=cache if variant in ("cache", "both") else "none",
        compile=compile if variant in ("compiled", "both") else "none",
    )


def last_block_computes(backbone: Any, settings: Any, seed: int) -> float:
    """Share of the denoising steps in which the transformer's last block computed (one eager call)."""
    from dataclasses import replace

    transformer = backbone.pipe.transformer
    blocks = list(getattr(transformer, "single_transformer_blocks", [])) or list(
        transformer.transformer_blocks
    )
    calls: list[int] = []
    handle = blocks[-1].attn.to_q.register_forward_pre_hook(lambda *_: calls.append(1))
    try:
        backbone.render([PROMPT], [seed], replace(settings, compile="none"))
    finally:
        handle.remove()
    return len(calls) / settings.steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tiny", action="store_true", help="shrunk FLUX on CPU (a correctness check)")
    ap.add_argument("--device", default=None, help="default: cuda, or cpu with --tiny")
    ap.add_argument("--size", type=int, default=None, help="image side (default 512; 64 with --tiny)")
    ap.add_argument(
        "--steps-list", default=None, help="denoising steps to time (default 50,28; 4,2 with --tiny)"
    )
    ap.add_argument("--guidance", type=float, default=3.5)
    ap.add_argument("--variants", default=",".join(VARIANTS), help=f"any of {', '.join(VARIANTS)}")
    ap.add_argument("--cache", default="first-block:0.12", help="the cache of the cache and both variants")
    ap.add_argument(
        "--compile",
        default="default",
        help="the compile spec of the compiled and both variants (backend=eager: trace only, for a CPU check)",
    )
    ap.add_argument("--no-compile", action="store_true", help="drop the compiled and both variants")
    ap.add_argument(
        "--batch", type=int, default=1, help="images per call (a first-block cache renders one at a time)"
    )
    ap.add_argument("--repeats", type=int, default=2, help="timed calls per setting (after one warm-up)")
    ap.add_argument("--peak-tflops", type=float, default=989.0, help="dense bf16 peak of the GPU")
    ap.add_argument("--out", default=None, help="JSON output path (written after every row)")
    args = ap.parse_args()

    import torch

    from reprompt.backbones.diffusers_backbone import DiffusersBackbone

    tiny = args.tiny
    device = args.device or ("cpu" if tiny else "cuda")
    if device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit("no CUDA device: run on a GPU machine, or use --tiny for the CPU check")
    cuda = device.startswith("cuda")
    dtype = torch.bfloat16 if cuda else torch.float32
    size = args.size or (64 if tiny else 512)
    steps_list = ints(args.steps_list or ("4,2" if tiny else "50,28"))
    variants = [v for v in args.variants.split(",") if v]
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        sys.exit(f"unknown variants {unknown}: use {', '.join(VARIANTS)}")
    if args.no_compile:
        variants = [v for v in variants if v not in ("compiled", "both")]
    sync = torch.cuda.synchronize if cuda else (lambda: None)

    t = time.perf_counter()
    pipe = build_flux(tiny, device, dtype)
    backbone = DiffusersBackbone(
        pipe,
        "flux-dev (random weights)",
        height=size,
        width=size,
        steps=max(steps_list),
        guidance=args.guidance,
        max_sequence_length=TEXT_TOKENS,
        batch_size=args.batch,
    )
    params = n_params(pipe.transformer)
    report: dict[str, Any] = {
        "device": torch.cuda.get_device_name(0) if cuda else "cpu",
        "tiny": tiny,
        "dtype": str(dtype),
        "torch": torch.__version__,
        "size": size,
        "steps": steps_list,
        "guidance": args.guidance,
        "batch": args.batch,
        "repeats": args.repeats,
        "cache": args.cache,
        "compile": None if args.no_compile else args.compile,
        "transformer_params": params,
        "flux_params": n_params(pipe.transformer, pipe.text_encoder, pipe.text_encoder_2, pipe.vae),
        "build_s": time.perf_counter() - t,
        "peak_tflops": args.peak_tflops,
        "floor": floor_seconds(params, size, 50, args.peak_tflops),
        "rows": [],
        "errors": {},
    }
    floor50 = report["floor"]["floor_s"]
    print(
        f"FLUX.1-dev architecture, transformer {params / 1e9:.2f}B params, {size}x{size}, steps {steps_list}, "
        f"batch {args.batch}; floor {floor50:.3f} s/image at 50 steps, {args.peak_tflops:.0f} TFLOPS",
        flush=True,
    )

    def save() -> None:
        if args.out:
            from reprompt.utils.io import atomic_write_json

            atomic_write_json(args.out, report)

    seeds = [42 + k for k in range(args.batch)]
    for variant in variants:
        warm = True
        for steps in steps_list:
            settings = settings_of(variant, steps, args.cache, args.compile)
            call = lambda s=settings: backbone.render([PROMPT] * args.batch, seeds, s)  # noqa: E731
            if cuda:
                torch.cuda.reset_peak_memory_stats()
            t = time.perf_counter()
            try:
                if warm:  # the variant's first call (compiles, for the compiled ones)
                    call()
                    sync()
                warmup_s = time.perf_counter() - t if warm else 0.0
                warm = False
                times = timed(call, args.repeats, 0, sync)
                computed = (
                    last_block_computes(backbone, settings, seeds[0]) if settings.cache != "none" else None
                )
            except Exception as err:  # e.g. out of memory or a compile failure: recorded, the rest still runs
                report["errors"][f"{variant} {steps} steps"] = f"{type(err).__name__}: {str(err)[:500]}"
                print(f"{variant} {steps} steps failed: {type(err).__name__}: {str(err)[:200]}", flush=True)
                if cuda:
                    torch.cuda.empty_cache()
                save()
                continue
            s = summary(times)
            per_image = s["median"] / args.batch
            floor = floor_seconds(params, size, steps, args.peak_tflops)["floor_s"]
            row = dict(
                s,
                variant=variant,
                steps=steps,
                batch=args.batch,
                warmup_s=warmup_s,
                s_per_image=per_image,
                floor_fraction=floor / per_image,
                of_50_step_floor=floor50 / per_image,
                last_block_computed=computed,
                peak_gib=torch.cuda.max_memory_allocated() / 2**30 if cuda else None,
            )
            report["rows"].append(row)
            save()
            skip = f", last block computed in {computed:.0%} of steps" if computed is not None else ""
            print(
                f"{variant:>9} {steps:>3} steps: {per_image:.3f} s/image ({row['floor_fraction']:.0%} of its floor, "
                f"{row['of_50_step_floor']:.0%} of the 50-step floor; warm-up {warmup_s:.1f} s{skip})",
                flush=True,
            )

    print(f"\n{report['device']} ({'tiny configs' if tiny else 'full-size configs'}, {report['dtype']})")
    print(
        f"{'variant':>9}{'steps':>7}{'s/image':>10}{'of floor':>10}{'of 50-st':>10}{'warm-up s':>11}"
        f"{'last blk':>10}{'peak GiB':>10}"
    )
    for r in report["rows"]:
        peak = f"{r['peak_gib']:.1f}" if r["peak_gib"] is not None else "-"
        blk = f"{r['last_block_computed']:.0%}" if r["last_block_computed"] is not None else "-"
        print(
            f"{r['variant']:>9}{r['steps']:>7}{r['s_per_image']:>10.3f}{r['floor_fraction']:>10.0%}"
            f"{r['of_50_step_floor']:>10.0%}{r['warmup_s']:>11.1f}{blk:>10}{peak:>10}"
        )
    print(f"floor at 50 steps: {floor50:.3f} s/image ({report['floor']['pflop_per_image']:.2f} PFLOP)")
    if args.out:
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
