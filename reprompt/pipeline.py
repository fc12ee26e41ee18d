"""The one rewrite → render path. Every front end (``reprompt generate``, ``reprompt serve``, the web UI, the
diffusers wrapper, the ComfyUI node) and the benchmark runner go through :class:`RePromptPipeline`, so the
same prompt and options give the same rendered prompt and the same images everywhere:

- **candidate choice** (:func:`choose_rewrite`): the first candidate that wrote a prompt and that the intent
  guard passes; else (guard ``warn``) the first that wrote a prompt, its findings reported; else the
  original prompt, with the reason in ``issue``;
- **the seed rule** (:func:`image_seeds`): image ``k`` uses ``seed + k``, for the original and the rewrite
  alike, so any difference between them comes from the rewrite;
- **the guard**: ``guard=`` (off | warn | retry | fallback) overrides ``options.guard`` for one call.
"""

from __future__ import annotations

import textwrap
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from reprompt.backbones.base import (
    Backbone,
    RenderOutput,
    RenderSettings,
    applied_settings,
    unsupported_settings,
)
from reprompt.errors import RepromptError
from reprompt.geneval.scene import SceneObject
from reprompt.policy.base import GenerationOptions, IdentityRewriter, Rewrite, Rewriter, check_prompt
from reprompt.utils.images import ImageProvenance
from reprompt.utils.io import atomic_save_image, atomic_write_json
from reprompt.utils.names import public_name

SEED_RULE = "seed_k = seed + k for image k of every prompt"
MAX_SEED = 2**63 - 1
"""The largest seed of any image (a signed 64-bit integer: what every generator and JSON reader takes)."""


def image_seeds(seed: int, n: int) -> list[int]:
    """Seeds of a prompt's ``n`` images: ``seed + k`` (the same for every prompt, rewriter and front end)."""
    return [int(seed) + k for k in range(n)]


def check_seed(seed: int, n: int = 1, limit: int = MAX_SEED) -> int:
    """``seed`` as an int if every image seed ``seed .. seed+n-1`` is in ``0 .. limit``; else a message that
    says the range (a front end's own ``limit`` may be lower, e.g. what a browser stores exactly)."""
    top = limit - (n - 1)
    try:
        value = int(seed)
        ok = value == seed and 0 <= value <= top
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok:
        extra = f" (image k uses seed + k, and {n} images need seeds up to seed + {n - 1})" if n > 1 else ""
        raise RepromptError(f"seed must be a whole number between 0 and {top}, got {seed!r}{extra}")
    return value


def choose_rewrite(candidates: Sequence[Rewrite]) -> Rewrite:
    """The candidate to render: the first that wrote a prompt (not a fallback) and that the intent guard, if
    it ran, passed; else the first that wrote a prompt (guard ``warn``: the rewrite is used and its findings
    reported); else the original prompt. With several candidates and none usable, the first candidate's
    fallback is returned with ``issue`` saying that none was usable and why the first was not."""
    if not candidates:
        raise RepromptError("the policy returned no candidates")
    usable = [c for c in candidates if not c.fallback]
    passed = [c for c in usable if c.guard is None or c.guard.ok]
    if passed or usable:
        return (passed or usable)[0]
    first = candidates[0]
    if len(candidates) == 1:
        return first
    why = first.issue or "no prompt block"
    return replace(
        first, issue=f"none of the {len(candidates)} candidates wrote a usable prompt (first: {why})"
    )


def group_candidates(rewrites: Sequence[Rewrite], n_prompts: int) -> list[list[Rewrite]]:
    """Split ``Rewriter.rewrite``'s flat list (grouped by prompt) into one list per prompt."""
    if n_prompts < 1 or len(rewrites) % n_prompts:
        raise RepromptError(f"{len(rewrites)} rewrites do not split over {n_prompts} prompts")
    n = len(rewrites) // n_prompts
    return [list(rewrites[i * n : (i + 1) * n]) for i in range(n_prompts)]


@dataclass
class RewriteChoice:
    """One prompt's rewrite: ``chosen`` (what is rendered) and every candidate the policy wrote."""

    chosen: Rewrite
    candidates: list[Rewrite]


@dataclass
class RePromptResult:
    rewrite: Rewrite
    seeds: list[int]
    rewritten_images: list[Any]
    original_images: list[Any] = field(default_factory=list)
    rewritten_scenes: list[list[SceneObject]] | None = None
    original_scenes: list[list[SceneObject]] | None = None
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    candidates: list[Rewrite] = field(default_factory=list)
    """Every candidate the policy wrote (empty when nothing was rewritten); ``rewrite`` is the chosen one."""

    @property
    def how(self) -> str:
        """How the rendered prompt came about: rewritten | fallback | off | edited (the UI's user edit)."""
        if self.settings.get("ui_kind") in ("edit", "candidate"):
            return "edited" if self.settings["ui_kind"] == "edit" else "rewritten"
        if not self.candidates:
            return "off"
        return "fallback" if self.rewrite.fallback else "rewritten"

    def provenance(self, k: int, original: bool = False) -> ImageProvenance:
        """What image ``k`` (of the rewrite, or of the original with ``original=True``) was made from."""
        rw, meta = self.rewrite, self.settings
        how = "original" if original else self.how
        return ImageProvenance(
            original=rw.original,
            prompt=rw.original if original else rw.prompt,
            seed=self.seeds[k],
            backbone=public_name(str(meta.get("backbone") or "")),
            settings=dict(meta.get("render") or {}),
            policy=None if how in ("off", "original") else public_name(str(meta.get("policy") or "")),
            reasoning="" if how in ("off", "original") else rw.reasoning,
            rewrite=how,
        )

    def save(self, out: str | Path) -> dict[str, Any]:
        """Write the images (each with its provenance in PNG text chunks), a side-by-side comparison and
        ``record.json``; return the record."""
        out = Path(out)
        files: dict[str, Any] = {"rewritten": [], "original": []}
        for k, img in enumerate(self.rewritten_images):
            name = f"rewritten_{k}.png" if self.original_images else f"image_{k}.png"
            atomic_save_image(out / name, img, self.provenance(k))
            files["rewritten"].append(name)
        for k, img in enumerate(self.original_images):
            atomic_save_image(out / f"original_{k}.png", img, self.provenance(k, original=True))
            files["original"].append(f"original_{k}.png")
        if self.original_images:
            both = replace(
                self.provenance(0), extra={"image": "comparison: original (left), rewrite (right)"}
            )
            atomic_save_image(out / "comparison.png", comparison_image(self), both)
            files["comparison"] = "comparison.png"
        record = {
            "original": self.rewrite.original,
            "reasoning": self.rewrite.reasoning,
            "rewritten": self.rewrite.prompt,
            "rewrite": self.rewrite.to_dict(),
            "candidates": [c.to_dict() for c in self.candidates],
            "seeds": self.seeds,
            "files": files,
            "warnings": self.warnings,
            "timings": self.timings,
            "settings": self.settings,
        }
        atomic_write_json(out / "record.json", record)
        return record


class RePromptPipeline:
    """``RePromptPipeline(policy, backbone)("a cat left of a dog")``.

    Both components are built by the caller (``load_policy``, ``load_backbone``) with device and dtype
    explicit, as in diffusers. ``backbone`` may be None for a rewrite-only front end (the ComfyUI node, whose
    text goes to ComfyUI's own model): :meth:`rewrite` works, rendering refuses.
    """

    def __init__(self, policy: Rewriter, backbone: Backbone | None) -> None:
        self.policy, self.backbone = policy, backbone

    @classmethod
    def from_pretrained(
        cls, policy: str = "smollm2", backbone: str = "sketch", **backbone_kw: Any
    ) -> RePromptPipeline:
        from reprompt.backbones import load_backbone
        from reprompt.policy import load_policy

        return cls(load_policy(policy), load_backbone(backbone, **backbone_kw))

    @property
    def rewrites(self) -> bool:
        """Whether this pipeline rewrites at all (``--policy none`` renders the prompt as given)."""
        return not isinstance(self.policy, IdentityRewriter)

    # --- rewrite ----------------------------------------------------------------------------------
    def rewrite(
        self,
        prompts: str | Sequence[str],
        options: GenerationOptions | None = None,
        *,
        guard: str | None = None,
    ) -> list[RewriteChoice]:
        """Rewrite each prompt (``options.num_candidates`` candidates, lengths in the backbone's encoder
        tokens) and choose what to render (:func:`choose_rewrite`); one :class:`RewriteChoice` per prompt."""
        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        if guard is not None:
            options = replace(options or GenerationOptions(), guard=guard)
        counter = self.backbone.count_tokens if self.backbone is not None else None
        flat = self.policy.rewrite(prompts, options=options, token_counter=counter)
        return [RewriteChoice(choose_rewrite(c), c) for c in group_candidates(flat, len(prompts))]

    def as_given(self, prompt: str) -> Rewrite:
        """The prompt as given, as a :class:`Rewrite` with its length in the backbone's tokens."""
        length = self.backbone.count_tokens(prompt) if self.backbone is not None else None
        return IdentityRewriter.as_given(check_prompt(prompt), length=length)

    # --- render -----------------------------------------------------------------------------------
    def render(
        self, prompt: str, seeds: Sequence[int], settings: RenderSettings | None = None
    ) -> RenderOutput:
        """``prompt`` rendered once per seed (image ``k`` from ``seeds[k]``), with this call's settings."""
        if self.backbone is None:
            raise RepromptError("this pipeline has no backbone to render with")
        ignored = unsupported_settings(self.backbone, settings)
        if ignored:
            raise RepromptError(
                f"backbone {public_name(self.backbone.name)!r} does not apply {', '.join(ignored)}: leave "
                f"{'it' if len(ignored) == 1 else 'them'} unset (it applies "
                f"{', '.join(sorted(self.backbone.supported_settings))})"
            )
        out = self.backbone.render([prompt] * len(seeds), list(seeds), settings)
        if len(out.images) != len(seeds):
            raise RepromptError(f"the backbone returned {len(out.images)} images for {len(seeds)} seeds")
        return out

    def __call__(
        self,
        prompt: str,
        seed: int = 0,
        num_images: int = 1,
        options: GenerationOptions | None = None,
        compare: bool = True,
        guard: str | None = None,
        settings: RenderSettings | None = None,
        rewrite: bool = True,
    ) -> RePromptResult:
        """Rewrite ``prompt``, render the chosen rewrite (and the original, if ``compare``) with seeds
        ``seed .. seed+num_images-1``. ``rewrite=False`` (or ``--policy none``) renders the prompt as given.

        ``guard`` (off | warn | retry | fallback) overrides ``options.guard``: the intent guard checks that
        the rewrite keeps the prompt's objects, counts, colors, quoted text and names
        (``result.rewrite.guard``), and with retry/fallback renders a passing candidate or the original.
        ``settings`` change this call's image size, steps or guidance; the backbone itself is not changed."""
        if guard is not None:
            options = replace(options or GenerationOptions(), guard=guard)
        rewriting = rewrite and self.rewrites
        seeds = image_seeds(check_seed(seed, num_images), num_images)
        t0 = time.perf_counter()
        if rewriting:
            choice = self.rewrite(prompt, options)[0]
            chosen, candidates = choice.chosen, choice.candidates
        else:
            chosen, candidates = self.as_given(prompt), []
        t1 = time.perf_counter()
        rendered = self.render(chosen.prompt, seeds, settings)
        t2 = time.perf_counter()
        res = RePromptResult(chosen, seeds, rendered.images, rewritten_scenes=rendered.scenes)
        res.warnings, res.candidates = list(rendered.warnings), list(candidates)
        res.timings = {"rewrite_s": t1 - t0, "render_rewritten_s": t2 - t1}
        if compare and rewriting:
            if chosen.prompt == chosen.original:  # a fallback: the same prompt and seeds, the same images
                res.original_images, res.original_scenes = list(rendered.images), rendered.scenes
            else:
                orig = self.render(chosen.original, seeds, settings)
                res.original_images, res.original_scenes = orig.images, orig.scenes
                res.warnings += [f"original: {w}" for w in orig.warnings]
                res.timings["render_original_s"] = time.perf_counter() - t2
        res.settings = {
            "policy": public_name(self.policy.name),
            "backbone": public_name(self.backbone.name) if self.backbone is not None else None,
            "seed": seed,
            "num_images": num_images,
            "guard": options.guard if options is not None else "off",
            "render": applied_settings(self.backbone, settings) if self.backbone is not None else {},
        }
        return res


def comparison_image(res: RePromptResult, caption_chars: int = 44) -> Any:
    """Original (left) and rewrite (right), one row per seed, each column headed by its prompt."""
    from PIL import Image, ImageDraw, ImageFont

    w, h = res.rewritten_images[0].size
    try:
        font = ImageFont.load_default(size=max(12, w // 30))
    except TypeError:  # Pillow < 10.1
        font = ImageFont.load_default()
    line_h = max(15, w // 24)
    chars = max(20, caption_chars * w // 512)
    heads = [
        ["Original prompt:"] + textwrap.wrap(res.rewrite.original, chars)[:10],
        [f"Rewritten prompt{' (fallback: the original)' if res.rewrite.fallback else ''}:"]
        + textwrap.wrap(res.rewrite.prompt, chars)[:10],
    ]
    cap_h = line_h * (max(len(c) for c in heads) + 1)
    gap = 8
    canvas = Image.new("RGB", (2 * w + gap, cap_h + len(res.seeds) * (h + gap)), "white")
    draw = ImageDraw.Draw(canvas)
    for col, lines in enumerate(heads):
        for i, line in enumerate(lines):
            draw.text((col * (w + gap) + 6, 4 + i * line_h), line, fill="black", font=font)
    for k, (a, b) in enumerate(zip(res.original_images, res.rewritten_images, strict=True)):
        y = cap_h + k * (h + gap)
        canvas.paste(a.convert("RGB").resize((w, h)), (0, y))
        canvas.paste(b.convert("RGB").resize((w, h)), (w + gap, y))
    return canvas
