"""Config dataclasses from YAML or JSON mappings: unknown keys refused, scalars coerced to the field's type.

YAML and command-line JSON carry scalars in whatever type their author wrote: ``paired_baseline: "false"``
is a string, and Python's ``bool("false")`` is True. :func:`build_dataclass` converts each scalar field by
its annotation (``bool``, ``int``, ``float``, ``str``, optionally ``| None``) and refuses a value it cannot
read with a :class:`~reprompt.errors.ConfigError` that names the key; a nested config dataclass is built
from its mapping the same way. Other fields (lists, mappings) are left to the dataclass's own checks.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any

from reprompt.errors import ConfigError, did_you_mean

_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")


def coerce_bool(value: Any, key: str) -> bool:
    """``True``/``False``, ``1``/``0``, or one of the YAML words (true/false, yes/no, on/off) as text."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
        return value.strip().lower() in _TRUE
    raise ConfigError(f"{key} must be true or false, got {value!r}")


def _number(value: Any, key: str, kind: type, what: str) -> Any:
    """``value`` as ``kind`` (int or float), also written as text; never a bool."""
    if not isinstance(value, bool):
        if isinstance(value, int | float) and (kind is float or float(value).is_integer()):
            return kind(value)
        if isinstance(value, str):
            try:
                return kind(value.strip())
            except ValueError:
                pass
    raise ConfigError(f"{key} must be {what}, got {value!r}")


def coerce_int(value: Any, key: str) -> int:
    """A whole number, also written as text ("3") or as a float with no fraction (3.0)."""
    return int(_number(value, key, int, "a whole number"))


def coerce_float(value: Any, key: str) -> float:
    """A number, also written as text ("0.5", "1e-6")."""
    return float(_number(value, key, float, "a number"))


def coerce_str(value: Any, key: str) -> str:
    if isinstance(value, str):
        return value
    raise ConfigError(f"{key} must be text, got {value!r}")


_COERCE = {bool: coerce_bool, int: coerce_int, float: coerce_float, str: coerce_str}


def _unwrap_optional(annotation: Any) -> tuple[Any, bool]:
    """(the type inside ``X | None``, whether None is allowed)."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        optional = len(args) < len(typing.get_args(annotation))
        return (args[0] if len(args) == 1 else annotation), optional
    return annotation, False


def coerce_value(annotation: Any, value: Any, where: str, key: str) -> Any:
    """``value`` converted to ``annotation`` when that is a scalar type or a config dataclass (optionally
    ``| None``); anything else is returned as it is. ``key`` is the dotted path in messages."""
    inner, optional = _unwrap_optional(annotation)
    label = f"{where} key {key!r}"
    if value is None:
        if optional or inner not in _COERCE:
            return None
        raise ConfigError(f"{label} must be set, got null")
    if inner in _COERCE:
        return _COERCE[inner](value, label)
    if dataclasses.is_dataclass(inner) and isinstance(inner, type) and isinstance(value, Mapping):
        return build_dataclass(inner, value, where, prefix=f"{key}.")
    return value


def _hints(cls: type) -> dict[str, Any]:
    """Field annotations, resolved; a field whose annotation cannot be resolved (a name imported only for
    type checking) is read from its text when it is a plain scalar (``"int | None"``), else left alone."""
    try:
        return typing.get_type_hints(cls)
    except (NameError, TypeError):
        pass
    names = {"bool": bool, "int": int, "float": float, "str": str}
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if not isinstance(f.type, str):
            out[f.name] = f.type
            continue
        parts = [p.strip() for p in f.type.split("|")]
        kinds = [names[p] for p in parts if p in names]
        if len(kinds) == 1 and len(kinds) + parts.count("None") == len(parts):
            out[f.name] = kinds[0] | None if "None" in parts else kinds[0]
        else:
            out[f.name] = Any
    return out


def build_dataclass(cls: type, data: Mapping[str, Any], where: str, prefix: str = "") -> Any:
    """``cls(**data)`` with unknown keys refused (with a did-you-mean hint) and scalar fields coerced;
    ``where`` names the mapping in messages ("reward config", "vlm_judge option"), ``prefix`` the path of a
    nested mapping in it ("service.")."""
    if not isinstance(data, Mapping):
        what = f"{where} key {prefix.rstrip('.')!r}" if prefix else where
        raise ConfigError(f"{what} must be a mapping, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for key in data:
        if key not in fields:
            raise ConfigError(
                f"unknown {where} key {prefix + str(key)!r}.{did_you_mean(str(key), list(fields))} "
                f"Known: {', '.join(fields)}"
            )
    hints = _hints(cls)
    values = {k: coerce_value(hints.get(k, Any), v, where, prefix + k) for k, v in data.items()}
    try:
        return cls(**values)
    except TypeError as e:
        raise ConfigError(f"invalid {where}: {e}") from e
