"""``PromptSpec``: everything besides the weights that decides the policy's input tokens.

It is saved next to every checkpoint (``reprompt_format.json``) and loaded with it, so a model is
always prompted at inference exactly as it was trained.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from reprompt.errors import ConfigError
from reprompt.format.messages import build_messages
from reprompt.format.tags import TagFormat, get_tag_format

SPEC_FILE = "reprompt_format.json"

# One worked example for small models that cannot follow the system prompt alone.
ONE_SHOT = (
    (
        "a photo of two cats and a red bench",
        "<reason>Objects: two cats and one bench. The bench is red; the cats are gray. The bench goes at "
        "the bottom center of the image and the two cats sit side by side on it.</reason>\n"
        "<prompt>A photo of exactly two gray cats sitting side by side on one red wooden bench at the "
        "bottom center of the image.</prompt>",
    ),
)


@dataclass
class PromptSpec:
    tags: str = field(
        default="reason/prompt", metadata={"help": "tag pair: reason/prompt, think/answer, prompt"}
    )
    system: str | None = field(default=None, metadata={"help": "system prompt (None: ours for the tags)"})
    examples: list[tuple[str, str]] = field(
        default_factory=list, metadata={"help": "few-shot (user prompt, completion) pairs"}
    )

    def __post_init__(self) -> None:
        self.examples = [tuple(e) for e in self.examples]  # type: ignore[misc]
        if any(len(e) != 2 for e in self.examples):
            raise ConfigError("each few-shot example must be a (prompt, completion) pair")
        get_tag_format(self.tags)

    @property
    def fmt(self) -> TagFormat:
        return get_tag_format(self.tags)

    def messages(self, prompt: str) -> list[dict[str, str]]:
        return build_messages(prompt, self.fmt, self.system, self.examples)

    def save(self, folder: str | Path) -> None:
        Path(folder).mkdir(parents=True, exist_ok=True)
        (Path(folder) / SPEC_FILE).write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, folder: str | Path) -> PromptSpec | None:
        path = Path(folder) / SPEC_FILE
        if not path.exists():
            return None
        try:
            return cls(**json.loads(path.read_text()))
        except (TypeError, ValueError) as e:
            raise ConfigError(f"{path} is not a valid prompt spec: {e}") from e
