"""Which judge scores a GenEval 2 run, by name, and its settings (the ``--judge*`` flags).

``oracle`` (the simulator's drawn scene), ``local`` (a transformers VLM, default the official
Qwen/Qwen3-VL-8B-Instruct) or ``openai`` (an OpenAI-compatible endpoint); ``auto`` is the oracle for runs of a
simulator backbone (they keep their scenes) and the local VLM otherwise. A judge returns, per image, per atom,
``(probability of the expected answer, None)`` or ``(None, why it cannot answer)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from reprompt.errors import ConfigError, check_choice, check_range
from reprompt.eval.geneval2.vqa import DEFAULT_JUDGE_MODEL
from reprompt.utils.endpoints import API_KEY_ENV, LOCAL_API_BASE
from reprompt.utils.hub import check_local_model

if TYPE_CHECKING:
    from PIL import Image

    from reprompt.eval.geneval2.data import Atom
    from reprompt.geneval.scene import SceneObject

JUDGES: tuple[str, ...] = ("auto", "oracle", "local", "openai")


class Judge(Protocol):
    name: str
    needs_scenes: bool

    def score(
        self,
        images: Sequence[Image.Image],
        atoms: Sequence[Sequence[Atom]],
        scenes: Sequence[Sequence[SceneObject]] | None,
    ) -> list[list[tuple[float | None, str | None]]]: ...

    def info(self) -> dict[str, Any]: ...


@dataclass
class JudgeConfig:
    """How GenEval 2 runs are judged (defaults: the official judge model, as the official script asks it)."""

    judge: str = field(
        default="auto",
        metadata={
            "help": "oracle (the sketch simulator's drawn scene), local (a transformers VLM), openai (an "
            "OpenAI-compatible endpoint); auto = oracle for simulator runs, else local",
            "choices": JUDGES,
        },
    )
    judge_model: str = field(
        default=DEFAULT_JUDGE_MODEL,
        metadata={
            "help": "local: any image-text-to-text model folder or hub id; openai: the model name at the endpoint "
            "(official: Qwen/Qwen3-VL-8B-Instruct)"
        },
    )
    judge_device: str = field(default="cpu", metadata={"help": "local judge: torch device"})
    judge_dtype: str = field(default="auto", metadata={"help": "local judge: dtype"})
    judge_batch_size: int = field(default=8, metadata={"help": "local judge: questions per forward pass"})
    judge_api_base: str = field(
        default=LOCAL_API_BASE, metadata={"help": "openai judge: OpenAI-compatible base URL"}
    )
    judge_api_key_env: str = field(
        default=API_KEY_ENV, metadata={"help": "openai judge: environment variable holding the key"}
    )
    judge_concurrency: int = field(default=8, metadata={"help": "openai judge: requests in flight"})
    judge_timeout: float = field(default=60.0, metadata={"help": "openai judge: seconds per request"})
    judge_retries: int = field(default=4, metadata={"help": "openai judge: retries after a 429/5xx/timeout"})
    top_logprobs: int = field(
        default=20, metadata={"help": "openai judge: first-token candidates asked for (OpenAI allows 20)"}
    )
    max_image_side: int = field(
        default=1024, metadata={"help": "downscale larger images to this many pixels"}
    )

    def __post_init__(self) -> None:
        check_choice("--judge", self.judge, JUDGES)
        check_range("--judge-batch-size", self.judge_batch_size, 1)
        check_range("--judge-concurrency", self.judge_concurrency, 1)
        check_range("--judge-retries", self.judge_retries, 0)
        check_range("--top-logprobs", self.top_logprobs, 1, 20)
        if not self.judge_model.strip():
            raise ConfigError("--judge-model must name a model (official: Qwen/Qwen3-VL-8B-Instruct)")
        # a local judge loads after generation, so its path is checked now; an endpoint's model name is no path
        if self.judge != "openai":
            check_local_model("VQA judge", self.judge_model)

    def resolved(self, has_scenes: bool) -> str:
        """The judge ``auto`` stands for."""
        if self.judge != "auto":
            return self.judge
        return "oracle" if has_scenes else "local"


def build_judge(config: JudgeConfig, has_scenes: bool) -> Judge:
    """The judge ``config`` names (``auto``: the oracle when the run kept simulator scenes)."""
    name = config.resolved(has_scenes)
    if name == "oracle":
        from reprompt.eval.geneval2.oracle import OracleJudge

        return OracleJudge()
    if name == "local":
        from reprompt.eval.geneval2.vqa import LocalVQAJudge

        return LocalVQAJudge(
            config.judge_model,
            config.judge_device,
            config.judge_dtype,
            config.judge_batch_size,
            config.max_image_side,
        )
    from reprompt.eval.geneval2.vqa import RemoteVQAJudge
    from reprompt.rewards.vlm_judge.options import VLMJudgeOptions

    options = VLMJudgeOptions(
        backend="openai",
        model=config.judge_model,
        base_url=config.judge_api_base,
        api_key_env=config.judge_api_key_env,
        concurrency=config.judge_concurrency,
        timeout=config.judge_timeout,
        retries=config.judge_retries,
        max_image_side=config.max_image_side,
        temperature=0.0,
    )
    return RemoteVQAJudge(options, config.top_logprobs)
