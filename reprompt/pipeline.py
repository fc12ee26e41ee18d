"""The user-facing rewrite → render path: one call gives the reasoning, both prompts and both images
rendered with identical seeds, so any difference comes from the rewrite alone."""

from __future__ import annotations

import textwrap
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from reprompt.backbones.base import Backbone
from reprompt.geneval.scene import SceneObject
from reprompt.policy.base import GenerationOptions, IdentityRewriter, Rewrite, Rewriter
from reprompt.utils.io import atomic_save_image, atomic_write_json


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

    def save(self, out: str | Path) -> dict[str, Any]:
        """Write the images, a side-by-side comparison and ``record.json``; return the record."""
        out = Path(out)
        files: dict[str, Any] = {"rewritten": [], "original": []}
        for k, img in enumerate(self.rewritten_images):
            name = f"rewritten_{k}.png" if self.original_images else f"image_{k}.png"
            atomic_save_image(out / name, img)
            files["rewritten"].append(name)
        for k, img in enumerate(self.original_images):
            atomic_save_image(out / f"original_{k}.png", img)
            files["original"].append(f"original_{k}.png")
        if self.original_images:
            atomic_save_image(out / "comparison.png", comparison_image(self))
            files["comparison"] = "comparison.png"
        record = {
            "original": self.rewrite.original,
            "reasoning": self.rewrite.reasoning,
            "rewritten": self.rewrite.prompt,
            "rewrite": self.rewrite.to_dict(),
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
    explicit, as in diffusers.
    """

    def __init__(self, policy: Rewriter, backbone: Backbone) -> None:
        self.policy, self.backbone = policy, backbone

    @classmethod
    def from_pretrained(cls, policy: str = "smollm2", backbone: str = "sketch", **backbone_kw: Any):
        from reprompt.backbones import load_backbone
        from reprompt.policy import load_policy

        return cls(load_policy(policy), load_backbone(backbone, **backbone_kw))

    def __call__(
        self,
        prompt: str,
        seed: int = 0,
        num_images: int = 1,
        options: GenerationOptions | None = None,
        compare: bool = True,
        guard: str | None = None,
    ) -> RePromptResult:
        """Rewrite ``prompt``, render it (and the original, if ``compare``) with seeds seed..seed+n-1.

        ``guard`` (off | warn | retry | fallback) overrides ``options.guard``: the intent guard checks that
        the rewrite keeps the prompt's objects, counts, colors, quoted text and names
        (``result.rewrite.guard``), and with retry/fallback renders a passing candidate or the original."""
        if guard is not None:
            options = replace(options or GenerationOptions(), guard=guard)
        seeds = [seed + k for k in range(num_images)]
        t0 = time.perf_counter()
        rw = self.policy.rewrite([prompt], options=options, token_counter=self.backbone.count_tokens)[0]
        t1 = time.perf_counter()
        rendered = self.backbone.render([rw.prompt] * num_images, seeds)
        t2 = time.perf_counter()
        res = RePromptResult(
            rw, seeds, rendered.images, rewritten_scenes=rendered.scenes, warnings=list(rendered.warnings)
        )
        res.timings = {"rewrite_s": t1 - t0, "render_rewritten_s": t2 - t1}
        if compare and not isinstance(self.policy, IdentityRewriter):
            orig = self.backbone.render([rw.original] * num_images, seeds)
            res.original_images, res.original_scenes = orig.images, orig.scenes
            res.warnings += [f"original: {w}" for w in orig.warnings]
            res.timings["render_original_s"] = time.perf_counter() - t2
        res.settings = {
            "policy": self.policy.name,
            "backbone": self.backbone.name,
            "seed": seed,
            "num_images": num_images,
            "guard": options.guard if options is not None else "off",
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
