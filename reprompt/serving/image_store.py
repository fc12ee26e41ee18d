"""The PNG files ``reprompt serve`` hands out by URL (``response_format: "url"``).

A URL is a capability, as OpenAI's own image URLs are: its name is 128 random bits (``secrets``), never a
counter, a time or a prompt, so nobody finds another client's image by guessing; it expires after
``ttl_s`` seconds (OpenAI's: 60 minutes), and at most ``max_files`` are kept (the oldest go first). Names
are checked against their exact shape before any path is built, so no request reaches another file.
"""

from __future__ import annotations

import re
import secrets
import shutil
import tempfile
import threading
import time
from pathlib import Path

from reprompt.utils.io import atomic_write_bytes

NAME = re.compile(r"^[A-Za-z0-9_-]{22}\.png$")


class ImageStore:
    """Write PNG bytes under an unguessable name; find them again until they expire."""

    def __init__(
        self, folder: str | Path | None = None, ttl_s: float = 3600.0, max_files: int = 1000
    ) -> None:
        self._own = folder is None
        self.folder = Path(tempfile.mkdtemp(prefix="reprompt-images-")) if folder is None else Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.ttl_s, self.max_files = ttl_s, max_files
        self._lock = threading.Lock()
        self._added: dict[str, float] = {}

    def put(self, data: bytes) -> str:
        """Store one PNG; returns its file name (``<22 url-safe characters>.png``)."""
        name = secrets.token_urlsafe(16) + ".png"  # 16 bytes -> 22 characters
        atomic_write_bytes(self.folder / name, data)
        with self._lock:
            self._added[name] = time.monotonic()
            self._expire()
        return name

    def get(self, name: str) -> Path | None:
        """The file of ``name`` while it is stored and fresh; None for any other name."""
        if not NAME.fullmatch(name):
            return None
        with self._lock:
            self._expire()
            if name not in self._added:
                return None
        path = self.folder / name
        return path if path.is_file() else None

    def _expire(self) -> None:
        now = time.monotonic()
        old = [n for n, t in self._added.items() if now - t > self.ttl_s]
        extra = max(0, len(self._added) - len(old) - self.max_files)
        old += [n for n in self._added if n not in old][:extra]  # dicts keep insertion order: oldest first
        for n in old:
            self._added.pop(n, None)
            (self.folder / n).unlink(missing_ok=True)

    def close(self) -> None:
        """Remove every file this store wrote (and its folder, if the store made it)."""
        with self._lock:
            for n in list(self._added):
                (self.folder / n).unlink(missing_ok=True)
            self._added.clear()
        if self._own:
            shutil.rmtree(self.folder, ignore_errors=True)
