"""Local transformers image-text-to-text models: :class:`LocalVLM` loads one (safetensors only, ``trust_remote_code``
off) and prepares batched (image, text) user turns; the ``local`` backend of the VLM judge, :class:`LocalJudge`,
judges with it (default Qwen/Qwen2.5-VL-3B-Instruct): ``mode: constrained`` prefills "Final score: " and lets
the model write only a number 0-10; ``mode: generate`` parses free text. GenEval 2's VQA judge
(:mod:`reprompt.eval.geneval2.vqa`) reads answer probabilities from the same :class:`LocalVLM`."""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING, Any

from reprompt.errors import ConfigError, ModelNotFoundError
from reprompt.rewards.vlm_judge.options import DEFAULT_LOCAL_MODEL, VLMJudgeOptions, shrink
from reprompt.rewards.vlm_judge.parsing import Judgement, parse_score

if TYPE_CHECKING:
    from PIL import Image

logger = logging.getLogger(__name__)


class LocalVLM:
    """A transformers ``image-text-to-text`` model (any ``AutoModelForImageTextToText``: Qwen2.5-VL, Qwen3-VL, ...)
    on this machine, loaded on first use, with its processor: one home for loading it and for turning (image,
    text) user turns into model inputs, shared by the VLM judge and GenEval 2's VQA judge."""

    def __init__(
        self, model_id: str, device: str = "cpu", dtype: str = "auto", max_image_side: int = 1024
    ) -> None:
        self.model_id, self.device, self.dtype, self.max_image_side = model_id, device, dtype, max_image_side
        self._model: Any = None

    _SETTINGS = ("model_id", "device", "dtype", "max_image_side", "options")
    """What a pickled copy keeps (it loads the model again on first use)."""

    def __getstate__(self) -> dict[str, Any]:
        return {**{k: v for k, v in self.__dict__.items() if k in self._SETTINGS}, "_model": None}

    @property
    def model(self) -> Any:
        self.load()
        return self._model

    def load(self) -> None:
        if self._model is not None:
            return
        from transformers import AutoModelForImageTextToText, AutoTokenizer

        from reprompt.utils.dtypes import resolve_dtype
        from reprompt.utils.hub import from_pretrained

        model = from_pretrained(
            AutoModelForImageTextToText,
            self.model_id,
            kind="judge VLM",
            dtype=resolve_dtype(self.dtype, self.device),
            trust_remote_code=False,
        )
        self.tokenizer = from_pretrained(AutoTokenizer, self.model_id, kind="judge VLM tokenizer")
        self.tokenizer.padding_side = "left"
        self.processor = self._processor()
        self._model = model.to(self.device).eval()
        self.loaded()

    def loaded(self) -> None:
        """Called once the model is loaded (subclasses prepare what depends on its tokenizer)."""

    def _processor(self) -> Any:
        """The model's processor; without torchvision (CPU installs) Qwen-VL's cannot be built, so fall
        back to its image processor plus our own image-token expansion (what the processor does)."""
        from transformers import AutoImageProcessor, AutoProcessor

        try:
            processor = AutoProcessor.from_pretrained(self.model_id)
            processor.tokenizer.padding_side = "left"  # batched generation continues every row at its end
            return processor
        except (ImportError, AttributeError, ValueError, OSError) as e:
            logger.debug("AutoProcessor unavailable (%s); using the image processor directly", e)
        self.image_processor = AutoImageProcessor.from_pretrained(self.model_id)
        if "<|image_pad|>" not in self.tokenizer.get_vocab():
            raise ModelNotFoundError(
                f"cannot build a processor for {self.model_id!r} here (install torchvision), and it is not a "
                "Qwen-VL-family model this module can prepare inputs for itself"
            )
        return None

    def chat_texts(self, texts: list[str], prefill: str = "") -> list[str]:
        """Each text as one user turn, the image first (as GenEval 2's evaluation asks), then the assistant's
        turn opened (and ``prefill`` written into it)."""
        self.load()
        template = self.processor if self.processor is not None else self.tokenizer
        out = []
        for text in texts:
            messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": text}]}]
            out.append(
                template.apply_chat_template(messages, add_generation_prompt=True, tokenize=False) + prefill
            )
        return out

    def inputs(self, texts: list[str], images: list[Image.Image]) -> dict[str, Any]:
        """Model inputs for chat ``texts`` (from :meth:`chat_texts`) and their images, padded on the left, on
        the model's device."""
        self.load()
        images = [shrink(im, self.max_image_side) for im in images]
        if self.processor is not None:
            batch = dict(self.processor(text=texts, images=images, padding=True, return_tensors="pt"))
        else:
            vision = self.image_processor(images=images, return_tensors="pt")
            merge = getattr(self.image_processor, "merge_size", 2)
            expanded = []
            for text, grid in zip(texts, vision["image_grid_thw"], strict=True):
                n = int(grid.prod()) // (merge**2)
                expanded.append(text.replace("<|image_pad|>", "<|image_pad|>" * n))
            tokens = self.tokenizer(expanded, padding=True, return_tensors="pt")
            # which tokens are image tokens (1): the multimodal RoPE of Qwen-VL models needs it, as the
            # processor returns it
            image_pad = self.tokenizer.convert_tokens_to_ids("<|image_pad|>")
            batch = {**tokens, **vision, "mm_token_type_ids": (tokens["input_ids"] == image_pad).long()}
        return {k: v.to(self.device) if hasattr(v, "to") else v for k, v in batch.items()}


class LocalJudge(LocalVLM):
    """A transformers image-text-to-text model (Qwen2.5-VL by default) judging on this machine."""

    PREFILL = "Final score: "  # the answer line JUDGE_PROMPT asks for

    def __init__(self, options: VLMJudgeOptions) -> None:
        super().__init__(
            options.model or DEFAULT_LOCAL_MODEL, options.device, options.dtype, options.max_image_side
        )
        self.options = options

    def loaded(self) -> None:
        eos = self._model.generation_config.eos_token_id
        eos_ids = eos if isinstance(eos, list) else [eos if eos is not None else self.tokenizer.eos_token_id]
        self.eos_ids = [int(e) for e in eos_ids if e is not None]
        self.trie = self._score_trie() if self.options.mode == "constrained" else None

    def _score_trie(self) -> dict[int | None, Any]:
        """Token paths spelling 0..10 after the prefill; a node holding None marks a complete number."""
        tok = self.tokenizer
        base = tok.encode(self.PREFILL, add_special_tokens=False)
        trie: dict[int | None, Any] = {}
        for s in range(11):
            ids = tok.encode(self.PREFILL + str(s), add_special_tokens=False)
            if ids[: len(base)] != base or len(ids) == len(base):
                raise ConfigError(
                    f"the tokenizer of {self.model_id!r} merges the prefill with the number; "
                    "use options.vlm_judge.mode: generate"
                )
            node = trie
            for t in ids[len(base) :]:
                node = node.setdefault(t, {})
            node[None] = None
        return trie

    def judge(self, prompts: list[str], images: list[Image.Image]) -> list[Judgement]:
        import torch

        self.load()
        o = self.options
        out: list[Judgement] = []
        prefill = self.PREFILL if o.mode == "constrained" else ""
        for start in range(0, len(images), o.batch_size):
            chunk_p, chunk_i = prompts[start : start + o.batch_size], images[start : start + o.batch_size]
            texts = self.chat_texts([o.prompt.format(prompt=p) for p in chunk_p], prefill)
            inputs = self.inputs(texts, chunk_i)
            prompt_len = inputs["input_ids"].shape[1]
            kw: dict[str, Any] = {
                "do_sample": False,
                "repetition_penalty": 1.0,
                "pad_token_id": self.tokenizer.pad_token_id,
            }
            if o.mode == "constrained":
                kw["max_new_tokens"] = self._trie_depth(self.trie) + 1
                kw["prefix_allowed_tokens_fn"] = functools.partial(self._allowed_after, prompt_len)
            else:
                kw["max_new_tokens"] = o.max_tokens
            with torch.inference_mode():
                generated = self._model.generate(**inputs, **kw)
            for row in generated[:, prompt_len:]:
                text = self.tokenizer.decode(row, skip_special_tokens=True)
                score = parse_score(prefill + text)
                out.append((score, None) if score is not None else (None, "unparseable reply"))
        return out

    def _allowed_after(self, prompt_len: int, _batch_id: int, ids: Any) -> list[int]:
        return self._allowed(ids[prompt_len:].tolist())

    def _allowed(self, generated: list[int]) -> list[int]:
        node: Any = self.trie
        for t in generated:
            if t in self.eos_ids or not isinstance(node, dict) or t not in node:
                return self.eos_ids[:1]
            node = node[t]
        allowed = [t for t in node if t is not None]
        if None in node:
            allowed += self.eos_ids
        return allowed or self.eos_ids[:1]

    @staticmethod
    def _trie_depth(node: dict[int | None, Any] | None) -> int:
        if not isinstance(node, dict):
            return 0
        return max(
            (1 + LocalJudge._trie_depth(child) for k, child in node.items() if k is not None), default=0
        )
