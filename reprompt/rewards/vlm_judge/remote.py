"""The ``openai`` backend: any OpenAI-compatible chat endpoint with image input (hosted models, or a local vLLM
server with an open VLM), through the ``openai`` SDK's async client: bounded concurrency, a timeout, retries
with exponential backoff on 429/5xx/timeouts (honouring ``Retry-After``; the one policy of
:mod:`reprompt.utils.retry`), and a re-ask when a reply carries no score. The key comes from the env var
named by ``api_key_env`` and is never logged. :meth:`OpenAIJudge.ask` sends any chat requests through that
one client and retry policy and reads each reply with a given reader (GenEval 2's VQA judge reads answer
probabilities with it)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from reprompt.rewards.vlm_judge.options import VLMJudgeOptions, shrink
from reprompt.rewards.vlm_judge.parsing import Judgement, parse_score
from reprompt.utils.retry import RETRY_STATUS, backoff_delay, retry_after

if TYPE_CHECKING:
    from PIL import Image

Reader = Callable[[Any], tuple[Any, str | None]]
"""Reads one reply (its JSON body, or None when it is not JSON) into ``(value, None)``, or ``(None, why)`` when
the reply does not hold what was asked (then it is asked again, ``parse_retries`` times)."""


def run_coroutine(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run ``coro`` to completion from sync code, even when this thread already runs an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


class OpenAIJudge:
    """Async client of an OpenAI-compatible ``/chat/completions`` endpoint."""

    def __init__(self, options: VLMJudgeOptions) -> None:
        self.options = options

    def judge(self, prompts: list[str], images: list[Image.Image]) -> list[Judgement]:
        o = self.options
        requests = []
        for prompt, png in zip(prompts, self.encode(images), strict=True):
            content = [{"type": "text", "text": o.prompt.format(prompt=prompt)}, image_part(png)]
            requests.append(self.request(content, o.max_tokens))
        return self.ask(requests, read_score)

    def encode(self, images: list[Image.Image]) -> list[str]:
        """Base64 PNGs of the images, shrunk to ``max_image_side``."""
        from reprompt.utils.images import encode_png

        return [encode_png(shrink(im, self.options.max_image_side)) for im in images]

    def request(self, content: list[dict[str, Any]], max_tokens: int, **extra: Any) -> dict[str, Any]:
        """Keyword arguments of ``chat.completions.create`` for one user turn of ``content`` parts."""
        o = self.options
        return {
            "model": o.model,
            "messages": [{"role": "user", "content": content}],
            o.token_param: max_tokens,
            "temperature": o.temperature,
            **extra,
        }

    def ask(self, requests: list[dict[str, Any]], read: Reader) -> list[tuple[Any, str | None]]:
        """Send every request (at most ``concurrency`` in flight, each retried on 429/5xx/timeouts) and read
        each reply with ``read``: ``(value, None)``, or ``(None, why)`` once the retries are spent."""
        return run_coroutine(self._ask_all(requests, read))

    async def _ask_all(self, requests: list[dict[str, Any]], read: Reader) -> list[tuple[Any, str | None]]:
        import openai

        o = self.options
        key = os.environ.get(o.api_key_env, "") if o.api_key_env else ""
        sem = asyncio.Semaphore(o.concurrency)  # requests in flight, whatever the client's pool allows
        # the openai SDK speaks the protocol (URL, auth, errors); retries are ours (max_retries=0): one policy
        # for every client (reprompt.utils.retry), plus a re-ask when a reply does not hold what was asked
        async with openai.AsyncOpenAI(
            api_key=key or "unused", base_url=o.base_url, timeout=o.timeout, max_retries=0
        ) as client:
            return list(await asyncio.gather(*(self._one(client, sem, r, read) for r in requests)))

    async def _one(
        self, client: Any, sem: asyncio.Semaphore, request: dict[str, Any], read: Reader
    ) -> tuple[Any, str | None]:
        import openai

        o = self.options
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
                    value, why = read(_json(raw.http_response))
                    if why is None:
                        return value, None
                    last = why
                    if parse_left > 0:
                        parse_left -= 1
                        continue  # ask again at once: not a server problem
                    return None, last
            attempt += 1
            if attempt <= o.retries:
                wait = backoff_delay(attempt - 1, o.backoff, o.max_backoff, jitter=0.25, server_delay=delay)
                await asyncio.sleep(wait)
        return None, last


def image_part(png_b64: str) -> dict[str, Any]:
    """A chat content part holding a PNG as a data URL."""
    return {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{png_b64}"}}


def read_score(payload: Any) -> Judgement:
    """The judge's score from a reply (see :func:`parse_score`)."""
    text = reply_text(payload)
    score = parse_score(text)
    if score is not None:
        return score, None
    return None, "unparseable reply" if text is not None else "malformed response"


def _json(response: Any) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def reply_text(payload: Any) -> str | None:
    """The first choice's message text of a chat-completion reply (content parts joined), or None."""
    try:
        content = payload["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        return None
    if isinstance(content, list):  # some servers return content parts
        content = " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return content if isinstance(content, str) else None
