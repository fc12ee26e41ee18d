"""The GenEval scorer: one config and one factory for every place that judges images by GenEval's rules.

The training reward (``geneval``), the evaluator (``reprompt eval geneval``), the latency benchmark's
accuracy table and the iterative baseline's judge all build their scorer here from a :class:`ScorerConfig`,
so a reward and an evaluation with the same settings use exactly the same detector, colour classifier and
thresholds. The official thresholds are declared once, in :class:`~reprompt.geneval.rules.GenEvalOptions`.

``detector="auto"`` picks the ``oracle`` (the scene a simulator drew) when the images come with scenes, and
``mask2former`` otherwise; ``colors="auto"`` reads the drawn colours with the oracle and asks CLIP otherwise.
Models load on first use.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from reprompt.errors import ConfigError, RepromptError, check_choice, check_range, did_you_mean
from reprompt.geneval.checkpoints import DEFAULT_CLIP, DEFAULT_MASK2FORMER
from reprompt.geneval.rules import GenEvalOptions, GenEvalResult, needs_colors
from reprompt.utils.hub import check_local_model

if TYPE_CHECKING:
    from PIL import Image

    from reprompt.geneval.detectors import Detector
    from reprompt.geneval.scene import SceneObject

DETECTOR_CHOICES = ("auto", "oracle", "mask2former", "mmdet")
COLOR_CHOICES = ("auto", "oracle", "clip")
_OPTION_FIELDS = tuple(f.name for f in dataclasses.fields(GenEvalOptions))


def _official(name: str) -> Any:
    """A field of :class:`GenEvalOptions` (default and help), so the official values live in one place."""
    spec = next(f for f in dataclasses.fields(GenEvalOptions) if f.name == name)
    return field(default=spec.default, metadata=dict(spec.metadata))


@dataclass
class ScorerConfig:
    """How GenEval images are judged: which detector, which colour classifier, and the official options."""

    # --- detector
    detector: str = field(
        default="auto",
        metadata={
            "help": "auto (oracle for images with simulator scenes, else mask2former) | oracle | mask2former "
            "| mmdet",
            "choices": DETECTOR_CHOICES,
        },
    )
    detector_model: str | None = field(
        default=None, metadata={"help": f"Mask2Former id or folder (default {DEFAULT_MASK2FORMER})"}
    )
    mmdet_config: str | None = field(
        default=None, metadata={"help": "GenEval's mmdet config (detector mmdet)"}
    )
    mmdet_checkpoint: str | None = field(
        default=None, metadata={"help": "GenEval's mmdet checkpoint (detector mmdet)"}
    )
    # --- colours
    colors: str = field(
        default="auto",
        metadata={
            "help": "colour classifier: auto = the drawn colours for oracle, CLIP otherwise",
            "choices": COLOR_CHOICES,
        },
    )
    clip_model: str = field(default=DEFAULT_CLIP, metadata={"help": "CLIP id or folder for colours"})
    device: str = field(default="cpu", metadata={"help": "device for the detector and CLIP"})
    batch_size: int = field(default=4, metadata={"help": "images per detector call"})
    # --- the official options (GenEval's --options)
    threshold: float = _official("threshold")
    counting_threshold: float = _official("counting_threshold")
    max_objects: int = _official("max_objects")
    max_overlap: float = _official("max_overlap")
    position_threshold: float = _official("position_threshold")

    def __post_init__(self) -> None:
        check_choice("--detector", self.detector, DETECTOR_CHOICES)
        check_choice("--colors", self.colors, COLOR_CHOICES)
        check_range("the detector batch size", self.batch_size, 1)
        if self.colors == "oracle" and self.detector not in ("auto", "oracle"):
            raise ConfigError(
                "--colors oracle needs --detector oracle (only a simulator knows the drawn colours)"
            )
        self.options()  # validates the thresholds
        # local model paths exist now, not after a whole run has been generated
        check_local_model("Mask2Former", self.detector_model)
        check_local_model("CLIP", self.clip_model)
        check_local_model("mmdet config", self.mmdet_config, file=True)
        check_local_model("mmdet checkpoint", self.mmdet_checkpoint, file=True)

    def options(self) -> GenEvalOptions:
        return GenEvalOptions(**{name: getattr(self, name) for name in _OPTION_FIELDS})

    def resolve(self, has_scenes: bool) -> tuple[str, str]:
        """Concrete (detector, colours) for images with or without simulator scenes."""
        detector = self.detector
        if detector == "auto":
            detector = "oracle" if has_scenes else "mask2former"
        colors = self.colors
        if colors == "auto":
            colors = "oracle" if detector == "oracle" else "clip"
        if colors == "oracle" and detector != "oracle":
            raise ConfigError(
                "--colors oracle needs --detector oracle (only a simulator knows the drawn colours)"
            )
        return detector, colors

    def scorer_settings(self) -> dict[str, Any]:
        """The settings that decide a score (not where or how fast it runs), for run provenance."""
        out = dataclasses.asdict(self)
        for key in ("device", "batch_size"):
            out.pop(key)
        return out


class GenEvalScorer:
    """Detector + colour classifier + options for one resolved setting; :meth:`score` judges images."""

    def __init__(self, config: ScorerConfig, detector: str, colors: str) -> None:
        self.config, self.detector_name, self.colors_name = config, detector, colors
        self.options = config.options()
        self._detector: Detector | None = None
        self._classifier: Any = None

    @property
    def needs_scenes(self) -> bool:
        return self.detector_name == "oracle"

    @property
    def detector(self) -> Detector:
        if self._detector is None:
            self._detector = build_detector(self.config, self.detector_name)
        return self._detector

    @property
    def color_classifier(self) -> Any:
        """The CLIP classifier (loaded on first use), or None when the oracle's drawn colours are used."""
        if self.colors_name != "clip":
            return None
        if self._classifier is None:
            from reprompt.geneval.colors import ClipColorClassifier

            self._classifier = ClipColorClassifier(self.config.clip_model, device=self.config.device)
        return self._classifier

    def info(self) -> dict[str, Any]:
        """What scored (recorded in results): detector, its model, colour source and the options."""
        model = None
        if self.detector_name == "mask2former":
            model = self.config.detector_model or DEFAULT_MASK2FORMER
        elif self.detector_name == "mmdet":
            model = f"{self.config.mmdet_config}:{self.config.mmdet_checkpoint}"
        return {
            "detector": self.detector_name,
            "detector_model": model,
            "colors": "oracle" if self.colors_name == "oracle" else f"clip:{self.config.clip_model}",
            "options": dataclasses.asdict(self.options),
        }

    def score(
        self,
        metadatas: Sequence[Mapping[str, Any]],
        images: Sequence[Image.Image],
        scenes: Sequence[list[SceneObject] | None] | None = None,
    ) -> list[GenEvalResult]:
        """One verdict per image (one metadata per image); CLIP loads only if a clause has a colour."""
        from reprompt.geneval.scoring import score_images

        if self.needs_scenes and (scenes is None or any(s is None for s in scenes)):
            raise RepromptError(
                "the oracle detector needs a simulator backbone (sketch) that reports what it drew; "
                "use detector mask2former for real images"
            )
        classifier = self.color_classifier if any(needs_colors(m) for m in metadatas) else None
        return score_images(
            metadatas,
            images,
            list(scenes) if self.needs_scenes and scenes is not None else None,
            detector=self.detector,
            color_classifier=classifier,
            options=self.options,
        )


def build_scorer(config: ScorerConfig | None = None, *, has_scenes: bool = False) -> GenEvalScorer:
    """The scorer for ``config`` (default: official settings), resolving ``auto`` by ``has_scenes``."""
    config = config or ScorerConfig()
    detector, colors = config.resolve(has_scenes)
    return GenEvalScorer(config, detector, colors)


def build_detector(config: ScorerConfig, name: str) -> Detector:
    """The detector ``name`` with the config's model, device and batch size."""
    from reprompt.geneval.detectors import load_detector

    if name == "oracle":
        return load_detector("oracle")
    if name == "mask2former":
        kw: dict[str, Any] = {"device": config.device, "batch_size": config.batch_size}
        if config.detector_model:
            kw["model_id_or_path"] = config.detector_model
        return load_detector("mask2former", **kw)
    if name == "mmdet":
        if not (config.mmdet_config and config.mmdet_checkpoint):
            raise ConfigError(
                "--detector mmdet needs --mmdet-config and --mmdet-checkpoint (GenEval's files)"
            )
        return load_detector(
            "mmdet", config=config.mmdet_config, checkpoint=config.mmdet_checkpoint, device=config.device
        )
    raise ConfigError(f"unknown detector {name!r}.{did_you_mean(name, DETECTOR_CHOICES)}")
