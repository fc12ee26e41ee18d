"""GRPO step time at the paper's shapes, split into generation / rendering / scoring / training.

Runs ``--steps`` optimizer steps of ``reprompt.train.grpo`` (TRL GRPOTrainer, our reward pipeline, our step
timer) with the per-GPU shapes of ``configs/grpo/qwen2.5-3b_flux-dev.yaml``: G=4, 8 completions per micro-batch,
gradient accumulation 2 (16 completions = 4 prompts per optimizer step on this GPU), up to 256 completion tokens,
temperature 0.9, beta 0.04 (a reference copy), bf16 full fine-tune with activation checkpointing.

The models have the published architectures and sizes but RANDOM weights (no model hub here), built by
``reprompt.testing.full``: policy Qwen2.5-3B-Instruct; backbone FLUX.1-dev (512², 50 steps, guidance 3.5, one
image per completion + the paired baseline of each prompt); reward ImageReward-v1.0 + a local Qwen2.5-VL-3B
judge (constrained number scoring) + format + length. Consequences, all in the worst-case direction: the
random policy never writes its stop tag, so every completion has 256 tokens; it never writes a prompt block
either, so every completion renders "a photo" (``fallback_score: render_a_photo``) and renders are not
deduplicated: each completion costs one render per image, as a trained policy's distinct prompts do (the
training rule, ``group_worst``, would render nothing for them and time an empty step).

``--profile`` renders the training reward with a train-time profile (``render``: ``--profile-steps``,
``--profile-cache``, ``--profile-compile``; the held-out guard is off here) and ``--baseline-cache`` gives
each prompt the same seeds every epoch (``seed_schedule: per_prompt``) with the baseline cache on, over a
prompt file of one step's prompts, so step 2 is epoch 2 and reads every baseline image from the cache.

    python benchmarks/gpu_grpo_step.py                       # a GPU with ~80 GB free (the judge: over 100 GB)
    python benchmarks/gpu_grpo_step.py --profile --baseline-cache   # the standing order's step
    python benchmarks/gpu_grpo_step.py --scale tiny          # the same code on CPU with the tiny zoo

Prints a table and writes JSON (``--json``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RECIPE = REPO / "configs" / "grpo" / "qwen2.5-3b_flux-dev.yaml"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def build_models(scale: str, work: Path, device: str, judge: bool) -> tuple[Path, object, Path, Path | None]:
    """(policy folder, FLUX pipeline in memory, ImageReward folder, judge folder or None)."""
    if scale == "full":
        from reprompt.testing import full

        policy = full.build_qwen2_5_3b(work / "policy", device=device)
        log("policy built and saved")
        pipe = full.flux_dev_pipeline(device=device)
        log("FLUX.1-dev pipeline built")
        reward = full.build_imagereward_v1(work / "imagereward", device=device)
        vlm = full.build_qwen2_5_vl_3b(work / "judge", device=device) if judge else None
        log("reward models built and saved")
        return policy, pipe, reward, vlm
    from diffusers import FluxPipeline

    from reprompt.testing import build_tiny

    pipe = FluxPipeline.from_pretrained(build_tiny("tiny-flux", work / "tiny-flux"))
    return (
        build_tiny("tiny-qwen2", work / "tiny-qwen2"),
        pipe,
        build_tiny("tiny-imagereward", work / "tiny-ir"),
        build_tiny("tiny-qwen2-vl", work / "tiny-vl") if judge else None,
    )


def write_prompts(path: Path, n: int) -> Path:
    from reprompt.data.prompts import PromptGenConfig, split_prompts

    splits, _ = split_prompts(PromptGenConfig(n_sft=0, n_rl=n, n_heldout=0, seed=0))
    path.write_text("".join(json.dumps(r) + "\n" for r in splits["rl"]))
    return path


def reward_config(reward: Path, vlm: Path | None, device: str, extra: dict | None = None) -> dict:
    """configs/rewards/paper.yaml with local models; every completion renders, not deduplicated (see the
    module doc); ``extra``: the render profile and seed schedule of this run."""
    import yaml

    from reprompt.rewards.config import keep_components

    cfg = yaml.safe_load((REPO / "configs" / "rewards" / "paper.yaml").read_text())
    cfg.pop("service", None)
    cfg["backbone"], cfg["backbone_model"] = "sketch", None  # replaced by the in-memory FLUX below
    cfg["dedupe_renders"] = False
    cfg["fallback_score"] = "render_a_photo"
    cfg.update(extra or {})
    cfg["options"]["imagereward"] = {"model": str(reward), "device": device}
    if vlm is None:  # e.g. an H100 (--judge auto): the paper's reward without its judge
        cfg = keep_components(cfg, [c for c in cfg["components"] if c != "vlm_judge"])
    else:
        cfg["options"]["vlm_judge"] = {
            "backend": "local",
            "model": str(vlm),
            "device": device,
            "mode": "constrained",
            "batch_size": 8,
        }
    return cfg


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scale", choices=["full", "tiny"], default="full")
    p.add_argument("--steps", type=int, default=2, help="optimizer steps")
    p.add_argument(
        "--judge",
        choices=["auto", "local", "none"],
        default="auto",
        help="the local VLM judge (auto: only on GPUs with more than 100 GB)",
    )
    p.add_argument("--render-batch", type=int, default=8, help="images per FLUX call")
    p.add_argument(
        "--profile", action="store_true", help="render the training reward with a train-time profile"
    )
    p.add_argument(
        "--profile-steps", type=int, default=None, help="profile steps (default 28; 1 with --scale tiny)"
    )
    p.add_argument("--profile-cache", default="first-block:0.12", help="profile cache (none: without)")
    p.add_argument(
        "--profile-compile",
        default=None,
        help="profile compile spec (default: default; backend=eager with --scale tiny: trace only)",
    )
    p.add_argument(
        "--baseline-cache",
        action="store_true",
        help="seeds per prompt + the baseline cache, one step's prompts repeated (step 2 = epoch 2)",
    )
    p.add_argument("--workdir", default="/tmp/reprompt-gpu-grpo")
    p.add_argument("--json", default=None, help="default: benchmarks/results/gpu_grpo_step[_tiny].json")
    args = p.parse_args()

    import torch

    t_start = time.perf_counter()
    cuda = torch.cuda.is_available()
    if args.scale == "full" and not cuda:
        print("--scale full needs a GPU (about 80 GB); use --scale tiny to check the script on CPU")
        return 2
    device = "cuda" if cuda else "cpu"
    total_gb = torch.cuda.get_device_properties(0).total_memory / 2**30 if cuda else 0.0
    judge = args.judge == "local" or (args.judge == "auto" and (total_gb > 100 or args.scale == "tiny"))
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    log(
        f"device {torch.cuda.get_device_name(0) if cuda else platform.processor() or 'cpu'}, {total_gb:.0f} GiB"
    )

    from reprompt.backbones.diffusers_backbone import PRESETS, DiffusersBackbone
    from reprompt.train import grpo

    t0 = time.perf_counter()
    policy, pipe, reward, vlm = build_models(args.scale, work, device, judge)
    build_s = time.perf_counter() - t0
    per_step_prompts = 4  # 8 completions per micro-batch / G=4 x grad-accum 2
    n_prompts = per_step_prompts if args.baseline_cache else per_step_prompts * args.steps
    prompts = write_prompts(work / "prompts.jsonl", n_prompts)
    extra: dict = {}
    if args.profile:
        tiny = args.scale == "tiny"
        extra["render"] = {
            "steps": args.profile_steps or (1 if tiny else 28),
            "cache": args.profile_cache,
            "compile": args.profile_compile or ("backend=eager" if tiny else "default"),
        }
    if args.baseline_cache:
        extra.update(seed_schedule="per_prompt", baseline_cache=1024)
    rcfg = reward_config(reward, vlm, device, extra)
    preset = PRESETS["flux-dev"]
    if args.scale == "full":
        backbone = DiffusersBackbone(
            pipe,
            "flux-dev (random weights)",
            height=preset.height,
            width=preset.width,
            steps=preset.steps,
            guidance=preset.guidance,
            max_sequence_length=preset.max_sequence_length,
            batch_size=args.render_batch,
        )
    else:
        backbone = DiffusersBackbone(
            pipe,
            "tiny-flux",
            height=64,
            width=64,
            steps=2,
            guidance=3.5,
            max_sequence_length=64,
            batch_size=args.render_batch,
        )
    overrides = [
        "--config",
        str(RECIPE),
        "--policy",
        str(policy),
        "--prompts",
        str(prompts),
        "--output_dir",
        str(work / "run"),
        "--max_steps",
        str(args.steps),
        "--save_strategy",
        "no",
        "--heldout_every",
        "0",
        "--heldout_prompts",
        str(prompts),
        "--samples_every",
        "0",
        "--report_to",
        "none",
        "--logging_steps",
        "1",
        "--disable_tqdm",
        "true",
        "--resume",
        "never",
    ]
    if args.scale == "tiny":
        overrides += ["--bf16", "false", "--use_cpu", "true", "--max_completion_length", "32"]
    cfg = grpo.parse(overrides)
    cfg.rewards = rcfg

    t0 = time.perf_counter()
    scorer = _scorer(rcfg, backbone, cfg)
    judge_error = warm_up(scorer)
    if judge_error and vlm is not None:  # one chance on a lent GPU: time the rest rather than nothing
        log(f"the judge failed ({judge_error}); timing without it")
        rcfg = reward_config(reward, None, device, extra)
        cfg.rewards = rcfg
        scorer = _scorer(rcfg, backbone, cfg)
        if warm_up(scorer):
            raise SystemExit("the reward pipeline fails even without the judge")
    elif judge_error:
        raise SystemExit(f"the reward pipeline fails: {judge_error}")
    warm_s = time.perf_counter() - t0
    log(f"reward models loaded and warmed up in {warm_s:.0f} s")
    t0 = time.perf_counter()
    trainer, _, _ = grpo.build_trainer(cfg, scorer=scorer)
    setup_s = time.perf_counter() - t0
    log(f"trainer ready in {setup_s:.0f} s")
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    trainer.train()
    train_s = time.perf_counter() - t0
    history = [h for h in trainer.state.log_history if "timing/step_s" in h]
    steps = [split(h, rcfg["components"]) for h in history]
    result = {
        "scale": args.scale,
        "device": torch.cuda.get_device_name(0) if cuda else (platform.processor() or "cpu"),
        "gpu_memory_gib": round(total_gb, 1),
        "peak_gpu_memory_gib": round(torch.cuda.max_memory_allocated() / 2**30, 1) if cuda else None,
        "torch": torch.__version__,
        "shapes": {
            "completions_per_step": cfg.per_device_train_batch_size * cfg.gradient_accumulation_steps,
            "num_generations": cfg.num_generations,
            "max_completion_length": cfg.max_completion_length,
            "per_device_train_batch_size": cfg.per_device_train_batch_size,
            "gradient_accumulation_steps": cfg.gradient_accumulation_steps,
            "render": f"{backbone.width}x{backbone.height}, {backbone.steps} steps, guidance {backbone.guidance}",
            "reward_components": rcfg["components"],
            "paired_baseline": rcfg["paired_baseline"],
            "render_profile": rcfg.get("render"),
            "seed_schedule": rcfg.get("seed_schedule", "per_step"),
            "baseline_cache": rcfg.get("baseline_cache", 0) if args.baseline_cache else 0,
            "prompts": n_prompts,
        },
        "parameters": _params(args.scale),
        "build_models_s": round(build_s, 1),
        "reward_warm_up_s": round(warm_s, 1),
        "judge_error": judge_error,
        "trainer_setup_s": round(setup_s, 1),
        "train_s": round(train_s, 1),
        "steps": steps,
        "total_s": round(time.perf_counter() - t_start, 1),
    }
    out = Path(args.json or HERE / "results" / f"gpu_grpo_step{'_tiny' if args.scale == 'tiny' else ''}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(table(result))
    log(f"wrote {out}")
    return 0


def _scorer(rcfg: dict, backbone, cfg):  # noqa: ANN001
    """The reward pipeline around the in-memory backbone, parsing the policy's tag format."""
    from dataclasses import replace

    from reprompt.rewards import build_rewards
    from reprompt.rewards.config import RewardConfig
    from reprompt.train.common import resolve_policy, resolve_spec

    spec = resolve_spec(cfg, resolve_policy(cfg.policy))
    return build_rewards(replace(RewardConfig.load(rcfg), tags=spec.fmt.name), backbone=backbone)


def warm_up(scorer) -> str | None:  # noqa: ANN001
    """One scoring call before timing (loads the reward models, compiles CUDA kernels); the error, if any."""
    try:
        scorer.score(["a photo of a cat", "a photo of a cat"], ["<prompt>a photo of one cat</prompt>"] * 2)
    except Exception as e:  # noqa: BLE001 - reported, and the caller decides
        import traceback

        traceback.print_exc()
        return f"{type(e).__name__}: {e}"
    return None


def split(h: dict, components: list[str]) -> dict:
    """One logged step as generation (sampling + log-prob passes) / rendering / scoring / training."""
    g = lambda k: float(h.get(k, 0.0))  # noqa: E731
    render = g("timing/render_s")
    reward = g("timing/reward_s")
    return {
        "step": h.get("step"),
        "step_s": round(g("timing/step_s"), 2),
        "generation_s": round(g("timing/generation_s"), 2),
        "sampling_s": round(g("timing/sampling_s"), 2),
        "logprobs_s": round(g("timing/logprobs_s"), 2),
        "rendering_s": round(render, 2),
        "scoring_s": round(max(reward - render, 0.0), 2),
        "scoring_by_component_s": {
            k[len("timing/") : -2]: round(float(v), 3)
            for k, v in h.items()
            if k.startswith("timing/") and k[len("timing/") : -2] in components
        },
        "training_s": round(g("timing/train_s"), 2),
        "optimizer_s": round(g("timing/optimizer_s"), 2),
        "completion_tokens_mean": g("completions/mean_length"),
        "render_calls": g("reward/render_calls") + g("reward/baseline_render_calls"),
        "baseline_renders": g("reward/baseline_render_calls"),
        "render_cache_hits": g("reward/render_cache_hits"),
    }


def _params(scale: str) -> dict:
    if scale != "full":
        return {}
    from reprompt.testing.full import parameter_counts

    return {k: round(v / 1e9, 3) for k, v in parameter_counts().items()}


def table(r: dict) -> str:
    cols = [
        "step_s",
        "generation_s",
        "sampling_s",
        "logprobs_s",
        "rendering_s",
        "scoring_s",
        "training_s",
        "optimizer_s",
    ]
    lines = [
        f"GRPO step split ({r['scale']}, {r['device']}, peak {r['peak_gpu_memory_gib']} GiB)",
        "| step | "
        + " | ".join("total" if c == "step_s" else c[:-2] for c in cols)
        + " | renders | of which baseline | cache hits |",
        "|" + "---|" * (len(cols) + 4),
    ]
    for s in r["steps"]:
        lines.append(
            f"| {s['step']} | "
            + " | ".join(f"{s[c]:.1f}" for c in cols)
            + f" | {s['render_calls']:.0f} | {s['baseline_renders']:.0f} | {s['render_cache_hits']:.0f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.exit(main())
