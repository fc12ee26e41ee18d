"""Atomic file writes and torn-line-safe JSONL, so killed long-running jobs never leave half-written
results behind, and no row is lost without a word."""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reprompt.errors import ConfigError, RepromptError

if TYPE_CHECKING:
    from reprompt.utils.images import ImageProvenance

logger = logging.getLogger(__name__)


def read_json(path: str | os.PathLike, fix: str) -> Any:
    """The JSON value stored in ``path``. A file that is not valid JSON (cut short by a kill or a full disk,
    edited by hand) is a :class:`RepromptError` naming the file, where it breaks, and ``fix``: what the user
    can do about it."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise RepromptError(
            f"{path} is not valid JSON ({e.msg} at line {e.lineno}, column {e.colno}; cut short?): {fix}"
        ) from None
    except UnicodeDecodeError:
        raise RepromptError(f"{path} is not UTF-8 text: {fix}") from None


def read_yaml_mapping(path: str | os.PathLike, what: str) -> dict[str, Any]:
    """The mapping a YAML file holds (empty file: ``{}``). A missing file, broken YAML or something else than
    a mapping is a :class:`ConfigError` naming ``what`` (``"reward config"``, ``"recipe"``, ...), the file, and
    where the YAML breaks: one wording for every YAML file a user hands reprompt."""
    import yaml

    path = Path(path).expanduser()
    if not path.is_file():
        raise ConfigError(f"{what} {str(path)!r} not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        where = getattr(e, "problem_mark", None)
        at = f" (line {where.line + 1}, column {where.column + 1})" if where is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"{what} {path} is not valid YAML{at}: {problem}") from e
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read {what} {path}: {e}") from e
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{what} {path} must hold a mapping of settings, not a {type(data).__name__}")
    return data


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temp file in the same folder and ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; results should read like any file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any, indent: int | None = 2) -> None:
    atomic_write_text(path, json.dumps(obj, indent=indent, ensure_ascii=False) + "\n")


def atomic_save_image(path: str | os.PathLike, image: Any, provenance: ImageProvenance | None = None) -> None:
    """Save a PIL image as PNG atomically; ``provenance`` goes into its text chunks (an AUTOMATIC1111-style
    ``parameters`` chunk and a ``reprompt`` JSON chunk: :class:`reprompt.utils.images.ImageProvenance`)."""
    from reprompt.utils.images import png_bytes

    atomic_write_bytes(path, png_bytes(image, provenance))


def append_jsonl(path: str | os.PathLike, record: dict) -> None:
    """Append one JSON line and fsync; a kill loses at most the line being written.

    A torn last line left by an earlier kill is cut first, so the new record starts on a line of its own
    (appended onto the fragment, both would be lost; :func:`read_jsonl` refuses such a line)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _end_last_line(path)
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record, ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())


def _end_last_line(path: Path) -> None:
    """Make ``path`` end with a newline: end a complete last row, or cut a torn one."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with open(path, "rb+") as f:
        f.seek(-1, os.SEEK_END)
        if f.read(1) == b"\n":
            return
        f.seek(0)
        data = f.read()
        start = data.rfind(b"\n") + 1
        try:
            json.loads(data[start:])
        except ValueError:
            logger.warning(
                "%s: cut a torn last line (%d bytes) left by an interrupted write", path, len(data) - start
            )
            f.truncate(start)
        else:
            f.write(b"\n")


@dataclass
class JsonlRead:
    """What :func:`scan_jsonl` found: the rows, and how many lines it read and dropped."""

    rows: list[dict]
    lines: int
    """Non-blank lines read."""
    dropped: int
    """Lines dropped: 0, or 1 for a torn last line."""


def scan_jsonl(path: str | os.PathLike) -> JsonlRead:
    """Read a JSONL file of objects. Only a torn LAST line (no newline at its end: a write cut by a kill)
    is dropped, with a warning; a malformed line anywhere else raises, naming the file and line, since
    skipping it would lose data without a word. A missing file reads as empty."""
    path = Path(path)
    if not path.exists():
        return JsonlRead([], 0, 0)
    text = path.read_text(encoding="utf-8")
    lines = text.split("\n")
    rows: list[dict] = []
    read = dropped = 0
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        read += 1
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            if number == len(lines):  # the last line, and no newline after it: torn by a kill
                dropped += 1
                logger.warning(
                    "%s: dropped its torn last line %d (no newline: a write cut short); %d rows read",
                    path,
                    number,
                    len(rows),
                )
                continue
            raise RepromptError(
                f"{path}, line {number}: not valid JSON ({e.msg}, column {e.colno}); fix or remove that line"
            ) from None
        if not isinstance(row, dict):
            raise RepromptError(f"{path}, line {number}: expected a JSON object, got {type(row).__name__}")
        rows.append(row)
    return JsonlRead(rows, read, dropped)


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """The rows of a JSONL file (see :func:`scan_jsonl`: only a torn last line is dropped, and logged)."""
    return scan_jsonl(path).rows
