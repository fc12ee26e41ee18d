"""The web UI's engine, free of any web framework so it is tested directly.

It loads the policy and the backbone the way the CLI does (``reprompt.cli.common``), rewrites, renders
the original and the enhanced prompt with the same seeds, re-renders a prompt the user edited against
the same original images, and writes every turn (``record.json``, the images, the side-by-side
comparison and a zip of all of it) to its own folder for download.

Why one ~450-line module: the session (loading, turns, edits, downloads) is one state machine; the
Gradio page (``app.py``) is separate.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reprompt.errors import RepromptError
from reprompt.policy.base import IdentityRewriter, Rewrite

Progress = Callable[[float, str], None]
MAX_IMAGES = 8
MAX_CANDIDATES = 8


@dataclass
class RenderSettings:
    """Per-request backbone settings; ``None`` keeps the backbone's own value."""

    width: int | None = field(default=None, metadata={"help": "image width in pixels"})
    height: int | None = field(default=None, metadata={"help": "image height in pixels"})
    steps: int | None = field(default=None, metadata={"help": "denoising steps (diffusers backbones)"})
    guidance: float | None = field(default=None, metadata={"help": "guidance scale (diffusers backbones)"})

    def __post_init__(self) -> None:
        for name in ("width", "height"):
            v = getattr(self, name)
            if v is not None and not 16 <= v <= 4096:
                raise RepromptError(f"{name} must be between 16 and 4096 pixels, got {v}")
        if self.steps is not None and not 1 <= self.steps <= 500:
            raise RepromptError(f"steps must be between 1 and 500, got {self.steps}")
        if self.guidance is not None and self.guidance < 0:
            raise RepromptError(f"guidance must be >= 0, got {self.guidance}")


@contextmanager
def render_settings(backbone: Any, s: RenderSettings) -> Iterator[None]:
    """Apply ``s`` to ``backbone`` for one render and restore it afterwards (the backbone is shared)."""
    if hasattr(backbone, "config") and dataclasses.is_dataclass(backbone.config):  # the sketch simulator
        old = backbone.config
        size = {k: v for k, v in (("width", s.width), ("height", s.height)) if v is not None}
        backbone.config = dataclasses.replace(old, **size)
        try:
            yield
        finally:
            backbone.config = old
        return
    names = ("width", "height", "steps", "guidance")
    saved = {n: getattr(backbone, n) for n in names if hasattr(backbone, n)}
    for n in saved:
        if getattr(s, n) is not None:
            setattr(backbone, n, getattr(s, n))
    try:
        yield
    finally:
        for n, v in saved.items():
            setattr(backbone, n, v)


def backbone_defaults(backbone: Any) -> dict[str, Any]:
    """The backbone's own width/height/steps/guidance (what an empty settings field means)."""
    settings = backbone.settings()
    return {n: settings.get(n) for n in ("width", "height", "steps", "guidance")}


@dataclass
class Turn:
    """One row of the session history: what was asked, what was rendered, where it was written."""

    number: int
    kind: str  # "rewrite" (policy ran), "original" (rewrite off), "edit" (the user's prompt), "candidate"
    original: str
    rewrite: Rewrite
    """What the right-hand images show (for an edit: the user's prompt, the policy's reasoning)."""
    candidates: list[Rewrite]
    seeds: list[int]
    folder: Path
    original_paths: list[Path]
    rewritten_paths: list[Path]
    record_path: Path
    zip_path: Path
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    parent: int | None = None

    @property
    def rendered_prompt(self) -> str:
        return self.rewrite.prompt if self.kind != "original" else ""


class Studio:
    """Loads components lazily from the CLI's flags and runs one request at a time (a lock: the policy
    and the pipeline hold the accelerator).

    ``allow_model_change`` lets a request name another policy or backbone (a folder, a URL): right for a
    UI on localhost, not for one reachable by others, so :func:`reprompt.ui.app.launch` turns it off
    when binding any other address.
    """

    def __init__(
        self, args: argparse.Namespace, out_dir: str | Path, allow_model_change: bool = True
    ) -> None:
        self.args = args
        self.allow_model_change = allow_model_change
        self.out_dir = Path(out_dir).expanduser().resolve()
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.lock = threading.Lock()
        self._policy: Any = None
        self._backbone: Any = None
        self._names: dict[str, str | None] = {"policy": None, "backbone": None}
        self._counter = 0

    # --- components -------------------------------------------------------------------------------
    @property
    def policy_name(self) -> str:
        return self._names["policy"] or self.args.policy

    @property
    def backbone_name(self) -> str:
        return self._names["backbone"] or self.args.backbone

    def load(self, policy: str | None = None, backbone: str | None = None, progress: Progress | None = None):
        """The (policy, backbone) pair named (default: the CLI's), loading only what changed and
        freeing what it replaces."""
        from reprompt.cli.common import backbone_kwargs, policy_kwargs
        from reprompt.integrations.common import free_memory, load_named_policy

        policy = (policy or self.policy_name).strip()
        backbone = (backbone or self.backbone_name).strip()
        if not self.allow_model_change and (policy, backbone) != (self.args.policy, self.args.backbone):
            raise RepromptError(
                f"this UI serves policy {self.args.policy!r} and backbone {self.args.backbone!r} only "
                "(it is reachable from other machines); restart it to use other models"
            )
        if self._backbone is None or backbone != self._names["backbone"]:
            if progress:
                progress(0.02, f"loading backbone {backbone}")
            ns = copy.copy(self.args)
            ns.backbone = backbone
            if backbone != self.args.backbone:
                ns.model = None  # --model belongs to the backbone named on the command line
            from reprompt.backbones import load_backbone

            self._backbone = None
            free_memory()
            self._backbone = load_backbone(backbone, **backbone_kwargs(ns))
            self._names["backbone"] = backbone
        if self._policy is None or policy != self._names["policy"]:
            if progress:
                progress(0.05, f"loading policy {policy}")
            self._policy = None
            free_memory()
            self._policy = load_named_policy(policy, **policy_kwargs(self.args))
            self._names["policy"] = policy
        return self._policy, self._backbone

    # --- requests ---------------------------------------------------------------------------------
    def options(self, **overrides: Any) -> Any:
        """Decoding options: the CLI's, with the UI's fields (``None`` = keep) on top."""
        from reprompt.cli.common import generation_options

        base = generation_options(self.args)
        changes = {k: v for k, v in overrides.items() if v is not None}
        return dataclasses.replace(base, **changes)

    def enhance(
        self,
        prompt: str,
        *,
        rewrite: bool = True,
        seed: int = 0,
        num_images: int = 1,
        candidates: int = 1,
        temperature: float | None = None,
        top_p: float | None = None,
        max_new_tokens: int | None = None,
        policy_seed: int | None = None,
        guard: str | None = None,
        settings: RenderSettings | None = None,
        policy: str | None = None,
        backbone: str | None = None,
        progress: Progress | None = None,
    ) -> Turn:
        """Rewrite ``prompt`` (all candidates), render the original and the chosen candidate with seeds
        ``seed .. seed+num_images-1``; with ``rewrite=False`` render the original only. ``guard`` is the
        intent guard's mode (off | warn | retry | fallback; ``None`` keeps the CLI's ``--guard``)."""
        from reprompt.integrations.common import pick_rewrite
        from reprompt.policy.base import check_prompt

        prompt = check_prompt(prompt)
        _check_range("images", num_images, 1, MAX_IMAGES)
        _check_range("candidates", candidates, 1, MAX_CANDIDATES)
        settings = settings or RenderSettings()
        opts = self.options(
            num_candidates=candidates,
            temperature=temperature,
            top_p=top_p,
            max_new_tokens=max_new_tokens,
            seed=policy_seed,
            batch_size=1,
            **({"guard": guard} if guard else {}),
        )
        seeds = [int(seed) + k for k in range(num_images)]
        with self.lock:
            pol, bb = self.load(policy, backbone, progress)
            timings: dict[str, float] = {}
            if rewrite and not isinstance(pol, IdentityRewriter):
                if progress:
                    progress(0.1, f"rewriting with {pol.name}")
                t0 = time.perf_counter()
                cands = pol.rewrite([prompt], options=opts, token_counter=bb.count_tokens)
                timings["rewrite_s"] = time.perf_counter() - t0
                chosen, kind = pick_rewrite(cands), "rewrite"
            else:
                cands, kind = [], "original"
                chosen = IdentityRewriter().rewrite([prompt], token_counter=bb.count_tokens)[0]
            if progress:
                progress(0.5, "rendering the original prompt")
            orig, warn, timings["render_original_s"] = self._render(bb, prompt, seeds, settings)
            right, warn2 = [], []
            if kind == "rewrite" and chosen.prompt == prompt:  # e.g. a fallback: the same images
                right = list(orig)
            elif kind == "rewrite":
                if progress:
                    progress(0.75, "rendering the enhanced prompt")
                right, warn2, timings["render_rewritten_s"] = self._render(bb, chosen.prompt, seeds, settings)
            meta = self._settings(pol, bb, seed, num_images, settings, opts if kind == "rewrite" else None)
            return self._save(
                kind,
                prompt,
                chosen,
                cands,
                seeds,
                orig,
                right,
                warn + warn2,
                timings,
                meta,
                progress=progress,
            )

    def render_edit(self, parent: Turn, prompt: str, progress: Progress | None = None) -> Turn:
        """Render a user-edited prompt with ``parent``'s seeds and settings, beside its original images.

        A prompt equal to one of ``parent``'s other candidates renders that candidate (with its reasoning)."""
        from PIL import Image

        from reprompt.policy.base import check_prompt

        prompt = check_prompt(prompt)
        settings = RenderSettings(**parent.settings.get("render", {}))
        with self.lock:
            pol, bb = self.load(parent.settings.get("policy"), parent.settings.get("backbone"), progress)
            if progress:
                progress(0.3, "rendering the edited prompt")
            images, warn, secs = self._render(bb, prompt, parent.seeds, settings)
            tc = bb.count_tokens(prompt)
            picked = next((c for c in parent.candidates if c.prompt == prompt and not c.fallback), None)
            kind = "candidate" if picked is not None and picked is not parent.rewrite else "edit"
            edited = dataclasses.replace(
                picked or parent.rewrite,
                prompt=prompt,
                prompt_tokens=tc.tokens,
                token_limit=tc.limit,
                truncated=tc.truncated,
                fallback=False,
                issue=None,
            )
            if kind == "edit" and getattr(parent.rewrite, "guard", None) is not None:  # check the user's too
                from reprompt.guard import check_rewrite

                edited.guard = check_rewrite(parent.original, prompt)
            originals = [Image.open(p).convert("RGB") for p in parent.original_paths]
            meta = {
                **parent.settings,
                "edited_from": parent.rewrite.prompt if parent.kind != "original" else None,
            }
            return self._save(
                kind,
                parent.original,
                edited,
                parent.candidates,
                parent.seeds,
                originals,
                images,
                warn,
                {"render_rewritten_s": secs},
                meta,
                parent=parent.number,
                progress=progress,
            )

    # --- helpers ----------------------------------------------------------------------------------
    @staticmethod
    def _render(bb: Any, prompt: str, seeds: list[int], settings: RenderSettings):
        t0 = time.perf_counter()
        with render_settings(bb, settings):
            out = bb.render([prompt] * len(seeds), seeds)
        return list(out.images), list(out.warnings), time.perf_counter() - t0

    def _settings(self, pol, bb, seed, num_images, settings, opts) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "policy": self._names["policy"],
            "policy_model": pol.name,
            "backbone": self._names["backbone"],
            "seed": int(seed),
            "num_images": num_images,
            "render": dataclasses.asdict(settings),
            "backbone_defaults": backbone_defaults(bb),
        }
        if opts is not None:
            meta["generation"] = dataclasses.asdict(opts)
        return meta

    def _save(
        self,
        kind: str,
        original: str,
        rewrite: Rewrite,
        candidates: list[Rewrite],
        seeds: list[int],
        left: list[Any],
        right: list[Any],
        warnings: list[str],
        timings: dict[str, float],
        meta: dict[str, Any],
        parent: int | None = None,
        progress: Progress | None = None,
    ) -> Turn:
        """Write the turn with the pipeline's own record format (``RePromptResult.save``) and zip it."""
        from reprompt.pipeline import RePromptResult

        if progress:
            progress(0.95, "writing the record")
        self._counter += 1
        number = self._counter
        folder = self.out_dir / f"turn-{number:04d}-{time.strftime('%H%M%S')}"
        meta = {**meta, "ui_kind": kind, "parent_turn": parent}
        if kind == "original":  # rewrite off: the record holds the original's images only
            res = RePromptResult(rewrite, seeds, left, warnings=warnings, timings=timings, settings=meta)
        else:
            res = RePromptResult(
                rewrite, seeds, right, left, warnings=warnings, timings=timings, settings=meta
            )
        record = res.save(folder)
        if candidates:
            record["candidates"] = [c.to_dict() for c in candidates]
            from reprompt.utils.io import atomic_write_json

            atomic_write_json(folder / "record.json", record)
        files = record["files"]
        if kind == "original":
            left_paths, right_paths = [folder / f for f in files["rewritten"]], []
        else:
            left_paths = [folder / f for f in files["original"]]
            right_paths = [folder / f for f in files["rewritten"]]
        zip_path = folder / f"reprompt-turn-{number:04d}.zip"
        with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as z:
            for p in sorted(folder.iterdir()):
                if p != zip_path and p.is_file():
                    z.write(p, p.name)
        return Turn(
            number=number,
            kind=kind,
            original=original,
            rewrite=rewrite,
            candidates=list(candidates),
            seeds=list(seeds),
            folder=folder,
            original_paths=left_paths,
            rewritten_paths=right_paths,
            record_path=folder / "record.json",
            zip_path=zip_path,
            warnings=list(warnings),
            timings=timings,
            settings=meta,
            parent=parent,
        )


def _check_range(name: str, value: int, lo: int, hi: int) -> None:
    if not lo <= int(value) <= hi:
        raise RepromptError(f"{name} must be between {lo} and {hi}, got {value}")


def describe(turn: Turn) -> str:
    """A short Markdown status line for a turn: lengths, fallbacks, timings, warnings."""
    rw = turn.rewrite
    parts = []
    if turn.kind == "rewrite" and rw.fallback:
        why = rw.issue or "the policy did not write the expected format"
        parts.append(
            f"**Fallback** ({why}): the original prompt is rendered on both sides. "
            "Edit the enhanced prompt to try your own."
        )
    if turn.kind == "original":
        parts.append(
            "Rewrite is off: the original prompt is rendered as given. Edit the prompt on the right to compare."
        )
    if rw.prompt_tokens is not None and turn.kind != "original":
        cut = " — **the encoder truncates it**" if rw.truncated else ""
        what = {"edit": "Your prompt", "candidate": f"Candidate {rw.candidate + 1}"}.get(
            turn.kind, "Enhanced prompt"
        )
        parts.append(f"{what}: {rw.prompt_tokens}/{rw.token_limit} tokens{cut}.")
    if turn.kind == "edit":
        parts.append(f"Edited by you, rendered with the same seeds as turn {turn.parent}.")
    if turn.kind == "candidate":
        parts.append(f"Candidate {rw.candidate + 1} of turn {turn.parent}, rendered with the same seeds.")
    report = getattr(rw, "guard", None)
    if report is not None and turn.kind != "original":
        parts.append(f"Intent guard: {report.summary()}.")
    secs = ", ".join(f"{k.removesuffix('_s').replace('_', ' ')} {v:.1f} s" for k, v in turn.timings.items())
    seeds = f"Seed {turn.seeds[0]}" if len(turn.seeds) == 1 else f"Seeds {turn.seeds[0]}–{turn.seeds[-1]}"
    parts.append(f"{seeds}. {secs}.")
    parts += [f"⚠ {w}" for w in turn.warnings[:5]]
    return "  \n".join(parts)
