"""HTTP pieces shared by reprompt's services: body limits, bearer auth, safe JSON errors, a test server.

Every error a client can cause must come back as a 4xx with a readable message, never a 500: request
bodies are bounded before anything reads them, strings with lone surrogates and non-finite numbers are
refused by validation, and error messages never echo the input back (a ``NaN`` or a lone surrogate in
an echoed input is what made FastAPI's default handler fail with a 500).
"""

from __future__ import annotations

import hmac
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Sequence
from typing import Annotated, Any

from pydantic import AfterValidator
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse

from reprompt.utils.endpoints import LOCALHOST, is_loopback

logger = logging.getLogger(__name__)

MAX_MESSAGE_CHARS = 600


# --------------------------------------------------------------------------------------- responses


class SafeJSONResponse(JSONResponse):
    """JSON with non-ASCII escaped: a stray lone surrogate can never make rendering fail."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode("ascii")


def clean_message(message: str) -> str:
    """A message safe to send: valid UTF-8 and bounded in length."""
    text = message.encode("utf-8", "replace").decode("utf-8")
    return text if len(text) <= MAX_MESSAGE_CHARS else text[: MAX_MESSAGE_CHARS - 3] + "..."


ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
    500: "server_error",
    502: "upstream_error",
    503: "server_error",
}


def openai_error(
    status: int,
    message: str,
    *,
    param: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> SafeJSONResponse:
    """An error in OpenAI's shape, so the ``openai`` SDK and OpenAI-compatible clients show the message."""
    body = {
        "error": {
            "message": clean_message(message),
            "type": ERROR_TYPES.get(status, "invalid_request_error" if status < 500 else "server_error"),
            "param": param,
            "code": code,
        }
    }
    return SafeJSONResponse(body, status_code=status, headers=headers)


def validation_message(errors: Sequence[Any], limit: int = 3) -> tuple[str, str | None]:
    """(message, first field) from pydantic/FastAPI validation errors, WITHOUT the offending input."""
    parts, first = [], None
    for err in list(errors)[:limit]:
        loc = [str(x) for x in err.get("loc", ()) if x not in ("body", "query", "path")]
        field = ".".join(loc)
        first = first or field or None
        parts.append(f"{field or 'body'}: {err.get('msg', 'invalid')}")
    more = len(errors) - limit
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else ""), first


# ------------------------------------------------------------------------------------- validation


def _no_lone_surrogates(text: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("text is not valid Unicode (it holds a lone surrogate escape)") from None
    return text


SafeStr = Annotated[str, AfterValidator(_no_lone_surrogates)]
"""A string that can be encoded as UTF-8 (JSON allows ``"\\ud800"``; nothing downstream does)."""


# -------------------------------------------------------------------------------------------- auth


def bearer_matches(header: str | None, token: str) -> bool:
    """``Authorization: Bearer <token>`` check; the scheme is case-insensitive (RFC 7235)."""
    scheme, _, given = (header or "").strip().partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


def require_bearer(token: str | None, token_env: str | None = None) -> Callable[[Request], None]:
    """A FastAPI dependency refusing requests without ``Authorization: Bearer <token>`` (no-op when
    ``token`` is None or empty): one 401 for every service, naming where the client reads the token."""
    where = f" (the client reads it from ${token_env})" if token_env else ""

    def check(request: Request) -> None:
        if token and not bearer_matches(request.headers.get("authorization"), token):
            raise HTTPException(
                401, f"missing or wrong bearer token{where}", headers={"WWW-Authenticate": "Bearer"}
            )

    return check


def warn_if_exposed(host: str, token: str | None, token_env: str | None, what: str) -> None:
    """Warn when a service binds a non-loopback address without a token."""
    if token is None and not is_loopback(host):
        hint = f"set ${token_env}" if token_env else "pass --token-env VAR with a token in VAR"
        logger.warning(
            "serving %s on %s without a token: anyone who can reach it can use it; %s", what, host, hint
        )


# ------------------------------------------------------------------------------------ body limits


class BodyLimit:
    """Pure ASGI middleware: refuse a request body over ``max_bytes`` (413) before any endpoint, auth
    check or parser reads it; bodies without Content-Length are counted as they stream in."""

    def __init__(self, app: Any, max_bytes: int, error: Callable[[int, str], Any] | None = None) -> None:
        self.app, self.max_bytes = app, max_bytes
        self.error = error or (lambda status, message: SafeJSONResponse({"error": message}, status))

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None:
            if not length.isdigit():
                await self.error(400, "invalid Content-Length header")(scope, receive, send)
                return
            if int(length) > self.max_bytes:
                await self.error(413, self._too_big(int(length)))(scope, receive, send)
                return
        seen = 0
        started = False

        async def limited_receive() -> dict:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge(413, self._too_big(None))
            return message

        async def tracking_send(message: dict) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge as e:  # raised past the app's own handlers (which normally answer it)
            if not started:
                await self.error(413, str(e.detail))(scope, receive, send)

    def _too_big(self, length: int | None) -> str:
        size = f"of {length} bytes " if length is not None else ""
        return f"request body {size}exceeds the limit of {self.max_bytes} bytes; send a smaller request"


class _TooLarge(HTTPException):
    """An HTTPException, so FastAPI's body reader re-raises it and the app's handler answers 413."""


# ----------------------------------------------------------------------------- servers for tests


def free_port(host: str = LOCALHOST) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class BackgroundServer:
    """Run an app with uvicorn in a thread (tests and benchmarks); ``stop()`` shuts it down."""

    def __init__(self, app: Any, host: str = LOCALHOST, port: int | None = None) -> None:
        import uvicorn

        self.host, self.port = host, port or free_port(host)
        config = uvicorn.Config(
            app, host=self.host, port=self.port, log_level="warning", timeout_graceful_shutdown=2
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 20.0) -> BackgroundServer:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"server on port {self.port} did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
