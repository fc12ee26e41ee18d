"""The web UI's engine, free of any web framework so it is tested directly.

It takes the :class:`~reprompt.model_spec.ModelSpec` the command line built (policy, backbone, decoding),
rewrites and renders through :class:`~reprompt.pipeline.RePromptPipeline` (the same candidate choice, seeds
and guard as every other front end), re-renders a prompt the user edited against the same original images,
and writes every turn (``record.json``, the images, the side-by-side comparison and a zip of all of it) to
its own folder for download.

Why one ~400-line module: the session (loading, turns, edits, downloads) is one state machine; the
Gradio page (``app.py``) is separate.
"""

from __future__ import annotations

import dataclasses
import secrets
import threading
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reprompt.backbones.base import RenderSettings, applied_settings
from reprompt.errors import RepromptError, check_range
from reprompt.model_spec import ModelSpec
from reprompt.pipeline import RePromptPipeline, RePromptResult, check_seed
from reprompt.policy.base import GenerationOptions, Rewrite
from reprompt.utils.names import public_name

Progress = Callable[[float, str], None]
MAX_IMAGES = 8
MAX_CANDIDATES = 8
MAX_UI_SEED = 2**53 - 1
"""The largest seed a browser holds exactly (a JavaScript number); a larger one would render another seed."""


@dataclass
class Session:
    """One browser session's turns: numbered from 1, written under a folder with a random name, so no
    session sees, counts or guesses another's files."""

    folder: Path
    turns: int = 0


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
    models: tuple[str | None, str | None] = (None, None)
    """(policy, backbone) as loaded, to render an edit with the same models; never shown or written."""

    @property
    def rendered_prompt(self) -> str:
        return self.rewrite.prompt if self.kind != "original" else ""


class Studio:
    """Loads the components of ``spec`` lazily and runs one request at a time (a lock: the policy and the
    pipeline hold the accelerator).

    ``allow_model_change`` lets a request name another policy or backbone (a folder, a URL): right for a
    UI on localhost, not for one reachable by others, so :func:`reprompt.ui.app.launch` turns it off
    when binding any other address.
    """

    def __init__(self, spec: ModelSpec, out_dir: str | Path, allow_model_change: bool = True) -> None:
        self.spec = spec
        self.allow_model_change = allow_model_change
        self.out_dir = Path(out_dir).expanduser().resolve()
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.lock = threading.Lock()
        self._policy: Any = None
        self._backbone: Any = None
        self._names: dict[str, str | None] = {"policy": None, "backbone": None}
        self._default: Session | None = None

    def new_session(self) -> Session:
        """A session of its own (the page makes one per browser tab)."""
        return Session(self.out_dir / f"session-{secrets.token_urlsafe(12)}")

    @property
    def loaded(self) -> bool:
        """Whether the spec's models are loaded (the first request loads them, and takes longer)."""
        return self._policy is not None and self._backbone is not None

    # --- components -------------------------------------------------------------------------------
    @property
    def policy_name(self) -> str:
        return self._names["policy"] or self.spec.policy.name

    @property
    def backbone_name(self) -> str:
        return self._names["backbone"] or self.spec.backbone.name

    def load(
        self, policy: str | None = None, backbone: str | None = None, progress: Progress | None = None
    ) -> RePromptPipeline:
        """The pipeline of the (policy, backbone) pair named (default: the spec's), loading only what
        changed and freeing what it replaces."""
        from reprompt.integrations.common import free_memory

        policy = (policy or self.policy_name).strip()
        backbone = (backbone or self.backbone_name).strip()
        if not self.allow_model_change and (policy, backbone) != (
            self.spec.policy.name,
            self.spec.backbone.name,
        ):
            raise RepromptError(
                f"this UI serves policy {self.spec.policy.name!r} and backbone {self.spec.backbone.name!r} "
                "only (it is reachable from other machines); restart it to use other models"
            )
        if self._backbone is None or backbone != self._names["backbone"]:
            if progress:
                progress(0.02, f"loading backbone {public_name(backbone)} (once, on the first request)")
            backbone_choice = self.spec.backbone.renamed(backbone)
            self._backbone = None
            free_memory()
            self._backbone = backbone_choice.load()
            self._names["backbone"] = backbone
        if self._policy is None or policy != self._names["policy"]:
            if progress:
                progress(0.05, f"loading policy {public_name(policy)} (once, on the first request)")
            policy_choice = dataclasses.replace(self.spec.policy, name=policy)
            self._policy = None
            free_memory()
            self._policy = policy_choice.load()
            self._names["policy"] = policy
        return RePromptPipeline(self._policy, self._backbone)

    # --- requests ---------------------------------------------------------------------------------
    def options(self, **overrides: Any) -> GenerationOptions:
        """Decoding options: the spec's, with the UI's fields (``None`` = keep) on top (checked)."""
        changes = {k: v for k, v in overrides.items() if v is not None}
        return dataclasses.replace(self.spec.generation, **changes)

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
        session: Session | None = None,
    ) -> Turn:
        """Rewrite ``prompt`` (all candidates), render the original and the chosen candidate with seeds
        ``seed .. seed+num_images-1``; with ``rewrite=False`` render the original only. ``guard`` is the
        intent guard's mode (off | warn | retry | fallback; ``None`` keeps the spec's)."""
        from reprompt.policy.base import check_prompt

        prompt = check_prompt(prompt)
        check_range("images", num_images, 1, MAX_IMAGES)
        check_range("candidates", candidates, 1, MAX_CANDIDATES)
        seed = check_seed(seed, int(num_images), limit=MAX_UI_SEED)
        settings = settings or RenderSettings()
        decoding = {"temperature": temperature, "top_p": top_p, "max_new_tokens": max_new_tokens}
        opts = self.options(
            num_candidates=candidates, seed=policy_seed, batch_size=1, guard=guard, **decoding
        )
        with self.lock:
            pipe = self.load(policy, backbone, progress)
            kind = "rewrite" if rewrite and pipe.rewrites else "original"
            if progress:
                progress(
                    0.1,
                    f"rewriting with {public_name(pipe.policy.name)}" if kind == "rewrite" else "rendering",
                )
            result = pipe(
                prompt,
                seed=int(seed),
                num_images=num_images,
                options=opts,
                settings=settings,
                rewrite=kind == "rewrite",
            )
            meta = self._settings(pipe, seed, num_images, settings, opts if kind == "rewrite" else None)
            return self._save(kind, result, meta, progress=progress, session=session)

    def render_edit(
        self, parent: Turn, prompt: str, progress: Progress | None = None, session: Session | None = None
    ) -> Turn:
        """Render a user-edited prompt with ``parent``'s seeds and settings, beside its original images.

        A prompt equal to one of ``parent``'s other candidates renders that candidate (with its reasoning)."""
        from PIL import Image

        from reprompt.policy.base import check_prompt

        prompt = check_prompt(prompt)
        settings = RenderSettings(**parent.settings.get("render", {}))
        with self.lock:
            pipe = self.load(*parent.models, progress)
            if progress:
                progress(0.3, "rendering the edited prompt")
            t0 = time.perf_counter()
            out = pipe.render(prompt, parent.seeds, settings)
            secs = time.perf_counter() - t0
            measured = pipe.as_given(prompt)
            picked = next((c for c in parent.candidates if c.prompt == prompt and not c.fallback), None)
            kind = "candidate" if picked is not None and picked is not parent.rewrite else "edit"
            edited = dataclasses.replace(
                picked or parent.rewrite,
                prompt=prompt,
                prompt_tokens=measured.prompt_tokens,
                token_limit=measured.token_limit,
                truncated=measured.truncated,
                fallback=False,
                issue=None,
            )
            if kind == "edit" and parent.rewrite.guard is not None:  # check the user's prompt too
                from reprompt.guard import check_rewrite

                edited.guard = check_rewrite(parent.original, prompt)
            originals = [Image.open(p).convert("RGB") for p in parent.original_paths]
            meta = {
                **parent.settings,
                "edited_from": parent.rewrite.prompt if parent.kind != "original" else None,
            }
            result = RePromptResult(
                edited,
                list(parent.seeds),
                list(out.images),
                originals,
                warnings=list(out.warnings),
                timings={"render_rewritten_s": secs},
                candidates=list(parent.candidates),
            )
            return self._save(kind, result, meta, parent=parent.number, progress=progress, session=session)

    # --- helpers ----------------------------------------------------------------------------------
    def _settings(
        self,
        pipe: RePromptPipeline,
        seed: int,
        num_images: int,
        settings: RenderSettings,
        opts: GenerationOptions | None,
    ) -> dict[str, Any]:
        assert pipe.backbone is not None  # the studio always loads one
        meta: dict[str, Any] = {  # public names: a record is downloaded and shared, paths stay here
            "policy": public_name(str(self._names["policy"])),
            "policy_model": public_name(pipe.policy.name),
            "backbone": public_name(str(self._names["backbone"])),
            "seed": int(seed),
            "num_images": num_images,
            "render": applied_settings(pipe.backbone, settings),
            "backbone_defaults": backbone_defaults(pipe.backbone),
        }
        if opts is not None:
            meta["generation"] = dataclasses.asdict(opts)
        return meta

    def _save(
        self,
        kind: str,
        result: RePromptResult,
        meta: dict[str, Any],
        parent: int | None = None,
        progress: Progress | None = None,
        session: Session | None = None,
    ) -> Turn:
        """Write the turn with the pipeline's own record format (``RePromptResult.save``) and zip it, in the
        session's folder (the studio's own session when none is given)."""
        if progress:
            progress(0.95, "writing the record")
        if session is None:
            self._default = self._default or self.new_session()
            session = self._default
        session.turns += 1
        number = session.turns
        folder = session.folder / f"turn-{number:04d}"
        result.settings = {**meta, "ui_kind": kind, "parent_turn": parent}
        files = result.save(folder)["files"]
        if kind == "original":  # rewrite off: the record holds the original's images only
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
            original=result.rewrite.original,
            rewrite=result.rewrite,
            candidates=list(result.candidates),
            seeds=list(result.seeds),
            folder=folder,
            original_paths=left_paths,
            rewritten_paths=right_paths,
            record_path=folder / "record.json",
            zip_path=zip_path,
            warnings=list(result.warnings),
            timings=dict(result.timings),
            settings=result.settings,
            parent=parent,
            models=(self._names["policy"], self._names["backbone"]),
        )


def _why_not(c: Rewrite) -> str:
    if c.fallback:
        return c.issue or "no prompt block"
    report = getattr(c, "guard", None)
    if report is not None and not report.ok:
        return f"the intent guard found {'; '.join(str(f) for f in report.findings)}"
    return "not needed"


def choice_line(turn: Turn) -> str:
    """Which candidate the images show and why (the candidates before it, and the intent guard's verdict)."""
    rw, cands = turn.rewrite, turn.candidates
    if turn.kind != "rewrite" or not cands:
        return ""
    report = getattr(rw, "guard", None)
    guard = ""
    if report is not None:
        guard = " The intent guard passed it." if report.ok else f" Intent guard: {report.summary()}."
    if rw.fallback and len(cands) > 1:
        why = "; ".join(f"candidate {c.candidate + 1}: {_why_not(c)}" for c in cands)
        return f"**No candidate kept** ({why}): the original prompt is rendered.{guard}"
    if len(cands) == 1:
        return guard.strip()
    kept = f"**Kept candidate {rw.candidate + 1} of {len(cands)}**"
    skipped = [c for c in cands if c.candidate < rw.candidate]
    if not skipped:
        return f"{kept} (the first that wrote a prompt{' the guard passed' if report is not None else ''}).{guard}"
    why = "; ".join(f"candidate {c.candidate + 1}: {_why_not(c)}" for c in skipped)
    return f"{kept}, skipped {why}.{guard}"


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
    choice = choice_line(turn)
    if choice:
        parts.append(choice)
    secs = ", ".join(f"{k.removesuffix('_s').replace('_', ' ')} {v:.1f} s" for k, v in turn.timings.items())
    seeds = f"Seed {turn.seeds[0]}" if len(turn.seeds) == 1 else f"Seeds {turn.seeds[0]}–{turn.seeds[-1]}"
    parts.append(f"{seeds}. {secs}.")
    parts += [f"⚠ {w}" for w in turn.warnings[:5]]
    return "  \n".join(parts)
