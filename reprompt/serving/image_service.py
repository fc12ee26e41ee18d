"""``reprompt serve``: rewrite and render over HTTP, in the shapes OpenAI-compatible clients speak.

- ``POST /v1/images/generations``: OpenAI's Images API (``prompt``, ``n``, ``size``,
  ``response_format="b64_json"``) with each image's ``revised_prompt``; extra fields give the reasoning,
  a ``seed`` and a ``rewrite`` off switch.
- ``POST /v1/chat/completions`` and ``GET /v1/models``: the rewriter as a chat model (``chat.py``).
- ``POST /v1/rewrite``: rewrites of a list of prompts. ``GET /health``: no auth, no paths.

JSON and base64 PNG only (no pickle); optional bearer token from an environment variable. Every model
call goes through one :class:`ModelWorker` (the policy and the pipeline are never called concurrently;
concurrent rewrites are micro-batched). Limits a client meets: request body size (413), queue length
(429 with ``Retry-After``), field validation (422), user errors (400); a failing upstream policy gives a
generic 502 (details in the server log only). Errors use OpenAI's ``{"error": {"message", "type",
"param", "code"}}`` shape.
"""

# No ``from __future__ import annotations``: FastAPI reads the request models' annotations at runtime.
import asyncio
import concurrent.futures
import contextlib
import dataclasses
import logging
import os
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException

from reprompt.errors import RemoteServiceError, RepromptError
from reprompt.policy.base import MAX_PROMPT_CHARS
from reprompt.serving.batching import ModelWorker, QueueFull
from reprompt.serving.config import ServeConfig
from reprompt.serving.http import (
    BodyLimit,
    SafeJSONResponse,
    SafeStr,
    openai_error,
    public_name,
    require_bearer,
    validation_message,
)

logger = logging.getLogger(__name__)

MAX_IMAGES = 8
MAX_BATCH_PROMPTS = 64
MAX_SEED = 2**31 - 1 - MAX_IMAGES
UPSTREAM_FAILED = "the policy backend failed to answer; the server log has the details"


class ImagesRequest(BaseModel):
    model_config = ConfigDict(allow_inf_nan=False)

    prompt: SafeStr = Field(min_length=1, max_length=MAX_PROMPT_CHARS)
    n: int = Field(default=1, ge=1, le=MAX_IMAGES)
    size: SafeStr | None = Field(default=None, description="WIDTHxHEIGHT or auto; must match the backbone")
    response_format: str = Field(default="b64_json", pattern="^b64_json$")
    seed: int = Field(default=0, ge=0, le=MAX_SEED)
    rewrite: bool = Field(default=True, description="false renders the prompt as given")
    stream: bool = Field(default=False, description="not supported: images come in one reply")
    model: SafeStr | None = None


class RewriteRequest(BaseModel):
    prompts: list[SafeStr] = Field(min_length=1, max_length=MAX_BATCH_PROMPTS)


class ClientGone(Exception):
    """The client disconnected while its job waited; nobody reads the reply."""


async def wait_for_job(request: Request, future: concurrent.futures.Future, poll: float) -> Any:
    """The job's result; cancels the job (so the worker skips it) if the client disconnects first."""
    waiter = asyncio.wrap_future(future)
    while True:
        done, _ = await asyncio.wait({waiter}, timeout=poll)
        if done:
            return waiter.result()
        if await request.is_disconnected():
            future.cancel()
            raise ClientGone


def backbone_size(backbone: Any) -> tuple[int, int]:
    """(width, height) the backbone renders (the :class:`~reprompt.backbones.base.Backbone` contract)."""
    return backbone.width, backbone.height


def create_app(
    policy: Any,
    backbone: Any,
    token_env: str | None = None,
    options: Any = None,
    config: ServeConfig | None = None,
) -> Any:
    """A FastAPI app over a built policy and backbone. ``token_env`` names the variable with the token."""
    from reprompt.pipeline import RePromptPipeline
    from reprompt.policy.base import GenerationOptions, check_prompt
    from reprompt.serving.chat import add_chat_routes
    from reprompt.utils.images import encode_png

    config = config or ServeConfig()
    token = os.environ.get(token_env, "") if token_env else ""
    if token_env and not token:
        raise RepromptError(f"--token-env {token_env} is set but the variable is empty")
    base_options = options or GenerationOptions()
    worker = ModelWorker(
        policy,
        backbone.count_tokens,
        max_queue=config.max_queue,
        max_batch=config.max_batch or base_options.batch_size,
        max_wait=config.batch_wait_ms / 1000,
        batching=config.micro_batching,
    )
    pipe = RePromptPipeline(policy, backbone)
    model_id = config.served_model_name or public_name(policy.name)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        worker.close()

    app = FastAPI(title="reprompt", version="1", default_response_class=SafeJSONResponse, lifespan=lifespan)
    app.state.worker, app.state.model_id = worker, model_id
    app.add_middleware(BodyLimit, max_bytes=config.max_request_bytes, error=lambda s, m: openai_error(s, m))

    auth = require_bearer(token, token_env)

    async def run_job(request: Request, submit: Any) -> Any:
        try:
            future = submit()
        except QueueFull as e:
            raise _Busy(str(e)) from None
        return await wait_for_job(request, future, config.disconnect_poll_s)

    # ------------------------------------------------------------------------------------ errors
    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> SafeJSONResponse:
        message, param = validation_message(exc.errors())
        return openai_error(422, message, param=param)

    @app.exception_handler(HTTPException)
    async def _http(_: Request, exc: HTTPException) -> SafeJSONResponse:
        return openai_error(exc.status_code, str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(RemoteServiceError)
    async def _upstream(_: Request, exc: RemoteServiceError) -> SafeJSONResponse:
        logger.error("policy backend failed: %s", exc)  # the details stay here, never in the reply
        return openai_error(502, UPSTREAM_FAILED)

    @app.exception_handler(RepromptError)
    async def _user(_: Request, exc: RepromptError) -> SafeJSONResponse:
        return openai_error(400, str(exc))

    @app.exception_handler(_Busy)
    async def _busy(_: Request, exc: _Busy) -> SafeJSONResponse:
        return openai_error(
            429,
            f"the server is busy: {exc}; retry after a moment",
            code="queue_full",
            headers={"Retry-After": "1"},
        )

    @app.exception_handler(ClientGone)
    async def _gone(_: Request, exc: ClientGone) -> SafeJSONResponse:
        return openai_error(499, "client disconnected before its request ran")

    @app.exception_handler(Exception)
    async def _internal(_: Request, exc: Exception) -> SafeJSONResponse:
        logger.error("internal error: %s: %s", type(exc).__name__, exc, exc_info=exc)
        return openai_error(500, "internal server error; the server log has the details")

    # --------------------------------------------------------------------------------- endpoints
    @app.get("/health")
    def health() -> dict[str, Any]:
        return {
            "status": "ok",
            "policy": public_name(policy.name),
            "backbone": public_name(backbone.name),
            "model": model_id,
            "queue": {"waiting": worker.waiting, "limit": config.max_queue},
            "worker": dataclasses.asdict(worker.stats),
        }

    @app.post("/v1/rewrite", dependencies=[Depends(auth)])
    async def rewrite(req: RewriteRequest, request: Request) -> dict[str, Any]:
        prompts = [check_prompt(p) for p in req.prompts]
        result = await run_job(request, lambda: worker.submit_rewrite(prompts, base_options))
        return {"data": [r.to_dict() for r in result.rewrites]}

    @app.post("/v1/images/generations", dependencies=[Depends(auth)])
    async def images(req: ImagesRequest, request: Request) -> dict[str, Any]:
        if req.stream:
            raise RepromptError("stream: true is not supported for images; send the request without it")
        if req.size is not None and req.size != "auto":
            w, h = backbone_size(backbone)
            if req.size != f"{w}x{h}":
                raise RepromptError(f"size {req.size!r} is not served here; this backbone renders {w}x{h}")
        prompt = check_prompt(req.prompt)

        def render() -> Any:
            return pipe(
                prompt,
                seed=req.seed,
                num_images=req.n,
                options=base_options,
                compare=False,
                rewrite=req.rewrite,
            )

        res = await run_job(request, lambda: worker.submit_call(render))
        rw = res.rewrite
        if len(res.rewritten_images) != req.n:
            raise RemoteServiceError(f"the backbone returned {len(res.rewritten_images)} of {req.n} images")
        return {
            "created": int(time.time()),
            "data": [
                {"b64_json": encode_png(img), "revised_prompt": rw.prompt} for img in res.rewritten_images
            ],
            "reprompt": {
                "original": rw.original,
                "reasoning": rw.reasoning,
                "format_ok": rw.format_ok,
                "fallback": rw.fallback,
                "seeds": res.seeds,
                "prompt_tokens": rw.prompt_tokens,
                "truncated": rw.truncated,
                "warnings": res.warnings,
                "timings": res.timings,
            },
        }

    add_chat_routes(app, worker=worker, options=base_options, model_id=model_id, auth=auth, run_job=run_job)
    return app


class _Busy(Exception):
    pass
