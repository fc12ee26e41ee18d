"""The VLM judge's options, its instruction, and the image preparation both backends share."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from reprompt.errors import ConfigError, check_choice, check_range
from reprompt.utils.dtypes import Placement
from reprompt.utils.endpoints import API_KEY_ENV

if TYPE_CHECKING:
    from PIL import Image

DEFAULT_LOCAL_MODEL = "Qwen/Qwen2.5-VL-3B-Instruct"
BACKENDS = ("openai", "local")
MODES = ("constrained", "generate")

JUDGE_PROMPT = """\
You judge images made by a text-to-image model. The request was:
"{prompt}"
Rate how well the image matches the request. Check first that every requested object is present with \
the exact requested count, that each color and attribute belongs to the right object, and that the \
requested spatial relations hold; judge visual quality and realism second. Reply with exactly one line, \
"Final score: N", where N is an integer from 0 (does not match at all) to 10 (matches perfectly); \
write no other scores."""
"""Asks for one marked final score, which :func:`parse_score` reads ahead of any sub-score a judge adds."""


@dataclass
class VLMJudgeOptions(Placement):
    """``device``/``dtype`` (from :class:`Placement`) place the local backend's model."""

    backend: str = field(
        default="local", metadata={"help": "local (transformers VLM) or openai (any compatible endpoint)"}
    )
    model: str | None = field(
        default=None,
        metadata={"help": f"API model name, or local model folder/id (local default {DEFAULT_LOCAL_MODEL})"},
    )
    prompt: str = field(
        default=JUDGE_PROMPT, metadata={"help": "judge instruction; {prompt} = original prompt"}
    )
    max_image_side: int = field(default=1024, metadata={"help": "downscale images larger than this (pixels)"})
    # --- openai ---
    base_url: str = field(
        default="https://api.openai.com/v1", metadata={"help": "OpenAI-compatible base URL"}
    )
    api_key_env: str | None = field(default=API_KEY_ENV, metadata={"help": "env var holding the API key"})
    concurrency: int = field(default=8, metadata={"help": "requests in flight at once"})
    timeout: float = field(default=60.0, metadata={"help": "seconds per request"})
    retries: int = field(default=4, metadata={"help": "retries after a 429/5xx/timeout"})
    backoff: float = field(default=1.0, metadata={"help": "first retry delay in seconds (doubles each time)"})
    max_backoff: float = field(default=30.0, metadata={"help": "longest retry delay in seconds"})
    parse_retries: int = field(default=1, metadata={"help": "re-ask when the reply has no score"})
    max_tokens: int = field(default=32, metadata={"help": "reply token budget"})
    token_param: str = field(
        default="max_tokens",
        metadata={"help": "max_tokens, or max_completion_tokens for newer OpenAI models"},
    )
    temperature: float = field(default=0.0, metadata={"help": "sampling temperature of the judge"})
    # --- local ---
    mode: str = field(
        default="constrained", metadata={"help": "local: constrained (number only) or generate"}
    )
    batch_size: int = field(default=4, metadata={"help": "local: images per generate() call"})

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice("vlm_judge backend", self.backend, BACKENDS)
        check_choice("vlm_judge mode", self.mode, MODES)
        if self.backend == "openai" and not self.model:
            raise ConfigError("vlm_judge with backend openai needs options.vlm_judge.model (e.g. gpt-4o)")
        if "{prompt}" not in self.prompt:
            raise ConfigError("the vlm_judge prompt must contain {prompt}")
        for name, low in (("concurrency", 1), ("batch_size", 1), ("retries", 0), ("parse_retries", 0)):
            check_range(f"vlm_judge {name}", getattr(self, name), low)
        if self.token_param not in ("max_tokens", "max_completion_tokens"):
            raise ConfigError("vlm_judge token_param must be max_tokens or max_completion_tokens")


def shrink(image: Image.Image, max_side: int) -> Image.Image:
    image = image.convert("RGB")
    if max(image.size) <= max_side:
        return image
    image = image.copy()
    image.thumbnail((max_side, max_side))
    return image
