"""Command-line flags generated from config dataclasses, so each setting's default and help live once.

As TRL's ``TrlParser`` does: every field of a config dataclass becomes ``--field-name`` with the field's type,
default and ``metadata["help"]``; ``metadata["choices"]`` limits the values; a ``bool`` field becomes
``--name/--no-name``. :func:`add_dataclass_args` adds the flags (optionally renamed, e.g. ``device`` ->
``--score-device`` where two configs share a command) and :func:`config_from_args` builds the config back
from the parsed namespace. Only argparse and dataclasses at import time.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any

_SCALARS = {"str": str, "int": int, "float": float}


def _scalar_type(annotation: Any) -> type | None:
    """``str``/``int``/``float`` for a field annotated with one of them (or ``X | None``); else None."""
    if isinstance(annotation, str):
        names = [part.strip() for part in annotation.split("|")]
        names = [n for n in names if n != "None"]
        return _SCALARS.get(names[0]) if len(names) == 1 else None
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return args[0] if len(args) == 1 and args[0] in (str, int, float) else None
    return annotation if annotation in (str, int, float) else None


def _is_bool(annotation: Any) -> bool:
    return annotation is bool or annotation == "bool"


def flag_name(name: str, renames: Mapping[str, str] | None = None) -> str:
    """The flag of field ``name``: ``--field-name``, or its rename."""
    renamed = (renames or {}).get(name, name)
    return "--" + renamed.replace("_", "-")


def add_dataclass_args(
    parser: argparse.ArgumentParser | Any,
    cls: Any,
    *,
    positional: tuple[str, ...] = (),
    skip: tuple[str, ...] = (),
    renames: Mapping[str, str] | None = None,
    title: str | None = None,
) -> None:
    """One flag per field of ``cls`` (a dataclass) on ``parser`` (or a new argument group ``title``).

    The flag's destination is the flag name (``--score-device`` -> ``score_device``), so configs sharing a
    command do not collide; :func:`config_from_args` maps it back with the same ``renames``.
    """
    target = parser.add_argument_group(title) if title else parser
    for f in dataclasses.fields(cls):
        if f.name in skip or not f.init:
            continue
        help_text = str(f.metadata.get("help", "")).replace("%", "%%")
        if f.name in positional:
            target.add_argument(f.name, help=help_text)
            continue
        flag = flag_name(f.name, renames)
        has_default = f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        default = f.default if f.default is not dataclasses.MISSING else None
        if _is_bool(f.type):
            target.add_argument(flag, action=argparse.BooleanOptionalAction, default=default, help=help_text)
            continue
        kind = _scalar_type(f.type)
        if kind is None:
            raise TypeError(f"{cls.__name__}.{f.name}: no command-line flag for type {f.type!r}; skip it")
        kw: dict[str, Any] = {"type": kind, "help": help_text}
        if "choices" in f.metadata:
            kw["choices"] = tuple(f.metadata["choices"])
        if has_default:
            kw["default"] = default
            if default is not None and "(default" not in help_text:
                kw["help"] = f"{help_text} (default: {default})"
        else:
            kw["required"] = True
        if "metavar" in f.metadata:
            kw["metavar"] = f.metadata["metavar"]
        target.add_argument(flag, **kw)


def config_values(
    cls: Any, args: argparse.Namespace, renames: Mapping[str, str] | None = None, skip: tuple[str, ...] = ()
) -> dict[str, Any]:
    """The fields of ``cls`` that ``args`` holds (flags added by :func:`add_dataclass_args`)."""
    out = {}
    for f in dataclasses.fields(cls):
        if f.name in skip or not f.init:
            continue
        dest = (renames or {}).get(f.name, f.name)
        if hasattr(args, dest):
            out[f.name] = getattr(args, dest)
    return out


def config_from_args(
    cls: Any, args: argparse.Namespace, renames: Mapping[str, str] | None = None, **extra: Any
) -> Any:
    """Build ``cls`` from the parsed flags (plus ``extra`` fields that have no flag)."""
    return cls(**{**config_values(cls, args, renames), **extra})
