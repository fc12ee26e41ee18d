"""Rewrite vs render latency at the paper's scale on one GPU, with random weights (no model hub needed).

    python benchmarks/gpu_latency.py --out $OUT/gpu_latency.json          # on a GPU machine
    python benchmarks/gpu_latency.py --tiny                               # the same code paths on CPU, shrunk

Needs torch, transformers, diffusers and tokenizers (a GPU image without diffusers can install its pure-Python
wheel offline). About 45 GB of GPU memory in bf16 (FLUX 12B + T5-XXL 4.8B + Qwen 3.1B).

Builds the real architectures from their configs (written below as dicts): the policy Qwen2.5-3B-Instruct, and
FLUX.1-dev = its transformer (12B) + T5-XXL encoder + CLIP-L text encoder + VAE, at 512x512, 50 steps,
guidance 3.5, bf16. Random weights cost the same time as trained ones: latency depends on shapes, not values.
Tokenizers are small ones trained in Python (``reprompt.zoo.tokenizers``); the policy's input is fixed to
``--prompt-tokens`` ids (our system prompt plus a GenEval request is ~205 tokens with a Qwen-style BPE) and it
writes exactly ``--new-tokens`` (min_new_tokens = max_new_tokens), so every variant does the same work:

- plain ``generate`` (dynamic KV cache), batch 1;
- static KV cache + ``torch.compile`` (mode reduce-overhead), batch 1;
- vLLM with ``load_format="dummy"`` when vllm is installed.

Target (paper: RePrompt added 10 s to FLUX's 20 s per image on an A100): rewriting costs at most 10% of the
render time. Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

# ------------------------------------------------------------------------------------------------ configs
# Hub configs of Qwen/Qwen2.5-3B-Instruct and black-forest-labs/FLUX.1-dev (transformer, text_encoder = CLIP-L,
# text_encoder_2 = T5 v1.1 XXL, vae, scheduler), copied as the fields that shape the computation.

QWEN25_3B = dict(
    vocab_size=151936, hidden_size=2048, intermediate_size=11008, num_hidden_layers=36, num_attention_heads=16,
    num_key_value_heads=2, hidden_act="silu", max_position_embeddings=32768, rms_norm_eps=1e-6,
    rope_theta=1000000.0, tie_word_embeddings=True, use_sliding_window=False, bos_token_id=151643,
    eos_token_id=151645,
)  # fmt: skip
FLUX_TRANSFORMER = dict(
    patch_size=1, in_channels=64, num_layers=19, num_single_layers=38, attention_head_dim=128,
    num_attention_heads=24, joint_attention_dim=4096, pooled_projection_dim=768, guidance_embeds=True,
    axes_dims_rope=(16, 56, 56),
)  # fmt: skip
T5_XXL = dict(
    vocab_size=32128, d_model=4096, d_kv=64, d_ff=10240, num_layers=24, num_heads=64,
    relative_attention_num_buckets=32, relative_attention_max_distance=128, feed_forward_proj="gated-gelu",
    layer_norm_epsilon=1e-6, tie_word_embeddings=False, dropout_rate=0.0,
)  # fmt: skip
CLIP_L_TEXT = dict(
    vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
    max_position_embeddings=77, hidden_act="quick_gelu", projection_dim=768,
)  # fmt: skip
FLUX_VAE = dict(
    in_channels=3, out_channels=3, latent_channels=16, block_out_channels=(128, 256, 512, 512),
    down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4, layers_per_block=2,
    norm_num_groups=32, act_fn="silu", sample_size=1024, scaling_factor=0.3611, shift_factor=0.1159,
    use_quant_conv=False, use_post_quant_conv=False, force_upcast=True, mid_block_add_attention=True,
)  # fmt: skip
FLUX_SCHEDULER = dict(
    num_train_timesteps=1000, shift=3.0, use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15,
    base_image_seq_len=256, max_image_seq_len=4096,
)  # fmt: skip

# --tiny: every model shrunk to a few layers of width 32-64 (same classes, same wiring).
TINY = {
    "qwen": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2),
    "flux": dict(num_layers=1, num_single_layers=1, attention_head_dim=16, num_attention_heads=2, joint_attention_dim=32,
                 pooled_projection_dim=32, axes_dims_rope=(4, 6, 6)),
    "t5": dict(d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4),
    "clip": dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, projection_dim=32),
    "vae": dict(block_out_channels=(8, 16, 32, 32), layers_per_block=1, norm_num_groups=4, sample_size=64),
}  # fmt: skip


@contextlib.contextmanager
def creating(device: str, dtype: Any) -> Iterator[None]:
    """Create parameters directly on ``device`` in ``dtype`` (a 12B model never exists in float32)."""
    import torch

    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            yield
    finally:
        torch.set_default_dtype(old)


def build_policy(tiny: bool, device: str, dtype: Any) -> tuple[Any, Any]:
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from reprompt.zoo.tokenizers import qwen2_tokenizer

    tok = qwen2_tokenizer()
    cfg = dict(QWEN25_3B, **(TINY["qwen"] if tiny else {}))
    if tiny:
        cfg["vocab_size"] = -(-len(tok) // 64) * 64
    cfg["eos_token_id"] = cfg["pad_token_id"] = tok.convert_tokens_to_ids("<|im_end|>")
    cfg["bos_token_id"] = tok.convert_tokens_to_ids("<|endoftext|>")
    with creating(device, dtype):
        model = Qwen2ForCausalLM(Qwen2Config(**cfg)).eval()
    return model, tok


def build_flux(tiny: bool, device: str, dtype: Any) -> Any:
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    from reprompt.zoo.tokenizers import clip_tokenizer, t5_tokenizer

    clip_tok, t5_tok = clip_tokenizer(), t5_tokenizer()
    clip_cfg = dict(CLIP_L_TEXT, **(TINY["clip"] if tiny else {}))
    t5_cfg = dict(T5_XXL, **(TINY["t5"] if tiny else {}))
    if tiny:
        clip_cfg["vocab_size"], t5_cfg["vocab_size"] = len(clip_tok), len(t5_tok)
    clip_cfg.update(
        bos_token_id=clip_tok.bos_token_id,
        eos_token_id=clip_tok.eos_token_id,
        pad_token_id=clip_tok.pad_token_id,
    )
    t5_cfg.update(
        pad_token_id=t5_tok.pad_token_id,
        eos_token_id=t5_tok.eos_token_id,
        decoder_start_token_id=t5_tok.pad_token_id,
    )
    with creating(device, dtype):
        transformer = FluxTransformer2DModel(**dict(FLUX_TRANSFORMER, **(TINY["flux"] if tiny else {})))
        text_encoder = CLIPTextModel(CLIPTextConfig(**clip_cfg))
        text_encoder_2 = T5EncoderModel(T5Config(**t5_cfg))
        vae = AutoencoderKL(**dict(FLUX_VAE, **(TINY["vae"] if tiny else {})))
    pipe = FluxPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(**FLUX_SCHEDULER), vae=vae, text_encoder=text_encoder,
        tokenizer=clip_tok, text_encoder_2=text_encoder_2, tokenizer_2=t5_tok, transformer=transformer,
    )  # fmt: skip
    pipe.set_progress_bar_config(disable=True)
    return pipe


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
            out = model.generate(input_ids, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False,
                                 pad_token_id=model.config.pad_token_id, **kw)  # fmt: skip
        assert out.shape[1] == input_ids.shape[1] + new_tokens, out.shape

    return timed(run, repeats, warmup, sync)


def vllm_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("vllm") is not None


def time_vllm(folder: Path, input_ids: Any, new_tokens: int, repeats: int, tiny: bool) -> dict[str, Any]:
    """vLLM with random ("dummy") weights from the saved config (call after freeing the other models)."""
    from vllm import LLM, SamplingParams

    llm = LLM(model=str(folder), load_format="dummy", dtype="float32" if tiny else "bfloat16",
              gpu_memory_utilization=0.5)  # fmt: skip
    params = SamplingParams(max_tokens=new_tokens, min_tokens=new_tokens, ignore_eos=True, temperature=0.0)
    prompt = {"prompt_token_ids": input_ids[0].tolist()}
    times = timed(lambda: llm.generate([prompt], params, use_tqdm=False), repeats, 1, lambda: None)
    return summary(times)


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
    ap.add_argument("--no-compile", action="store_true", help="skip the static-cache + torch.compile variant")
    ap.add_argument("--no-vllm", action="store_true")
    ap.add_argument("--out", default=None, help="JSON output path")
    args = ap.parse_args()

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
        "tiny": tiny, "dtype": str(dtype), "torch": torch.__version__, "size": size, "steps": steps,
        "guidance": args.guidance, "prompt_tokens": prompt_tokens, "new_tokens": new_tokens, "repeats": args.repeats,
    }  # fmt: skip

    t = time.perf_counter()
    pipe = build_flux(tiny, device, dtype)
    report["flux_params"] = n_params(pipe.transformer, pipe.text_encoder, pipe.text_encoder_2, pipe.vae)
    report["flux_build_s"] = time.perf_counter() - t
    gen = torch.Generator(device=device).manual_seed(42)

    def render() -> None:
        with torch.inference_mode():
            pipe("a photo of a purple umbrella and a green clock", height=size, width=size, num_inference_steps=steps,
                 guidance_scale=args.guidance, max_sequence_length=512, generator=gen, output_type="pil")  # fmt: skip

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
    print(f"rewrite: Qwen2.5-3B architecture, {report['policy_params'] / 1e6:,.1f}M params, {prompt_tokens} in, "
          f"{new_tokens} out", flush=True)  # fmt: skip
    variants: dict[str, Any] = {
        "plain generate": summary(time_generate(model, ids, new_tokens, args.repeats, 1, sync))
    }
    errors: dict[str, str] = {}
    if not args.no_compile:
        try:
            model.generation_config.cache_implementation = "static"
            model.forward = torch.compile(model.forward, mode="reduce-overhead", fullgraph=True)
            t = time.perf_counter()
            times = time_generate(model, ids, new_tokens, args.repeats, 2, sync)
            variants["static cache + torch.compile"] = dict(
                summary(times), compile_and_warmup_s=time.perf_counter() - t - sum(times)
            )
        except Exception as err:  # keep the other numbers; report why this variant failed
            errors["static cache + torch.compile"] = f"{type(err).__name__}: {str(err)[:500]}"
    if not args.no_vllm and vllm_available():
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
        )  # fmt: skip
        for name, v in variants.items()
    }

    for name, err in errors.items():
        print(f"{name} failed: {err}")
    print(f"\n{report['device']} ({'tiny configs' if tiny else 'full-size configs'}, {report['dtype']})")
    print(f"{'':34}{'median s':>10}{'tok/s':>9}{'% of render':>13}{'<= 10%':>8}")
    print(f"{'render (FLUX.1-dev arch) / image':34}{render_s:>10.3f}")
    for name, v in report["rewrite"].items():
        print(f"{'rewrite: ' + name:34}{v['median']:>10.3f}{v['tokens_per_s']:>9.1f}{v['share_of_render']:>13.1%}"
              f"{'yes' if v['meets_10pct_target'] else 'no':>8}")  # fmt: skip
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
