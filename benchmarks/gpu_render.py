"""FLUX.1-dev render time per image against its compute floor: batch sizes, eager vs torch.compile.

    python benchmarks/gpu_render.py --out $OUT/gpu_render.json      # on a GPU machine (H100/H200)
    python benchmarks/gpu_render.py --tiny --no-compile             # the same code paths on CPU, shrunk

The GPU half of the standing order (the rewrite half is ``gpu_latency.py``): rendering is most of a GRPO
step (RESULTS §7: 81%) and of a served request, so how close it runs to its floor decides what is worth
optimising. Builds FLUX.1-dev's architecture with random weights (``reprompt.testing.full``; latency depends
on shapes, not values) at 512², 50 steps, guidance 3.5, bf16, text length 512, and times whole pipeline
calls (text encoders, 50 transformer steps, VAE decode), as a user or the reward pays them:

- ``eager``: the pipeline as diffusers runs it, at each ``--batches`` size;
- ``compiled``: the transformer wrapped in ``torch.compile(fullgraph=True, mode=--compile-mode)`` (the
  recipe of diffusers' FLUX speed-up guide), at each ``--compile-batches`` size; each new batch size compiles
  again (static shapes), and that time is recorded apart from the timed calls.

Floor: the transformer's matmul FLOPs, 2 × parameters × tokens × steps, tokens = (side/16)² image tokens +
512 text tokens (1,536 at 512²: ~1.8 PFLOP per image for 11.9B parameters), divided by ``--peak-tflops``
(989, the H100/H200 SXM dense bf16 peak). Attention's own FLOPs (~5% at 1,536 tokens), the text encoders and
the VAE come on top, so no implementation reaches 100% of it. Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from gpu_latency import build_flux, n_params, summary, timed

TEXT_TOKENS = 512  # FLUX.1-dev's T5 sequence length (max_sequence_length)
PROMPT = "a photo of a purple umbrella and a green clock"


def floor_seconds(transformer_params: int, side: int, steps: int, peak_tflops: float) -> dict[str, float]:
    """Per-image compute floor of the transformer's matmuls (attention, encoders and VAE not counted)."""
    tokens = (side // 16) ** 2 + TEXT_TOKENS
    flops = 2.0 * transformer_params * tokens * steps
    return {"tokens": tokens, "pflop_per_image": flops / 1e15, "floor_s": flops / (peak_tflops * 1e12)}


def ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tiny", action="store_true", help="shrunk FLUX on CPU (a correctness check)")
    ap.add_argument("--device", default=None, help="default: cuda, or cpu with --tiny")
    ap.add_argument("--size", type=int, default=None, help="image side (default 512; 64 with --tiny)")
    ap.add_argument("--steps", type=int, default=None, help="denoising steps (default 50; 2 with --tiny)")
    ap.add_argument("--guidance", type=float, default=3.5)
    ap.add_argument("--batches", default=None, help="eager batch sizes (default 1,2,4,8; 1,2 with --tiny)")
    ap.add_argument(
        "--compile-batches", default=None, help="compiled batch sizes (default 1,8; 1 with --tiny)"
    )
    ap.add_argument(
        "--compile-mode", default="default", help="torch.compile mode (max-autotune: slower to compile)"
    )
    ap.add_argument("--no-compile", action="store_true", help="time the eager pipeline only")
    ap.add_argument("--repeats", type=int, default=2, help="timed calls per setting (after one warm-up)")
    ap.add_argument("--peak-tflops", type=float, default=989.0, help="dense bf16 peak of the GPU")
    ap.add_argument("--out", default=None, help="JSON output path")
    args = ap.parse_args()

    import torch

    tiny = args.tiny
    device = args.device or ("cpu" if tiny else "cuda")
    if device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit("no CUDA device: run on a GPU machine, or use --tiny for the CPU check")
    cuda = device.startswith("cuda")
    dtype = torch.bfloat16 if cuda else torch.float32
    size = args.size or (64 if tiny else 512)
    steps = args.steps or (2 if tiny else 50)
    batches = ints(args.batches or ("1,2" if tiny else "1,2,4,8"))
    compile_batches = [] if args.no_compile else ints(args.compile_batches or ("1" if tiny else "1,8"))
    sync = torch.cuda.synchronize if cuda else (lambda: None)

    t = time.perf_counter()
    pipe = build_flux(tiny, device, dtype)
    report: dict[str, Any] = {
        "device": torch.cuda.get_device_name(0) if cuda else "cpu",
        "tiny": tiny,
        "dtype": str(dtype),
        "torch": torch.__version__,
        "size": size,
        "steps": steps,
        "guidance": args.guidance,
        "repeats": args.repeats,
        "compile_mode": None if args.no_compile else args.compile_mode,
        "transformer_params": n_params(pipe.transformer),
        "flux_params": n_params(pipe.transformer, pipe.text_encoder, pipe.text_encoder_2, pipe.vae),
        "build_s": time.perf_counter() - t,
        "peak_tflops": args.peak_tflops,
    }
    report["floor"] = floor_seconds(report["transformer_params"], size, steps, args.peak_tflops)
    floor = report["floor"]["floor_s"]
    print(
        f"FLUX.1-dev architecture, transformer {report['transformer_params'] / 1e9:.2f}B params, {size}x{size}, "
        f"{steps} steps; floor {floor:.3f} s/image at {args.peak_tflops:.0f} TFLOPS",
        flush=True,
    )

    def call(batch: int) -> None:
        generators = [torch.Generator(device=device).manual_seed(42 + k) for k in range(batch)]
        with torch.inference_mode():
            pipe(
                [PROMPT] * batch,
                height=size,
                width=size,
                num_inference_steps=steps,
                guidance_scale=args.guidance,
                max_sequence_length=TEXT_TOKENS,
                generator=generators,
                output_type="pil",
            )

    rows: list[dict[str, Any]] = []
    errors: dict[str, str] = {}

    def measure(variant: str, batch: int) -> None:
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        t = time.perf_counter()
        try:
            call(batch)  # warm-up (compiles, for the compiled variant)
            sync()
            warmup_s = time.perf_counter() - t
            times = timed(lambda: call(batch), args.repeats, 0, sync)
        except Exception as err:  # e.g. out of memory, or a compile failure: recorded, the rest still runs
            errors[f"{variant} batch {batch}"] = f"{type(err).__name__}: {str(err)[:500]}"
            print(f"{variant} batch {batch} failed: {type(err).__name__}", flush=True)
            if cuda:
                torch.cuda.empty_cache()
            return
        s = summary(times)
        per_image = s["median"] / batch
        row = dict(
            s,
            variant=variant,
            batch=batch,
            warmup_s=warmup_s,
            s_per_image=per_image,
            floor_fraction=floor / per_image,
            peak_gib=torch.cuda.max_memory_allocated() / 2**30 if cuda else None,
        )
        rows.append(row)
        print(
            f"{variant:>9} batch {batch}: {s['median']:.3f} s/call, {per_image:.3f} s/image "
            f"({row['floor_fraction']:.0%} of the floor)",
            flush=True,
        )

    for batch in batches:
        measure("eager", batch)
    if compile_batches:
        pipe.transformer = torch.compile(pipe.transformer, fullgraph=True, mode=args.compile_mode)
        for batch in compile_batches:
            measure("compiled", batch)
    report["rows"] = rows
    report["errors"] = errors

    print(f"\n{report['device']} ({'tiny configs' if tiny else 'full-size configs'}, {report['dtype']})")
    print(
        f"{'variant':>9}{'batch':>7}{'s/call':>10}{'s/image':>10}{'of floor':>10}{'warm-up s':>11}{'peak GiB':>10}"
    )
    for r in rows:
        peak = f"{r['peak_gib']:.1f}" if r["peak_gib"] is not None else "-"
        print(
            f"{r['variant']:>9}{r['batch']:>7}{r['median']:>10.3f}{r['s_per_image']:>10.3f}"
            f"{r['floor_fraction']:>10.0%}{r['warmup_s']:>11.1f}{peak:>10}"
        )
    print(
        f"floor: {floor:.3f} s/image ({report['floor']['pflop_per_image']:.2f} PFLOP at {args.peak_tflops:.0f} TFLOPS)"
    )
    if args.out:
        from reprompt.utils.io import atomic_write_json

        atomic_write_json(args.out, report)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
