"""Put the rewriter in front of any diffusers text-to-image pipeline.

``RePromptDiffusionPipeline(pipe, policy)`` is called exactly like ``pipe``: ``prompt`` (a string or a
list) is rewritten first, every other argument goes to the pipeline unchanged, and the output carries
the images, the rewrites (reasoning, enhanced prompt, token length in this pipeline's encoders) and the
prompts that were rendered. ``rewrite=False`` renders the prompt as given, per call. Attribute access
falls through to the wrapped pipeline (``.vae``, ``.components``, ``.enable_model_cpu_offload()``), so
a pipeline class's ``FluxImg2ImgPipeline.from_pipe(wrapped)`` reuses its components (diffusers' Auto*
classes look at the class name: give them ``wrapped.pipe``), and :meth:`from_pipe` builds a wrapped
pipeline of another class on the same weights without loading anything again.

``prompt_2`` / ``prompt_3`` and ``negative_prompt`` are passed through untouched: when ``prompt_2`` is
not given, SDXL, SD3 and FLUX feed their second encoder the (rewritten) ``prompt``.
"""

from __future__ import annotations

import inspect
import logging
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from diffusers.utils import BaseOutput

from reprompt.errors import RepromptError
from reprompt.pipeline import RePromptPipeline, RewriteChoice
from reprompt.policy import load_policy
from reprompt.policy.base import GenerationOptions, Rewrite, Rewriter

logger = logging.getLogger(__name__)


@dataclass
class RePromptDiffusionOutput(BaseOutput):
    """Like a diffusers pipeline output, plus what the rewriter did.

    ``images``: the pipeline's images; ``prompts``: the prompts rendered (rewritten, or as given);
    ``rewrites``: one :class:`~reprompt.policy.base.Rewrite` per prompt (``None`` with ``rewrite=False``);
    ``candidates``: every candidate per prompt; ``pipeline_output``: the wrapped pipeline's own output
    (e.g. SD's ``nsfw_content_detected``).
    """

    images: Any
    prompts: list[str] = field(default_factory=list)
    rewrites: list[Rewrite] | None = None
    candidates: list[list[Rewrite]] | None = None
    pipeline_output: Any = None


def _unwrap(pipe: Any) -> Any:
    return pipe.pipe if isinstance(pipe, RePromptDiffusionPipeline) else pipe


class RePromptDiffusionPipeline:
    """A diffusers pipeline that rewrites its prompt first.

    ``policy`` is a built :class:`~reprompt.policy.base.Rewriter` or a name for
    :func:`~reprompt.policy.load_policy` (``smollm2-sketch``, ``qwen2.5-3b``, a folder, an OpenAI-compatible
    URL; ``policy_kwargs`` go to it). ``options`` are the default decoding options (greedy by default);
    ``rewrite_options`` overrides them per call. The rewrite and the candidate choice are
    :class:`~reprompt.pipeline.RePromptPipeline`'s, as in every other front end; the images are this
    pipeline's, with the caller's own arguments (generator, size, steps).
    """

    def __init__(
        self,
        pipe: Any,
        policy: Rewriter | str = "smollm2-sketch",
        options: GenerationOptions | None = None,
        **policy_kwargs: Any,
    ) -> None:
        pipe = _unwrap(pipe)
        if not callable(pipe) or not hasattr(pipe, "components"):
            raise RepromptError(f"expected a diffusers pipeline, got {type(pipe).__name__}")
        self.pipe = pipe
        self.policy = load_policy(policy, **policy_kwargs) if isinstance(policy, str) else policy
        self.options = options or GenerationOptions()
        self._backbone: Any = None

    # --- diffusers-style construction -------------------------------------------------------------
    @classmethod
    def from_pipe(
        cls,
        pipeline: Any,
        pipeline_class: Any = None,
        policy: Rewriter | str | None = None,
        options: GenerationOptions | None = None,
        **kwargs: Any,
    ) -> RePromptDiffusionPipeline:
        """A wrapped ``pipeline_class.from_pipe(pipeline, **kwargs)``: same weights, no reload.

        ``pipeline_class`` defaults to ``AutoPipelineForText2Image`` (the text-to-image pipeline of the
        source's family). The policy (and its options) default to the source's when it is wrapped, and
        the dtype to the source's (diffusers' own ``from_pipe`` casts to float32 unless told).
        """
        if pipeline_class is None:
            from diffusers import AutoPipelineForText2Image

            pipeline_class = AutoPipelineForText2Image
        src = pipeline if isinstance(pipeline, RePromptDiffusionPipeline) else None
        if policy is None:
            if src is None:
                raise RepromptError("from_pipe on a plain pipeline needs policy= (a name or a Rewriter)")
            policy = src.policy
        if "dtype" not in kwargs and "torch_dtype" not in kwargs:
            # diffusers casts to float32 unless told: keep the source's dtype so nothing is reallocated
            kwargs["dtype"] = _unwrap(pipeline).dtype
        new = pipeline_class.from_pipe(_unwrap(pipeline), **kwargs)
        return cls(new, policy, options or (src.options if src else None))

    def __getattr__(self, name: str) -> Any:
        # Only called for attributes the wrapper lacks: components, config, vae, enable_* ...
        if name == "pipe":  # not set yet (e.g. during unpickling): avoid recursion
            raise AttributeError(name)
        return getattr(self.pipe, name)

    def to(self, *args: Any, **kwargs: Any) -> RePromptDiffusionPipeline:
        """Move the diffusion pipeline (the policy keeps its own device), returning the wrapper."""
        self.pipe.to(*args, **kwargs)
        return self

    def __repr__(self) -> str:
        return f"RePromptDiffusionPipeline(policy={self.policy.name!r}, pipe={type(self.pipe).__name__})"

    # --- the call ---------------------------------------------------------------------------------
    def rewrite(
        self,
        prompt: str | list[str],
        rewrite_options: GenerationOptions | dict[str, Any] | None = None,
        max_sequence_length: int | None = None,
    ) -> list[RewriteChoice]:
        """Each prompt's chosen rewrite and all its candidates, lengths measured in this pipeline's text
        encoders."""
        prompts = [prompt] if isinstance(prompt, str) else list(prompt)
        options = self.options
        if isinstance(rewrite_options, GenerationOptions):
            options = rewrite_options
        elif rewrite_options:
            unknown = set(rewrite_options) - {f.name for f in fields(GenerationOptions)}
            if unknown:
                raise RepromptError(
                    f"unknown rewrite option(s) {sorted(unknown)}: use fields of GenerationOptions "
                    f"({', '.join(f.name for f in fields(GenerationOptions))})"
                )
            options = GenerationOptions(**{**asdict(self.options), **rewrite_options})
        backbone = self._token_backbone(max_sequence_length)
        return RePromptPipeline(self.policy, backbone).rewrite(prompts, options)

    def __call__(
        self,
        prompt: str | list[str] | None = None,
        *args: Any,
        rewrite: bool = True,
        rewrite_options: GenerationOptions | dict[str, Any] | None = None,
        return_dict: bool = True,
        **kwargs: Any,
    ) -> RePromptDiffusionOutput | tuple:
        """Rewrite ``prompt`` (unless ``rewrite=False`` or only embeddings are given), then call the
        pipeline with the rewritten prompt and every other argument unchanged.

        ``return_dict=False`` returns ``(images, rewrites)``.
        """
        candidates: list[list[Rewrite]] | None = None
        chosen: list[Rewrite] | None = None
        if rewrite and prompt is not None:
            choices = self.rewrite(prompt, rewrite_options, kwargs.get("max_sequence_length"))
            candidates = [c.candidates for c in choices]
            chosen = [c.chosen for c in choices]
            for rw in chosen:
                if rw.truncated:
                    logger.warning(
                        "rewritten prompt is %s tokens; the text encoder reads %s",
                        rw.prompt_tokens,
                        rw.token_limit,
                    )
            prompt = chosen[0].prompt if isinstance(prompt, str) else [r.prompt for r in chosen]
        out = self.pipe(prompt, *args, return_dict=True, **kwargs)
        images = getattr(out, "images", None)
        if images is None:  # e.g. a pipeline whose output names its field differently
            images = out[0]
        rendered = [] if prompt is None else ([prompt] if isinstance(prompt, str) else list(prompt))
        if not return_dict:
            return images, chosen
        return RePromptDiffusionOutput(
            images=images, prompts=rendered, rewrites=chosen, candidates=candidates, pipeline_output=out
        )

    def _token_backbone(self, max_sequence_length: int | None) -> Any:
        """A :class:`DiffusersBackbone` view of the pipeline, used only to measure prompts in its
        encoders (one home for that logic); the pipeline's progress-bar setting is left as it was."""
        from reprompt.backbones.diffusers_backbone import DiffusersBackbone

        if self._backbone is None:
            had = "_progress_bar_config" in vars(self.pipe)
            saved = vars(self.pipe).get("_progress_bar_config")
            self._backbone = DiffusersBackbone(self.pipe, type(self.pipe).__name__)
            if had:
                self.pipe._progress_bar_config = saved
            else:
                del self.pipe._progress_bar_config
        if max_sequence_length is None:
            param = inspect.signature(self.pipe.__call__).parameters.get("max_sequence_length")
            if param is not None and isinstance(param.default, int):
                max_sequence_length = param.default
        self._backbone.max_sequence_length = max_sequence_length
        return self._backbone


def wrap(pipe: Any, policy: Rewriter | str = "smollm2-sketch", **kwargs: Any) -> RePromptDiffusionPipeline:
    """``wrap(FluxPipeline.from_pretrained(...), "qwen2.5-3b")``: shorthand for the wrapper."""
    return RePromptDiffusionPipeline(pipe, policy, **kwargs)
