"""A lock on a run folder, so two processes never write the same outputs at once.

``with folder_lock(out, "shard-0-of-1"):`` holds an exclusive ``flock`` on ``out/.<name>.lock`` for the
block. The kernel drops the lock when the process ends, however it ends (kill -9 included), so a
crashed run never leaves a stale lock behind; the file itself stays (harmless, and removing it would
race with the next locker). A second process asking for the same lock gets a :class:`RepromptError`
that says which process holds it and what to do.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from reprompt.errors import RepromptError


@contextlib.contextmanager
def folder_lock(
    folder: str | os.PathLike, name: str = "run", what: str = "this run folder"
) -> Iterator[Path]:
    """Hold ``folder/.<name>.lock`` exclusively (creating the folder); refuse if another process holds it."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f".{name}.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RepromptError(
                f"{folder} is in use: another process ({_holder(path)}) is writing {what}; wait for it to "
                "finish, or use another output folder"
            ) from None
        os.ftruncate(fd, 0)
        info = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%d %H:%M:%S")}
        os.write(fd, (json.dumps({**info, "command": " ".join(sys.argv)[:300]}) + "\n").encode())
        yield path
    finally:
        os.close(fd)  # releases the lock


def _holder(path: Path) -> str:
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
        return f"pid {info['pid']} on {info['host']} since {info['since']}: {info['command']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "unknown"
