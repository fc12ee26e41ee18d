"""Check a prompt's GenEval metadata before scoring it, with errors that name the field.

``score_detections`` trusts its input; this is the gate in front of it, used wherever metadata comes
in for scoring (the ``geneval`` reward and so the reward service, the GenEval run files, and
:func:`read_metadata_file`, the one reader of ``evaluation_metadata.jsonl``). Without it a
``count`` of -5 passes every image, a count of a billion or a class no detector knows fails every image,
and a count written as a word, an unknown relation or a position that points nowhere end in an internal
error.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from reprompt.errors import RepromptError
from reprompt.geneval.rules import MAX_OBJECTS, RELATIONS
from reprompt.geneval.vocabulary import COCO_CLASSES, GENEVAL_COLORS

INCLUDE_KEYS = ("class", "count", "color", "position")
EXCLUDE_KEYS = ("class", "count")

MAX_INCLUDE_COUNT = MAX_OBJECTS
"""Largest ``count`` of an include clause: the rules keep at most 16 detections per class (GenEval's
official ``max_objects``), so a larger count could never be met and every image would score 0 without a
word. GenEval's own prompts ask for at most 4."""
MAX_EXCLUDE_COUNT = MAX_OBJECTS + 1
"""Largest ``count`` of an exclude clause: 17 still says "exactly 16" next to an include count of 16; a
larger one could never fail, so the clause would check nothing."""


class MetadataError(RepromptError):
    """GenEval metadata that cannot be scored; the message names the field and what it must be."""


def validate_metadata(
    metadata: Any, classes: Collection[str] = COCO_CLASSES, where: str = "GenEval metadata"
) -> dict[str, Any]:
    """Return a copy of ``metadata`` ready for ``score_detections`` (``tag`` and ``prompt`` default to
    ""), or raise :class:`MetadataError` when a clause cannot be scored.

    ``include`` (a list) and ``exclude`` (optional list) hold clauses ``{class, count}``; include clauses
    may add ``color`` (one of GenEval's 10) and ``position: [relation, j]`` with ``j`` an EARLIER include
    clause. ``class`` must be one the detectors know (``classes``, COCO's 80 by default); ``count`` a
    whole number >= 1 and at most :data:`MAX_INCLUDE_COUNT` (16; exclude clauses
    :data:`MAX_EXCLUDE_COUNT`, 17). ``tag`` and ``prompt``, when present, must be strings.
    """
    if not isinstance(metadata, Mapping):
        raise MetadataError(f"{where} must be an object with include/exclude, got {_kind(metadata)}")
    for key in ("tag", "prompt"):
        if key in metadata and not isinstance(metadata[key], str):
            raise MetadataError(f"{where}: {key!r} must be a string, got {_kind(metadata[key])}")
    includes = metadata.get("include", [])
    excludes = metadata.get("exclude", [])
    for key, clauses in (("include", includes), ("exclude", excludes)):
        if not isinstance(clauses, list):
            raise MetadataError(f"{where}: {key!r} must be a list of clauses, got {_kind(clauses)}")
    known = set(classes)
    for i, clause in enumerate(includes):
        _check_clause(clause, f"{where}: include[{i}]", INCLUDE_KEYS, known, MAX_INCLUDE_COUNT)
        if "color" in clause and clause["color"] not in GENEVAL_COLORS:
            raise MetadataError(
                f"{where}: include[{i}].color must be one of {', '.join(GENEVAL_COLORS)}, "
                f"got {_show(clause['color'])}"
            )
        if "position" in clause:
            _check_position(clause["position"], i, f"{where}: include[{i}].position")
    for i, clause in enumerate(excludes):
        _check_clause(clause, f"{where}: exclude[{i}]", EXCLUDE_KEYS, known, MAX_EXCLUDE_COUNT)
    checked = dict(metadata)  # same key order: results.jsonl stores it as a string, and groups by it
    checked.setdefault("tag", "")
    checked.setdefault("prompt", "")
    return checked


def read_metadata_file(path: str | Path) -> list[dict[str, Any]]:
    """Read GenEval's ``evaluation_metadata.jsonl`` (one JSON object per line), checking every line with
    :func:`validate_metadata`: the one reader of metadata files (evaluation, benchmarks), one strictness."""
    path = Path(path)
    if not path.exists():
        raise RepromptError(
            f"metadata file {str(path)!r} does not exist (GenEval's evaluation_metadata.jsonl)"
        )
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            meta = json.loads(line)
        except ValueError as e:
            raise RepromptError(f"{path}:{n}: not JSON ({e})") from e
        if not isinstance(meta, dict) or not isinstance(meta.get("prompt"), str) or "tag" not in meta:
            raise RepromptError(f"{path}:{n}: a GenEval line needs 'tag', 'prompt' and 'include'")
        if not isinstance(meta.get("include"), list):
            raise RepromptError(f"{path}:{n}: 'include' must be a list of clauses")
        validate_metadata(meta, where=f"{path}:{n}")
        out.append(meta)
    if not out:
        raise RepromptError(f"metadata file {path} holds no prompts")
    return out


def _check_clause(clause: Any, field: str, allowed: tuple[str, ...], known: set[str], max_count: int) -> None:
    if not isinstance(clause, Mapping):
        raise MetadataError(f"{field} must be an object like {{class, count}}, got {_kind(clause)}")
    extra = [str(k) for k in clause if k not in allowed]
    if extra:
        raise MetadataError(
            f"{field} has unknown key(s) {', '.join(map(repr, extra))}; allowed: {', '.join(allowed)}"
        )
    for key in ("class", "count"):
        if key not in clause:
            raise MetadataError(f"{field}.{key} is missing")
    cls = clause["class"]
    if not isinstance(cls, str) or cls not in known:
        from reprompt.errors import did_you_mean

        hint = did_you_mean(cls, sorted(known)) if isinstance(cls, str) else ""
        raise MetadataError(
            f"{field}.class {_show(cls)} is not a class the detectors know (GenEval's {len(known)} COCO "
            f"names: a clause on it could never pass).{hint}"
        )
    count = clause["count"]
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise MetadataError(f"{field}.count must be a whole number >= 1, got {_show(count)}")
    if count > max_count:
        raise MetadataError(
            f"{field}.count must be at most {max_count}, got {_show(count)}: GenEval's rules keep at most "
            f"{MAX_OBJECTS} detections of a class, so a larger count could never "
            + ("be met" if max_count == MAX_INCLUDE_COUNT else "fail")
        )


def _check_position(position: Any, index: int, field: str) -> None:
    if not isinstance(position, (list, tuple)) or len(position) != 2:
        raise MetadataError(
            f"{field} must be [relation, index of an earlier include clause], got {_show(position)}"
        )
    relation, target = position
    if relation not in RELATIONS:
        raise MetadataError(
            f"{field}[0] must be one of {', '.join(map(repr, RELATIONS))}, got {_show(relation)}"
        )
    if isinstance(target, bool) or not isinstance(target, int) or not 0 <= target < index:
        raise MetadataError(
            f"{field}[1] must be the index of an earlier include clause (0..{index - 1}), got {_show(target)}"
            if index
            else f"{field}: the first include clause cannot be placed relative to another one"
        )


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _show(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
