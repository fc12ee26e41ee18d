"""Client of the reward service: the same ``score(...)`` as an in-process :class:`CompositeReward`.

Several service URLs are used in turn. A URL that fails (connection refused, timeout, 5xx) is marked
dead and skipped until ``probe_after`` seconds have passed, then tried again, so a dead host costs one
failed connection, not a backoff on every request; the client waits (exponential backoff) only once
every URL has failed in a row. Requests the server refused (4xx other than 408/425/429) and internal
errors it marks ``"retryable": false`` are not retried: they would fail again. A read timeout (a hung
service) is not retried on the same URL. Every error carries the server's own message.

The reply is checked (every list holds one entry per completion, scores are numbers or null) before
it reaches training. The bearer token is passed in (``token=``) or read from an env var
(``token_env``) at each request, and is never logged.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Sequence
from typing import Any

from reprompt.errors import RemoteServiceError, RepromptError
from reprompt.rewards.base import ScoredBatch
from reprompt.utils.endpoints import REWARD_TOKEN_ENV
from reprompt.utils.retry import RETRY_STATUS, backoff_delay, retry_after

logger = logging.getLogger(__name__)


def _sleep(seconds: float) -> None:  # module-level, so tests can record backoffs instead of waiting
    time.sleep(seconds)


def _clock() -> float:
    return time.monotonic()


class RewardClient:
    """``RewardClient(urls, token_env=...)``; ``timeout``: seconds to wait for one reply (a batch renders
    and scores in that time), ``connect_timeout``: seconds to reach a host."""

    def __init__(
        self,
        urls: str | Sequence[str],
        *,
        token_env: str | None = REWARD_TOKEN_ENV,
        token: str | None = None,
        timeout: float = 600.0,
        connect_timeout: float = 10.0,
        retries: int = 6,
        backoff: float = 0.5,
        max_backoff: float = 15.0,
        probe_after: float = 30.0,
    ) -> None:
        urls = [urls] if isinstance(urls, str) else list(urls)
        urls = [u.strip().rstrip("/") for u in urls if u and u.strip()]
        if not urls:
            raise RepromptError("the reward client needs at least one service URL (http://host:port)")
        for u in urls:
            if not u.startswith(("http://", "https://")):
                raise RepromptError(f"reward service URL {u!r} must start with http:// or https://")
        if timeout <= 0 or connect_timeout <= 0 or retries < 0:
            raise RepromptError("timeouts must be > 0 and retries >= 0")
        self.urls = urls
        self.token_env = token_env
        self._token = token  # explicit token; else read from $token_env at each request
        self.timeout, self.connect_timeout = timeout, min(connect_timeout, timeout)
        self.retries, self.backoff, self.max_backoff = retries, backoff, max_backoff
        self.probe_after = probe_after
        self._info: dict[str, Any] | None = None
        self._setup()

    def _setup(self) -> None:
        import httpx

        self._client = httpx.Client(timeout=httpx.Timeout(self.timeout, connect=self.connect_timeout))
        self._lock = threading.Lock()
        self._next = 0  # round-robin start
        self._dead_until: dict[int, float] = {}  # URL index -> monotonic time it may be probed again

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        for key in ("_client", "_lock", "_next", "_dead_until"):
            state.pop(key, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._setup()

    def close(self) -> None:
        self._client.close()

    # ------------------------------------------------------------------------------------ peers
    def _order(self) -> list[int]:
        """URL indices to try for one request: live ones in round-robin order, then dead ones (the one
        due for a probe first)."""
        with self._lock:
            n, start = len(self.urls), self._next
            self._next = (start + 1) % n
            now = _clock()
            ring = [(start + i) % n for i in range(n)]
            live = [i for i in ring if self._dead_until.get(i, 0.0) <= now]
            dead = sorted((i for i in ring if i not in live), key=lambda i: self._dead_until[i])
            return live + dead

    def _mark(self, index: int, ok: bool) -> None:
        with self._lock:
            if ok:
                self._dead_until.pop(index, None)
            else:
                self._dead_until[index] = _clock() + self.probe_after

    # ------------------------------------------------------------------------------------- http
    def _headers(self) -> dict[str, str]:
        token = self._token or (os.environ.get(self.token_env, "") if self.token_env else "")
        return {"Authorization": f"Bearer {token}"} if token else {}

    def _request(self, method: str, path: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        import httpx

        order = self._order()
        hung: set[int] = set()  # URLs that timed out on this request: not asked again
        last, sleeps, tried = "no attempt", 0, 0
        server_delay: float | None = None  # the last Retry-After a service sent
        for attempt in range(self.retries + 1):
            candidates = [i for i in order if i not in hung]
            if not candidates:
                break
            index = candidates[attempt % len(candidates)]
            if tried and attempt % len(candidates) == 0:  # every URL failed in a row: back off
                delay = backoff_delay(sleeps, self.backoff, self.max_backoff, server_delay=server_delay)
                sleeps += 1
                logger.warning(
                    "reward service attempt %d failed (%s); retrying in %.1fs", attempt, last, delay
                )
                _sleep(delay)
            url = self.urls[index] + path
            tried += 1
            try:
                r = self._client.request(method, url, json=payload, headers=self._headers())
            except httpx.ConnectTimeout:
                last = f"{url}: could not connect within {self.connect_timeout:g} s"
                self._mark(index, ok=False)
                continue
            except httpx.TimeoutException:
                last = (
                    f"{url}: no reply within {self.timeout:g} s (a hung service? if batches legitimately "
                    "take longer, raise the client's timeout)"
                )
                hung.add(index)
                self._mark(index, ok=False)
                continue
            except httpx.TransportError as e:
                last = f"{url}: {type(e).__name__}: {e}"
                self._mark(index, ok=False)
                continue
            outcome = self._outcome(url, r)
            if isinstance(outcome, dict):
                self._mark(index, ok=True)
                return outcome
            last = outcome
            server_delay = retry_after(r.headers)
            if r.status_code >= 500 and r.status_code != 503:
                self._mark(index, ok=False)
        raise RemoteServiceError(f"reward service failed after {tried} tries: {last}")

    @staticmethod
    def _outcome(url: str, r: Any) -> dict[str, Any] | str:
        """The reply's JSON, or a retryable failure message; raises for failures a retry cannot fix."""
        if r.status_code < 400:
            try:
                data = r.json()
            except ValueError:
                return f"{url}: invalid JSON reply (HTTP {r.status_code})"
            if not isinstance(data, dict):
                raise RemoteServiceError(f"reward service {url} sent a reply that is not a JSON object")
            return data
        message, retryable = _message(r)
        if r.status_code in RETRY_STATUS and retryable:
            return f"{url}: HTTP {r.status_code}: {message}"
        verb = "refused the request" if r.status_code < 500 else "failed"
        raise RemoteServiceError(f"reward service {url} {verb} (HTTP {r.status_code}): {message}")

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
        if len(originals) != len(completions):
            raise RepromptError(f"got {len(originals)} originals but {len(completions)} completions")
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
        data = self._request("POST", "/score", payload)
        check_scored_reply(data, len(completions), keep_images)
        return ScoredBatch.from_dict(data)


def check_scored_reply(data: dict[str, Any], n: int, images: bool = False) -> None:
    """Refuse a reply that does not hold one entry per completion everywhere (a short batch or a
    string where a score belongs must not reach training)."""

    def bad(what: str) -> RemoteServiceError:
        return RemoteServiceError(f"the reward service sent a malformed reply: {what} (for {n} completions)")

    def scores(name: str, values: Any) -> None:
        if not isinstance(values, list) or len(values) != n:
            raise bad(
                f"{name} has {len(values) if isinstance(values, list) else type(values).__name__} entries"
            )
        for v in values:
            ok = v is None or (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v))
            if not ok:
                raise bad(f"{name} holds {v!r}, not a number or null")

    for key in ("components", "normalized", "weights", "total", "raw_total", "prompts", "seeds", "format_ok"):
        if key not in data:
            raise bad(f"{key!r} is missing")
    scores("total", data["total"])
    scores("raw_total", data["raw_total"])
    for key in ("components", "normalized", "baseline", "improvement"):
        table = data.get(key)
        if table is None and key in ("baseline", "improvement"):
            continue
        if not isinstance(table, dict):
            raise bad(f"{key} is not an object")
        for name, values in table.items():
            scores(f"{key}.{name}", values)
    for key, kind in (("prompts", str), ("seeds", list), ("format_ok", bool), ("fallback", bool)):
        values = data.get(key)
        if not isinstance(values, list) or len(values) != n or not all(isinstance(v, kind) for v in values):
            raise bad(f"{key} must hold {n} values of type {kind.__name__}")
    assigned = data.get("assigned")
    if assigned is not None and (
        not isinstance(assigned, list) or len(assigned) != n or not all(isinstance(v, bool) for v in assigned)
    ):
        raise bad(f"assigned must hold {n} values of type bool")
    if images and (not isinstance(data.get("images"), list) or len(data["images"]) != n):
        raise bad("images were asked for but the reply does not hold one row per completion")


def _message(response: Any) -> tuple[str, bool]:
    """(the server's error message, whether it may be retried)."""
    try:
        data = response.json()
    except ValueError:
        return response.text[:500] or f"HTTP {response.status_code}", True
    if not isinstance(data, dict):
        return str(data)[:500], True
    error = data.get("error") or data.get("detail") or data
    if isinstance(error, dict):
        error = error.get("message", error)
    return str(error)[:500], data.get("retryable", True) is not False
