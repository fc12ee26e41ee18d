"""Training configs: TRL's ``SFTConfig`` / ``GRPOConfig`` plus what reprompt adds.

Every hyperparameter of a run lives in a YAML recipe (``configs/sft/*.yaml``, ``configs/grpo/*.yaml``) read
by :class:`trl.TrlParser`; command-line flags override it. Our fields: which policy, how it is prompted
(:class:`reprompt.format.PromptSpec`), the data, resuming, the rewards and the held-out reward. LoRA and the
policy's dtype are TRL's own :class:`trl.ModelConfig` fields (``use_peft``, ``lora_r``, ``dtype``, ...), built
into a LoRA config by TRL's ``get_peft_config``. ``__post_init__`` rejects bad combinations with a message
that says what to change; the GRPO config parses its reward configs once, into typed
:class:`~reprompt.rewards.config.RewardConfig` values that training passes on as they are.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trl import GRPOConfig, ModelConfig, SFTConfig

from reprompt.backbones.acceleration import OFF
from reprompt.backbones.base import RenderSettings
from reprompt.errors import ConfigError, check_choice, check_range
from reprompt.rewards.config import RewardConfig, read_mapping
from reprompt.utils.dtypes import DTYPE_HELP, DTYPE_NAMES
from reprompt.utils.endpoints import REWARD_TOKEN_ENV

RESUME_CHOICES = ("auto", "never")


def _accelerator_available() -> bool:
    import torch

    return torch.cuda.is_available() or (hasattr(torch, "xpu") and torch.xpu.is_available())


@dataclass
class PolicyArgs(ModelConfig):
    """Fields shared by SFT and GRPO (mixed into both configs): TRL's :class:`~trl.ModelConfig` (LoRA, dtype)
    with reprompt's policy names, prompting and resuming."""

    # --- policy ---
    policy: str = field(
        default="smollm2",
        metadata={
            "help": "model to train: smollm2 (offline), an alias (qwen2.5-3b), a local folder (e.g. an "
            "SFT output) or a hub id"
        },
    )
    dtype: str | None = field(
        default="auto",
        metadata={
            "help": f"weights dtype: {DTYPE_HELP}",
            "choices": DTYPE_NAMES,  # TRL's ModelConfig takes these names only (no fp32/bf16 aliases)
        },
    )
    # --- prompting (PromptSpec): None keeps the spec saved with the policy, else reprompt's default ---
    tags: str | None = field(
        default=None, metadata={"help": "tag pair: reason/prompt, think/answer, or prompt (no reasoning)"}
    )
    system_prompt: str | None = field(
        default=None, metadata={"help": "system prompt (None: reprompt's for the tags)"}
    )
    few_shot: bool | None = field(
        default=None,
        metadata={"help": "prepend reprompt's one worked example (helps untrained small models)"},
    )
    # --- LoRA: TRL's ModelConfig fields (use_peft, lora_r, lora_alpha, lora_dropout, ...) ---
    lora_target_modules: list[str] | None = field(
        default=None, metadata={"help": "module names to adapt (default: all-linear, every linear layer)"}
    )
    # --- resuming ---
    resume: str = field(
        default="auto",
        metadata={
            "help": "auto: continue from the last complete checkpoint in output_dir if there is one; "
            "never: start fresh; or a checkpoint folder"
        },
    )

    def _check_policy_args(self) -> None:
        if not self.policy:
            raise ConfigError("set policy: smollm2, an alias like qwen2.5-3b, a local folder or a hub id")
        if self.model_name_or_path is not None:
            raise ConfigError(
                "reprompt names the model to train with `policy` (a name, folder or hub id), not model_name_or_path"
            )
        if self.model_revision != "main" or self.load_in_8bit or self.load_in_4bit:
            raise ConfigError(
                "model_revision, load_in_8bit and load_in_4bit are not supported: point `policy` at a local "
                "folder of the revision you want, in full precision"
            )
        check_choice("dtype", self.dtype, DTYPE_NAMES)
        ModelConfig.__post_init__(self)  # TRL's own checks (a one-name target list becomes that name)
        if (
            self.lora_target_modules is None
        ):  # peft's name for every linear layer (TRL's post-init does the same
            self.lora_target_modules = "all-linear"  # type: ignore[assignment]  # for a one-name list)
        if self.tags is not None:
            from reprompt.format import get_tag_format

            get_tag_format(self.tags)
        if self.use_peft and (self.lora_r < 1 or self.lora_alpha < 1 or not 0 <= self.lora_dropout < 1):
            raise ConfigError("LoRA needs lora_r >= 1, lora_alpha >= 1 and 0 <= lora_dropout < 1")
        if self.resume not in RESUME_CHOICES and not Path(self.resume).is_dir():
            raise ConfigError(
                f"resume must be auto, never or an existing checkpoint folder, got {self.resume!r}"
            )

    def _cpu_defaults(self) -> None:
        """bf16 defaults to True in TRL and fails on a CPU-only machine: default it to False there
        (and do not pin memory for a GPU that is not there)."""
        if not _accelerator_available():
            self.dataloader_pin_memory = False
        if (
            getattr(self, "bf16", None) is None
            and not getattr(self, "fp16", False)
            and not _accelerator_available()
        ):
            self.bf16 = False


@dataclass
class RepromptSFTConfig(SFTConfig, PolicyArgs):
    """SFT of the policy on teacher completions (loss on the assistant turn only)."""

    sft_data: str | None = field(
        default=None, metadata={"help": "SFT JSONL from `reprompt data sft` (prompt, reasoning, rewritten)"}
    )
    max_examples: int | None = field(default=None, metadata={"help": "use only the first N rows"})
    gradient_checkpointing: bool | None = field(
        default=None, metadata={"help": "deprecated alias of activation_checkpointing (set that instead)"}
    )
    # Defaults of the paper recipe where TRL's differ: the reference code's SFT settings (the paper gives
    # none of them).
    learning_rate: float = field(default=1e-5, metadata={"help": "peak learning rate (reference code: 1e-5)"})
    num_train_epochs: float = field(default=1.0, metadata={"help": "epochs (reference code: 1)"})
    lr_scheduler_type: str = field(default="cosine", metadata={"help": "schedule (reference code: cosine)"})
    warmup_steps: float = field(
        default=0.1,
        metadata={"help": "warmup steps, or a fraction of all steps if < 1 (reference code: 0.1)"},
    )
    max_length: int | None = field(
        default=1024, metadata={"help": "cutoff in policy tokens (reference code: 1024)"}
    )
    completion_only_loss: bool | None = field(
        default=True, metadata={"help": "loss on the assistant completion only (prompt tokens masked)"}
    )

    def __post_init__(self) -> None:
        self._check_policy_args()
        if not self.sft_data:
            raise ConfigError("set sft_data: the JSONL written by `reprompt data sft --out ...`")
        if not Path(self.sft_data).is_file():
            raise ConfigError(f"sft_data {self.sft_data!r} not found: build it with `reprompt data sft`")
        check_range("max_examples", self.max_examples, 1)
        if self.completion_only_loss is False:
            raise ConfigError(
                "completion_only_loss=false would train on the system and user turns too; reprompt trains "
                "the assistant turn only (leave it true)"
            )
        if self.packing:
            raise ConfigError("packing mixes examples across the completion mask; set packing: false")
        self._cpu_defaults()
        super().__post_init__()


def _reward_mapping(value: Any, name: str) -> dict[str, Any] | None:
    """The settings of a reward config given as a mapping, as JSON text (the command line) or as a YAML
    path; None when not given."""
    if value is None:
        return None
    if isinstance(value, RewardConfig):
        return value.to_dict()
    if isinstance(value, str) and value.lstrip().startswith("{"):
        import json

        try:
            value = json.loads(value)
        except json.JSONDecodeError as e:
            raise ConfigError(f"{name} looks like JSON but does not parse: {e}") from e
    if isinstance(value, str) and not Path(value).is_file():
        raise ConfigError(f"{name} file {value!r} not found")
    if not isinstance(value, str | dict):
        raise ConfigError(f"{name} must be a mapping or a YAML path, got {type(value).__name__}")
    return read_mapping(value)


HELDOUT_FALLBACK = "render_original"
"""The held-out guard measures what a user gets: a greedy rewrite that falls back renders the original."""
HELDOUT_RENDER = RenderSettings(cache=OFF)
"""The held-out guard renders at the backbone's full settings: never the train-time profile, and no step
cache even when the backbone was loaded with one (a compiled transformer computes the same images)."""


def default_heldout_rewards(backbone: str) -> RewardConfig:
    """The held-out reward unless one is given: strict GenEval on ``backbone``, fallbacks rendered as the
    original prompt (what a user gets), never normalized."""
    return RewardConfig(
        backbone=backbone,
        components=["geneval"],
        options={"geneval": {"mode": "strict"}},
        normalization="none",
        fallback_score=HELDOUT_FALLBACK,
        render=HELDOUT_RENDER,
    )


@dataclass
class RepromptGRPOConfig(GRPOConfig, PolicyArgs):
    """GRPO of the policy against the rendered-image reward (the paper's RL stage)."""

    # --- data ---
    prompts: str | None = field(
        default=None,
        metadata={"help": "RL prompts: JSONL with GenEval metadata (`reprompt data prompts`) or a text list"},
    )
    max_prompts: int | None = field(default=None, metadata={"help": "use only the first N prompts"})
    gradient_checkpointing: bool | None = field(
        default=None, metadata={"help": "deprecated alias of activation_checkpointing (set that instead)"}
    )
    # --- reward ---
    rewards: dict[str, Any] | str | RewardConfig | None = field(
        default=None,
        metadata={
            "help": "reward config: a mapping (components, weights, options, backbone, ...) or a YAML "
            "path (configs/rewards/*.yaml)"
        },
    )
    reward_service: list[str] | None = field(
        default=None,
        metadata={"help": "reward service URLs (`reprompt serve-rewards`); unset: score in-process"},
    )
    reward_service_token_env: str = field(
        default=REWARD_TOKEN_ENV,
        metadata={"help": "env var holding the reward service's bearer token"},
    )
    backbone: str | None = field(
        default=None,
        metadata={"help": "override the reward config's backbone (sketch, flux-dev, a folder ...)"},
    )
    backbone_model: str | None = field(
        default=None, metadata={"help": "local folder for the backbone preset (same architecture)"}
    )
    # --- monitoring ---
    samples_every: int = field(
        default=10,
        metadata={"help": "write a samples table (original, reasoning, prompt, image) every N steps; 0: off"},
    )
    samples_per_table: int = field(default=8, metadata={"help": "rows per samples table"})
    heldout_prompts: str | None = field(
        default=None,
        metadata={"help": "fixed held-out prompts (JSONL with metadata) for the held-out reward"},
    )
    heldout_max: int = field(default=64, metadata={"help": "use the first N held-out prompts"})
    heldout_every: int = field(
        default=25,
        metadata={"help": "evaluate the held-out reward every N steps (and before training); 0: off"},
    )
    heldout_rewards: dict[str, Any] | str | RewardConfig | None = field(
        default=None,
        metadata={
            "help": "reward config for the held-out set (default: strict GenEval on the training backbone; a "
            "config that names no backbone uses the training one)"
        },
    )
    heldout_service: list[str] | None = field(
        default=None,
        metadata={
            "help": "reward service URLs that score the held-out set with their own reward (e.g. "
            "`reprompt serve-rewards --config configs/rewards/heldout.yaml`), instead of heldout_rewards"
        },
    )
    heldout_batch_size: int = field(default=16, metadata={"help": "held-out prompts per generate call"})
    # --- speed ---
    share_prompt_pass: bool = field(
        default=False,
        metadata={
            "help": "log-prob and update passes run each distinct prompt once and share its KV cache with "
            "its G completions (the same loss up to float rounding; a lab GRPO step with a long prompt ran "
            "~1/4 faster, RESULTS §8); needs activation_checkpointing off"
        },
    )
    merged_sampling: bool = field(
        default=False,
        metadata={
            "help": "sample rollouts from a copy of the LoRA policy with the adapter merged, refreshed before "
            "every rollout (no adapter matmuls per token, as TRL's vLLM path does; one more copy of the adapted "
            "weights; tokens differ by rounding; RESULTS §8); LoRA only"
        },
    )
    # --- reward outages ---
    max_missing_fraction: float = field(
        default=0.5,
        metadata={
            "help": "stop training when a component whose missing score means a failure (a VLM judge, "
            "ImageReward) misses more than this fraction of a batch ..."
        },
    )
    max_missing_steps: int = field(
        default=3, metadata={"help": "... for this many scored batches in a row (an outage, not a blip)"}
    )
    # Defaults of the paper recipe where TRL's differ. The paper gives only G; the rest are the reference
    # code's settings (the paper gives no lr, beta, temperature or completion length).
    learning_rate: float = field(default=2e-6, metadata={"help": "learning rate (reference code: 2e-6)"})
    beta: float = field(default=0.04, metadata={"help": "KL coefficient (reference code: 0.04)"})
    num_generations: int | None = field(default=4, metadata={"help": "completions per prompt G (paper: 4)"})
    temperature: float = field(default=0.9, metadata={"help": "sampling temperature (reference code: 0.9)"})
    max_completion_length: int | None = field(
        default=256, metadata={"help": "policy tokens per completion (reference code: 256)"}
    )

    def __post_init__(self) -> None:
        self._check_policy_args()
        if not self.prompts:
            raise ConfigError(
                "set prompts: the RL prompt file (e.g. rl_prompts.jsonl from `reprompt data prompts`)"
            )
        if not Path(self.prompts).is_file():
            raise ConfigError(
                f"prompts file {self.prompts!r} not found: make it with `reprompt data prompts`"
            )
        self._parse_rewards()
        if self.heldout_prompts is not None and not Path(self.heldout_prompts).is_file():
            raise ConfigError(f"heldout_prompts {self.heldout_prompts!r} not found")
        for name in (
            "samples_every",
            "heldout_every",
            "samples_per_table",
            "heldout_max",
            "heldout_batch_size",
        ):
            check_range(name, getattr(self, name), 0)
        check_range("max_missing_fraction", self.max_missing_fraction, 0, 1)
        check_range("max_missing_steps", self.max_missing_steps, 1)
        if self.use_vllm:
            import importlib.util

            if importlib.util.find_spec("vllm") is None:
                raise ConfigError("use_vllm needs vLLM: pip install 'reprompt[vllm]' (GPU machines only)")
        self._cpu_defaults()
        super().__post_init__()
        self._check_whole_groups()
        if self.merged_sampling and (not self.use_peft or self.use_vllm):
            raise ConfigError(
                "merged_sampling needs use_peft: true (a LoRA policy), and does not apply with vLLM"
            )
        if self.share_prompt_pass and (self.activation_checkpointing or self.gradient_checkpointing):
            raise ConfigError(
                "share_prompt_pass keeps each prompt's KV cache for its completions, which activation "
                "checkpointing does not: set activation_checkpointing: false"
            )
        if isinstance(self.rewards, RewardConfig):
            self._check_std_floor(self.rewards.std_floor)

    def _parse_rewards(self) -> None:
        """Parse ``rewards`` and ``heldout_rewards`` once into typed configs, with the ``backbone`` /
        ``backbone_model`` overrides applied; training passes them on as they are."""
        data = _reward_mapping(self.rewards, "rewards")
        heldout = _reward_mapping(self.heldout_rewards, "heldout_rewards")
        if data is None and not self.reward_service:
            raise ConfigError("set rewards (a mapping or a YAML path), or reward_service URLs")
        if self.heldout_service and heldout is not None:
            raise ConfigError("set heldout_rewards or heldout_service, not both")
        overrides = {"backbone": self.backbone, "backbone_model": self.backbone_model}
        self.rewards = None
        if data is not None:
            self.rewards = RewardConfig.from_dict({**data, **{k: v for k, v in overrides.items() if v}})
        if heldout is not None:
            if heldout.setdefault("fallback_score", HELDOUT_FALLBACK) != HELDOUT_FALLBACK:
                raise ConfigError(
                    f"heldout_rewards sets fallback_score: {heldout['fallback_score']}; the held-out guard "
                    f"measures what a user gets (a fallback renders the original prompt): use "
                    f"{HELDOUT_FALLBACK} or omit it"
                )
            if heldout.get("render"):
                raise ConfigError(
                    "heldout_rewards sets render; the held-out guard renders at the backbone's full settings "
                    "(the train-time profile belongs to the training reward's render): remove it"
                )
            heldout["render"] = HELDOUT_RENDER
            if "backbone" not in heldout:  # the training backbone, already in memory
                if self.rewards is None:
                    raise ConfigError(
                        "heldout_rewards must name its backbone (e.g. backbone: flux-dev) when training scores "
                        "through a reward service: there is no image model in this process to reuse"
                    )
                heldout["backbone"] = self.rewards.backbone
            self.heldout_rewards = RewardConfig.from_dict(heldout)

    def _check_whole_groups(self) -> None:
        """Every process must score whole groups: the reward normalizes each component, and imputes missing
        scores, within a group, from the completions the process holds. TRL only checks the global batch."""
        processes = max(int(self.world_size), 1)
        local = self.generation_batch_size // processes
        if local % self.num_generations:
            raise ConfigError(
                f"each process generates {local} completions per generation batch "
                f"(per_device_train_batch_size {self.per_device_train_batch_size} x steps_per_generation "
                f"{self.steps_per_generation}), which is not a multiple of num_generations "
                f"{self.num_generations}: a group would be split across processes and normalized in parts. "
                f"Set per_device_train_batch_size x steps_per_generation to a multiple of {self.num_generations}."
            )

    def _check_std_floor(self, floors: Mapping[str, float] | None) -> None:
        """A std floor on the components is undone if TRL divides the summed reward by its group std."""
        if any(float(v) > 0 for v in (floors or {}).values()) and self.scale_rewards == "group":
            raise ConfigError(
                "the reward sets std_floor, but scale_rewards: group divides the summed reward by its group "
                "standard deviation again and brings the noise back: set scale_rewards: batch (or none)"
            )
