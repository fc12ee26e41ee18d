"""Compare two benchmark output trees file by file: are they the same run, apart from documented fields?

Used to check that a refactor changed no output: run the same fixed commands before and after
(``benchmarks/refactor_run.sh OUT``: a tiny GenEval + T2I-CompBench + ``reprompt generate`` run) into two
folders, then

    python benchmarks/compare_run_folders.py BEFORE AFTER [--ignore-key KEY ...] [--json OUT.json]

Images and every other file are compared byte for byte. JSON and JSONL files that differ in bytes are
compared again after dropping the volatile keys (wall-clock times, timestamps, git hash, process ids:
:data:`VOLATILE_KEYS`, plus ``--ignore-key``) and replacing each tree's own path by ``<ROOT>``; plain-text
files likewise after masking durations and timestamps (and HTML after unescaping entities and
collapsing whitespace between tags). Each file is reported as ``identical`` (bytes), ``same after
normalising`` (naming the keys that differed), ``DIFFERENT`` or only on one side. Exit status 1 if any file is
DIFFERENT or missing on one side.
"""

from __future__ import annotations

import argparse
import html
import json
import re
import sys
from pathlib import Path
from typing import Any

# Keys whose values are wall-clock measurements or provenance of the machine/moment, not results.
# fmt: off
VOLATILE_KEYS = frozenset(
    {
        "created", "finished", "time", "since", "pid", "host", "command", "git_hash",
        "seconds", "rewrite_seconds", "render_seconds", "seconds_rewrite", "seconds_render", "seconds_total",
        "build_seconds", "rewrite_s", "render_rewritten_s", "render_original_s",
    }
)
# fmt: on
# Lock files hold the pid and command line of their last holder.
SKIP_NAMES = re.compile(r"^\..*\.lock$")
_DURATION = re.compile(r"\d+(\.\d+)? s\b")
_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\+\d\d:\d\d)?")


def _strip(obj: Any, ignore: frozenset[str], found: set[str], roots: tuple[str, ...]) -> Any:
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if k in ignore:
                found.add(k)
                continue
            out[k] = _strip(v, ignore, found, roots)
        return out
    if isinstance(obj, list):
        return [_strip(v, ignore, found, roots) for v in obj]
    if isinstance(obj, str):
        for root in roots:
            obj = obj.replace(root, "<ROOT>")
        return obj
    return obj


def _load(path: Path) -> Any:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    return json.loads(text)


def compare_file(a: Path, b: Path, roots: tuple[str, str], ignore: frozenset[str]) -> tuple[str, str]:
    """(verdict, detail) for one pair of files."""
    da, db = a.read_bytes(), b.read_bytes()
    if da == db:
        return "identical", ""
    if a.suffix in (".json", ".jsonl") or a.name in (".done",):
        try:
            ja, jb = _load(a), _load(b)
        except ValueError as e:
            return "DIFFERENT", f"not JSON ({e})"
        fa: set[str] = set()
        fb: set[str] = set()
        na = _strip(ja, ignore, fa, (roots[0],))
        nb = _strip(jb, ignore, fb, (roots[1],))
        if na == nb:
            return "same after normalising", ", ".join(sorted(fa | fb)) or "paths only"
        return "DIFFERENT", _first_difference(na, nb)
    if a.suffix in (".stdout", ".txt", ".html"):
        ta, tb = (
            _TIMESTAMP.sub(
                "<TIME>", _DURATION.sub("<T> s", d.decode("utf-8", "replace").replace(root, "<ROOT>"))
            )
            for d, root in ((da, roots[0]), (db, roots[1]))
        )
        if ta == tb:
            return "same after normalising", "paths, durations and timestamps"
        if a.suffix == ".html":  # the same page, written by another engine: compare its text and markup
            ha, hb = (re.sub(r"\s+", " ", re.sub(r">\s+<", "><", html.unescape(t))) for t in (ta, tb))
            if ha == hb:
                return "same after normalising", "paths, timestamps, HTML entities and whitespace"
        la, lb = ta.splitlines(), tb.splitlines()
        for i, (x, y) in enumerate(zip(la, lb, strict=False)):
            if x != y:
                return "DIFFERENT", f"line {i + 1}: {x[:100]!r} != {y[:100]!r}"
        return "DIFFERENT", f"{len(la)} vs {len(lb)} lines"
    return "DIFFERENT", f"{len(da)} vs {len(db)} bytes"


def _first_difference(a: Any, b: Any, where: str = "") -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in list(a) + [k for k in b if k not in a]:
            if k not in a or k not in b:
                return f"{where}.{k}: only in {'before' if k in a else 'after'}"
            if a[k] != b[k]:
                return _first_difference(a[k], b[k], f"{where}.{k}")
        if list(a) != list(b):
            return f"{where}: key order {list(a)} != {list(b)}"
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return f"{where}: {len(a)} vs {len(b)} items"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            if x != y:
                return _first_difference(x, y, f"{where}[{i}]")
    return f"{where or '<top>'}: {str(a)[:120]!r} != {str(b)[:120]!r}"


def compare_trees(before: Path, after: Path, ignore: frozenset[str] = VOLATILE_KEYS) -> list[dict[str, str]]:
    files_a = {
        p.relative_to(before) for p in before.rglob("*") if p.is_file() and not SKIP_NAMES.match(p.name)
    }
    files_b = {p.relative_to(after) for p in after.rglob("*") if p.is_file() and not SKIP_NAMES.match(p.name)}
    rows = []
    roots = (str(before.resolve()), str(after.resolve()))
    for rel in sorted(files_a | files_b):
        if rel not in files_b:
            rows.append({"file": str(rel), "verdict": "only before", "detail": ""})
        elif rel not in files_a:
            rows.append({"file": str(rel), "verdict": "only after", "detail": ""})
        else:
            verdict, detail = compare_file(before / rel, after / rel, roots, ignore)
            rows.append({"file": str(rel), "verdict": verdict, "detail": detail})
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("before", type=Path)
    ap.add_argument("after", type=Path)
    ap.add_argument("--ignore-key", action="append", default=[], help="another volatile JSON key to drop")
    ap.add_argument("--json", type=Path, default=None, help="write every file's verdict here")
    ap.add_argument("--all", action="store_true", help="list identical files too")
    args = ap.parse_args(argv)
    rows = compare_trees(args.before, args.after, VOLATILE_KEYS | set(args.ignore_key))
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["verdict"]] = counts.get(row["verdict"], 0) + 1
        if args.all or row["verdict"] != "identical":
            print(f"{row['verdict']:24} {row['file']}  {row['detail']}")
    print("summary: " + ", ".join(f"{v}: {n}" for v, n in sorted(counts.items())))
    if args.json:
        args.json.write_text(json.dumps({"counts": counts, "files": rows}, indent=2) + "\n")
    bad = sum(n for v, n in counts.items() if v in ("DIFFERENT", "only before", "only after"))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
