"""A policy kind for rewriters that answer in plain text: PromptEnhancer's models, a chat LLM with its own
instruction, an API model. A YAML recipe (``--policy configs/policies/x.yaml``, ``kind: plain``) names the
model, the instruction and how the prompt is read out of the answer; everything else — batching, the intent
guard, candidates, the benchmark runner, serving — is the shared :class:`~reprompt.policy.base.Rewriter`'s, so
``reprompt eval geneval|compbench|geneval2 --policy recipe.yaml`` compares it with RePrompt on the same seeds.

The model is any name a policy takes (``smollm2``, an alias, a local folder, a hub id — ``subfolder`` for a
model inside a repository, as PromptEnhancer-7B is in ``tencent/HunyuanImage-2.1``), or ``openai`` / an
``http(s)://…/v1`` URL for an OpenAI-compatible endpoint. The generator underneath is the same transformers
or endpoint backend RePrompt policies use; the recipe only changes what it is asked (``system``, ``user``,
``chat_template_kwargs``), where it stops (``stop``) and how its answer is read (``extract``,
:mod:`reprompt.format.plain`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from reprompt.errors import ConfigError
from reprompt.format.parse import ParsedCompletion
from reprompt.format.plain import Extraction, extract_prompt
from reprompt.policy.base import GenerationOptions, Rewriter

KIND = "plain"
RECIPE_SUFFIXES = (".yaml", ".yml")


def is_recipe(name: str) -> bool:
    """Whether a policy name is a plain-rewriter recipe file (``….yaml``)."""
    return name.strip().lower().endswith(RECIPE_SUFFIXES)


@dataclass
class PlainRecipe:
    """A rewriter that answers in plain text: which model, what it is asked, how its answer is read."""

    model: str = field(
        metadata={
            "help": "smollm2 | alias | folder | hub id | openai | an OpenAI-compatible http(s)://…/v1 URL"
        }
    )
    kind: str = field(default=KIND, metadata={"help": "policy kind: plain (answers in plain text)"})
    name: str | None = field(default=None, metadata={"help": "how runs name it (default: plain:<model>)"})
    subfolder: str | None = field(
        default=None, metadata={"help": "the model's folder inside a hub repository"}
    )
    system: str | None = field(
        default=None, metadata={"help": "the system instruction (None: no system turn)"}
    )
    user: str = field(default="{prompt}", metadata={"help": "the user turn; {prompt} is the user's prompt"})
    chat_template_kwargs: dict[str, Any] = field(
        default_factory=dict, metadata={"help": "extra chat-template variables (e.g. enable_thinking: false)"}
    )
    stop: list[str] = field(default_factory=list, metadata={"help": "strings that end the answer"})
    extract: Extraction = field(default_factory=Extraction, metadata={"help": "how the prompt is read"})
    api_model: str | None = field(
        default=None, metadata={"help": "endpoint: the model name (else --api-model)"}
    )
    api_base: str | None = field(default=None, metadata={"help": "endpoint: base URL (else --api-base)"})
    api_key_env: str | None = field(
        default=None, metadata={"help": "endpoint: variable holding the key (else --api-key-env)"}
    )

    def __post_init__(self) -> None:
        if self.kind != KIND:
            raise ConfigError(f"policy recipe kind must be {KIND!r} (a rewriter answering in plain text)")
        if not self.model or not self.model.strip():
            raise ConfigError("a plain policy recipe needs 'model'")
        if "{prompt}" not in self.user:
            raise ConfigError("the recipe's 'user' turn must contain {prompt}")
        if self.system is not None and "{prompt}" in self.system:
            raise ConfigError("put {prompt} in 'user', not in the system instruction")
        if isinstance(self.extract, dict):
            from reprompt.utils.fields import build_dataclass

            self.extract = build_dataclass(Extraction, self.extract, "policy recipe", prefix="extract.")

    def messages(self, prompt: str) -> list[dict[str, str]]:
        turns = [{"role": "system", "content": self.system}] if self.system is not None else []
        return [*turns, {"role": "user", "content": self.user.replace("{prompt}", prompt.strip())}]

    @classmethod
    def load(cls, path: str | Path) -> PlainRecipe:
        """A recipe from its YAML file (unknown keys refused, naming the known ones)."""
        from reprompt.utils.fields import build_dataclass
        from reprompt.utils.io import read_yaml_mapping

        return build_dataclass(cls, read_yaml_mapping(path, "policy recipe"), f"policy recipe {path}")


class PlainRewriter(Rewriter):
    """A generator (transformers model or endpoint) asked with a recipe's instruction; its plain-text answer
    is read with the recipe's extraction (reasoning: dropped blocks such as ``<think>``)."""

    def __init__(self, backend: Rewriter, recipe: PlainRecipe) -> None:
        self.backend, self.recipe = backend, recipe
        self.name = recipe.name or f"plain:{backend.name}"
        backend.stop = tuple(recipe.stop)
        backend.chat_template_kwargs = dict(recipe.chat_template_kwargs)

    @property
    def model(self) -> Any:
        """The backend's model (its revision goes into run records); None for an endpoint."""
        return getattr(self.backend, "model", None)

    @property
    def base_url(self) -> str:
        """An endpoint backend's URL (recorded with runs); a local model has none (AttributeError)."""
        url = getattr(self.backend, "base_url", None)
        if url is None:
            raise AttributeError("base_url")
        return str(url)

    def messages_for(self, prompt: str) -> list[dict[str, str]]:
        return self.recipe.messages(prompt)

    def parse(self, text: str, prompt: str) -> ParsedCompletion:
        return extract_prompt(text, prompt, self.recipe.extract)

    def generate(
        self, messages: list[list[dict[str, str]]], options: GenerationOptions
    ) -> list[list[tuple[str, int]]]:
        return self.backend.generate(messages, options)

    def settings(self) -> dict[str, Any]:
        return {"recipe": asdict(self.recipe), "backend": type(self.backend).__name__}


def load_plain_policy(path: str | Path, **kw: Any) -> PlainRewriter:
    """The plain rewriter a recipe file describes; ``kw`` are ``load_policy``'s keywords (device, dtype,
    ``api_model``, ...): the recipe's endpoint fields win over them when set."""
    from reprompt.policy import load_policy
    from reprompt.policy.openai_compat import is_url

    recipe = PlainRecipe.load(path)
    kw = {k: v for k, v in kw.items() if k != "prompt_spec"}
    for key in ("api_model", "api_base", "api_key_env"):
        if getattr(recipe, key):
            kw[key] = getattr(recipe, key)
    if is_recipe(recipe.model):
        raise ConfigError(f"policy recipe {path}: 'model' names another recipe; name a model")
    if recipe.subfolder and not (recipe.model == "openai" or is_url(recipe.model)):
        kw["subfolder"] = recipe.subfolder
    backend = load_policy(recipe.model, **kw)
    if backend.name == "none":
        raise ConfigError(f"policy recipe {path}: model 'none' rewrites nothing; name a model")
    return PlainRewriter(backend, recipe)
