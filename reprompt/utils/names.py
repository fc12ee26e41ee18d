"""Model names as others may see them: a folder's last part, never the absolute path of this machine."""

from __future__ import annotations

from pathlib import PurePath


def public_name(name: str) -> str:
    """A model name safe to show clients, write into shared records and embed in images: a folder's last
    part, never its absolute path (hub ids such as ``org/model`` and registered names pass unchanged)."""
    text = str(name)
    if text.startswith(("/", ".", "~")) or "\\" in text or text.count("/") > 1:
        return PurePath(text.replace("\\", "/")).name or text
    return text
