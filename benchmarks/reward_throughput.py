"""Reward throughput (completions/s) in-process vs through the reward service, and render calls per batch.

    python benchmarks/reward_throughput.py                  # sketch + tiny zoo, GRPO-sized batches
    python benchmarks/reward_throughput.py --setups sketch --prompts 8 --group 4 --repeats 5

A GRPO-sized batch is ``--prompts`` GenEval prompts x ``--group`` completions (the paper: G = 4). Each
completion is a distinct well-formed rewrite, so every (completion, seed) pair needs its own render; the
benchmark checks that the pipeline rendered exactly completions x images per completion, plus prompts x
images per completion for the paired baseline. Setups:

- ``sketch``: the sketch simulator (256 px) + geneval (oracle scene) + format + length (configs/rewards/cpu.yaml);
- ``tiny``: the tiny zoo's FLUX pipeline (64 px, 2 steps) + clipscore on tiny CLIP + format + length
  (add ``--imagereward`` for the tiny ImageReward as well).

The service runs in a thread of this process (uvicorn on 127.0.0.1) and is called through RewardClient
(JSON over loopback HTTP), so the service column includes serialization and HTTP but shares the CPU.
In-process and service batches alternate and the median batch time is reported, so load from other
processes hits both alike. Prints a markdown table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

from reprompt.utils.benchmarks import GENEVAL_METADATA, benchmark_path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_METADATA = benchmark_path(*GENEVAL_METADATA)
# fmt: off
FALLBACK_PROMPTS = [
    {"tag": "counting", "prompt": "a photo of three cats", "include": [{"class": "cat", "count": 3}]},
    {"tag": "two_object", "prompt": "a photo of a dog and a cup",
     "include": [{"class": "dog", "count": 1}, {"class": "cup", "count": 1}]},
]
STYLES = ["a realistic photo", "a clean studio photo", "a sharp detailed photo", "a bright natural-light photo",
          "a centered photo", "a wide-angle photo", "a close photo", "a simple photo"]
# fmt: on


def load_rows(path: Path, n: int) -> list[dict]:
    if path.is_file():
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        step = max(1, len(rows) // n)  # spread over the tags
        return rows[::step][:n]
    return [FALLBACK_PROMPTS[i % len(FALLBACK_PROMPTS)] for i in range(n)]


def make_batch(rows: list[dict], group: int) -> tuple[list[str], list[str], list[dict]]:
    originals, completions, metadata = [], [], []
    for row in rows:
        for g in range(group):
            rewrite = (
                f"{STYLES[g % len(STYLES)]} of {row['prompt'].removeprefix('a photo of ')}, every object clearly "
                f"visible and in focus, plain background, variant {g}"
            )
            originals.append(row["prompt"])
            completions.append(
                f"<reason>Keep every object, count and color.</reason>\n<prompt>{rewrite}</prompt>"
            )
            metadata.append(row)
    return originals, completions, metadata


def setup_config(name: str, k: int, imagereward: bool) -> dict:
    if name == "sketch":
        return {
            "backbone": "sketch",
            "backbone_options": {"width": 256, "height": 256},
            "components": ["geneval", "format", "length"],
            "weights": {"geneval": 1.0, "format": 0.5, "length": 0.5},
            "options": {"geneval": {"mode": "partial", "detector": "oracle"}},
            "images_per_completion": k,
            "paired_baseline": True,
        }
    from reprompt.testing import build_tiny

    components = ["clipscore", "format", "length"]
    options: dict = {"clipscore": {"model": str(build_tiny("tiny-clip"))}}
    if imagereward:
        from reprompt.testing import default_cache_dir
        from reprompt.testing.imagereward import build_tiny_imagereward

        folder = default_cache_dir() / "tiny-imagereward"
        if not (folder / "model.safetensors").is_file():
            build_tiny_imagereward(folder)
        components.insert(0, "imagereward")
        options["imagereward"] = {"model": str(folder)}
    return {
        "backbone": "flux-dev",
        "backbone_model": str(build_tiny("tiny-flux")),
        "backbone_options": {"width": 64, "height": 64, "steps": 2, "batch_size": 8},
        "components": components,
        "options": options,
        "images_per_completion": k,
        "paired_baseline": True,
    }


def timed(scorer, batch, round_: int) -> tuple[float, object]:
    originals, completions, metadata = batch
    t0 = time.perf_counter()
    result = scorer.score(originals, completions, metadata, round=round_)
    return time.perf_counter() - t0, result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--setups", default="sketch,tiny", help="comma-separated: sketch, tiny")
    ap.add_argument("--prompts", type=int, default=8, help="prompts per batch")
    ap.add_argument("--group", type=int, default=4, help="completions per prompt (G)")
    ap.add_argument("--images", default="1,2", help="images per completion to try")
    ap.add_argument("--repeats", type=int, default=5, help="timed batches per measurement (median reported)")
    ap.add_argument("--imagereward", action="store_true", help="add the tiny ImageReward to the tiny setup")
    ap.add_argument("--metadata", default=str(DEFAULT_METADATA))
    ap.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "1")))
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "reward_throughput.json"))
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from reprompt.rewards import build_rewards
    from reprompt.rewards.config import ServiceConfig
    from reprompt.serving.http import BackgroundServer
    from reprompt.serving.reward_client import RewardClient
    from reprompt.serving.reward_service import create_app

    rows = load_rows(Path(args.metadata), args.prompts)
    batch = make_batch(rows, args.group)
    n = len(batch[1])
    results = []
    for setup in [s.strip() for s in args.setups.split(",") if s.strip()]:
        for k in [int(x) for x in args.images.split(",")]:
            config = setup_config(setup, k, args.imagereward)
            pipeline = build_rewards(config)
            service_pipeline = build_rewards(config)
            limits = ServiceConfig(max_request_bytes=64 * 1024 * 1024)
            with BackgroundServer(create_app(service_pipeline, limits)) as server:
                client = RewardClient(server.url)
                timed(pipeline, batch, -1)  # warm-up: lazy model loads
                timed(client, batch, -1)
                local_times, remote_times = [], []
                for r in range(args.repeats):  # alternate, so load from other processes hits both alike
                    t, local = timed(pipeline, batch, r)
                    local_times.append(t)
                    t, remote = timed(client, batch, r)
                    remote_times.append(t)
                    assert remote.total == local.total, "service and in-process scores differ"
                client.close()
            expected = n * k
            expected_baseline = len(rows) * k
            assert local.render_calls == expected, (local.render_calls, expected)
            assert local.baseline_render_calls == expected_baseline, (
                local.baseline_render_calls,
                expected_baseline,
            )
            local_s, remote_s = statistics.median(local_times), statistics.median(remote_times)
            row = {
                "setup": setup,
                "components": config["components"],
                "images_per_completion": k,
                "completions_per_batch": n,
                "prompts_per_batch": len(rows),
                "render_calls_per_batch": local.render_calls,
                "baseline_render_calls_per_batch": local.baseline_render_calls,
                "expected_render_calls": f"{n} x {k} + {len(rows)} x {k} = {expected + expected_baseline}",
                "in_process_completions_per_s": round(n / local_s, 2),
                "service_completions_per_s": round(n / remote_s, 2),
                "in_process_s_per_batch_median": round(local_s, 3),
                "service_s_per_batch_median": round(remote_s, 3),
                "in_process_s_per_batch_all": [round(t, 3) for t in local_times],
                "service_s_per_batch_all": [round(t, 3) for t in remote_times],
                "render_s_per_batch": round(local.metrics.get("seconds/render", 0.0), 3),
                "scores_equal": True,
            }
            results.append(row)
            print(json.dumps(row), flush=True)

    header = (
        "| setup | K | completions/batch | renders/batch (+baseline) | in-process compl/s | service compl/s |"
    )
    print("\n" + header + "\n|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['setup']} ({'+'.join(r['components'])}) | {r['images_per_completion']} | "
            f"{r['completions_per_batch']} | {r['render_calls_per_batch']} (+{r['baseline_render_calls_per_batch']}) | "
            f"{r['in_process_completions_per_s']} | {r['service_completions_per_s']} |"
        )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "machine": f"{platform.machine()} {os.cpu_count()} cpus",
        "torch_threads": args.threads,
        "repeats": args.repeats,
        "group": args.group,
        "service": "uvicorn thread in the same process, RewardClient over 127.0.0.1",
    }
    from reprompt.utils.io import atomic_write_json

    atomic_write_json(out, {"meta": meta, "results": results})
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
