"""``vlm_judge``: a vision-language model rates how well the image matches the ORIGINAL prompt (0-10).

Counts, attributes and relations come first, realism second. The 0-10 score maps linearly to [-1, 1].
Backends (``options.vlm_judge.backend``):
- ``openai``: any OpenAI-compatible chat endpoint with image input (hosted models, or a local vLLM
  server with an open VLM), through the ``openai`` SDK's async client; bounded concurrency, a timeout,
  retries with exponential backoff on 429/5xx/timeouts (honouring ``Retry-After``; the one policy of
  :mod:`reprompt.utils.retry`), and score parsing that reads the marked final score
  and refuses ambiguous replies (:func:`parse_score`). The key comes from the env
  var named by ``api_key_env`` and is never logged.
- ``local``: a transformers VLM (default Qwen/Qwen2.5-VL-3B-Instruct). ``mode: constrained`` prefills
  "Final score: " and lets the model write only a number 0-10; ``mode: generate`` parses free text.

A judgement that still fails after its retries is MISSING (None), which GRPO ignores; failures are
counted (``vlm_judge/failures``) and logged, never turned into 0 (the reference code's defect).

Why one ~500-line module: both backends share the prompt, the score parser and the options; the
HTTP backend is half of it and is not used anywhere else.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import json
import logging
import os
import re
from collections import Counter
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from reprompt.errors import ConfigError, ModelNotFoundError, did_you_mean
from reprompt.rewards.base import ImageComponent, Score, log_metric
from reprompt.rewards.config import build_options
from reprompt.utils.endpoints import API_KEY_ENV
from reprompt.utils.retry import RETRY_STATUS, backoff_delay, retry_after

if TYPE_CHECKING:
    from PIL import Image

logger = logging.getLogger(__name__)

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
class VLMJudgeOptions:
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
    device: str = field(default="cpu", metadata={"help": "local backend device"})
    dtype: str = field(default="auto", metadata={"help": "local backend dtype"})
    mode: str = field(
        default="constrained", metadata={"help": "local: constrained (number only) or generate"}
    )
    batch_size: int = field(default=4, metadata={"help": "local: images per generate() call"})

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ConfigError(
                f"vlm_judge backend must be one of {BACKENDS}." + did_you_mean(self.backend, BACKENDS)
            )
        if self.mode not in MODES:
            raise ConfigError(f"vlm_judge mode must be one of {MODES}." + did_you_mean(self.mode, MODES))
        if self.backend == "openai" and not self.model:
            raise ConfigError("vlm_judge with backend openai needs options.vlm_judge.model (e.g. gpt-4o)")
        if "{prompt}" not in self.prompt:
            raise ConfigError("the vlm_judge prompt must contain {prompt}")
        if self.concurrency < 1 or self.batch_size < 1 or self.retries < 0 or self.parse_retries < 0:
            raise ConfigError("vlm_judge concurrency/batch_size must be >= 1 and retries >= 0")
        if self.token_param not in ("max_tokens", "max_completion_tokens"):
            raise ConfigError("vlm_judge token_param must be max_tokens or max_completion_tokens")


# ----------------------------------------------------------------------------------------- parsing

_NUM = r"(-?\d+(?:\.\d+)?)"  # signed, so "-3" is read (and refused) rather than taken as 3
_MD = r"[\s*_`\"']*"  # markdown and quotes around labels and numbers ("**Score:** `7`")
_OUT_OF_TEN = r"(?:\s*(?:/|out\s+of)\s*10(?!\d))?"
# Marked final scores: "Final score: 7", "Overall: 7/10", "Total score = 7", "<score>7</score>".
_FINAL_RE = re.compile(
    rf"\b(?:(?:final|overall)(?:\s+(?:score|rating|grade|verdict|answer))?|total\s+(?:score|rating))"
    rf"{_MD}(?:[:=]|\bis\b){_MD}{_NUM}",
    re.IGNORECASE,
)
_TAG_RE = re.compile(rf"<(score|rating|answer)>\s*{_NUM}{_OUT_OF_TEN}\s*</\1>", re.IGNORECASE)
# Labelled scores: "Score: 7", "**Rating:** 7/10", "score = 7.5".
_LABEL_RE = re.compile(rf"\b(?:score|rating){_MD}[:=]{_MD}{_NUM}", re.IGNORECASE)
# Loose mentions: "score 3 for counting", "I'd rate it 8 out of 10", "6/10".
_LOOSE_RE = re.compile(
    rf"\b(?:scores?|rating|rate[sd]?\s+(?:it|this|the\s+image)|give\s+it)(?:\s+(?:of|is|at|a|an))?"
    rf"{_MD}[:=]?{_MD}{_NUM}"
    rf"|{_NUM}\s*(?:/|out\s+of)\s*10(?!\d)",
    re.IGNORECASE,
)
_BARE_RE = re.compile(rf"^[\s*\"'`]*{_NUM}{_OUT_OF_TEN}[\s.*\"'`]*$", re.IGNORECASE)
_JSON_KEYS = ("final_score", "overall_score", "score", "rating", "overall")


def _json_scores(text: str) -> list[float]:
    """The score of a JSON object reply ('{"score": 7}', also inside a ```json fence)."""
    spans = [text[text.find("{") : text.rfind("}") + 1], *re.findall(r"\{[^{}]*\}", text)]
    for span in spans:
        try:
            obj = json.loads(span)
        except ValueError:
            continue
        if isinstance(obj, dict):
            lower = {str(k).lower(): v for k, v in obj.items()}
            raw = next((lower[k] for k in _JSON_KEYS if k in lower), None)
            if isinstance(raw, int | float) and not isinstance(raw, bool):
                return [float(raw)]
            bare = _BARE_RE.match(raw) if isinstance(raw, str) else None  # "7", "7/10"
            return [float(bare.group(1))] if bare else []
    return []


def _line_start(text: str, match: re.Match[str]) -> bool:
    """Whether a labelled score opens its line or clause ('Score: 7', '- Score: 7', '..., score: 7'),
    rather than qualifying a sub-score ('counting score: 3')."""
    before = text[text.rfind("\n", 0, match.start()) + 1 : match.start()].rstrip(" *_`\"'#>-")
    return not before or not before[-1].isalnum()


def parse_score(text: str | None) -> float | None:
    """A 0-10 score from a judge's reply, or None when there is none, it is out of range, or the reply is
    ambiguous.

    Reads, from most to least explicit, the first kind present: a marked final score ("Final score: 7",
    "Overall: 7/10", "<score>7</score>", JSON {"score": 7}); a labelled score opening a line or clause
    ("Score: 7", "**Rating:** 7/10"), or a reply that is only a number ("7", "7/10", "7 out of 10");
    loose mentions ("I'd rate it 8 out of 10", "score 3 for counting"). The scores of that kind must
    agree: "Score: 2 ... Score: 6" or two loose sub-scores give None rather than a guess, while a
    marked or labelled score outranks loose sub-scores ("Score: 7 (score 3 for counting)" reads 7).
    """
    if not text or not text.strip():
        return None
    text = text.strip()
    labelled = [m for m in _LABEL_RE.finditer(text) if _line_start(text, m)]
    bare = _BARE_RE.match(text)
    kinds = (
        [float(v) for v in _FINAL_RE.findall(text)]
        + [float(v) for _, v in _TAG_RE.findall(text)]
        + _json_scores(text),
        [float(m.group(1)) for m in labelled] + ([float(bare.group(1))] if bare else []),
        [float(a or b) for a, b in _LOOSE_RE.findall(text)],
    )
    for scores in kinds:
        if scores:
            if len(set(scores)) > 1:
                return None  # several different scores of the same standing: refuse to guess
            return scores[0] if 0.0 <= scores[0] <= 10.0 else None
    return None


def to_reward(score: float | None) -> float | None:
    """0..10 -> -1..1."""
    return None if score is None else score / 5.0 - 1.0


def _shrink(image: Image.Image, max_side: int) -> Image.Image:
    image = image.convert("RGB")
    if max(image.size) <= max_side:
        return image
    image = image.copy()
    image.thumbnail((max_side, max_side))
    return image


def run_coroutine(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run ``coro`` to completion from sync code, even when this thread already runs an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


Judgement = tuple[float | None, str | None]  # (0-10 score, failure reason)


# ------------------------------------------------------------------------------------------ openai


class OpenAIJudge:
    """Async client of an OpenAI-compatible ``/chat/completions`` endpoint."""

    def __init__(self, options: VLMJudgeOptions) -> None:
        self.options = options

    def judge(self, prompts: list[str], images: list[Image.Image]) -> list[Judgement]:
        from reprompt.utils.images import encode_png

        encoded = [encode_png(_shrink(im, self.options.max_image_side)) for im in images]
        return run_coroutine(self._judge_all(prompts, encoded))

    async def _judge_all(self, prompts: list[str], encoded: list[str]) -> list[Judgement]:
        import openai

        o = self.options
        key = os.environ.get(o.api_key_env, "") if o.api_key_env else ""
        sem = asyncio.Semaphore(o.concurrency)  # requests in flight, whatever the client's pool allows
        # the openai SDK speaks the protocol (URL, auth, errors); retries are ours (max_retries=0): one policy
        # for every client (reprompt.utils.retry), plus a re-ask when a reply carries no score
        async with openai.AsyncOpenAI(
            api_key=key or "unused", base_url=o.base_url, timeout=o.timeout, max_retries=0
        ) as client:
            return list(
                await asyncio.gather(
                    *(self._one(client, sem, p, e) for p, e in zip(prompts, encoded, strict=True))
                )
            )

    def _request(self, prompt: str, png_b64: str) -> dict[str, Any]:
        """Keyword arguments of ``chat.completions.create``: the judge prompt and the image as a data URL."""
        o = self.options
        content = [
            {"type": "text", "text": o.prompt.format(prompt=prompt)},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{png_b64}"}},
        ]
        return {
            "model": o.model,
            "messages": [{"role": "user", "content": content}],
            o.token_param: o.max_tokens,
            "temperature": o.temperature,
        }

    async def _one(self, client: Any, sem: asyncio.Semaphore, prompt: str, png_b64: str) -> Judgement:
        import openai

        o = self.options
        request = self._request(prompt, png_b64)
        last, parse_left, attempt = "no attempt", o.parse_retries, 0
        while attempt <= o.retries:
            delay: float | None = None
            async with sem:
                try:
                    # the raw reply, parsed by us: servers differ (content as a list of parts, odd shapes)
                    raw = await client.chat.completions.with_raw_response.create(**request)
                except openai.APITimeoutError:
                    last = "timeout"
                except openai.APIConnectionError as e:
                    last = f"connection error ({type(e.__cause__ or e).__name__})"
                except openai.APIStatusError as e:
                    if e.status_code not in RETRY_STATUS:
                        return None, f"HTTP {e.status_code}"  # a request the server will never accept
                    last = f"HTTP {e.status_code}"
                    delay = retry_after(e.response.headers)
                else:
                    text = _reply_text(raw.http_response)
                    score = parse_score(text)
                    if score is not None:
                        return score, None
                    last = "unparseable reply" if text is not None else "malformed response"
                    if parse_left > 0:
                        parse_left -= 1
                        continue  # ask again at once: not a server problem
                    return None, last
            attempt += 1
            if attempt <= o.retries:
                wait = backoff_delay(attempt - 1, o.backoff, o.max_backoff, jitter=0.25, server_delay=delay)
                await asyncio.sleep(wait)
        return None, last


def _reply_text(response: Any) -> str | None:
    try:
        content = response.json()["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        return None
    if isinstance(content, list):  # some servers return content parts
        content = " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return content if isinstance(content, str) else None


# ------------------------------------------------------------------------------------------- local


class LocalJudge:
    """A transformers image-text-to-text model (Qwen2.5-VL by default) judging on this machine."""

    PREFILL = "Final score: "  # the answer line JUDGE_PROMPT asks for

    def __init__(self, options: VLMJudgeOptions) -> None:
        self.options = options
        self.model_id = options.model or DEFAULT_LOCAL_MODEL
        self._model: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {"options": self.options, "model_id": self.model_id, "_model": None}

    def load(self) -> None:
        if self._model is not None:
            return
        from transformers import AutoModelForImageTextToText, AutoTokenizer

        from reprompt.utils.dtypes import resolve_dtype
        from reprompt.utils.hub import from_pretrained

        o = self.options
        model = from_pretrained(
            AutoModelForImageTextToText,
            self.model_id,
            kind="judge VLM",
            dtype=resolve_dtype(o.dtype, o.device),
            trust_remote_code=False,
        )
        self.tokenizer = from_pretrained(AutoTokenizer, self.model_id, kind="judge VLM tokenizer")
        self.tokenizer.padding_side = "left"
        self.processor = self._processor()
        self._model = model.to(o.device).eval()
        eos = model.generation_config.eos_token_id
        eos_ids = eos if isinstance(eos, list) else [eos if eos is not None else self.tokenizer.eos_token_id]
        self.eos_ids = [int(e) for e in eos_ids if e is not None]
        self.trie = self._score_trie() if o.mode == "constrained" else None

    def _processor(self) -> Any:
        """The model's processor; without torchvision (CPU installs) Qwen2-VL's cannot be built, so fall
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
                "Qwen2-VL-family model this module can prepare inputs for itself"
            )
        return None

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

    def _inputs(self, texts: list[str], images: list[Image.Image]) -> Any:
        if self.processor is not None:
            return self.processor(text=texts, images=images, padding=True, return_tensors="pt")
        vision = self.image_processor(images=images, return_tensors="pt")
        merge = getattr(self.image_processor, "merge_size", 2)
        expanded = []
        for text, grid in zip(texts, vision["image_grid_thw"], strict=True):
            n = int(grid.prod()) // (merge**2)
            expanded.append(text.replace("<|image_pad|>", "<|image_pad|>" * n))
        tokens = self.tokenizer(expanded, padding=True, return_tensors="pt")
        return {**tokens, **vision}

    def judge(self, prompts: list[str], images: list[Image.Image]) -> list[Judgement]:
        import torch

        self.load()
        o = self.options
        out: list[Judgement] = []
        template = self.processor if self.processor is not None else self.tokenizer
        for start in range(0, len(images), o.batch_size):
            chunk_p, chunk_i = prompts[start : start + o.batch_size], images[start : start + o.batch_size]
            texts = []
            for p in chunk_p:
                messages = [
                    {
                        "role": "user",
                        "content": [{"type": "image"}, {"type": "text", "text": o.prompt.format(prompt=p)}],
                    }
                ]
                text = template.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
                texts.append(text + (self.PREFILL if o.mode == "constrained" else ""))
            inputs = self._inputs(texts, [_shrink(im, o.max_image_side) for im in chunk_i])
            inputs = {k: v.to(o.device) if hasattr(v, "to") else v for k, v in inputs.items()}
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
                score = parse_score((self.PREFILL if o.mode == "constrained" else "") + text)
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


# --------------------------------------------------------------------------------------- component


class VLMJudge(ImageComponent):
    def __init__(self, options: VLMJudgeOptions | None = None, name: str = "vlm_judge") -> None:
        self.options = options or VLMJudgeOptions()
        self.name = self.__name__ = name
        self.backend = (
            OpenAIJudge(self.options) if self.options.backend == "openai" else LocalJudge(self.options)
        )
        self.failures: Counter[str] = Counter()
        """Failed judgements since creation, by reason."""

    def score_images(
        self, originals: list[str], images: list[Image.Image], scenes: list[Any], metadata: list[Any]
    ) -> list[Score]:
        results = self.backend.judge(originals, images)
        failed = Counter(reason or "unknown" for score, reason in results if score is None)
        self.failures.update(failed)
        n_failed = sum(failed.values())
        log_metric(f"{self.name}/failures", n_failed)
        log_metric(f"{self.name}/failure_rate", n_failed / max(len(results), 1))
        if n_failed:
            logger.warning(
                "%s: %d of %d judgements failed and are missing (not 0): %s",
                self.name,
                n_failed,
                len(results),
                dict(failed),
            )
        scores = [s for s, _ in results if s is not None]
        if scores:
            log_metric(f"{self.name}/raw_score", sum(scores) / len(scores))
        return [to_reward(s) for s, _ in results]


def build_vlm_judge(options: dict[str, Any] | None, **_: Any) -> VLMJudge:
    return VLMJudge(build_options(VLMJudgeOptions, options, "vlm_judge"))
