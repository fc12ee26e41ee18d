"""Rewrite vs render latency at the paper's scale on one GPU, with random weights (no model hub needed).

    python benchmarks/gpu_latency.py --out $OUT/gpu_latency.json          # on a GPU machine
    python benchmarks/gpu_latency.py --tiny                               # the same code paths on CPU, shrunk

Needs torch, transformers, diffusers and tokenizers (a GPU image without diffusers can install its pure-Python
wheel offline). About 45 GB of GPU memory in bf16 (FLUX 12B + T5-XXL 4.8B + Qwen 3.1B).

Builds the real architectures from their configs (``reprompt.testing.full``): the policy Qwen2.5-3B-Instruct, and
FLUX.1-dev = its transformer (12B) + T5-XXL encoder + CLIP-L text encoder + VAE, at 512x512, 50 steps,
guidance 3.5, bf16. Random weights cost the same time as trained ones: latency depends on shapes, not values.
Tokenizers are small ones trained in Python (``reprompt.testing.tokenizers``); the policy's input is fixed to
``--prompt-tokens`` ids (our system prompt plus a GenEval request is ~205 tokens with a Qwen-style BPE) and it
writes exactly ``--new-tokens`` (min_new_tokens = max_new_tokens), so every variant does the same work:

- ``plain``: ``generate`` with the dynamic KV cache, batch 1;
- ``lookup``: prompt-lookup (n-gram) decoding, ``prompt_lookup_num_tokens=--lookup-tokens`` (what
  ``GenerationOptions.prompt_lookup_num_tokens`` / ``--prompt-lookup`` turn on);
- ``static-compile``: static KV cache + ``torch.compile`` (mode reduce-overhead);
- ``static-compile-lookup``: both (transformers may refuse the combination: the error is recorded);
- ``vllm``: vLLM with ``load_format="dummy"`` when vllm is installed.
Pick them with ``--variants`` (default: all).

Prompt lookup drafts tokens copied from the context and verifies them in one forward pass: it helps only
when drafts are accepted, which random weights almost never do. So for the lookup variants the script also
counts forward passes (tokens per forward = the acceptance actually achieved) and times one forward of
``--lookup-tokens + 1`` tokens against one of 1 token on the same KV cache (``verify_cost_ratio``): with a
trained model that accepts ``a`` tokens per forward, decoding speeds up by about ``a / verify_cost_ratio``
(a real rewrite copies much of the user's prompt and its own plan; ``tests/test_policy.py`` measures ``a``
for SmolLM2 on CPU). On a bandwidth-bound GPU the ratio is near 1; on a small CPU it is not.

Target (paper: RePrompt added 10 s to FLUX's 20 s per image on an A100): rewriting costs at most 10% of the
render time. Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def build_policy(tiny: bool, device: str, dtype: Any) -> tuple[Any, Any]:
    """Qwen2.5-3B-Instruct's architecture (``reprompt.testing.text.QWEN2_5_3B``), or the tiny Qwen2."""
    from reprompt.testing import text
    from reprompt.testing.full import materialize
    from reprompt.testing.tokenizers import qwen2_tokenizer

    tok = qwen2_tokenizer()
    with materialize(device, dtype):
        model = text.qwen2_model(tok, None if tiny else text.QWEN2_5_3B)
    return model, tok


def build_flux(tiny: bool, device: str, dtype: Any) -> Any:
    """FLUX.1-dev's architecture (``reprompt.testing.diffusion.FLUX_DEV``: transformer 12B + T5-XXL + CLIP-L + VAE),
    or the tiny FLUX, built directly on ``device`` in ``dtype``."""
    from reprompt.testing import diffusion
    from reprompt.testing.full import materialize

    with materialize(device, dtype):
        pipe = diffusion.flux_pipeline(0, diffusion.FLUX_TINY if tiny else diffusion.FLUX_DEV)
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)


def n_params(*models: Any) -> int:
    return sum(p.numel() for m in models for p in m.parameters())


def timed(fn: Any, repeats: int, warmup: int, sync: Any) -> list[float]:
    for _ in range(warmup):
        fn()
    sync()
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        sync()
        out.append(time.perf_counter() - t)
    return out


def summary(values: list[float]) -> dict[str, float]:
    v = sorted(values)
    return {"median": statistics.median(v), "min": v[0], "max": v[-1], "n": len(v)}


def policy_input(tok: Any, n_tokens: int, device: str) -> Any:
    """The real chat prompt (our system prompt + a GenEval request), padded or cut to ``n_tokens`` ids."""
    import torch

    from reprompt.format import PromptSpec

    messages = PromptSpec().messages("a photo of a purple umbrella and a green clock")
    text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    ids = tok(text, add_special_tokens=False)["input_ids"]
    ids = (ids * (n_tokens // max(len(ids), 1) + 1))[-n_tokens:]
    return torch.tensor([ids], device=device)


def time_generate(
    model: Any, input_ids: Any, new_tokens: int, repeats: int, warmup: int, sync: Any, **kw: Any
) -> list[float]:
    import torch

    def run() -> None:
        with torch.inference_mode():
            out = model.generate(
                input_ids,
                max_new_tokens=new_tokens,
                min_new_tokens=new_tokens,
                do_sample=False,
                pad_token_id=model.config.pad_token_id,
                **kw,
            )
        assert out.shape[1] == input_ids.shape[1] + new_tokens, out.shape

    return timed(run, repeats, warmup, sync)


class ForwardCounter:
    """Counts the model's forward passes (a hook), to measure tokens per forward under prompt lookup."""

    def __init__(self, model: Any) -> None:
        self.n = 0
        self.handle = model.register_forward_hook(self._hook)

    def _hook(self, *_: Any) -> None:
        self.n += 1

    def close(self) -> None:
        self.handle.remove()


def verify_cost_ratio(model: Any, input_ids: Any, k: int, repeats: int, sync: Any) -> dict[str, float]:
    """Time of one forward of ``k + 1`` new tokens over the cached prompt vs one of 1 token."""
    import torch

    with torch.inference_mode():
        past = model(input_ids=input_ids, use_cache=True).past_key_values

        def step(width: int) -> None:
            model(input_ids=input_ids[:, -width:], past_key_values=past, use_cache=True)
            past.crop(-width)  # back to the prompt: every call sees the same cache

        one = summary(timed(lambda: step(1), repeats, 1, sync))["median"]
        many = summary(timed(lambda: step(k + 1), repeats, 1, sync))["median"]
    return {"forward_1_token_s": one, f"forward_{k + 1}_tokens_s": many, "verify_cost_ratio": many / one}


def vllm_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("vllm") is not None


def time_vllm(folder: Path, input_ids: Any, new_tokens: int, repeats: int, tiny: bool) -> dict[str, Any]:
    """vLLM with random ("dummy") weights from the saved config (call after freeing the other models)."""
    from vllm import LLM, SamplingParams

    llm = LLM(
        model=str(folder),
        load_format="dummy",
        dtype="float32" if tiny else "bfloat16",
        gpu_memory_utilization=0.5,
    )
    params = SamplingParams(max_tokens=new_tokens, min_tokens=new_tokens, ignore_eos=True, temperature=0.0)
    prompt = {"prompt_token_ids": input_ids[0].tolist()}
    times = timed(lambda: llm.generate([prompt], params, use_tqdm=False), repeats, 1, lambda: None)
    return summary(times)


VARIANTS = ("plain", "lookup", "static-compile", "static-compile-lookup", "vllm")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--tiny", action="store_true", help="shrink every model and run on CPU (a correctness check)"
    )
    ap.add_argument("--device", default=None, help="default: cuda, or cpu with --tiny")
    ap.add_argument("--size", type=int, default=None, help="image side (default 512; 64 with --tiny)")
    ap.add_argument("--steps", type=int, default=None, help="denoising steps (default 50; 2 with --tiny)")
    ap.add_argument("--guidance", type=float, default=3.5)
    ap.add_argument(
        "--prompt-tokens", type=int, default=None, help="policy input length (default 208; 32 with --tiny)"
    )
    ap.add_argument(
        "--new-tokens", type=int, default=None, help="tokens the policy writes (default 200; 8 with --tiny)"
    )
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument(
        "--variants", default=",".join(VARIANTS), help=f"comma-separated subset of {', '.join(VARIANTS)}"
    )
    ap.add_argument("--lookup-tokens", type=int, default=10, help="prompt_lookup_num_tokens (default 10)")
    ap.add_argument(
        "--no-compile", action="store_true", help="skip the static-cache + torch.compile variants"
    )
    ap.add_argument("--no-vllm", action="store_true")
    ap.add_argument("--out", default=None, help="JSON output path")
    args = ap.parse_args()
    variants_wanted = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = sorted(set(variants_wanted) - set(VARIANTS))
    if unknown:
        sys.exit(f"unknown --variants {', '.join(unknown)}: choose from {', '.join(VARIANTS)}")
    if args.no_compile:
        variants_wanted = [v for v in variants_wanted if not v.startswith("static-compile")]
    if args.no_vllm:
        variants_wanted = [v for v in variants_wanted if v != "vllm"]

    import torch

    tiny = args.tiny
    device = args.device or ("cpu" if tiny else "cuda")
    if device.startswith("cuda") and not torch.cuda.is_available():
        sys.exit("no CUDA device: run on a GPU machine, or use --tiny for the CPU check")
    dtype = torch.float32 if device == "cpu" else torch.bfloat16
    size = args.size or (64 if tiny else 512)
    steps = args.steps or (2 if tiny else 50)
    prompt_tokens = args.prompt_tokens or (32 if tiny else 208)
    new_tokens = args.new_tokens or (8 if tiny else 200)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    torch.manual_seed(0)
    report: dict[str, Any] = {
        "device": torch.cuda.get_device_name(0) if device.startswith("cuda") else "cpu",
        "tiny": tiny,
        "dtype": str(dtype),
        "torch": torch.__version__,
        "size": size,
        "steps": steps,
        "guidance": args.guidance,
        "prompt_tokens": prompt_tokens,
        "new_tokens": new_tokens,
        "repeats": args.repeats,
    }

    t = time.perf_counter()
    pipe = build_flux(tiny, device, dtype)
    report["flux_params"] = n_params(pipe.transformer, pipe.text_encoder, pipe.text_encoder_2, pipe.vae)
    report["flux_build_s"] = time.perf_counter() - t
    gen = torch.Generator(device=device).manual_seed(42)

    def render() -> None:
        with torch.inference_mode():
            pipe(
                "a photo of a purple umbrella and a green clock",
                height=size,
                width=size,
                num_inference_steps=steps,
                guidance_scale=args.guidance,
                max_sequence_length=512,
                generator=gen,
                output_type="pil",
            )

    print(
        f"render: FLUX.1-dev architecture, {report['flux_params'] / 1e6:,.1f}M params, {size}x{size}, {steps} steps",
        flush=True,
    )
    report["render_s"] = summary(timed(render, args.repeats, 1, sync))
    if device.startswith("cuda"):
        report["render_peak_gib"] = torch.cuda.max_memory_allocated() / 2**30

    t = time.perf_counter()
    model, tok = build_policy(tiny, device, dtype)
    report["policy_params"] = n_params(model)
    report["policy_build_s"] = time.perf_counter() - t
    ids = policy_input(tok, prompt_tokens, device)
    print(
        f"rewrite: Qwen2.5-3B architecture, {report['policy_params'] / 1e6:,.1f}M params, {prompt_tokens} in, "
        f"{new_tokens} out",
        flush=True,
    )
    variants: dict[str, Any] = {}
    errors: dict[str, str] = {}
    lookup = {"prompt_lookup_num_tokens": args.lookup_tokens}
    report["lookup_tokens"] = args.lookup_tokens
    if "plain" in variants_wanted:
        variants["plain generate"] = summary(time_generate(model, ids, new_tokens, args.repeats, 1, sync))
    if "lookup" in variants_wanted:
        counter = ForwardCounter(model)
        times = time_generate(model, ids, new_tokens, args.repeats, 1, sync, **lookup)
        counter.close()
        runs = args.repeats + 1  # the warm-up generates too
        variants["prompt lookup"] = dict(summary(times), tokens_per_forward=runs * new_tokens / counter.n)
        report["lookup_verify_cost"] = verify_cost_ratio(
            model, ids, args.lookup_tokens, max(args.repeats, 3), sync
        )
    for name in ("static-compile", "static-compile-lookup"):
        if name not in variants_wanted:
            continue
        label = "static cache + torch.compile" + (" + prompt lookup" if name.endswith("lookup") else "")
        try:
            from transformers import CompileConfig

            # transformers compiles the forward itself for a static cache on a GPU (and handles the CUDA-graph
            # steps); wrapping model.forward in torch.compile by hand broke with transformers 5.24 on an H200
            # ("accessing tensor output of CUDAGraphs that has been overwritten by a subsequent run").
            model.generation_config.cache_implementation = "static"
            model.generation_config.compile_config = CompileConfig(fullgraph=True, mode="reduce-overhead")
            extra = lookup if name.endswith("lookup") else {}
            t = time.perf_counter()
            times = time_generate(model, ids, new_tokens, args.repeats, 2, sync, **extra)
            variants[label] = dict(summary(times), compile_and_warmup_s=time.perf_counter() - t - sum(times))
        except Exception as err:  # keep the other numbers; report why this variant failed
            errors[label] = f"{type(err).__name__}: {str(err)[:500]}"
        finally:
            model.generation_config.cache_implementation = None
            model.generation_config.compile_config = None
    if "vllm" in variants_wanted and vllm_available():
        folder = Path(tempfile.mkdtemp(prefix="qwen-dummy-"))
        model.config.save_pretrained(folder)
        tok.save_pretrained(folder)
        del model, pipe  # vLLM sizes its KV cache from free GPU memory
        gc.collect()
        if device.startswith("cuda"):
            torch.cuda.empty_cache()
        try:
            variants["vllm"] = time_vllm(folder, ids, new_tokens, args.repeats, tiny)
        except Exception as err:
            errors["vllm"] = f"{type(err).__name__}: {str(err)[:500]}"
    report["errors"] = errors
    render_s = report["render_s"]["median"]
    report["rewrite"] = {
        name: dict(
            v,
            tokens_per_s=new_tokens / v["median"],
            share_of_render=v["median"] / render_s,
            meets_10pct_target=v["median"] <= 0.10 * render_s,
        )
        for name, v in variants.items()
    }

    for name, err in errors.items():
        print(f"{name} failed: {err}")
    print(f"\n{report['device']} ({'tiny configs' if tiny else 'full-size configs'}, {report['dtype']})")
    print(f"{'':34}{'median s':>10}{'tok/s':>9}{'% of render':>13}{'<= 10%':>8}")
    print(f"{'render (FLUX.1-dev arch) / image':34}{render_s:>10.3f}")
    for name, v in report["rewrite"].items():
        print(
            f"{'rewrite: ' + name:34}{v['median']:>10.3f}{v['tokens_per_s']:>9.1f}{v['share_of_render']:>13.1%}"
            f"{'yes' if v['meets_10pct_target'] else 'no':>8}"
        )
    if "lookup_verify_cost" in report:
        cost = report["lookup_verify_cost"]
        accepted = report["rewrite"]["prompt lookup"]["tokens_per_forward"]
        print(
            f"prompt lookup: {accepted:.2f} tokens per forward with these weights; one forward of "
            f"{args.lookup_tokens + 1} tokens costs {cost['verify_cost_ratio']:.2f}x one of 1 token, so a model "
            f"accepting a tokens per forward decodes ~a/{cost['verify_cost_ratio']:.2f} times faster"
        )
    if args.out:
        from reprompt.utils.io import atomic_write_json

        atomic_write_json(args.out, report)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
