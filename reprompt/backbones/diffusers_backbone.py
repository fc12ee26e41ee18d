"""Any diffusers text-to-image pipeline as a backbone, with one seeded generator per image.

Image k of a batch depends only on (prompt k, seed k), so the original and the rewritten prompt can be
rendered with identical noise, and a batch renders what the same prompts would render one by one.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reprompt.backbones.base import (
    ACCELERATION_SETTINGS,
    SIZE_SETTINGS,
    BackboneOptions,
    RenderOutput,
    RenderSettings,
    TokenCount,
    check_size_step,
)
from reprompt.errors import ModelNotFoundError, RepromptError
from reprompt.utils.dtypes import resolve_dtype
from reprompt.utils.hub import from_pretrained

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class DiffusersPreset:
    """A named backbone: hub id and the sampling settings we (and the paper) use for it."""

    model: str = field(metadata={"help": "hub id of the pipeline"})
    pipeline: str = field(metadata={"help": "diffusers pipeline class name"})
    height: int = field(default=512, metadata={"help": "image height in pixels"})
    width: int = field(default=512, metadata={"help": "image width in pixels"})
    steps: int = field(default=28, metadata={"help": "denoising steps"})
    guidance: float | None = field(default=3.5, metadata={"help": "guidance scale (None: the pipeline's)"})
    max_sequence_length: int | None = field(
        default=None, metadata={"help": "T5 prompt length (None: the pipeline's; CLIP-only pipelines)"}
    )
    description: str = ""


# fmt: off
PRESETS: dict[str, DiffusersPreset] = {
    "flux-dev": DiffusersPreset(
        model="black-forest-labs/FLUX.1-dev", pipeline="FluxPipeline", height=512, width=512, steps=50,
        guidance=3.5, max_sequence_length=512,
        description="FLUX.1-dev at the paper's setting (512², 50 steps, guidance 3.5)",
    ),
    "flux-schnell": DiffusersPreset(
        model="black-forest-labs/FLUX.1-schnell", pipeline="FluxPipeline", height=512, width=512, steps=4,
        guidance=0.0, max_sequence_length=256, description="FLUX.1-schnell, 4 steps, no guidance",
    ),
    "sd3": DiffusersPreset(
        model="stabilityai/stable-diffusion-3-medium-diffusers", pipeline="StableDiffusion3Pipeline",
        height=1024, width=1024, steps=28, guidance=7.0, description="Stable Diffusion 3 Medium, 28 steps, cfg 7.0",
    ),
    "pixart-sigma": DiffusersPreset(
        model="PixArt-alpha/PixArt-Sigma-XL-2-1024-MS", pipeline="PixArtSigmaPipeline", height=1024, width=1024,
        steps=20, guidance=4.5, max_sequence_length=300,
        description="PixArt-Σ XL 1024, 20 steps, cfg 4.5 (T5 text encoder only)",
    ),
    "sdxl": DiffusersPreset(
        model="stabilityai/stable-diffusion-xl-base-1.0", pipeline="StableDiffusionXLPipeline", height=1024,
        width=1024, steps=30, guidance=5.0, description="SDXL base 1.0, 30 steps, cfg 5.0",
    ),
}
# fmt: on


class DiffusersBackbone:
    """Wraps a pipeline the caller built (or :meth:`from_pretrained`); device and dtype are explicit."""

    def __init__(
        self,
        pipe: Any,
        name: str = "diffusers",
        *,
        height: int = 512,
        width: int = 512,
        steps: int = 28,
        guidance: float | None = None,
        max_sequence_length: int | None = None,
        batch_size: int = 4,
        progress: bool = False,
        cache: str | None = None,
        compile: str | None = None,
    ) -> None:
        from reprompt.backbones.acceleration import Acceleration

        check_size_step(width, height)
        self.pipe, self.name = pipe, name
        self.height, self.width, self.steps, self.guidance = height, width, steps, guidance
        self.max_sequence_length, self.batch_size = max_sequence_length, batch_size
        # diffusers' step cache and torch.compile unless a call says otherwise (RenderSettings), checked now
        own = RenderSettings(cache=cache, compile=compile)
        self.cache, self.compile = own.cache, own.compile
        self.acceleration = Acceleration(pipe, name)
        self.acceleration.check(self.cache, self.compile)
        self.render_calls = 0
        pipe.set_progress_bar_config(disable=not progress)

    @classmethod
    def from_pretrained(
        cls,
        id_or_path: str,
        *,
        preset: DiffusersPreset | None = None,
        name: str | None = None,
        device: str = BackboneOptions.device,
        dtype: str | Any | None = BackboneOptions.dtype,
        cpu_offload: bool = BackboneOptions.cpu_offload,
        height: int | None = None,
        width: int | None = None,
        steps: int | None = None,
        guidance: float | None = None,
        batch_size: int = BackboneOptions.batch_size,
        cache: str | None = None,
        compile: str | None = None,
        trust_remote_code: bool = False,
    ) -> DiffusersBackbone:
        import diffusers

        if Path(id_or_path).exists() and not (Path(id_or_path) / "model_index.json").exists():
            raise ModelNotFoundError(
                f"{id_or_path!r} is not a diffusers pipeline folder (no model_index.json)"
            )
        pipe_cls = getattr(diffusers, preset.pipeline) if preset else diffusers.DiffusionPipeline
        pipe = from_pretrained(
            pipe_cls,
            id_or_path,
            kind="diffusers pipeline",
            hint="pass --model FOLDER",
            errors=(OSError, ValueError),
            dtype=resolve_dtype(dtype, device),
            use_safetensors=True,
            trust_remote_code=trust_remote_code,
        )
        if cpu_offload:
            pipe.enable_model_cpu_offload(device=device)
        else:
            pipe.to(device)
        p = preset or DiffusersPreset(model=id_or_path, pipeline=type(pipe).__name__)
        return cls(
            pipe,
            name or id_or_path,
            height=height or p.height,
            width=width or p.width,
            steps=steps or p.steps,
            guidance=p.guidance if guidance is None else guidance,
            max_sequence_length=p.max_sequence_length,
            batch_size=batch_size,
            cache=cache,
            compile=compile,
        )

    @property
    def supported_settings(self) -> frozenset[str]:
        """Size and steps always; guidance where the pipeline takes ``guidance_scale``; a negative prompt
        where it takes one with classic classifier-free guidance (FLUX.1 would need true CFG, an extra
        forward pass per step, so it is refused there rather than silently ignored)."""
        import inspect

        params = inspect.signature(self.pipe.__call__).parameters
        out = SIZE_SETTINGS | ACCELERATION_SETTINGS | {"steps"}
        if "guidance_scale" in params:
            out |= {"guidance"}
        if "negative_prompt" in params and "true_cfg_scale" not in params:
            out |= {"negative_prompt"}
        return frozenset(out)

    def settings(self) -> dict[str, Any]:
        """What decides the images besides the weights: size, steps, guidance, T5 length, and the step
        cache and compilation when set."""
        out = {
            "height": self.height,
            "width": self.width,
            "steps": self.steps,
            "guidance": self.guidance,
            "max_sequence_length": self.max_sequence_length,
        }
        for name in ("cache", "compile"):  # recorded only when used, so older records still match
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        return out

    def source(self) -> tuple[str, str | None]:
        """The pipeline's folder or hub id, and its hub commit or the folder's fingerprint."""
        from reprompt.utils.fingerprint import folder_fingerprint

        config = self.pipe.config
        resolved = str(getattr(self.pipe, "name_or_path", None) or config.get("_name_or_path", self.name))
        return resolved, config.get("_commit_hash") or folder_fingerprint(resolved)

    def _call_kwargs(self, settings: RenderSettings | None = None) -> dict[str, Any]:
        import inspect

        s = settings or RenderSettings()
        check_size_step(s.width, s.height)
        params = inspect.signature(self.pipe.__call__).parameters
        kw: dict[str, Any] = {
            "height": s.height or self.height,
            "width": s.width or self.width,
            "num_inference_steps": s.steps or self.steps,
        }
        guidance = self.guidance if s.guidance is None else s.guidance
        if guidance is not None and "guidance_scale" in params:
            kw["guidance_scale"] = guidance
        if self.max_sequence_length is not None and "max_sequence_length" in params:
            kw["max_sequence_length"] = self.max_sequence_length
        if s.negative_prompt is not None:
            if "negative_prompt" not in self.supported_settings:
                raise RepromptError(f"backbone {self.name!r} does not apply a negative prompt")
            kw["negative_prompt"] = s.negative_prompt
        return kw

    def render(
        self, prompts: list[str], seeds: list[int], settings: RenderSettings | None = None
    ) -> RenderOutput:
        import torch

        if len(prompts) != len(seeds):
            raise RepromptError(f"render got {len(prompts)} prompts but {len(seeds)} seeds")
        from reprompt.backbones.acceleration import per_batch

        t0 = time.perf_counter()
        images, warnings = [], []
        gen_device = "cpu" if self.pipe.device.type == "mps" else self.pipe.device
        kw = self._call_kwargs(settings)
        call = settings or RenderSettings()
        cache = call.cache if call.cache is not None else self.cache
        compile = call.compile if call.compile is not None else self.compile
        # a cache that decides over the whole batch would make the images of a batch decide each other's
        # skips: one image per pipeline call keeps image k a function of (prompt k, seed k, settings)
        batch = 1 if per_batch(cache) else self.batch_size
        for p in prompts:
            tc = self.count_tokens(p)
            if tc.truncated:
                warnings.append(f"prompt is {tc.tokens} {tc.encoder} tokens; the encoder reads {tc.limit}")
        with self.acceleration.applied(cache, compile, kw["num_inference_steps"]):
            for i in range(0, len(prompts), batch):
                chunk, chunk_seeds = prompts[i : i + batch], seeds[i : i + batch]
                gens = [torch.Generator(device=gen_device).manual_seed(int(s)) for s in chunk_seeds]
                chunk_kw = dict(kw)
                if "negative_prompt" in chunk_kw:  # one negative prompt per image of the chunk
                    chunk_kw["negative_prompt"] = [chunk_kw["negative_prompt"]] * len(chunk)
                with torch.inference_mode():
                    out = self.pipe(prompt=list(chunk), generator=gens, output_type="pil", **chunk_kw)
                images.extend(out.images)
                self.render_calls += len(chunk)
        return RenderOutput(
            images=images,
            seeds=list(seeds),
            prompts=list(prompts),
            warnings=warnings,
            seconds=time.perf_counter() - t0,
        )

    def count_tokens(self, text: str) -> TokenCount:
        """CLIP's count (its 77-token cut is the binding limit) when the pipeline has CLIP; else T5's."""
        counts = self.count_tokens_all(text)
        return counts.get("clip") or next(iter(counts.values()))

    def count_tokens_all(self, text: str) -> dict[str, TokenCount]:
        """Length in every text encoder of the pipeline, keyed 'clip' / 't5'."""
        out: dict[str, TokenCount] = {}
        for attr in ("tokenizer", "tokenizer_2", "tokenizer_3"):
            tok = getattr(self.pipe, attr, None)
            if tok is None:
                continue
            kind = "t5" if "T5" in type(tok).__name__ else "clip"
            if kind in out:
                continue
            n = len(tok(text, add_special_tokens=True, verbose=False).input_ids)
            if kind == "clip":
                limit = min(tok.model_max_length, 77)
            else:
                limit = self.max_sequence_length or min(tok.model_max_length, 512)
            out[kind] = TokenCount(n, limit, f"{kind}:{type(tok).__name__}")
        if not out:
            raise RepromptError(f"pipeline {self.name!r} has no tokenizer to measure prompts with")
        return out
