"""A cheap fingerprint of a local model folder, so a run records which weights made it."""

from __future__ import annotations

import hashlib
from pathlib import Path

_WEIGHT_SUFFIXES = (".json", ".safetensors", ".txt", ".model", ".gguf", ".bin")


def folder_fingerprint(folder: str | Path) -> str | None:
    """``sha256:<16 hex>`` over a local model folder's file names, sizes, configs and weight head/tail.

    Cheap (reads at most 2 MiB per weight file) yet tells two checkpoints apart; None if not a folder.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return None
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")):
        if path.suffix not in _WEIGHT_SUFFIXES:
            continue
        size = path.stat().st_size
        h.update(f"{path.relative_to(folder)}:{size}\n".encode())
        with open(path, "rb") as f:
            h.update(f.read(1 << 20))
            if size > 2 << 20:
                f.seek(-(1 << 20), 2)
                h.update(f.read())
    return "sha256:" + h.hexdigest()[:16]
