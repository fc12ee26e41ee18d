"""GenEval 2's VQA judges: the probability a VLM gives the expected answer of each atom (Soft-TIFA's soft score).

- :class:`LocalVQAJudge`: any transformers ``image-text-to-text`` model on this machine (the official judge is
  ``Qwen/Qwen3-VL-8B-Instruct``). As the official ``evaluation.py`` does: one user turn, the image then the
  question plus " Answer in one word."; the softmax of the model's next-token logits; the probabilities of the
  first token of each accepted answer spelling (:meth:`~reprompt.eval.geneval2.data.Atom.answers`) summed,
  repeats included. Batched with left padding (the official script asks one question at a time; the last
  position's logits are the same). Loading, the processor and its fallback are the VLM judge's
  (:class:`~reprompt.rewards.vlm_judge.local.LocalVLM`); first tokens are encoded without special tokens (the
  official ``encode(answer)[0]`` is the same for Qwen, whose tokenizer adds none).
- :class:`RemoteVQAJudge`: an OpenAI-compatible endpoint (vLLM serving Qwen3-VL, a hosted VLM) asked for one
  token with ``logprobs`` and ``top_logprobs``, through the VLM judge's client and retry policy
  (:class:`~reprompt.rewards.vlm_judge.remote.OpenAIJudge`). The score is the summed probability of the
  returned top first tokens that spell an accepted answer exactly (an endpoint gives token texts, not ids:
  each distinct token counts once, and tokens outside the top ``top_logprobs`` are not seen). A reply without
  logprobs is an error that names the fix; a judge that keeps failing stops the scoring (rerun to resume),
  never a silent 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from reprompt.errors import RemoteServiceError
from reprompt.eval.geneval2.data import Atom
from reprompt.rewards.vlm_judge.local import LocalVLM

if TYPE_CHECKING:
    from PIL import Image

    from reprompt.geneval.scene import SceneObject
    from reprompt.rewards.vlm_judge.options import VLMJudgeOptions

DEFAULT_JUDGE_MODEL = "Qwen/Qwen3-VL-8B-Instruct"
"""GenEval 2's judge (official: Qwen/Qwen3-VL-8B-Instruct)."""

AtomScores = list[list[tuple[float | None, str | None]]]


class _VQAJudge:
    """Scores every (image, atom) pair in one batch: the judges differ only in how they get the probability
    of an atom's expected answer (:meth:`answer_probabilities`)."""

    needs_scenes = False

    def answer_probabilities(
        self, images: Sequence[Image.Image], pairs: list[tuple[int, Atom]]
    ) -> list[float]:
        raise NotImplementedError

    def score(
        self,
        images: Sequence[Image.Image],
        atoms: Sequence[Sequence[Atom]],
        scenes: Sequence[Sequence[SceneObject]] | None = None,
    ) -> AtomScores:
        flat = iter(self.answer_probabilities(images, [(i, a) for i, per in enumerate(atoms) for a in per]))
        return [[(next(flat), None) for _ in per] for per in atoms]


class LocalVQAJudge(_VQAJudge):
    """A local VLM's probability of each atom's expected answer."""

    name = "local"

    def __init__(
        self,
        model: str | None = None,
        device: str = "cpu",
        dtype: str = "auto",
        batch_size: int = 8,
        max_image_side: int = 1024,
    ) -> None:
        self.vlm = LocalVLM(model or DEFAULT_JUDGE_MODEL, device, dtype, max_image_side)
        self.batch_size = batch_size
        self._first: dict[str, int] = {}

    def first_token(self, answer: str) -> int:
        """The id of the first token of ``answer`` (cached)."""
        if answer not in self._first:
            self._first[answer] = self.vlm.tokenizer.encode(answer, add_special_tokens=False)[0]
        return self._first[answer]

    def probabilities(self, images: Sequence[Image.Image], texts: Sequence[str]) -> Any:
        """The next-token distribution after each (image, question) user turn: a [n, vocab] float32 tensor."""
        import torch

        model = self.vlm.model
        chunks = []
        for start in range(0, len(texts), self.batch_size):
            chat = self.vlm.chat_texts(list(texts[start : start + self.batch_size]))
            inputs = self.vlm.inputs(chat, list(images[start : start + self.batch_size]))
            with torch.inference_mode():
                logits = model(**inputs, logits_to_keep=1).logits[:, -1, :]
            chunks.append(torch.softmax(logits.float(), dim=-1).cpu())
        return torch.cat(chunks) if chunks else torch.zeros(0)

    def answer_probabilities(
        self, images: Sequence[Image.Image], pairs: list[tuple[int, Atom]]
    ) -> list[float]:
        probs = self.probabilities([images[i] for i, _ in pairs], [a.vqa_text() for _, a in pairs])
        return [
            float(sum(probs[row, self.first_token(answer)].item() for answer in atom.answers()))
            for row, (_, atom) in enumerate(pairs)
        ]

    def info(self) -> dict[str, Any]:
        return {
            "judge": self.name,
            "model": self.vlm.model_id,
            "scoring": "softmax probability of the first token of each accepted answer, summed (official)",
            "max_image_side": self.vlm.max_image_side,
        }


class RemoteVQAJudge(_VQAJudge):
    """An OpenAI-compatible endpoint's probability of each atom's expected answer, from ``top_logprobs``."""

    name = "openai"

    def __init__(self, options: VLMJudgeOptions, top_logprobs: int = 20) -> None:
        from reprompt.rewards.vlm_judge.remote import OpenAIJudge

        self.client = OpenAIJudge(options)
        self.top_logprobs = top_logprobs

    def answer_probabilities(
        self, images: Sequence[Image.Image], pairs: list[tuple[int, Atom]]
    ) -> list[float]:
        from reprompt.rewards.vlm_judge.remote import image_part

        pngs = self.client.encode(list(images))
        requests = [
            self.client.request(
                [image_part(pngs[i]), {"type": "text", "text": atom.vqa_text()}],
                1,
                logprobs=True,
                top_logprobs=self.top_logprobs,
            )
            for i, atom in pairs
        ]
        replies = self.client.ask(requests, read_top_logprobs)
        flat = []
        for (_, atom), (top, why) in zip(pairs, replies, strict=True):
            if top is None:
                o = self.client.options
                raise RemoteServiceError(
                    f"the GenEval 2 judge at {o.base_url} (model {o.model}) failed on {atom.question!r}: {why}. "
                    "Rerun to resume the scoring"
                    + (
                        "; the endpoint must return logprobs (vLLM: --max-logprobs >= --top-logprobs)"
                        if why == NO_LOGPROBS
                        else ""
                    )
                )
            accepted = set(atom.answers())
            flat.append(min(1.0, sum(p for token, p in top.items() if token in accepted)))
        return flat

    def info(self) -> dict[str, Any]:
        o = self.client.options
        return {
            "judge": self.name,
            "model": o.model,
            "base_url": o.base_url,
            "scoring": f"probabilities of the top-{self.top_logprobs} first tokens spelling an accepted answer",
            "max_image_side": o.max_image_side,
        }


NO_LOGPROBS = "no logprobs in the reply"


def read_top_logprobs(payload: Any) -> tuple[dict[str, float] | None, str | None]:
    """``{token text: probability}`` of the first generated token's top candidates in a chat reply."""
    try:
        first = payload["choices"][0]["logprobs"]["content"][0]
        top = first.get("top_logprobs") or [first]
        return {str(t["token"]): math.exp(float(t["logprob"])) for t in top}, None
    except (KeyError, IndexError, TypeError, ValueError):
        return None, NO_LOGPROBS
