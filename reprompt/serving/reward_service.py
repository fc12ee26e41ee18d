"""The reward service: render and score batches over HTTP, for image models on other GPUs or hosts.

``POST /score`` takes JSON ``{originals, completions, metadata?, seeds?, round?, return_images?}`` and
returns the :class:`ScoredBatch` as JSON (images, when asked for, as base64 PNG). No pickle anywhere.
``GET /health`` (no auth) says it is up; ``GET /info`` describes the reward; ``GET /openapi.json``
publishes the request schema. A bearer token is required when the env var named by
``service.token_env`` is set.

Limits give clear 4xx errors ``{"error": message}``: body size (413, checked before anything reads the
body), batch size (413), text length and malformed JSON (422), bad GenEval metadata (400, naming the
field), and a full queue (429 with ``Retry-After``: at most ``service.max_queue`` requests wait). Requests
are scored one at a time (the backbone and models are not shared between threads); a request whose
client disconnected while it waited is skipped. An internal failure is a 500 with
``"retryable": false``: the same request would fail again, so the client does not retry it.

FastAPI is imported at module level (it resolves the endpoints' annotations from module globals); torch
is not: the composite reward brings it.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, FastAPI, Request

from reprompt.errors import RepromptError
from reprompt.serving.http import (
    BodyLimit,
    SafeJSONResponse,
    clean_message,
    require_bearer,
    warn_if_exposed,
)
from reprompt.utils.endpoints import check_port
from reprompt.utils.names import public_name

if TYPE_CHECKING:
    from reprompt.rewards.composite import CompositeReward
    from reprompt.rewards.config import RewardConfig, ServiceConfig

logger = logging.getLogger(__name__)

MAX_SEEDS_PER_COMPLETION = 64
MAX_SEED = 2**63 - 1


def _request_model() -> Any:
    from pydantic import BaseModel, ConfigDict, Field

    Seed = Annotated[int, Field(ge=0, le=MAX_SEED)]

    class ScoreRequest(BaseModel):
        """One batch to score: completion i answers originals[i]."""

        model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

        originals: list[str] = Field(description="the users' original prompts, one per completion")
        completions: list[str] = Field(
            description="the policy's completions (<reason>...</reason><prompt>...)"
        )
        metadata: list[dict[str, Any] | str | None] | None = Field(
            default=None, description="GenEval clauses per completion (object or JSON string), or null"
        )
        seeds: (
            list[Annotated[list[Seed], Field(min_length=1, max_length=MAX_SEEDS_PER_COMPLETION)]] | None
        ) = Field(default=None, description="render seeds per completion (default: derived from round)")
        round: int = Field(default=0, ge=0, le=2**31 - 1, description="training step, for derived seeds")
        return_images: bool = Field(default=False, description="include the rendered images as base64 PNG")

    return ScoreRequest


def create_app(pipeline: CompositeReward, service: ServiceConfig, token: str | None = None) -> FastAPI:
    """The FastAPI app around ``pipeline``. ``token``: required bearer token (None: no auth)."""
    from fastapi.concurrency import run_in_threadpool
    from fastapi.exceptions import RequestValidationError
    from pydantic import ValidationError
    from starlette.exceptions import HTTPException as StarletteHTTPException

    score_request = _request_model()
    max_queue = service.max_queue
    turn = asyncio.Lock()  # one scoring at a time; waiting requests queue on it
    state = {"waiting": 0, "skipped": 0}
    app = FastAPI(
        title="reprompt reward service",
        version="1",
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
        default_response_class=SafeJSONResponse,
    )

    def error(
        status: int, message: str, headers: dict[str, str] | None = None, **extra: Any
    ) -> SafeJSONResponse:
        return SafeJSONResponse(
            {"error": clean_message(message), **extra}, status_code=status, headers=headers
        )

    app.state.queue = state  # read by tests and /info
    app.add_middleware(BodyLimit, max_bytes=service.max_request_bytes, error=error)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> SafeJSONResponse:
        return error(exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> SafeJSONResponse:
        return error(422, f"invalid request: {_details(exc.errors())}")

    check_token = require_bearer(token, service.token_env)

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "components": pipeline.component_names}

    @app.get("/info", dependencies=[Depends(check_token)])
    def info() -> dict[str, Any]:
        limits = {
            "max_batch": service.max_batch,
            "max_request_bytes": service.max_request_bytes,
            "max_completion_chars": service.max_completion_chars,
            "max_queue": max_queue,
            "max_seeds_per_completion": MAX_SEEDS_PER_COMPLETION,
        }
        data = {**pipeline.info(), "limits": limits, "render_calls": pipeline.render_calls}
        if isinstance(data.get("backbone"), str):
            data["backbone"] = public_name(data["backbone"])
        return data

    schema = score_request.model_json_schema(ref_template="#/components/schemas/{model}")
    score_openapi = {
        "requestBody": {"required": True, "content": {"application/json": {"schema": schema}}},
        "responses": {
            str(code): {"description": text}
            for code, text in (
                (400, "bad GenEval metadata or another user error"),
                (401, "missing or wrong bearer token"),
                (413, "body or batch too large"),
                (422, "malformed request"),
                (429, "queue full: retry after Retry-After seconds"),
                (500, "internal error (retryable: false)"),
            )
        },
    }

    @app.post("/score", dependencies=[Depends(check_token)], openapi_extra=score_openapi)
    async def score(request: Request) -> SafeJSONResponse:
        body = await request.body()  # bounded by BodyLimit
        try:
            req = score_request.model_validate_json(body)
        except ValidationError as e:
            return error(422, f"malformed request: {_details(e.errors())}")
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
        if state["waiting"] >= max_queue:
            return error(
                429,
                f"{state['waiting']} requests are already waiting (the limit); retry after a moment",
                headers={"Retry-After": "1"},
            )

        def run() -> dict[str, Any]:
            result = pipeline.score(
                req.originals,
                req.completions,
                metadata=req.metadata,
                seeds=req.seeds,
                round=req.round,
                keep_images=req.return_images,
            )
            return result.to_dict(include_images=req.return_images)

        state["waiting"] += 1
        try:
            await turn.acquire()
        finally:
            state["waiting"] -= 1
        try:
            if await request.is_disconnected():  # its client gave up while it waited: skip the work
                state["skipped"] += 1
                return error(499, "client disconnected before its request ran")
            return SafeJSONResponse(await run_in_threadpool(run))
        except RepromptError as e:
            return error(400, str(e))
        except Exception as e:
            logger.exception("scoring failed")
            return error(500, f"scoring failed: {type(e).__name__}: {e}", retryable=False)
        finally:
            turn.release()

    return app


def _details(errors: Sequence[Any]) -> str:
    """Where and what, never the offending input (which may not even be serialisable)."""
    return "; ".join(f"{'.'.join(map(str, x['loc'])) or 'body'}: {x['msg']}" for x in errors[:3])


def service_token(service: ServiceConfig) -> str | None:
    """The bearer token from the configured env var (None when unset or empty)."""
    return os.environ.get(service.token_env) or None


def serve(
    config: RewardConfig,
    host: str | None = None,
    port: int | None = None,
    pipeline: CompositeReward | None = None,
) -> None:
    """Build the composite reward and run the service with uvicorn until interrupted."""
    import uvicorn

    from reprompt.rewards.composite import CompositeReward

    host = host or config.service.host
    port = config.service.port if port is None else port
    check_port("--port", port)  # before the reward's models load
    token = service_token(config.service)
    warn_if_exposed(host, token, config.service.token_env, "rewards")
    pipeline = pipeline or CompositeReward.from_config(config)
    app = create_app(pipeline, config.service, token)
    print(
        f"reprompt reward service on http://{host}:{port} (components: {', '.join(pipeline.component_names)})"
    )
    uvicorn.run(app, host=host, port=port, log_level="warning")
