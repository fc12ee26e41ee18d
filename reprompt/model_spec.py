"""What to load and how to decode, as one typed value: :class:`ModelSpec` = a policy choice, a backbone choice
and the policy's :class:`~reprompt.policy.base.GenerationOptions`.

The command line builds it once from its flags (``reprompt.cli.common.model_spec``); the web UI, the server
and the benchmark runner take it, never an argparse namespace. Building it checks everything a user can get
wrong (decoding options, sizes, ``--model`` with the simulator, the tag pair) before any model loads.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from reprompt.backbones.base import Backbone, BackboneOptions, RenderSettings, check_size_step
from reprompt.errors import RepromptError, check_range
from reprompt.policy.base import GenerationOptions, PolicyLoadOptions, Rewriter
from reprompt.utils.hub import check_local_model


@dataclass(frozen=True)
class PolicyChoice:
    """A policy by name (``none``, ``smollm2-sketch``, ``qwen2.5-3b``, a folder, a hub id, ``openai``, an
    OpenAI-compatible URL, or a plain-text rewriter's YAML recipe), how to load it, and optionally the tag pair
    it was trained with."""

    name: str
    options: PolicyLoadOptions = field(default_factory=PolicyLoadOptions)
    tags: str | None = None

    def __post_init__(self) -> None:
        if not self.name or not self.name.strip():
            raise RepromptError("name a policy: none, smollm2-sketch, a model folder, or an http(s) URL")
        if self.tags:
            from reprompt.format import get_tag_format

            get_tag_format(self.tags)
        from reprompt.policy.plain import PlainRecipe, is_recipe

        if is_recipe(self.name):  # a plain-text rewriter's recipe: read and checked now, before any load
            PlainRecipe.load(self.name.strip())
            if self.tags:
                raise RepromptError(
                    "--tags is for RePrompt-format policies; a plain rewriter's recipe has none"
                )

    def load_kwargs(self) -> dict[str, Any]:
        """``load_policy`` keywords (JSON-able but the prompt spec, so runs can record them)."""
        from reprompt.format import PromptSpec

        return {"prompt_spec": PromptSpec(tags=self.tags) if self.tags else None, **asdict(self.options)}

    def load(self) -> Rewriter:
        from reprompt.policy import load_policy

        return load_policy(self.name.strip(), **self.load_kwargs())


@dataclass(frozen=True)
class BackboneChoice:
    """A backbone by name (``sketch``, ``sketch-b``, a diffusers preset, folder or hub id, or
    ``remote:URL[,URL...]`` image servers) and how to load it."""

    name: str
    options: BackboneOptions = field(default_factory=BackboneOptions)

    def __post_init__(self) -> None:
        from reprompt.backbones import is_simulator

        if not self.name or not self.name.strip():
            raise RepromptError("name a backbone: sketch, flux-dev, sd3, … or a diffusers folder")
        o = self.options
        check_local_model("diffusers pipeline", self.name.strip())  # a folder given as a path is there now
        check_local_model("diffusers pipeline", o.model)
        if is_simulator(self.name) and o.model:
            raise RepromptError("--model is for diffusers presets; the sketch simulator has no weights")
        from reprompt.backbones.remote import is_remote, parse_remote

        if is_remote(self.name):
            parse_remote(self.name)  # the URLs are well-formed before anything starts
            if o.model:
                raise RepromptError(
                    "--model is for diffusers presets; a render farm's servers load the model"
                )
        # sizes, steps and guidance in range; cache and compile specs well-formed (the model checks the rest)
        settings = RenderSettings(o.width, o.height, o.steps, o.guidance, cache=o.cache, compile=o.compile)
        if is_simulator(self.name):
            from reprompt.backbones.sketch import refuse_diffusion_settings

            # load_kwargs passes a simulator its size only: what else was set would be dropped silently
            refuse_diffusion_settings(self.name, replace(settings, width=None, height=None))
        elif not is_remote(self.name):  # a diffusers pipeline (a farm's servers check their own sizes)
            check_size_step(o.width, o.height)
        check_range("the render batch size", o.batch_size, 1)

    def load_kwargs(self) -> dict[str, Any]:
        """``load_backbone`` keywords: a simulator takes only its size; a preset every option that is set."""
        from reprompt.backbones import is_simulator

        o = self.options
        if is_simulator(self.name):
            if o.height or o.width:
                return {"width": o.width or o.height, "height": o.height or o.width}
            return {}
        return {k: v for k, v in asdict(o).items() if v is not None}

    def load(self) -> Backbone:
        from reprompt.backbones import load_backbone

        return load_backbone(self.name.strip(), **self.load_kwargs())

    def renamed(self, name: str) -> BackboneChoice:
        """Another backbone with these options (``model`` belongs to the backbone it was given for)."""
        if name == self.name:
            return self
        return BackboneChoice(name, replace(self.options, model=None))


@dataclass(frozen=True)
class ModelSpec:
    """The policy, the backbone and how the policy decodes: everything a rewrite → render session needs."""

    policy: PolicyChoice
    backbone: BackboneChoice
    generation: GenerationOptions = field(default_factory=GenerationOptions)


__all__ = ["BackboneChoice", "ModelSpec", "PolicyChoice"]
