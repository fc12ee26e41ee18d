"""An Idea2Img-style iterative baseline: render -> judge -> revise, for up to K rounds, keep the best image.

Idea2Img (Yang et al., 2023) lets a multimodal LLM draft a prompt, render it, review the image and revise the
prompt several times. Here the policy drafts and revises, a :class:`Judge` reviews: the GenEval rules on
the sketch simulator's scene (``geneval-oracle``, exact and free, but it is also the evaluator, so the
baseline's accuracy is an upper bound), or any image reward component (``vlm_judge``, ``clipscore``, ...)
from :mod:`reprompt.rewards`. The cost it adds per image is what the paper's latency table compares.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from reprompt.errors import RepromptError, check_range
from reprompt.pipeline import image_seeds

if TYPE_CHECKING:
    from PIL import Image

REVISE_TEMPLATE = (
    '{original}\n\n(Revision: an image was made from the prompt "{previous}". A reviewer found these problems: '
    "{feedback}. Write a new prompt for the request above that fixes them.)"
)


@dataclass
class Verdict:
    ok: bool
    score: float
    feedback: str


class Judge(Protocol):
    name: str

    def __call__(
        self, original: str, image: Image.Image, scene: Any, metadata: dict[str, Any] | None
    ) -> Verdict: ...


class GenEvalOracleJudge:
    """GenEval's rules on the drawn scene: ok = the official verdict, feedback = the scorer's reasons."""

    name = "geneval-oracle"

    def __init__(self) -> None:
        from reprompt.geneval.scorer import ScorerConfig, build_scorer

        self.scorer = build_scorer(ScorerConfig(detector="oracle"), has_scenes=True)

    def __call__(
        self, original: str, image: Image.Image, scene: Any, metadata: dict[str, Any] | None
    ) -> Verdict:
        if metadata is None or scene is None:
            raise RepromptError(
                "the geneval-oracle judge needs GenEval metadata and the sketch backbone's scenes"
            )
        result = self.scorer.score([metadata], [image], [scene])[0]
        feedback = result.reason.replace("\n", "; ") or "none"
        return Verdict(result.correct, result.partial, feedback)


class ComponentJudge:
    """Any image reward component (e.g. ``vlm_judge``, which maps a 0-10 rating to [-1, 1]) as a judge."""

    def __init__(self, name: str, options: dict[str, Any] | None = None, pass_score: float = 0.6) -> None:
        from reprompt.rewards import build_component
        from reprompt.rewards.base import ImageComponent

        try:
            component = build_component(name, options)
        except ModuleNotFoundError as err:
            raise RepromptError(f"judge {name!r} is not available in this install ({err})") from err
        if not isinstance(component, ImageComponent):
            raise RepromptError(f"reward component {name!r} does not judge images")
        self.component = component
        self.name, self.pass_score = name, pass_score

    def __call__(
        self, original: str, image: Image.Image, scene: Any, metadata: dict[str, Any] | None
    ) -> Verdict:
        score = self.component.score_images([original], [image], [scene], [metadata])[0]
        score = float("-inf") if score is None else float(score)
        ok = score >= self.pass_score
        feedback = (
            "none"
            if ok
            else (
                f"the image scored {score:.2f} for how well it shows the request; name every object with its count, "
                "colour and position explicitly"
            )
        )
        return Verdict(ok, score, feedback)


def load_judge(name: str, options: dict[str, Any] | None = None) -> Judge:
    """``geneval-oracle`` (default for the sketch backbone) or the name of an image reward component."""
    if name == "geneval-oracle":
        return GenEvalOracleJudge()
    return ComponentJudge(name, options)


@dataclass
class IterativeResult:
    original: str
    prompts: list[str]
    verdicts: list[Verdict]
    best: int
    seconds: float
    rewrite_seconds: float
    render_seconds: float
    judge_seconds: float
    image: Any = field(default=None, repr=False)
    scene: Any = field(default=None, repr=False)

    @property
    def rounds(self) -> int:
        return len(self.prompts)


def revise(rewriter: Any, original: str, previous: str, feedback: str, options: Any) -> str:
    """One revision by the policy; keeps ``previous`` when the completion has no usable prompt."""
    from reprompt.format import parse_completion
    from reprompt.policy.base import IdentityRewriter

    if isinstance(rewriter, IdentityRewriter):
        return previous  # nothing to revise with: the next round only draws a new seed
    request = REVISE_TEMPLATE.format(original=original, previous=previous, feedback=feedback)
    text, _ = rewriter.generate([rewriter.messages_for(request)], options)[0][0]
    parsed = parse_completion(text, previous, rewriter.fmt)
    return parsed.prompt


def run_iterative(
    rewriter: Any,
    backbone: Any,
    judge: Judge,
    original: str,
    metadata: dict[str, Any] | None,
    *,
    rounds: int = 3,
    seed: int = 42,
    options: Any = None,
    stop_when_ok: bool = True,
) -> IterativeResult:
    """Round 1 renders the policy's rewrite; each later round renders a revision (seed + round) after the
    judge rejected the previous image. Returns the best-judged round."""
    from reprompt.policy import GenerationOptions

    check_range("rounds", rounds, 1)
    options = options or GenerationOptions(batch_size=1)
    t_start = time.perf_counter()
    t = time.perf_counter()
    prompt = rewriter.rewrite([original], options)[0].prompt
    rewrite_s = time.perf_counter() - t
    render_s = judge_s = 0.0
    prompts: list[str] = []
    verdicts: list[Verdict] = []
    images: list[Any] = []
    scenes: list[Any] = []
    for k, round_seed in enumerate(image_seeds(seed, rounds)):  # round k renders with seed + k
        if k:
            t = time.perf_counter()
            prompt = revise(rewriter, original, prompts[-1], verdicts[-1].feedback, options)
            rewrite_s += time.perf_counter() - t
        t = time.perf_counter()
        out = backbone.render([prompt], [round_seed])
        render_s += time.perf_counter() - t
        scene = out.scenes[0] if out.scenes is not None else None
        t = time.perf_counter()
        verdict = judge(original, out.images[0], scene, metadata)
        judge_s += time.perf_counter() - t
        prompts.append(prompt)
        verdicts.append(verdict)
        images.append(out.images[0])
        scenes.append(scene)
        if verdict.ok and stop_when_ok:
            break
    best = max(range(len(verdicts)), key=lambda i: (verdicts[i].ok, verdicts[i].score, -i))
    return IterativeResult(
        original,
        prompts,
        verdicts,
        best,
        time.perf_counter() - t_start,
        rewrite_s,
        render_s,
        judge_s,
        image=images[best],
        scene=scenes[best],
    )
