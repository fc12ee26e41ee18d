"""The rewriter as an OpenAI-compatible chat model: ``POST /v1/chat/completions`` and ``GET /v1/models``.

The last user message is the prompt to enhance. Each choice's ``content`` is the enhanced prompt (the
original on fallback, so a client always gets something it can render), and the reasoning comes in both
``reasoning`` (vLLM's name for it today) and ``reasoning_content`` (its former name, which other servers
and clients still use). A ``reprompt`` block adds what an image pipeline needs to know: whether the
completion was well-formed, whether it fell back and why, the raw completion, its length in the
backbone's text-encoder tokens and whether that encoder truncates it. ``--policy openai`` reads that
block (``reprompt.policy.chat_reply``), so one ``reprompt serve`` can be another one's policy.

System messages and earlier turns are ignored: the policy is always prompted exactly as it was trained.
Every other request field is applied, accepted because it asks for nothing, or refused with a 400 that
names it (:mod:`reprompt.serving.chat_request`). ``GET /v1/models/{id}`` answers the served model or 404.
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

from reprompt.errors import RepromptError
from reprompt.policy.base import GenerationOptions, Rewrite
from reprompt.serving.chat_request import ChatMessage, ChatRequest, refused_field
from reprompt.serving.http import clean_message, error_responses, openai_error


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

    served = {"id": model_id, "object": "model", "created": created, "owned_by": "reprompt"}

    def not_served(name: str) -> Any:
        return openai_error(
            404,
            f"model {name!r} is not served here; GET /v1/models lists {model_id!r}",
            param="model",
            code="model_not_found",
        )

    @app.get("/v1/models", dependencies=[Depends(auth)], responses=error_responses(401))
    def models() -> dict[str, Any]:
        return {"object": "list", "data": [served]}

    @app.get(
        "/v1/models/{model:path}",
        dependencies=[Depends(auth)],
        response_model=None,
        responses=error_responses(401, 404),
    )
    def model(model: str) -> Any:
        return served if model == model_id else not_served(model)

    @app.post(
        "/v1/chat/completions",
        dependencies=[Depends(auth)],
        response_model=None,
        responses=error_responses(400, 401, 404, 413, 422, 429, 500, 502),
    )
    async def chat(req: ChatRequest, request: Request) -> Any:
        if req.model != model_id:
            return not_served(req.model)
        refused = refused_field(req)
        if refused is not None:
            name, message = refused
            return openai_error(400, message, param=clean_message(name), code="unsupported_parameter")
        prompt = check_prompt(user_prompt(req.messages))
        opts = request_options(req, options)
        result = await run_job(request, lambda: worker.submit_rewrite([prompt], opts))
        reply = chat_reply(result.rewrites, result.input_tokens[0], opts, model_id)
        if not req.stream:
            return reply
        include_usage = bool(req.stream_options and req.stream_options.include_usage)
        return StreamingResponse(stream_events(reply, include_usage), media_type="text/event-stream")
