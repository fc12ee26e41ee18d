"""Build the SFT JSONL: teacher completions, filtered by format and length, resumable after a kill.

Each kept row stores the reasoning and the enhanced prompt separately (plus the completion rendered in
the requested tag format), so the trainer renders targets for whatever ``PromptSpec`` it trains with:
the same file serves the reason/prompt model and the no-reasoning ablation.

Rows already in the output (kept) or in ``<out>.dropped.jsonl`` (dropped, with the reason) are skipped
on a rerun, so a killed build continues where it stopped.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from reprompt.backbones.base import TokenCount
from reprompt.data.teachers import Teacher
from reprompt.errors import ConfigError, check_range
from reprompt.format import TagFormat, get_tag_format, parse_completion, render_completion
from reprompt.format.length import LengthBounds
from reprompt.utils.io import append_jsonl, atomic_write_json, read_jsonl

METADATA_KEYS = ("tag", "include", "exclude")


@dataclass
class SFTDataReport:
    """How many rows were kept and why the others were dropped (this run and earlier runs together)."""

    out: str
    kept: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    resumed: int = 0
    """Rows found done from an earlier run and skipped."""
    written_now: int = 0
    seconds: float = 0.0
    teacher: str = ""

    @property
    def total(self) -> int:
        return self.kept + sum(self.dropped.values())

    def summary(self) -> str:
        why = ", ".join(f"{n} {reason}" for reason, n in sorted(self.dropped.items(), key=lambda x: -x[1]))
        return (
            f"kept {self.kept} of {self.total} ({self.resumed} done before this run); "
            f"dropped: {why or 'none'} -> {self.out}"
        )


def dropped_path(out: str | Path) -> Path:
    out = Path(out)
    return out.with_name(out.stem + ".dropped.jsonl")


def drop_torn_tail(path: str | Path) -> None:
    """Cut a half-written last line (left by a kill), so the next append starts on a fresh line."""
    path = Path(path)
    if not path.exists() or path.stat().st_size == 0:
        return
    with open(path, "rb+") as f:
        f.seek(-1, 2)
        if f.read(1) == b"\n":
            return
        f.seek(0)
        data = f.read()
        f.truncate(data.rfind(b"\n") + 1)


def check_row(
    completion: str,
    original: str,
    teacher_fmt: TagFormat,
    token_counter: Callable[[str], TokenCount] | None,
    bounds: LengthBounds,
    need_reasoning: bool,
) -> tuple[dict[str, Any] | None, str | None]:
    """(fields, None) for a usable completion, else (None, drop reason)."""
    parsed = parse_completion(completion, original, teacher_fmt)
    if not parsed.format_ok:
        return None, f"format: {parsed.issue}"
    if need_reasoning and not parsed.reasoning.strip():
        return None, "empty reasoning"
    fields: dict[str, Any] = {"reasoning": parsed.reasoning, "rewritten": parsed.prompt}
    if token_counter is not None:
        tc = token_counter(parsed.prompt)
        fields["prompt_tokens"] = tc.tokens
        if tc.tokens < bounds.min_tokens:
            return None, f"too short (< {bounds.min_tokens} tokens)"
        if tc.tokens > bounds.upper(tc.limit):
            return None, f"too long (> {bounds.upper(tc.limit)} tokens)"
        if tc.truncated:
            return None, f"truncated by {tc.encoder} (> {tc.limit} tokens)"
    return fields, None


def build_sft_data(
    records: Sequence[Mapping[str, Any]],
    teacher: Teacher,
    out: str | Path,
    *,
    tags: str | TagFormat = "reason/prompt",
    token_counter: Callable[[str], TokenCount] | None = None,
    min_tokens: int = LengthBounds.min_tokens,
    max_tokens: int | None = LengthBounds.max_tokens,
    batch_size: int = 8,
    progress: bool = True,
) -> SFTDataReport:
    """Run ``teacher`` over ``records`` (each with ``id`` and ``prompt``; metadata kept) into ``out``.

    A completion is kept when it parses well-formed (in the teacher's format), has reasoning (when
    ``tags`` has a reason block) and its prompt is inside the length window the length reward scores
    (:class:`~reprompt.format.length.LengthBounds`: ``min_tokens`` to ``max_tokens``, None being the
    encoder's limit) in the target backbone's tokens (``token_counter``, e.g. ``backbone.count_tokens``).
    Writes ``<out>.report.json``.
    """
    check_range("batch_size", batch_size, 1)
    bounds = LengthBounds(min_tokens, max_tokens)
    fmt = get_tag_format(tags)
    out = Path(out)
    ids = [str(r["id"]) for r in records]
    if len(set(ids)) != len(ids):
        raise ConfigError("prompt ids must be unique (resuming relies on them)")
    for path in (out, dropped_path(out)):
        drop_torn_tail(path)
    kept_rows, drop_rows = read_jsonl(out), read_jsonl(dropped_path(out))
    report = SFTDataReport(out=str(out), teacher=teacher.name)
    done = {str(r["id"]) for r in kept_rows} | {str(r["id"]) for r in drop_rows}
    report.kept = len(kept_rows)
    report.dropped = dict(Counter(r["reason"] for r in drop_rows))
    todo = [r for r in records if str(r["id"]) not in done]
    report.resumed = len(records) - len(todo)
    t0 = time.perf_counter()
    batches = range(0, len(todo), batch_size)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(todo), desc=f"sft data ({teacher.name})", unit="prompt")
    for start in batches:
        chunk = todo[start : start + batch_size]
        for rec, answer in zip(chunk, teacher.write(chunk), strict=True):
            base = {"id": str(rec["id"]), "prompt": rec["prompt"]}
            meta = {k: rec[k] for k in METADATA_KEYS if k in rec}
            reason: str | None
            if answer.error:
                fields, reason = None, f"teacher: {answer.error}"
            else:
                fields, reason = check_row(
                    answer.completion,
                    rec["prompt"],
                    answer.fmt,
                    token_counter,
                    bounds,
                    need_reasoning=fmt.reason is not None,
                )
            if fields is None:
                reason = reason or "dropped"
                append_jsonl(dropped_path(out), {**base, "reason": reason, "completion": answer.completion})
                report.dropped[reason] = report.dropped.get(reason, 0) + 1
                continue
            completion = render_completion(fields["reasoning"], fields["rewritten"], fmt)
            append_jsonl(
                out,
                {
                    **base,
                    "completion": completion,
                    "tags": fmt.name,
                    "teacher": teacher.name,
                    **fields,
                    **meta,
                },
            )
            report.kept += 1
            report.written_now += 1
        if bar is not None:
            bar.update(len(chunk))
    if bar is not None:
        bar.close()
    report.seconds = round(time.perf_counter() - t0, 3)
    atomic_write_json(out.with_name(out.stem + ".report.json"), asdict(report))
    return report


def sft_examples(rows: Sequence[Mapping[str, Any]], spec: Any) -> list[dict[str, Any]]:
    """Conversational prompt/completion examples for TRL's SFTTrainer.

    The prompt is ``spec.messages(prompt)`` (the function inference uses) and the completion the
    assistant turn, rendered in ``spec``'s tag format from the stored reasoning and enhanced prompt."""
    out = []
    for r in rows:
        if "rewritten" in r:
            reasoning, rewritten = r.get("reasoning", ""), r["rewritten"]
        else:  # a plain {"prompt", "completion"} file: parse the completion in the spec's format
            parsed = parse_completion(r["completion"], r["prompt"], spec.fmt)
            if not parsed.format_ok:
                raise ConfigError(
                    f"SFT row {r.get('id', '?')}: completion is not in the {spec.fmt.name} format "
                    f"({parsed.issue}); rebuild the data with `reprompt data sft` or fix the tags"
                )
            reasoning, rewritten = parsed.reasoning, parsed.prompt
        completion = render_completion(reasoning, rewritten, spec.fmt)
        out.append(
            {
                "prompt": spec.messages(r["prompt"]),
                "completion": [{"role": "assistant", "content": completion}],
            }
        )
    return out
