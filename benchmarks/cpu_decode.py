"""Where a CPU GRPO step's sampling goes (issue 17, lab speed): one GRPO generation batch of SmolLM2-135M
under several decoding set-ups.

Sampling is over half of a lab GRPO step with a reason block (RESULTS §8). This times what GRPO's sampling
does on this CPU — 2 prompts × G=4 completions, temperature 1, up to 144 new tokens, stopping at
``</prompt>`` — from one LoRA policy, and what other ways of holding the same policy would cost:

- ``peft-fp32``: the LoRA adapter unmerged, fp32 weights: what the lab's GRPO sampling runs (TRL samples
  through ``PeftModel.generate``, which calls the inner model and so bypasses the autocast Accelerate wraps
  around ``PeftModel.forward``: ``bf16: true`` speeds up the log-prob and update passes, not sampling;
  RESULTS §8's ladder: sampling 25.5 s fp32, 24.8 s bf16);
- ``peft-bf16-autocast``: the same under bf16 autocast (fp32 weights cast to bf16 at every call);
- ``merged-fp32``: the adapter merged into the weights (inference's way);
- ``peft-bf16w``: the adapter unmerged (fp32) on a base held in bf16: the lab's sampling under
  ``--dtype bfloat16`` (RESULTS §8's cut);
- ``merged-bf16``: merged and stored in bf16 (half the bytes read per token);
- ``merged-fp32-static``: merged, with a preallocated KV cache (no concatenation per token).

Variants are interleaved round by round, so load from other processes falls on each alike; the minimum over
rounds is reported. Also a profile of one decode step (which operators take the time). One thread.

    OMP_NUM_THREADS=1 python benchmarks/cpu_decode.py --policy benchmarks/adapters/sft-reason --rounds 3

Only timings: the variants sample different tokens (other numerics), so none of them is a drop-in change
for runs that must stay comparable with ones already trained.
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
VARIANTS = (
    "peft-fp32",
    "peft-bf16-autocast",
    "peft-bf16w",
    "merged-fp32",
    "merged-bf16",
    "merged-fp32-static",
)


def load_variants(policy: str) -> tuple[dict[str, Any], Any]:
    """The policy held each way (name -> model), and the tokenizer."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from reprompt.policy import resolve_policy_source

    source = resolve_policy_source(policy)
    if source.adapter is None:
        raise SystemExit(f"{policy} is not a LoRA adapter folder")
    adapter, base = Path(source.adapter), source.model
    tok = AutoTokenizer.from_pretrained(adapter if (adapter / "tokenizer_config.json").exists() else base)
    tok.padding_side = "left"
    peft = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base), adapter).eval()
    merged = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base), adapter).merge_and_unload()
    merged.eval()
    models = {
        "peft-fp32": peft,
        "peft-bf16-autocast": peft,
        "peft-bf16w": PeftModel.from_pretrained(
            AutoModelForCausalLM.from_pretrained(base, dtype=torch.bfloat16), adapter
        ).eval(),
        "merged-fp32": merged,
        "merged-bf16": copy.deepcopy(merged).to(torch.bfloat16),
        "merged-fp32-static": merged,
    }
    return models, tok


def generate_once(
    name: str, model: Any, tok: Any, enc: Any, max_new_tokens: int, seed: int
) -> tuple[float, int]:
    """Seconds for one generation batch, and the new columns it wrote."""
    import torch

    kwargs: dict[str, Any] = dict(
        max_new_tokens=max_new_tokens,
        do_sample=True,
        temperature=1.0,
        top_p=1.0,
        num_return_sequences=4,
        pad_token_id=tok.pad_token_id or tok.eos_token_id,
        stop_strings=["</prompt>"],
        tokenizer=tok,
    )
    if name.endswith("-static"):
        kwargs["cache_implementation"] = "static"
    torch.manual_seed(seed)
    t0 = time.perf_counter()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=name.endswith("autocast")):
        out = model.generate(**enc, **kwargs)
    return time.perf_counter() - t0, int(out.shape[1] - enc["input_ids"].shape[1])


def profile_step(model: Any, batch: int, context: int) -> list[dict[str, Any]]:
    """Operators of one cached decode step (batch rows, ``context`` tokens already in the cache), by self time."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    ids = torch.randint(0, 1000, (batch, context))
    with torch.no_grad():
        cache = model(ids, use_cache=True).past_key_values
        step = torch.randint(0, 1000, (batch, 1))
        model(step, past_key_values=cache, use_cache=True)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(5):
                cache = model(step, past_key_values=cache, use_cache=True).past_key_values
    rows = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in rows) or 1
    return [
        {"op": e.key, "ms_per_step": e.self_cpu_time_total / 5 / 1000, "share": e.self_cpu_time_total / total}
        for e in rows[:6]
    ]


def main() -> int:
    import torch

    from reprompt.format import PromptSpec

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--policy", default=str(HERE / "adapters" / "sft-reason"), help="a LoRA adapter folder")
    ap.add_argument(
        "--prompts", nargs="+", default=["a photo of three cups", "a red bench left of a green dog"]
    )
    ap.add_argument("--max-new-tokens", type=int, default=144)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--json", type=Path, default=HERE / "results" / "cpu_decode.json")
    args = ap.parse_args()
    torch.set_num_threads(1)
    names = [v for v in args.variants.split(",") if v]
    models, tok = load_variants(args.policy)
    spec = PromptSpec.load(Path(args.policy))
    texts = [
        tok.apply_chat_template(spec.messages(p), tokenize=False, add_generation_prompt=True)
        for p in args.prompts
    ]
    enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    times: dict[str, list[float]] = {n: [] for n in names}
    cols: dict[str, int] = {}
    for r in range(args.rounds):
        for n in names:
            seconds, new = generate_once(n, models[n], tok, enc, args.max_new_tokens, seed=r)
            times[n].append(seconds)
            cols[n] = new
            print(f"round {r} {n}: {seconds:.2f} s, {new} new columns", flush=True)
    rows = []
    for n in names:
        best = min(times[n])
        rows.append(
            {"variant": n, "seconds": best, "new_columns": cols[n], "ms_per_column": 1000 * best / cols[n]}
        )
    base = next((r["seconds"] for r in rows if r["variant"] == "peft-fp32"), None)
    print(f"\n{'variant':<22}{'s / batch':>10}{'columns':>9}{'ms / column':>13}{'vs lab':>8}")
    for row in rows:
        ratio = f"{row['seconds'] / base:.2f}" if base else "-"
        print(
            f"{row['variant']:<22}{row['seconds']:>10.2f}{row['new_columns']:>9}{row['ms_per_column']:>13.0f}{ratio:>8}"
        )
    ops = profile_step(models["merged-fp32"], batch=8, context=120)
    print("\none decode step, merged fp32 (8 rows, 120 tokens cached):")
    for op in ops:
        print(f"  {op['op']:<50}{op['ms_per_step']:>8.1f} ms {op['share']:>6.0%}")
    result = {
        "machine": f"{platform.machine()}, {torch.get_num_threads()} thread, torch {torch.__version__}",
        "policy": args.policy,
        "prompts": args.prompts,
        "sequences": 4 * len(args.prompts),
        "max_new_tokens": args.max_new_tokens,
        "rounds": args.rounds,
        "times": times,
        "results": rows,
        "decode_step_ops": ops,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
