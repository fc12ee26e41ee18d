"""Client of the reward service: the same ``score(...)`` as an in-process :class:`RewardPipeline`.

It round-robins over several service URLs, retries timeouts, connection errors, 429 and 5xx with
exponential backoff (so a restarting server or a lost host is survived), and never retries a request
the server refused (4xx): that error is raised with the server's message. The bearer token is passed in
(``token=``) or read from an env var (``token_env``) at each request, and is never logged.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from collections.abc import Sequence
from typing import Any

from reprompt.errors import RemoteServiceError, RepromptError
from reprompt.rewards.base import ScoredBatch

logger = logging.getLogger(__name__)

RETRY_STATUS = {408, 425, 429, 500, 502, 503, 504}


class RewardClient:
    def __init__(
        self,
        urls: str | Sequence[str],
        *,
        token_env: str | None = "REPROMPT_REWARD_TOKEN",
        token: str | None = None,
        timeout: float = 600.0,
        retries: int = 6,
        backoff: float = 0.5,
        max_backoff: float = 15.0,
    ) -> None:
        urls = [urls] if isinstance(urls, str) else list(urls)
        urls = [u.strip().rstrip("/") for u in urls if u and u.strip()]
        if not urls:
            raise RepromptError("the reward client needs at least one service URL (http://host:port)")
        for u in urls:
            if not u.startswith(("http://", "https://")):
                raise RepromptError(f"reward service URL {u!r} must start with http:// or https://")
        self.urls = urls
        self.token_env = token_env
        self._token = token  # explicit token; else read from $token_env at each request
        self.timeout, self.retries, self.backoff, self.max_backoff = timeout, retries, backoff, max_backoff
        self._info: dict[str, Any] | None = None
        self._setup()

    def _setup(self) -> None:
        import httpx

        self._client = httpx.Client(timeout=self.timeout)
        self._cycle = itertools.cycle(range(len(self.urls)))
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        for key in ("_client", "_cycle", "_lock"):
            state.pop(key, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._setup()

    def close(self) -> None:
        self._client.close()

    # ------------------------------------------------------------------------------------- http
    def _headers(self) -> dict[str, str]:
        token = self._token or (os.environ.get(self.token_env, "") if self.token_env else "")
        return {"Authorization": f"Bearer {token}"} if token else {}

    def _request(self, method: str, path: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        import httpx

        last = "no attempt"
        for attempt in range(self.retries + 1):
            with self._lock:
                url = self.urls[next(self._cycle)] + path
            try:
                r = self._client.request(method, url, json=payload, headers=self._headers())
            except (httpx.TimeoutException, httpx.TransportError) as e:
                last = f"{url}: {type(e).__name__}"
            else:
                if r.status_code < 400:
                    try:
                        return r.json()
                    except ValueError:
                        last = f"{url}: invalid JSON reply"
                elif r.status_code in RETRY_STATUS:
                    last = f"{url}: HTTP {r.status_code}"
                else:
                    raise RemoteServiceError(
                        f"reward service {url} refused the request (HTTP {r.status_code}): {_message(r)}"
                    )
            if attempt < self.retries:
                delay = min(self.backoff * 2**attempt, self.max_backoff)
                logger.warning(
                    "reward service attempt %d failed (%s); retrying in %.1fs", attempt + 1, last, delay
                )
                time.sleep(delay)
        raise RemoteServiceError(f"reward service failed after {self.retries + 1} tries: {last}")

    # -------------------------------------------------------------------------------------- api
    def health(self) -> dict[str, Any]:
        return self._request("GET", "/health")

    def info(self) -> dict[str, Any]:
        if self._info is None:
            self._info = self._request("GET", "/info")
        return self._info

    @property
    def component_names(self) -> list[str]:
        return list(self.info()["components"])

    @property
    def weights(self) -> dict[str, float]:
        return {k: float(v) for k, v in self.info()["weights"].items()}

    def score(
        self,
        originals: Sequence[str],
        completions: Sequence[str],
        metadata: Sequence[Any] | None = None,
        seeds: Sequence[Sequence[int]] | None = None,
        round: int = 0,
        keep_images: bool = False,
    ) -> ScoredBatch:
        """Score remotely; the result equals in-process scoring with the same config and seeds."""
        payload: dict[str, Any] = {
            "originals": list(originals),
            "completions": list(completions),
            "round": int(round),
            "return_images": bool(keep_images),
        }
        if metadata is not None:
            payload["metadata"] = list(metadata)
        if seeds is not None:
            payload["seeds"] = [list(map(int, s)) for s in seeds]
        return ScoredBatch.from_dict(self._request("POST", "/score", payload))


def _message(response: Any) -> str:
    try:
        data = response.json()
        return str(data.get("error") or data.get("detail") or data)[:500]
    except ValueError:
        return response.text[:500]
