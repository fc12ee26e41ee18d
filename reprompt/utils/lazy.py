"""Packages whose public names load on first use, so ``import reprompt.x`` never imports torch.

    __getattr__, __dir__ = lazy_exports(__name__, {"RePrompter": ".hf", "load_policy": "reprompt.policy.api"})

Each name maps to the module that defines it (absolute, or relative to the package with a leading dot).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    package: str, exports: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``: names in ``exports`` import their module when first read."""
    table = dict(exports)

    def __getattr__(name: str) -> Any:
        module = table.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        target = (
            importlib.import_module(module, package)
            if module.startswith(".")
            else importlib.import_module(module)
        )
        return getattr(target, name)

    def __dir__() -> list[str]:
        import sys

        return sorted(set(vars(sys.modules[package])) | set(table))

    return __getattr__, __dir__
