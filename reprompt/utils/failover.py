"""One HTTP client over several equivalent servers: each request goes to the next live server in turn, a
server that fails is skipped for a while, and a request is retried on another server (the reward-service
client and the render-farm backbone use it; both send requests any server can answer the same way).

A URL that fails (connection refused, timeout, 5xx) is marked dead and skipped until ``probe_after``
seconds have passed, then tried again, so a dead host costs one failed connection, not a backoff on every
request; the client waits (exponential backoff, :mod:`reprompt.utils.retry`) only once every URL has
failed in a row. Requests the server refused (4xx other than 408/425/429) and internal errors it marks
``"retryable": false`` are not retried: they would fail again. A read timeout (a hung server) is not
retried on the same URL. Every error carries the server's own message. The bearer token is passed in
(``token=``) or read from an env var (``token_env``) at each request, and is never logged.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Sequence
from typing import Any

from reprompt.errors import RemoteServiceError, RepromptError, check_range
from reprompt.utils.retry import RETRY_STATUS, backoff_delay, retry_after

logger = logging.getLogger(__name__)


def _sleep(seconds: float) -> None:  # module-level, so tests can record backoffs instead of waiting
    time.sleep(seconds)


def _clock() -> float:
    return time.monotonic()


class FailoverClient:
    """``FailoverClient(urls, service="render server", token_env=...)``; ``service`` names the servers in
    messages; ``timeout``: seconds to wait for one reply, ``connect_timeout``: seconds to reach a host."""

    service = "server"

    def __init__(
        self,
        urls: str | Sequence[str],
        *,
        service: str | None = None,
        token_env: str | None = None,
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
            raise RepromptError(
                f"the {service or self.service} client needs at least one URL (http://host:port)"
            )
        for u in urls:
            if not u.startswith(("http://", "https://")):
                raise RepromptError(
                    f"{service or self.service} URL {u!r} must start with http:// or https://"
                )
        check_range("timeout", timeout, 0, low_open=True)
        check_range("connect_timeout", connect_timeout, 0, low_open=True)
        check_range("retries", retries, 0)
        self.urls = urls
        if service:
            self.service = service
        self.token_env = token_env
        self._token = token  # explicit token; else read from $token_env at each request
        self.timeout, self.connect_timeout = timeout, min(connect_timeout, timeout)
        self.retries, self.backoff, self.max_backoff = retries, backoff, max_backoff
        self.probe_after = probe_after
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

    def request(self, method: str, path: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        """The reply's JSON object from the first server that answers (see the module doc)."""
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
                    "%s attempt %d failed (%s); retrying in %.1fs", self.service, attempt, last, delay
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
        raise RemoteServiceError(f"{self.service} failed after {tried} tries: {last}")

    def request_one(
        self, index: int, method: str, path: str, payload: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """The reply of server ``index`` alone, without failover or retries (checks of one server)."""
        import httpx

        url = self.urls[index] + path
        try:
            r = self._client.request(method, url, json=payload, headers=self._headers())
        except httpx.TransportError as e:
            raise RemoteServiceError(f"{self.service} {url}: {type(e).__name__}: {e}") from e
        outcome = self._outcome(url, r)
        if isinstance(outcome, str):
            raise RemoteServiceError(outcome)
        return outcome

    def get_json(self, index: int, path: str) -> Any:
        """``GET path`` on server ``index``: its JSON, or None when it answers without JSON (or an error
        status); a server that cannot be reached raises :class:`RemoteServiceError`."""
        import httpx

        url = self.urls[index] + path
        try:
            r = self._client.get(url, headers=self._headers())
        except httpx.TransportError as e:
            raise RemoteServiceError(f"{self.service} {url}: {type(e).__name__}: {e}") from e
        try:
            return r.json() if r.status_code < 400 else None
        except ValueError:
            return None

    def _outcome(self, url: str, r: Any) -> dict[str, Any] | str:
        """The reply's JSON, or a retryable failure message; raises for failures a retry cannot fix."""
        if r.status_code < 400:
            try:
                data = r.json()
            except ValueError:
                return f"{url}: invalid JSON reply (HTTP {r.status_code})"
            if not isinstance(data, dict):
                raise RemoteServiceError(f"{self.service} {url} sent a reply that is not a JSON object")
            return data
        message, retryable = _message(r)
        if r.status_code in RETRY_STATUS and retryable:
            return f"{url}: HTTP {r.status_code}: {message}"
        verb = "refused the request" if r.status_code < 500 else "failed"
        raise RemoteServiceError(f"{self.service} {url} {verb} (HTTP {r.status_code}): {message}")


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
