"""Load on ``reprompt serve``'s chat endpoint over loopback: N concurrent users, with and without
micro-batching.

    python benchmarks/serve_load.py --policy smollm2-sketch --users 8 --requests 3 --max-new-tokens 64

For each mode the script starts ``reprompt serve`` in a subprocess (``--no-micro-batching`` for the
baseline), warms it up with one request, then runs ``--users`` client threads; each sends ``--requests``
chat completions one after another through the official ``openai`` SDK (closed loop: a user sends its
next request when the previous reply arrives). Prompts are distinct GenEval prompts, the same ones in
both modes. Reported per mode: requests, errors, wall time, throughput (requests/s), p50/p99 latency,
the batches the server ran (from /health), and whether both modes returned the same greedy text.
Prints a table and writes JSON (default ``benchmarks/results/serve_load.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path

from reprompt.utils.benchmarks import GENEVAL_METADATA, benchmark_path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_METADATA = benchmark_path(*GENEVAL_METADATA)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in [0, 100]); with few samples p99 is the slowest request."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[int(rank) - 1]


def start_server(args: argparse.Namespace, port: int, batching: bool) -> subprocess.Popen:
    cmd = [
        sys.executable,
        "-m",
        "reprompt.cli.main",
        "serve",
        "--policy",
        args.policy,
        "--backbone",
        "sketch",
        "--port",
        str(port),
        "--max-new-tokens",
        str(args.max_new_tokens),
        "--batch-size",
        str(args.users),
        "--max-queue",
        str(max(32, 2 * args.users)),
        "--served-model-name",
        "reprompt",
    ]
    if not batching:
        cmd.append("--no-micro-batching")
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "PYTHONPATH": str(REPO)}
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def wait_ready(url: str, proc: subprocess.Popen, timeout: float = 300.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {proc.stderr.read()[-2000:] if proc.stderr else ''}")
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit("server did not start")
        time.sleep(0.5)


def run_mode(args: argparse.Namespace, prompts: list[str], batching: bool) -> dict:
    import httpx
    import openai

    from reprompt.serving.http import free_port

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start_server(args, port, batching)
    try:
        wait_ready(url, proc)
        client = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0, timeout=args.timeout)

        def chat(prompt: str) -> str:
            reply = client.chat.completions.create(
                model="reprompt", messages=[{"role": "user", "content": prompt}]
            )
            return reply.choices[0].message.content

        chat("a photo of a warm-up")
        before = httpx.get(url + "/health").json()["worker"]
        latencies: list[float] = []
        errors: list[str] = []
        outputs: dict[str, str] = {}
        lock = threading.Lock()

        def user(k: int) -> None:
            for r in range(args.requests):
                prompt = prompts[k * args.requests + r]
                t0 = time.perf_counter()
                try:
                    text = chat(prompt)
                except Exception as e:  # every failure is counted, none ends the run
                    with lock:
                        errors.append(f"{type(e).__name__}: {str(e)[:120]}")
                    continue
                with lock:
                    latencies.append(time.perf_counter() - t0)
                    outputs[prompt] = text

        threads = [threading.Thread(target=user, args=(k,)) for k in range(args.users)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
        after = httpx.get(url + "/health").json()["worker"]
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    batches = after["batches"] - before["batches"]
    done = len(latencies)
    return {
        "micro_batching": batching,
        "requests": args.users * args.requests,
        "ok": done,
        "errors": len(errors),
        "error_samples": errors[:5],
        "wall_s": round(wall, 2),
        "throughput_rps": round(done / wall, 4),
        "p50_s": round(percentile(latencies, 50), 3) if latencies else None,
        "p99_s": round(percentile(latencies, 99), 3) if latencies else None,
        "mean_s": round(sum(latencies) / done, 3) if latencies else None,
        "server_batches": batches,
        "mean_batch": round((after["prompts"] - before["prompts"]) / batches, 2) if batches else None,
        "largest_batch": after["largest_batch"],
        "outputs": outputs,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--policy", default="smollm2-sketch", help="any --policy of reprompt serve")
    ap.add_argument("--users", type=int, default=8, help="concurrent clients")
    ap.add_argument("--requests", type=int, default=3, help="requests per client, one after another")
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2, help="torch threads of the server")
    ap.add_argument("--timeout", type=float, default=900.0, help="client timeout per request (s)")
    ap.add_argument("--metadata", default=str(DEFAULT_METADATA), help="GenEval metadata (the prompts)")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "serve_load.json"))
    args = ap.parse_args()

    import openai
    import torch

    n = args.users * args.requests
    prompts = [json.loads(line)["prompt"] for line in Path(args.metadata).read_text().splitlines() if line][
        :n
    ]
    if len(prompts) < n:
        raise SystemExit(f"{args.metadata} has {len(prompts)} prompts; {n} needed")
    modes = {}
    for batching in (False, True):
        name = "micro-batching" if batching else "one at a time"
        print(f"{name}: {args.users} users x {args.requests} requests ...", flush=True)
        modes[name] = run_mode(args, prompts, batching)
    base, batched = modes["one at a time"], modes["micro-batching"]
    same = sum(base["outputs"].get(p) == batched["outputs"].get(p) for p in prompts)
    result = {
        "command": "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "policy": args.policy,
        "users": args.users,
        "requests_per_user": args.requests,
        "max_new_tokens": args.max_new_tokens,
        "server_threads": args.threads,
        "client": f"openai SDK {openai.__version__}, loopback",
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}",
        "modes": {k: {kk: vv for kk, vv in v.items() if kk != "outputs"} for k, v in modes.items()},
        "throughput_ratio": round(batched["throughput_rps"] / base["throughput_rps"], 2)
        if base["throughput_rps"]
        else None,
        "same_greedy_text": f"{same}/{len(prompts)}",
    }
    print(
        f"\n{'mode':16} {'ok':>4} {'err':>4} {'wall s':>8} {'req/s':>7} {'p50 s':>7} {'p99 s':>7} {'batches':>8} {'mean b':>7}"
    )
    for name, r in result["modes"].items():
        print(
            f"{name:16} {r['ok']:>4} {r['errors']:>4} {r['wall_s']:>8} {r['throughput_rps']:>7} {r['p50_s']:>7} "
            f"{r['p99_s']:>7} {r['server_batches']:>8} {r['mean_batch']!s:>7}"
        )
    print(
        f"throughput ratio (micro-batching / one at a time): {result['throughput_ratio']}x; "
        f"same greedy text: {result['same_greedy_text']}"
    )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
