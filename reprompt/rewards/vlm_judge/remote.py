"""The ``openai`` backend: any OpenAI-compatible chat endpoint with image input (hosted models, or a local vLLM
server with an open VLM), through the ``openai`` SDK's async client: bounded concurrency, a timeout, retries
with exponential backoff on 429/5xx/timeouts (honouring ``Retry-After``; the one policy of
:mod:`reprompt.utils.retry`), and a re-ask when a reply carries no score. The key comes from the env var
named by ``api_key_env`` and is never logged."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from reprompt.rewards.vlm_judge.options import VLMJudgeOptions, shrink
from reprompt.rewards.vlm_judge.parsing import Judgement, parse_score
from reprompt.utils.retry import RETRY_STATUS, backoff_delay, retry_after

if TYPE_CHECKING:
    from PIL import Image


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
        from reprompt.utils.images import encode_png

        encoded = [encode_png(shrink(im, self.options.max_image_side)) for im in images]
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
