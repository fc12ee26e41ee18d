"""The reward service: render and score batches over HTTP, for image models on other GPUs or hosts.

``POST /score`` takes JSON ``{originals, completions, metadata?, seeds?, round?, return_images?}`` and
returns the :class:`ScoredBatch` as JSON (images, when asked for, as base64 PNG). No pickle anywhere.
``GET /health`` (no auth) says it is up; ``GET /info`` describes the pipeline. A bearer token is required
when the env var named by ``service.token_env`` is set. Limits give clear 4xx errors: body size (413),
batch size (413), text length and malformed JSON (422), and bad GenEval metadata (400). Requests are
scored one at a time: the backbone and models are not shared between threads.

FastAPI is imported at module level (it resolves the endpoints' annotations from module globals); torch
is not: the pipeline brings it.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import socket
import threading
import time
from typing import TYPE_CHECKING, Any

from fastapi import Depends, FastAPI, HTTPException, Request

from reprompt.errors import RepromptError

if TYPE_CHECKING:
    from reprompt.rewards.config import RewardConfig, ServiceConfig
    from reprompt.rewards.pipeline import RewardPipeline

logger = logging.getLogger(__name__)


def _request_model() -> type:
    from pydantic import BaseModel, ConfigDict

    class ScoreRequest(BaseModel):
        model_config = ConfigDict(extra="forbid")

        originals: list[str]
        completions: list[str]
        metadata: list[dict[str, Any] | str | None] | None = None
        seeds: list[list[int]] | None = None
        round: int = 0
        return_images: bool = False

    return ScoreRequest


def create_app(pipeline: RewardPipeline, service: ServiceConfig, token: str | None = None) -> FastAPI:
    """The FastAPI app around ``pipeline``. ``token``: required bearer token (None: no auth)."""
    from fastapi.concurrency import run_in_threadpool
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from pydantic import ValidationError
    from starlette.exceptions import HTTPException as StarletteHTTPException

    score_request = _request_model()
    lock = threading.Lock()
    app = FastAPI(title="reprompt reward service", docs_url=None, redoc_url=None, openapi_url=None)

    def error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status, headers=headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error(exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error(422, f"invalid request: {exc.errors()[:3]}")

    @app.middleware("http")
    async def _limit_size(request: Request, call_next: Any) -> Any:
        length = request.headers.get("content-length")
        if length is not None:
            if not length.isdigit():
                return error(400, "invalid Content-Length header")
            if int(length) > service.max_request_bytes:
                return error(
                    413,
                    f"request body of {length} bytes exceeds the limit of {service.max_request_bytes} bytes; "
                    "send smaller batches",
                )
        return await call_next(request)

    def check_token(request: Request) -> None:
        if token is None:
            return
        header = request.headers.get("authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
            raise HTTPException(
                401,
                f"missing or wrong bearer token (the client reads it from ${service.token_env})",
                headers={"WWW-Authenticate": "Bearer"},
            )

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "components": pipeline.component_names}

    @app.get("/info", dependencies=[Depends(check_token)])
    def info() -> dict[str, Any]:
        limits = {
            "max_batch": service.max_batch,
            "max_request_bytes": service.max_request_bytes,
            "max_completion_chars": service.max_completion_chars,
        }
        return {**pipeline.info(), "limits": limits, "render_calls": pipeline.render_calls}

    @app.post("/score", dependencies=[Depends(check_token)])
    async def score(request: Request) -> JSONResponse:
        body = bytearray()
        async for chunk in request.stream():  # also bounds bodies sent without Content-Length
            body.extend(chunk)
            if len(body) > service.max_request_bytes:
                return error(413, f"request body exceeds the limit of {service.max_request_bytes} bytes")
        try:
            req = score_request.model_validate_json(bytes(body))
        except ValidationError as e:
            details = "; ".join(
                f"{'.'.join(map(str, x['loc'])) or 'body'}: {x['msg']}" for x in e.errors()[:3]
            )
            return error(422, f"malformed request: {details}")
        n = len(req.completions)
        if n > service.max_batch:
            return error(413, f"batch of {n} completions exceeds the limit of {service.max_batch}; split it")
        if len(req.originals) != n:
            return error(422, f"got {len(req.originals)} originals but {n} completions")
        longest = max((len(t) for t in (*req.originals, *req.completions)), default=0)
        if longest > service.max_completion_chars:
            return error(
                422, f"a text of {longest} characters exceeds the limit of {service.max_completion_chars}"
            )

        def run() -> dict[str, Any]:
            with lock:
                result = pipeline.score(
                    req.originals,
                    req.completions,
                    metadata=req.metadata,
                    seeds=req.seeds,
                    round=req.round,
                    keep_images=req.return_images,
                )
            return result.to_dict(include_images=req.return_images)

        try:
            return JSONResponse(await run_in_threadpool(run))
        except RepromptError as e:
            return error(400, str(e))
        except Exception as e:
            logger.exception("scoring failed")
            return error(500, f"scoring failed: {type(e).__name__}: {e}")

    return app


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def service_token(service: ServiceConfig) -> str | None:
    """The bearer token from the configured env var (None when unset or empty)."""
    return os.environ.get(service.token_env) or None


def serve(
    config: RewardConfig,
    host: str | None = None,
    port: int | None = None,
    pipeline: RewardPipeline | None = None,
) -> None:
    """Build the pipeline and run the service with uvicorn until interrupted."""
    import uvicorn

    from reprompt.rewards.pipeline import RewardPipeline

    host = host or config.service.host
    port = port or config.service.port
    token = service_token(config.service)
    if token is None and not is_loopback(host):
        logger.warning(
            "serving rewards on %s without a token: anyone who can reach it can use it; set $%s",
            host,
            config.service.token_env,
        )
    pipeline = pipeline or RewardPipeline.from_config(config)
    app = create_app(pipeline, config.service, token)
    print(
        f"reprompt reward service on http://{host}:{port} (components: {', '.join(pipeline.component_names)})"
    )
    uvicorn.run(app, host=host, port=port, log_level="warning")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class BackgroundServer:
    """Run an app with uvicorn in a thread (tests and benchmarks); ``stop()`` shuts it down."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int | None = None) -> None:
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
