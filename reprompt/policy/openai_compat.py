"""A policy behind any OpenAI-compatible chat endpoint (a vLLM server, a hosted model).

The API key comes from an environment variable named by the user and is never logged.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from reprompt.errors import RemoteServiceError, RepromptError
from reprompt.format import PromptSpec
from reprompt.policy.base import GenerationOptions, Rewriter

logger = logging.getLogger(__name__)

RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


def post_with_retries(
    client: Any, url: str, payload: dict, headers: dict, retries: int, backoff: float
) -> dict:
    """POST JSON, retrying timeouts, connection errors, 429 and 5xx with exponential backoff."""
    import httpx

    last = ""
    for attempt in range(retries + 1):
        try:
            r = client.post(url, json=payload, headers=headers)
            if r.status_code in RETRY_STATUS:
                last = f"HTTP {r.status_code}"
            elif r.status_code >= 400:
                raise RemoteServiceError(f"{url} answered HTTP {r.status_code}: {r.text[:200]}")
            else:
                return r.json()
        except (httpx.TimeoutException, httpx.TransportError) as e:
            last = type(e).__name__
        except ValueError as e:
            last = f"invalid JSON ({e})"
        if attempt < retries:
            time.sleep(backoff * 2**attempt)
    raise RemoteServiceError(f"{url} failed after {retries + 1} tries: {last}")


class OpenAIRewriter(Rewriter):
    """Chat-completions rewriter. ``api_key_env`` names the variable holding the key (may be unset
    for local servers)."""

    def __init__(
        self,
        model: str,
        base_url: str = "http://127.0.0.1:8000/v1",
        api_key_env: str | None = "OPENAI_API_KEY",
        spec: PromptSpec | None = None,
        timeout: float = 60.0,
        retries: int = 3,
        backoff: float = 1.0,
    ) -> None:
        import httpx

        if not model:
            raise RepromptError("the OpenAI-compatible policy needs a model name (--api-model)")
        self.model, self.base_url = model, base_url.rstrip("/")
        self.spec = spec or PromptSpec()
        self.name = f"openai:{model}"
        self.retries, self.backoff = retries, backoff
        self._key = os.environ.get(api_key_env, "") if api_key_env else ""
        self._client = httpx.Client(timeout=timeout)

    def generate(
        self, messages: list[list[dict[str, str]]], options: GenerationOptions
    ) -> list[list[tuple[str, int]]]:
        headers = {"Authorization": f"Bearer {self._key}"} if self._key else {}
        results = []
        for conv in messages:
            payload: dict[str, Any] = {
                "model": self.model,
                "messages": conv,
                "max_tokens": options.max_new_tokens,
                "temperature": options.temperature,
                "top_p": options.top_p,
                "n": options.num_candidates,
            }
            if options.repetition_penalty != 1.0:
                payload["repetition_penalty"] = options.repetition_penalty  # vLLM extension
            if options.seed is not None:
                payload["seed"] = options.seed
            data = post_with_retries(
                self._client,
                f"{self.base_url}/chat/completions",
                payload,
                headers,
                self.retries,
                self.backoff,
            )
            try:
                choices = data["choices"]
                texts = [c["message"]["content"] or "" for c in choices]
            except (KeyError, TypeError, IndexError) as e:
                raise RemoteServiceError(f"unexpected reply from {self.base_url}: missing {e}") from e
            tokens = (data.get("usage") or {}).get("completion_tokens", 0) // max(len(texts), 1)
            results.append([(t, tokens) for t in texts[: options.num_candidates]])
        return results
