"""One retry policy for every HTTP client in reprompt (the OpenAI-compatible policy, the VLM judge, the
reward-service client): which answers are worth asking again, how long to wait, and the server's
``Retry-After`` taking precedence over our own backoff when it sends one.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

# Timeouts and overload answers that a later attempt may not get: request timeout, conflict, too early,
# too many requests, and the 5xx a proxy or an overloaded server sends. Other 4xx would fail again.
RETRY_STATUS: frozenset[int] = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


def retry_after(headers: Mapping[str, Any] | None) -> float | None:
    """Seconds from a ``Retry-After`` header in its numeric form (None when absent or an HTTP date)."""
    if not headers:
        return None
    value = headers.get("retry-after") if hasattr(headers, "get") else None
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except (TypeError, ValueError):
        return None


def backoff_delay(
    attempt: int,
    base: float,
    cap: float | None = None,
    *,
    jitter: float = 0.0,
    server_delay: float | None = None,
) -> float:
    """Seconds to wait before retry number ``attempt`` (0 = the first retry): the server's ``Retry-After``
    when given, else ``base * 2**attempt`` stretched by up to ``jitter`` (a fraction) so clients that
    failed together do not retry together; never more than ``cap``."""
    if server_delay is not None:
        wait = server_delay
    else:
        wait = base * 2**attempt * (1 + jitter * random.random()) if jitter else base * 2**attempt
    return min(wait, cap) if cap is not None else wait
