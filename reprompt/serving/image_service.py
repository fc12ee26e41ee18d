"""HTTP service for people who serve images: rewrite and render behind one endpoint.

``POST /v1/images/generations`` follows OpenAI's Images API (``prompt``, ``n``, ``size``,
``response_format="b64_json"``) and, like it, returns each image's ``revised_prompt``; extra fields give
the reasoning, a ``seed`` and a ``rewrite`` off switch. ``POST /v1/rewrite`` returns rewrites only.
JSON and base64 PNG only (no pickle); optional bearer token from an environment variable; one model call
at a time (a lock), since the policy and pipeline hold the accelerator.
"""

# No ``from __future__ import annotations``: FastAPI reads the request models' annotations at runtime.
import hmac
import os
import threading
import time
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from reprompt.errors import RepromptError
from reprompt.policy.base import MAX_PROMPT_CHARS

MAX_IMAGES = 8
MAX_BATCH_PROMPTS = 64


class ImagesRequest(BaseModel):
    prompt: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS)
    n: int = Field(default=1, ge=1, le=MAX_IMAGES)
    size: str | None = Field(default=None, description="WIDTHxHEIGHT; must match the backbone")
    response_format: str = Field(default="b64_json", pattern="^b64_json$")
    seed: int = 0
    rewrite: bool = Field(default=True, description="false renders the prompt as given")
    model: str | None = None


class RewriteRequest(BaseModel):
    prompts: list[str] = Field(min_length=1, max_length=MAX_BATCH_PROMPTS)


def create_app(policy: Any, backbone: Any, token_env: str | None = None, options: Any = None) -> Any:
    """A FastAPI app over a built policy and backbone. ``token_env`` names the variable with the token."""
    from reprompt.pipeline import RePromptPipeline
    from reprompt.policy.base import GenerationOptions
    from reprompt.serving.codec import encode_png

    token = os.environ.get(token_env, "") if token_env else ""
    if token_env and not token:
        raise RepromptError(f"--token-env {token_env} is set but the variable is empty")
    pipe = RePromptPipeline(policy, backbone)
    lock = threading.Lock()
    base_options = options or GenerationOptions()
    app = FastAPI(title="reprompt", version="1")

    def auth(request: Request) -> None:
        if not token:
            return
        got = request.headers.get("authorization", "")
        if not hmac.compare_digest(got.encode(), f"Bearer {token}".encode()):
            raise HTTPException(status_code=401, detail="missing or wrong bearer token")

    @app.exception_handler(RepromptError)
    async def user_error(_request: Request, exc: RepromptError) -> JSONResponse:
        return JSONResponse(status_code=400, content={"error": {"message": str(exc)}})

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "policy": policy.name, "backbone": backbone.name}

    @app.post("/v1/rewrite", dependencies=[Depends(auth)])
    def rewrite(req: RewriteRequest) -> dict[str, Any]:
        with lock:
            out = policy.rewrite(req.prompts, options=base_options, token_counter=backbone.count_tokens)
        return {"data": [r.to_dict() for r in out]}

    @app.post("/v1/images/generations", dependencies=[Depends(auth)])
    def images(req: ImagesRequest) -> dict[str, Any]:
        if req.size is not None:
            w = getattr(backbone, "width", None) or getattr(getattr(backbone, "config", None), "width", None)
            h = getattr(backbone, "height", None) or getattr(
                getattr(backbone, "config", None), "height", None
            )
            if req.size != f"{w}x{h}":
                raise RepromptError(f"size {req.size!r} is not served here; this backbone renders {w}x{h}")
        with lock:
            if req.rewrite:
                res = pipe(req.prompt, seed=req.seed, num_images=req.n, options=base_options, compare=False)
            else:
                from reprompt.policy.base import IdentityRewriter

                res = RePromptPipeline(IdentityRewriter(), backbone)(
                    req.prompt, seed=req.seed, num_images=req.n
                )
        rw = res.rewrite
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

    return app
