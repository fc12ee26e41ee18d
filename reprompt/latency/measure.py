"""How much time rewriting adds to text-to-image generation, and what it buys.

:func:`measure_latency` times, for one policy and one backbone: rewriting (seconds per prompt at batch 1 and
batched; median and p90), rendering (seconds per image), their total per image and the rewrite's share of it.
:func:`accuracy_table` rebuilds the paper's accuracy/latency comparison on GenEval prompts: the backbone
alone, policy + backbone (one rewrite), and the Idea2Img-style iterative baseline (:mod:`.iterative`).
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from reprompt.errors import ConfigError, RepromptError, check_range
from reprompt.pipeline import image_seeds

# Used when no prompts are given: GenEval-style requests of every tag.
DEFAULT_PROMPTS = (
    "a photo of a bench",
    "a photo of a cat and a dog",
    "a photo of four apples",
    "a photo of a red car",
    "a photo of a bicycle left of a bus",
    "a photo of a purple umbrella and a green clock",
    "a photo of three cups",
    "a photo of a giraffe above a suitcase",
)


@dataclass
class LatencyConfig:
    """What to time."""

    n_prompts: int = field(
        default=8, metadata={"help": "prompts to time (from --metadata/--prompts-file or built in)"}
    )
    rewrite_batch_size: int = field(default=8, metadata={"help": "batch size of the batched rewrite timing"})
    images_per_prompt: int = field(default=1, metadata={"help": "images rendered per rewrite (GenEval: 4)"})
    warmup: int = field(default=1, metadata={"help": "untimed warm-up calls of rewrite and render"})
    seed: int = field(default=42, metadata={"help": "render seed (image k uses seed + k)"})
    iterative_rounds: int = field(default=3, metadata={"help": "K of the iterative baseline; 0 skips it"})
    judge: str = field(
        default="geneval-oracle",
        metadata={"help": "judge of the iterative loop: geneval-oracle or a reward name"},
    )
    judge_options: str | None = field(
        default=None, metadata={"help": 'JSON options of a reward judge, e.g. {"model": "path/to/clip"}'}
    )

    def __post_init__(self) -> None:
        for name, low in (
            ("n_prompts", 1),
            ("rewrite_batch_size", 1),
            ("images_per_prompt", 1),
            ("warmup", 0),
            ("iterative_rounds", 0),
        ):
            check_range(name, getattr(self, name), low)
        if self.judge_options:
            try:
                if not isinstance(json.loads(self.judge_options), dict):
                    raise ValueError
            except ValueError:
                raise ConfigError(
                    f"judge_options must be a JSON object, got {self.judge_options!r}"
                ) from None


def stats(values: Sequence[float]) -> dict[str, float]:
    """median, p90 (linear interpolation, as numpy's default), mean, min, max, n."""
    v = sorted(float(x) for x in values)
    if not v:
        return {"n": 0}
    pos = 0.9 * (len(v) - 1)
    lo = int(pos)
    p90 = v[lo] + (v[min(lo + 1, len(v) - 1)] - v[lo]) * (pos - lo)
    return {
        "median": statistics.median(v),
        "p90": p90,
        "mean": statistics.fmean(v),
        "min": v[0],
        "max": v[-1],
        "n": len(v),
    }


def measure_rewrite(
    rewriter: Any, prompts: Sequence[str], options: Any, batch_size: int, warmup: int
) -> dict[str, Any]:
    """Seconds per prompt at batch 1 (one call per prompt) and batched (call time / prompts in it)."""
    from dataclasses import replace

    one = replace(options, batch_size=1)
    for p in list(prompts)[:warmup]:
        rewriter.rewrite([p], one)
    b1, tokens, rewrites = [], [], []
    for p in prompts:
        t = time.perf_counter()
        rw = rewriter.rewrite([p], one)[0]
        b1.append(time.perf_counter() - t)
        tokens.append(rw.completion_tokens)
        rewrites.append(rw)
    batched = []
    many = replace(options, batch_size=batch_size)
    for start in range(0, len(prompts), batch_size):
        chunk = list(prompts[start : start + batch_size])
        t = time.perf_counter()
        rewriter.rewrite(chunk, many)
        batched.extend([(time.perf_counter() - t) / len(chunk)] * len(chunk))
    total_tokens = sum(tokens)
    return {
        "batch_1": stats(b1),
        "batched": {**stats(batched), "batch_size": batch_size},
        "completion_tokens": stats(tokens),
        "tokens_per_second_batch_1": total_tokens / sum(b1) if sum(b1) and total_tokens else None,
        "format_ok": sum(r.format_ok for r in rewrites) / len(rewrites),
        "rewrites": [r.prompt for r in rewrites],
    }


def measure_render(
    backbone: Any, prompts: Sequence[str], seed: int, images_per_prompt: int, warmup: int
) -> dict[str, Any]:
    """Seconds per image, one render call per image (what a user waits for)."""
    for p in list(prompts)[:warmup]:
        backbone.render([p], [seed])
    times = []
    for p in prompts:
        for s in image_seeds(seed, images_per_prompt):
            t = time.perf_counter()
            backbone.render([p], [s])
            times.append(time.perf_counter() - t)
    return stats(times)


def measure_latency(
    rewriter: Any, backbone: Any, prompts: Sequence[str], cfg: LatencyConfig, options: Any = None
) -> dict[str, Any]:
    """Rewrite and render timings, the total per image and the rewrite's share of it."""
    from reprompt.policy import GenerationOptions

    options = options or GenerationOptions()
    prompts = list(prompts)[: cfg.n_prompts]
    if not prompts:
        raise RepromptError("no prompts to time")
    rewrite = measure_rewrite(rewriter, prompts, options, cfg.rewrite_batch_size, cfg.warmup)
    render = measure_render(backbone, rewrite.pop("rewrites"), cfg.seed, cfg.images_per_prompt, cfg.warmup)
    out: dict[str, Any] = {"rewrite": rewrite, "render": render}
    for mode in ("batch_1", "batched"):
        per_image = rewrite[mode]["median"] / cfg.images_per_prompt
        total = per_image + render["median"]
        out[f"total_per_image_{mode}"] = total
        out[f"rewrite_share_{mode}"] = per_image / total if total else None
    return out


def build_judge(cfg: LatencyConfig) -> Any:
    """The iterative loop's judge from ``cfg.judge``/``judge_options`` (cheap: a component loads its model on
    first use), so a command can build it before it loads any model."""
    from reprompt.latency.iterative import load_judge

    return load_judge(cfg.judge, json.loads(cfg.judge_options) if cfg.judge_options else None)


def accuracy_table(
    rewriter: Any,
    backbone: Any,
    metadatas: Sequence[dict[str, Any]],
    cfg: LatencyConfig,
    options: Any = None,
    detector: str = "oracle",
    judge: Any = None,
) -> list[dict[str, Any]]:
    """Accuracy (GenEval, one image per prompt) and seconds per image of: the backbone alone, one rewrite,
    and the iterative baseline. Scored by the GenEval scorer with ``detector`` (``oracle`` needs the sketch
    backbone), the same scorer ``reprompt eval geneval`` builds. ``judge``: the iterative loop's, built from
    ``cfg.judge`` when not given."""
    from reprompt.geneval.scorer import ScorerConfig, build_scorer
    from reprompt.latency.iterative import run_iterative
    from reprompt.policy import GenerationOptions

    options = options or GenerationOptions(batch_size=1)
    scorer = build_scorer(ScorerConfig(detector=detector), has_scenes=detector == "oracle")
    metas = list(metadatas)[: cfg.n_prompts]

    def score(images: list[Any], scenes: list[Any]) -> float:
        results = scorer.score(metas, images, scenes)
        return sum(r.correct for r in results) / len(results)

    rows = []
    for method in ("backbone only", "rewrite + backbone"):
        images, scenes, times = [], [], []
        for m in metas:
            t = time.perf_counter()
            prompt = (
                m["prompt"]
                if method == "backbone only"
                else rewriter.rewrite([m["prompt"]], options)[0].prompt
            )
            out = backbone.render([prompt], [cfg.seed])
            times.append(time.perf_counter() - t)
            images.append(out.images[0])
            scenes.append(out.scenes[0] if out.scenes is not None else None)
        rows.append(
            {
                "method": method,
                "accuracy": score(images, scenes),
                "seconds_per_image": stats(times)["mean"],
                "rounds": 0 if method == "backbone only" else 1,
            }
        )
    if cfg.iterative_rounds:
        judge = judge or build_judge(cfg)
        results = [
            run_iterative(
                rewriter,
                backbone,
                judge,
                m["prompt"],
                m,
                rounds=cfg.iterative_rounds,
                seed=cfg.seed,
                options=options,
            )
            for m in metas
        ]
        rows.append(
            {
                "method": f"iterative (Idea2Img-style, K={cfg.iterative_rounds}, judge={judge.name})",
                "accuracy": score([r.image for r in results], [r.scene for r in results]),
                "seconds_per_image": stats([r.seconds for r in results])["mean"],
                "rounds": stats([r.rounds for r in results])["mean"],
                "judge_is_evaluator": judge.name == "geneval-oracle",
            }
        )
    return rows


def environment() -> dict[str, Any]:
    import torch

    if torch.cuda.is_available():
        device = torch.cuda.get_device_name(0)
    else:
        device = f"cpu: {_cpu_name()}, {os.cpu_count()} cores"
    load = os.getloadavg() if hasattr(os, "getloadavg") else None  # a shared machine inflates timings
    return {
        "device": device,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "load_average": load,
        "python": platform.python_version(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def format_report(report: dict[str, Any]) -> str:
    """A plain-text table of a latency report."""
    lat = report["latency"]
    rw, rd = lat["rewrite"], lat["render"]
    lines = [
        f"policy {report['policy']} | backbone {report['backbone']} | {report['environment']['device']}",
        f"{'':28}{'median s':>10}{'p90 s':>10}",
        f"{'rewrite / prompt, batch 1':28}{rw['batch_1']['median']:>10.3f}{rw['batch_1']['p90']:>10.3f}",
        f"{'rewrite / prompt, batch ' + str(rw['batched']['batch_size']):28}"
        f"{rw['batched']['median']:>10.3f}{rw['batched']['p90']:>10.3f}",
        f"{'render / image':28}{rd['median']:>10.3f}{rd['p90']:>10.3f}",
        f"{'total / image (batch 1)':28}{lat['total_per_image_batch_1']:>10.3f}",
        f"rewrite share of total: {lat['rewrite_share_batch_1']:.1%} (batch 1), {lat['rewrite_share_batched']:.1%} "
        f"(batched); completion tokens median {rw['completion_tokens'].get('median', 0):.0f}",
    ]
    if report.get("table"):
        lines.append(f"\n{'method':60}{'accuracy':>10}{'s / image':>11}{'rounds':>8}")
        for row in report["table"]:
            lines.append(
                f"{row['method']:60}{row['accuracy']:>10.3f}{row['seconds_per_image']:>11.3f}{row['rounds']:>8.2f}"
            )
    return "\n".join(lines)


def load_metadata(path: str | Path, n: int) -> list[dict[str, Any]]:
    """``n`` GenEval prompts spread evenly over the metadata file (so every tag is represented)."""
    from reprompt.geneval.metadata import read_metadata_file

    rows = read_metadata_file(path)
    if n >= len(rows):
        return rows
    step = len(rows) / n
    return [rows[int(i * step)] for i in range(n)]


def run_benchmark(
    rewriter: Any,
    backbone: Any,
    cfg: LatencyConfig,
    *,
    prompts: Sequence[str] | None = None,
    metadatas: Sequence[dict[str, Any]] | None = None,
    options: Any = None,
    detector: str | None = None,
    names: tuple[str, str] = ("policy", "backbone"),
    judge: Any = None,
) -> dict[str, Any]:
    """Latency always; the accuracy table when GenEval metadata and a detector are available (``judge``: the
    iterative loop's, :func:`build_judge` when not given)."""
    if prompts is None:
        prompts = [m["prompt"] for m in metadatas] if metadatas else list(DEFAULT_PROMPTS)
    if metadatas and detector and cfg.iterative_rounds and judge is None:
        judge = build_judge(cfg)  # a judge that cannot be built fails before the timings
    report: dict[str, Any] = {
        "policy": names[0],
        "backbone": names[1],
        "config": asdict(cfg),
        "environment": environment(),
        "latency": measure_latency(rewriter, backbone, prompts, cfg, options),
    }
    if metadatas and detector:
        report["table"] = accuracy_table(rewriter, backbone, metadatas, cfg, options, detector, judge)
    return report
