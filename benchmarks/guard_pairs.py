"""Precision and recall of the intent guard's violation flag on hand-labelled (original, rewrite) pairs.

    python benchmarks/guard_pairs.py                       # tables + benchmarks/results/guard_pairs.json
    python benchmarks/guard_pairs.py --label "before" --out /tmp/before.json   # e.g. in a checkout of an older commit

Two sets of free-form pairs written by hand for this benchmark (not from any dataset), each pair labelled
``faithful`` (keeps every object, count, color binding, quoted text and name; may add anything) or not, with
``kind`` saying what an unfaithful rewrite breaks: ``benchmarks/data/guard_pairs.jsonl`` (131 pairs, written
before the guard's precision fixes of issue 19 and used to find the classes of false alarm) and
``benchmarks/data/guard_pairs_heldout.jsonl`` (42 pairs, written after them and never tuned on). The guard claims ``object``,
``count``, ``color``, ``quoted`` and ``name``; a few pairs break what it does not claim to check
(``relation``, ``attribute``, ``action``), so recall is reported both within its claims and over all pairs.

A flag is the guard's verdict ``not report.ok``. Precision: flagged pairs that are really unfaithful;
recall: unfaithful pairs flagged. Prints a table, the false alarms and the misses, and writes JSON.
Pure text, no model: runs in about a second.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
SETS = {
    "development": REPO / "benchmarks" / "data" / "guard_pairs.jsonl",
    "held_out": REPO / "benchmarks" / "data" / "guard_pairs_heldout.jsonl",
}
CLAIMED = ("object", "count", "color", "quoted", "name")


def read_pairs(path: Path) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    for i, row in enumerate(rows, 1):
        if not isinstance(row.get("faithful"), bool) or not row.get("original") or not row.get("rewrite"):
            raise SystemExit(f"{path}:{i}: each line needs original, rewrite and faithful (true/false)")
    return rows


def rates(rows: list[dict[str, Any]]) -> dict[str, Any]:
    tp = sum(r["flagged"] and not r["faithful"] for r in rows)
    fp = sum(r["flagged"] and r["faithful"] for r in rows)
    fn = sum(not r["flagged"] and not r["faithful"] for r in rows)
    tn = sum(not r["flagged"] and r["faithful"] for r in rows)
    return {
        "pairs": len(rows),
        "true_positives": tp,
        "false_positives": fp,
        "false_negatives": fn,
        "true_negatives": tn,
        "precision": tp / (tp + fp) if tp + fp else None,
        "recall": tp / (tp + fn) if tp + fn else None,
    }


def evaluate(pairs: list[dict[str, Any]]) -> dict[str, Any]:
    from reprompt.guard import check_rewrite

    rows = []
    for p in pairs:
        report = check_rewrite(p["original"], p["rewrite"])
        rows.append({**p, "flagged": not report.ok, "findings": [str(f) for f in report.findings]})
    claimed = [r for r in rows if r["faithful"] or r.get("kind") in CLAIMED]
    kinds = Counter(r.get("kind", "?") for r in rows if not r["faithful"])
    return {
        "all": rates(rows),
        "within_claims": rates(claimed),
        "recall_per_kind": {
            k: sum(r["flagged"] for r in rows if not r["faithful"] and r.get("kind") == k) / n
            for k, n in sorted(kinds.items())
        },
        "unfaithful_per_kind": dict(sorted(kinds.items())),
        "false_alarms": [
            {"original": r["original"], "rewrite": r["rewrite"], "findings": r["findings"]}
            for r in rows
            if r["flagged"] and r["faithful"]
        ],
        "misses": [
            {"original": r["original"], "rewrite": r["rewrite"], "kind": r.get("kind")}
            for r in rows
            if not r["flagged"] and not r["faithful"]
        ],
    }


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{x:.3f}"


def print_report(result: dict[str, Any], label: str) -> None:
    print(f"intent guard on {result['all']['pairs']} labelled pairs ({label})")
    print(f"{'':16}{'pairs':>7}{'TP':>5}{'FP':>5}{'FN':>5}{'TN':>5}{'precision':>11}{'recall':>8}")
    for name in ("all", "within_claims"):
        r = result[name]
        print(
            f"{name:16}{r['pairs']:>7}{r['true_positives']:>5}{r['false_positives']:>5}"
            f"{r['false_negatives']:>5}{r['true_negatives']:>5}{_pct(r['precision']):>11}{_pct(r['recall']):>8}"
        )
    per_kind = ", ".join(
        f"{k} {v:.2f} of {result['unfaithful_per_kind'][k]}" for k, v in result["recall_per_kind"].items()
    )
    print(f"recall per kind: {per_kind}")
    for title, key in (("false alarms", "false_alarms"), ("misses", "misses")):
        print(f"{title}: {len(result[key])}")
        for r in result[key]:
            extra = "; ".join(r["findings"]) if "findings" in r else r["kind"]
            print(f"  {r['original']!r} -> {r['rewrite']!r}: {extra}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--pairs",
        action="append",
        default=None,
        help="a JSONL file of pairs (repeatable; default: both sets)",
    )
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "guard_pairs.json"))
    ap.add_argument("--label", default="this checkout", help="what was measured (e.g. a commit)")
    args = ap.parse_args(argv)
    sets = {Path(p).stem: Path(p) for p in args.pairs} if args.pairs else SETS
    result: dict[str, Any] = {}
    for name, path in sets.items():
        result[name] = evaluate(read_pairs(path))
        print_report(result[name], f"{name}, {path.name}, {args.label}")
        print()
    result["settings"] = {
        "sets": {name: path.name for name, path in sets.items()},
        "label": args.label,
        "machine": f"{platform.machine()} CPU, Python {platform.python_version()}",
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
