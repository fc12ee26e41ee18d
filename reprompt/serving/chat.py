"""The rewriter as an OpenAI-compatible chat model: ``POST /v1/chat/completions`` and ``GET /v1/models``.

The last user message is the prompt to enhance. Each choice's ``content`` is the enhanced prompt (the
original on fallback, so a client always gets something it can render), and the reasoning comes in both
``reasoning`` (vLLM's name for it today) and ``reasoning_content`` (its former name, which other servers
and clients still use). A ``reprompt`` block adds what an image pipeline needs to know: whether the
completion was well-formed, whether it fell back and why, the raw completion, its length in the
backbone's text-encoder tokens and whether that encoder truncates it. ``--policy openai`` reads that
block (``reprompt.policy.chat_reply``), so one ``reprompt serve`` can be another one's policy.

System messages and earlier turns are ignored: the policy is always prompted exactly as it was trained.
``stream: true`` is served as Server-Sent Events in OpenAI's chunk format; the chunks come once the
rewrite is complete, since the enhanced prompt is only known after the whole completion is parsed.
Requests go through the server's one :class:`~reprompt.serving.batching.ModelWorker`, so concurrent
chats are micro-batched into one ``generate`` call.
"""

# No ``from __future__ import annotations``: FastAPI reads the request models' annotations at runtime.
import dataclasses
import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException

from reprompt.errors import RepromptError
from reprompt.policy.base import GenerationOptions, Rewrite
from reprompt.serving.http import SafeStr

MAX_MESSAGES = 256
MAX_CHOICES = 8


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: SafeStr
    text: SafeStr | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: SafeStr
    content: SafeStr | list[ContentPart] | None = None


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")

    include_usage: bool = False


class ChatRequest(BaseModel):
    """OpenAI's chat-completions request; fields this server has no use for are ignored."""

    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)

    model: SafeStr
    messages: list[ChatMessage] = Field(min_length=1, max_length=MAX_MESSAGES)
    n: int = Field(default=1, ge=1, le=MAX_CHOICES)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    seed: int | None = Field(default=None, ge=0, le=2**63 - 1)
    repetition_penalty: float | None = Field(default=None, gt=0.0, le=10.0, description="vLLM extension")
    stream: bool = False
    stream_options: StreamOptions | None = None


def user_prompt(messages: list[ChatMessage]) -> str:
    """The text of the last user message (text parts joined); a clear error when there is none."""
    for message in reversed(messages):
        if message.role != "user":
            continue
        content = message.content
        if isinstance(content, list):
            content = " ".join(p.text for p in content if p.type == "text" and p.text)
        if not content or not content.strip():
            raise RepromptError("the last user message has no text: put the prompt to enhance there")
        return content
    raise RepromptError("no user message: send the prompt to enhance as the last user message")


def request_options(req: ChatRequest, base: GenerationOptions) -> GenerationOptions:
    """The server's generation options with the request's sampling fields; ``max_tokens`` is capped at the
    server's ``--max-new-tokens``."""
    asked = req.max_completion_tokens or req.max_tokens
    changes: dict[str, Any] = {"num_candidates": req.n}
    if asked is not None:
        changes["max_new_tokens"] = min(asked, base.max_new_tokens)
    for name, value in (("temperature", req.temperature), ("top_p", req.top_p), ("seed", req.seed)):
        if value is not None:
            changes[name] = value
    if req.repetition_penalty is not None:
        changes["repetition_penalty"] = req.repetition_penalty
    return dataclasses.replace(base, **changes)  # __post_init__ refuses bad combinations (400)


def _finish_reason(rw: Rewrite, options: GenerationOptions) -> str:
    return "length" if rw.completion_tokens >= options.max_new_tokens else "stop"


def _details(rw: Rewrite) -> dict[str, Any]:
    return {
        "format_ok": rw.format_ok,
        "fallback": rw.fallback,
        "recovered": rw.recovered,
        "issue": rw.issue,
        "completion_tokens": rw.completion_tokens,
        "prompt_tokens": rw.prompt_tokens,
        "token_limit": rw.token_limit,
        "truncated": rw.truncated,
        "completion": rw.completion,
    }


def chat_reply(
    rewrites: list[Rewrite], input_tokens: int | None, options: GenerationOptions, model_id: str
) -> dict[str, Any]:
    """A ``chat.completion`` object for one prompt's rewrites (one choice per candidate)."""
    completion_tokens = sum(rw.completion_tokens for rw in rewrites)
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model_id,
        "choices": [
            {
                "index": k,
                "message": {
                    "role": "assistant",
                    "content": rw.prompt,
                    "reasoning": rw.reasoning,
                    "reasoning_content": rw.reasoning,
                },
                "logprobs": None,
                "finish_reason": _finish_reason(rw, options),
            }
            for k, rw in enumerate(rewrites)
        ],
        "usage": {
            "prompt_tokens": input_tokens or 0,
            "completion_tokens": completion_tokens,
            "total_tokens": (input_tokens or 0) + completion_tokens,
        },
        "reprompt": {
            "original": rewrites[0].original,
            "choices": [{"index": k, **_details(rw)} for k, rw in enumerate(rewrites)],
        },
    }


def stream_events(reply: dict[str, Any], include_usage: bool) -> Iterator[str]:
    """The reply as ``chat.completion.chunk`` Server-Sent Events, ending with ``data: [DONE]``."""
    head = {k: reply[k] for k in ("id", "created", "model")} | {"object": "chat.completion.chunk"}

    def event(choices: list[dict[str, Any]], **extra: Any) -> str:
        return f"data: {json.dumps({**head, 'choices': choices, **extra}, ensure_ascii=True)}\n\n"

    for choice in reply["choices"]:
        k, message = choice["index"], choice["message"]
        yield event([{"index": k, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])
        if message["reasoning"]:
            delta = {"reasoning": message["reasoning"], "reasoning_content": message["reasoning"]}
            yield event([{"index": k, "delta": delta, "finish_reason": None}])
        yield event([{"index": k, "delta": {"content": message["content"]}, "finish_reason": None}])
        yield event([{"index": k, "delta": {}, "finish_reason": choice["finish_reason"]}])
    yield event([], reprompt=reply["reprompt"], **({"usage": reply["usage"]} if include_usage else {}))
    yield "data: [DONE]\n\n"


def add_chat_routes(
    app: FastAPI,
    *,
    worker: Any,
    options: GenerationOptions,
    model_id: str,
    auth: Callable[..., None],
    run_job: Callable[..., Any],
) -> None:
    """Register ``/v1/models`` and ``/v1/chat/completions`` on ``app`` (see the module docstring)."""
    from reprompt.policy.base import check_prompt

    created = int(time.time())

    @app.get("/v1/models", dependencies=[Depends(auth)])
    def models() -> dict[str, Any]:
        return {
            "object": "list",
            "data": [{"id": model_id, "object": "model", "created": created, "owned_by": "reprompt"}],
        }

    @app.post("/v1/chat/completions", dependencies=[Depends(auth)], response_model=None)
    async def chat(req: ChatRequest, request: Request) -> dict[str, Any] | StreamingResponse:
        if req.model != model_id:
            raise HTTPException(
                404, f"model {req.model!r} is not served here; GET /v1/models lists {model_id!r}"
            )
        prompt = check_prompt(user_prompt(req.messages))
        opts = request_options(req, options)
        result = await run_job(request, lambda: worker.submit_rewrite([prompt], opts))
        reply = chat_reply(result.rewrites, result.input_tokens[0], opts, model_id)
        if not req.stream:
            return reply
        include_usage = bool(req.stream_options and req.stream_options.include_usage)
        return StreamingResponse(stream_events(reply, include_usage), media_type="text/event-stream")
