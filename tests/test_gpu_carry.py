"""``benchmarks/gpu_carry.py``: what the GPU machine lacks travels as one xz tar beside the working tree, and a
device call stays under the device tool's 64 MiB.

The lab's adapters took the tracked tree to 58.5 MiB, so the wheels the GPU order needs (21.6 MiB with
transformers at the floor) could not travel beside it: the standing GPU order would have been refused before
it started."""

from __future__ import annotations

import importlib.util
import io
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "gpu_carry.py"


@pytest.fixture(scope="module")
def carry():
    spec = importlib.util.spec_from_file_location("gpu_carry", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fake_wheel(folder: Path, tag: str = "py3-none-any") -> Path:
    wheel = folder / f"fakepkg-1.2-{tag}.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("fakepkg/__init__.py", "VALUE = 3\n")
        z.writestr("fakepkg-1.2.dist-info/METADATA", "Metadata-Version: 2.1\nName: fakepkg\nVersion: 1.2\n")
    return wheel


def test_the_tracked_tree_leaves_room_for_the_gpu_carry(carry):
    """The guard: a commit that grows the tree past 64 MiB minus the carry's room breaks every GPU call."""
    tree = carry.travel_bytes(REPO, tracked_only=True)
    assert tree + carry.CARRY_BUDGET <= carry.LIMIT, (
        f"the tracked tree is {tree / 2**20:.1f} MiB: with the GPU carry ({carry.CARRY_BUDGET / 2**20:.0f} MiB) "
        f"a device call exceeds {carry.LIMIT / 2**20:.0f} MiB"
    )


def test_packed_wheels_unpack_importable_with_their_versions(carry, tmp_path):
    archive = tmp_path / "site.tar.xz"
    assert carry.pack([fake_wheel(tmp_path)], archive) == archive.stat().st_size
    site = tmp_path / "site"
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--unpack", str(site), "--archive", str(archive)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert out.strip() == "carried: fakepkg-1.2"
    probe = "import fakepkg, importlib.metadata as md; print(fakepkg.VALUE, md.version('fakepkg'))"
    seen = subprocess.run(
        [sys.executable, "-c", probe],
        check=True,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(site)},
    ).stdout
    assert seen.split() == ["3", "1.2"]


def test_a_compiled_wheel_is_refused(carry, tmp_path):
    wheel = fake_wheel(tmp_path, "cp312-cp312-manylinux_2_17_x86_64")
    with pytest.raises(SystemExit, match="not a pure-Python wheel"):
        carry.pack([wheel], tmp_path / "site.tar.xz")


def test_unpacking_refuses_paths_outside_the_site(carry, tmp_path):
    archive = tmp_path / "evil.tar.xz"
    with tarfile.open(archive, "w:xz") as tar:
        member = tarfile.TarInfo("../outside.py")
        member.size = 4
        tar.addfile(member, io.BytesIO(b"x=1\n"))
    with pytest.raises(tarfile.TarError):
        carry.unpack(archive, tmp_path / "site")
    assert not (tmp_path / "outside.py").exists()
