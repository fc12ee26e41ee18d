"""A policy behind any OpenAI-compatible chat endpoint (a vLLM server, a hosted model), via the ``openai`` SDK.

The SDK speaks the protocol; retries are ours (:mod:`reprompt.utils.retry`: timeouts, connection errors,
408/409/425/429 and 5xx, with exponential backoff from ``backoff`` seconds or the server's ``Retry-After``)
so their number and pacing are explicit. The API key comes from an environment variable named by the user, is sent only to ``base_url`` and never appears in a
message: upstream error bodies are cut short and any copy of the key in them is masked, since some
servers echo request headers back. A reply must hold a choice for every candidate asked for.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from reprompt.errors import RemoteServiceError, RepromptError
from reprompt.format import PromptSpec
from reprompt.policy.base import GenerationOptions, Rewriter
from reprompt.utils.endpoints import API_KEY_ENV, LOCAL_API_BASE
from reprompt.utils.retry import RETRY_STATUS, backoff_delay, retry_after

logger = logging.getLogger(__name__)


def is_url(name: str) -> bool:
    """Whether a policy name is an OpenAI-compatible endpoint (``http(s)://…/v1``) rather than a model."""
    return name.strip().lower().startswith(("http://", "https://"))


def served_models(base_url: str, api_key_env: str | None = API_KEY_ENV, timeout: float = 10.0) -> list[str]:
    """Model ids listed by ``GET {base_url}/models`` (the OpenAI convention, also vLLM's and reprompt's)."""
    import httpx

    url = base_url.rstrip("/") + "/models"
    key = os.environ.get(api_key_env, "") if api_key_env else ""
    try:
        r = httpx.get(url, headers={"Authorization": f"Bearer {key}"} if key else {}, timeout=timeout)
        r.raise_for_status()
        return [m["id"] for m in r.json()["data"]]
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as e:
        raise RemoteServiceError(
            f"could not list models at {url} ({type(e).__name__}); give the base URL ending in /v1, "
            "or name the model explicitly (api_model)"
        ) from e


def redact(text: str, secret: str) -> str:
    """``text`` with every copy of ``secret`` masked (no-op for an empty secret)."""
    return text.replace(secret, "***") if secret else text


class OpenAIRewriter(Rewriter):
    """Chat-completions rewriter. ``api_key_env`` names the variable holding the key (may be unset
    for local servers: then no Authorization header is sent)."""

    def __init__(
        self,
        model: str,
        base_url: str = LOCAL_API_BASE,
        api_key_env: str | None = API_KEY_ENV,
        spec: PromptSpec | None = None,
        timeout: float = 60.0,
        retries: int = 3,
        backoff: float = 1.0,
    ) -> None:
        import openai

        if not model:
            raise RepromptError("the OpenAI-compatible policy needs a model name (--api-model)")
        if not base_url.startswith(("http://", "https://")):
            raise RepromptError(f"--api-base {base_url!r} must start with http:// or https://")
        self.model, self.base_url = model, base_url.rstrip("/")
        self.spec = spec or PromptSpec()
        self.name = f"openai:{model}"
        self.retries, self.backoff, self.timeout = retries, backoff, timeout
        self._key = os.environ.get(api_key_env, "") if api_key_env else ""
        # The key is always passed explicitly: the SDK must never fall back to $OPENAI_API_KEY for a
        # server the user did not give that key to.
        self._client = openai.OpenAI(
            api_key=self._key or "unused", base_url=self.base_url, timeout=timeout, max_retries=0
        )
        self._headers: dict[str, Any] = {} if self._key else {"Authorization": openai.omit}

    def generate(
        self, messages: list[list[dict[str, str]]], options: GenerationOptions
    ) -> list[list[tuple[str, int]]]:
        results = []
        for conv in messages:
            reply = self._create(conv, options)
            choices = getattr(reply, "choices", None)
            if not isinstance(choices, list):
                raise RemoteServiceError(f"{self.base_url} sent a reply that is not a chat completion")
            choices = sorted(choices, key=lambda c: getattr(c, "index", 0) or 0)
            if len(choices) < options.num_candidates:
                raise RemoteServiceError(
                    f"{self.base_url} returned {len(choices)} choices for {options.num_candidates} asked for"
                )
            texts = [str(getattr(getattr(c, "message", None), "content", None) or "") for c in choices]
            usage = getattr(reply, "usage", None)
            tokens = (getattr(usage, "completion_tokens", None) or 0) // max(len(texts), 1)
            results.append([(t, tokens) for t in texts[: options.num_candidates]])
        return results

    def _create(self, conv: list[dict[str, str]], options: GenerationOptions) -> Any:
        """One chat completion, retried on transient failures; errors name the cause, never the key."""
        import openai

        kwargs: dict[str, Any] = {
            "model": self.model,
            "messages": conv,
            "max_tokens": options.max_new_tokens,
            "temperature": options.temperature,
            "top_p": options.top_p,
            "n": options.num_candidates,
            "extra_headers": self._headers,
        }
        if options.repetition_penalty != 1.0:
            kwargs["extra_body"] = {"repetition_penalty": options.repetition_penalty}  # vLLM extension
        if self.stop:  # a plain-text rewriter's recipe (RePrompt completions are parsed whole)
            kwargs["stop"] = list(self.stop)
        if self.chat_template_kwargs:  # vLLM extension (e.g. enable_thinking: false)
            kwargs.setdefault("extra_body", {})["chat_template_kwargs"] = dict(self.chat_template_kwargs)
        if options.seed is not None:
            kwargs["seed"] = options.seed
        url = f"{self.base_url}/chat/completions"
        last, server_delay = "", None
        for attempt in range(self.retries + 1):
            try:
                return self._client.chat.completions.create(**kwargs)
            except openai.APITimeoutError as e:
                cause = type(e.__cause__).__name__ if e.__cause__ else "Timeout"
                last = f"{cause}: no reply within {self.timeout:g} s"
            except openai.APIConnectionError as e:
                last = f"{type(e.__cause__ or e).__name__}: {redact(str(e.__cause__ or e), self._key)[:200]}"
            except openai.APIStatusError as e:
                body = redact(e.response.text, self._key)[:200]
                if e.status_code not in RETRY_STATUS:
                    raise RemoteServiceError(f"{url} answered HTTP {e.status_code}: {body}") from None
                last = f"HTTP {e.status_code}: {body}"
                server_delay = retry_after(e.response.headers)
            except openai.APIError as e:  # e.g. a reply that is not a chat completion
                raise RemoteServiceError(
                    f"unexpected reply from {url}: {redact(str(e), self._key)[:200]}"
                ) from None
            if attempt < self.retries:
                logger.warning("%s failed (%s); retrying", url, last)
                time.sleep(backoff_delay(attempt, self.backoff, server_delay=server_delay))
        raise RemoteServiceError(f"{url} failed after {self.retries + 1} tries: {last}")
