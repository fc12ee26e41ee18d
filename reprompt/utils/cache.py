"""reprompt's own cache folder (expanded SmolLM2 weights, converted ImageReward checkpoints, tiny test models).

``$REPROMPT_CACHE`` when set, else ``~/.cache/reprompt``; each user of the cache takes a sub-folder.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """``$REPROMPT_CACHE`` (default ``~/.cache/reprompt``), expanded."""
    return Path(os.environ.get("REPROMPT_CACHE") or "~/.cache/reprompt").expanduser()


def cache_dir(name: str) -> Path:
    """The sub-folder ``name`` of :func:`cache_root` (not created)."""
    return cache_root() / name
