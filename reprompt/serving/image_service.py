"""``reprompt serve``: rewrite and render over HTTP, in the shapes OpenAI-compatible clients speak.

- ``POST /v1/images/generations``: OpenAI's Images API (``prompt``, ``n``, ``size``, ``response_format``
  ``b64_json`` or ``url``) with each image's ``revised_prompt``; the extensions of FLUX image servers
  (``seed``, ``num_inference_steps``, ``guidance_scale``, ``negative_prompt``) where the backbone applies
  them (a 400 naming the field where it does not); a ``rewrite`` off switch; every PNG carries its provenance.
  A simulator backbone's reply also carries the scene it drew for each image (``reprompt.scenes``, masks
  as RLE): what the oracle detector reads, so a render farm of ``reprompt serve --backbone sketch``
  processes scores exactly as in-process rendering does.
- ``GET /v1/images/files/{name}``: the images of ``response_format: "url"`` (unguessable names, expiring).
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
import base64
import concurrent.futures
import contextlib
import dataclasses
import logging
import os
import re
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException

from reprompt.backbones.base import SIZE_STEP, RenderSettings  # SIZE_STEP: OpenAI's sizes are multiples too
from reprompt.errors import RemoteServiceError, RepromptError
from reprompt.pipeline import MAX_SEED as PIPELINE_MAX_SEED
from reprompt.policy.base import MAX_PROMPT_CHARS
from reprompt.serving.batching import ModelWorker, QueueFull
from reprompt.serving.config import ServeConfig
from reprompt.serving.http import (
    BodyLimit,
    SafeJSONResponse,
    SafeStr,
    error_responses,
    openai_error,
    require_bearer,
    validation_message,
)
from reprompt.utils.names import public_name

logger = logging.getLogger(__name__)

MAX_IMAGES = 8
MAX_BATCH_PROMPTS = 64
MAX_SEED = PIPELINE_MAX_SEED - (MAX_IMAGES - 1)
UPSTREAM_FAILED = "the policy backend failed to answer; the server log has the details"
SIZE = re.compile(r"^([1-9][0-9]{1,3})x([1-9][0-9]{1,3})$")
REQUEST_FIELDS = {
    "steps": "num_inference_steps",
    "guidance": "guidance_scale",
    "negative_prompt": "negative_prompt",
}
"""RenderSettings field -> the request field that sets it (the names FLUX image servers use)."""
NO_EFFECT = ("quality", "style", "moderation", "output_compression", "partial_images")
"""OpenAI fields accepted for compatibility that change nothing here (listed in the reply's ``ignored``)."""


class ImagesRequest(BaseModel):
    model_config = ConfigDict(allow_inf_nan=False)

    prompt: SafeStr = Field(min_length=1, max_length=MAX_PROMPT_CHARS)
    n: int = Field(default=1, ge=1, le=MAX_IMAGES)
    size: SafeStr | None = Field(
        default=None, description="WIDTHxHEIGHT (multiples of 16) or auto (the backbone's own size)"
    )
    response_format: str = Field(default="b64_json", pattern="^(b64_json|url)$")
    seed: int = Field(default=0, ge=0, le=MAX_SEED, description="image k uses seed + k")
    num_inference_steps: int | None = Field(default=None, ge=1, le=500, description="denoising steps")
    guidance_scale: float | None = Field(default=None, ge=0, le=100, description="guidance scale")
    negative_prompt: SafeStr | None = Field(default=None, max_length=MAX_PROMPT_CHARS)
    rewrite: bool = Field(default=True, description="false renders the prompt as given")
    stream: bool = Field(default=False, description="not supported: images come in one reply")
    model: SafeStr | None = Field(default=None, description="the served model id (GET /v1/models), if given")
    output_format: str | None = Field(default=None, pattern="^png$", description="png only")
    background: str | None = Field(default=None, pattern="^(auto|opaque)$", description="no transparency")
    quality: SafeStr | None = Field(default=None, description="accepted; no effect")
    style: SafeStr | None = Field(default=None, description="accepted; no effect")
    moderation: SafeStr | None = Field(default=None, description="accepted; no effect")
    output_compression: int | None = Field(default=None, ge=0, le=100, description="accepted; no effect")
    partial_images: int | None = Field(default=None, ge=0, le=3, description="accepted; no effect")


class RewriteRequest(BaseModel):
    prompts: list[SafeStr] = Field(min_length=1, max_length=MAX_BATCH_PROMPTS)


class ClientGone(Exception):
    """The client disconnected while its job waited; nobody reads the reply."""


class FieldError(Exception):
    """A request the server understood but cannot serve, naming the field (``param``) to change."""

    def __init__(self, message: str, param: str | None, status: int = 400) -> None:
        super().__init__(message)
        self.param, self.status = param, status


def parse_size(size: str | None, backbone: Any, max_side: int) -> tuple[int | None, int | None]:
    """(width, height) of ``size``; (None, None) for auto or no size (the backbone's own)."""
    if size is None or size == "auto":
        return None, None
    m = SIZE.fullmatch(size)
    w, h = (int(m.group(1)), int(m.group(2))) if m else (0, 0)
    if not m or not (64 <= w <= max_side and 64 <= h <= max_side) or w % SIZE_STEP or h % SIZE_STEP:
        bw, bh = backbone_size(backbone)
        raise FieldError(
            f"size must be auto or WIDTHxHEIGHT with each side a multiple of {SIZE_STEP} between 64 and "
            f"{max_side}, e.g. 512x512 (this backbone renders {bw}x{bh} by default)",
            "size",
        )
    return w, h


def render_settings(req: ImagesRequest, backbone: Any, max_side: int) -> RenderSettings:
    """The render settings a request asks for; a field the backbone does not apply is a 400 naming it."""
    from reprompt.backbones.base import unsupported_settings

    width, height = parse_size(req.size, backbone, max_side)
    settings = RenderSettings(width, height, req.num_inference_steps, req.guidance_scale, req.negative_prompt)
    ignored = unsupported_settings(backbone, settings)
    if ignored:
        field = REQUEST_FIELDS.get(ignored[0], ignored[0])
        raise FieldError(
            f"{field} is not supported by backbone {public_name(backbone.name)!r}; it applies "
            f"{', '.join(sorted(REQUEST_FIELDS.get(f, f) for f in backbone.supported_settings))}",
            field,
        )
    return settings


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
    from reprompt.backbones.base import applied_settings
    from reprompt.geneval.scene import objects_to_json
    from reprompt.pipeline import RePromptPipeline
    from reprompt.policy.base import GenerationOptions, check_prompt
    from reprompt.serving.chat import add_chat_routes
    from reprompt.serving.image_store import ImageStore
    from reprompt.utils.images import png_bytes

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
    store = ImageStore(ttl_s=config.image_ttl_s, max_files=config.max_image_files)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        worker.close()
        store.close()

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

    @app.exception_handler(FieldError)
    async def _field(_: Request, exc: FieldError) -> SafeJSONResponse:
        return openai_error(exc.status, str(exc), param=exc.param)

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
            "render": applied_settings(backbone),
            "queue": {"waiting": worker.waiting, "limit": config.max_queue},
            "worker": dataclasses.asdict(worker.stats),
        }

    @app.post(
        "/v1/rewrite",
        dependencies=[Depends(auth)],
        responses=error_responses(400, 401, 413, 422, 429, 500, 502),
    )
    async def rewrite(req: RewriteRequest, request: Request) -> dict[str, Any]:
        prompts = [check_prompt(p) for p in req.prompts]
        result = await run_job(request, lambda: worker.submit_rewrite(prompts, base_options))
        return {"data": [r.to_dict() for r in result.rewrites]}

    @app.post(
        "/v1/images/generations",
        dependencies=[Depends(auth)],
        responses=error_responses(400, 401, 404, 413, 422, 429, 500, 502),
    )
    async def images(req: ImagesRequest, request: Request) -> dict[str, Any]:
        if req.stream:
            raise FieldError(
                "stream: true is not supported for images; send the request without it", "stream"
            )
        if req.model is not None and req.model != model_id:
            raise FieldError(
                f"model {req.model!r} is not served here; GET /v1/models lists {model_id!r}", "model", 404
            )
        settings = render_settings(req, backbone, config.max_image_side)
        prompt = check_prompt(req.prompt)

        def render() -> Any:
            return pipe(
                prompt,
                seed=req.seed,
                num_images=req.n,
                options=base_options,
                compare=False,
                rewrite=req.rewrite,
                settings=settings,
            )

        res = await run_job(request, lambda: worker.submit_call(render))
        rw = res.rewrite
        if len(res.rewritten_images) != req.n:
            raise RemoteServiceError(f"the backbone returned {len(res.rewritten_images)} of {req.n} images")
        pngs = [png_bytes(img, res.provenance(k)) for k, img in enumerate(res.rewritten_images)]
        if req.response_format == "url":
            base = (config.public_url or str(request.base_url)).rstrip("/")
            data = [{"url": f"{base}/v1/images/files/{store.put(png)}"} for png in pngs]
        else:
            data = [{"b64_json": base64.b64encode(png).decode("ascii")} for png in pngs]
        applied = res.settings["render"]
        return {
            "created": int(time.time()),
            "data": [{**d, "revised_prompt": rw.prompt} for d in data],
            "size": f"{applied['width']}x{applied['height']}",
            "output_format": "png",
            "background": "opaque",
            "reprompt": {
                "original": rw.original,
                "reasoning": rw.reasoning,
                "format_ok": rw.format_ok,
                "fallback": rw.fallback,
                "seeds": res.seeds,
                "settings": applied,
                "prompt_tokens": rw.prompt_tokens,
                "truncated": rw.truncated,
                "warnings": res.warnings,
                "ignored": [f for f in NO_EFFECT if getattr(req, f) is not None],
                "timings": res.timings,
                **(
                    {"scenes": [objects_to_json(scene) for scene in res.rewritten_scenes]}
                    if res.rewritten_scenes is not None
                    else {}
                ),
            },
        }

    @app.get("/v1/images/files/{name}", response_model=None, responses=error_responses(404))
    def image_file(name: str) -> FileResponse | SafeJSONResponse:
        path = store.get(name)
        if path is None:
            return openai_error(
                404, "no such image: it expired or never existed (images are kept for a while)"
            )
        return FileResponse(
            path,
            media_type="image/png",
            headers={"Cache-Control": "private, max-age=60", "X-Content-Type-Options": "nosniff"},
        )

    add_chat_routes(app, worker=worker, options=base_options, model_id=model_id, auth=auth, run_job=run_job)
    return app


class _Busy(Exception):
    pass
