"""What ``POST /v1/chat/completions`` accepts: every field of OpenAI's request is applied, accepted because it
asks for nothing this server would do differently, or refused with a 400 naming it. Nothing is ignored
silently, since a client that asked for JSON output, tool calls or log-probabilities and got plain text
would go wrong without a word.

- **Applied**: ``model``, ``messages`` (the last user message is the prompt), ``n``, ``temperature``,
  ``top_p``, ``max_completion_tokens``/``max_tokens`` (capped at the server's ``--max-new-tokens``),
  ``seed``, ``stream``, ``stream_options.include_usage``, and vLLM's ``repetition_penalty``.
- **Accepted, nothing to do** (identifiers, caching and billing hints, or a value that asks for what the
  server does anyway): ``user``, ``safety_identifier``, ``metadata``, ``prompt_cache_key``,
  ``prompt_cache_retention``, ``prompt_cache_options``, ``service_tier``, ``parallel_tool_calls``,
  ``store: false``, ``response_format: {"type": "text"}``, ``modalities: ["text"]``, ``logprobs: false``,
  ``top_logprobs: 0``, ``frequency_penalty``/``presence_penalty`` of 0, an empty ``stop``, ``logit_bias``,
  ``tools`` or ``functions``, ``tool_choice``/``function_call`` of ``"none"`` or ``"auto"`` (with no tools
  there is nothing to call), ``stream_options.include_obfuscation: false``.
- **Refused** (400, ``param`` names the field): any other value of those, and ``audio``, ``prediction``,
  ``reasoning_effort``, ``verbosity``, ``web_search_options``, ``moderation`` and fields OpenAI does not
  define. The reasons are in :data:`REFUSED`.
"""

# No ``from __future__ import annotations``: FastAPI reads the request models' annotations at runtime.
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from reprompt.serving.http import SafeStr

MAX_MESSAGES = 256
MAX_CHOICES = 8

NO_EFFECT = (
    "user",
    "safety_identifier",
    "metadata",
    "prompt_cache_key",
    "prompt_cache_retention",
    "prompt_cache_options",
    "service_tier",
    "parallel_tool_calls",
)
"""Fields that ask for nothing about the reply: accepted whatever their value."""

REFUSED = {
    "stop": "stop sequences are not supported: the reply's content is the prompt parsed from the whole "
    "completion, which a stop sequence would cut short; send the request without stop",
    "response_format": 'only response_format {"type": "text"} is served: the reply is the enhanced prompt as '
    "plain text; send the request without response_format",
    "tools": "tool calls are not supported: this model only rewrites image prompts; send the request "
    "without tools",
    "functions": "function calls are not supported: this model only rewrites image prompts; send the request "
    "without functions",
    "tool_choice": 'tool_choice other than "none" or "auto" is not supported: there are no tools to call',
    "function_call": 'function_call other than "none" or "auto" is not supported: there are no functions',
    "logprobs": "logprobs are not supported: the policy backend does not report them; send logprobs: false",
    "top_logprobs": "top_logprobs is not supported (no logprobs); send it as 0 or not at all",
    "frequency_penalty": "frequency_penalty is not supported; use repetition_penalty (the vLLM extension) "
    "or send 0",
    "presence_penalty": "presence_penalty is not supported; use repetition_penalty (the vLLM extension) "
    "or send 0",
    "logit_bias": "logit_bias is not supported; send the request without it",
    "audio": "audio output is not supported: the reply is text",
    "modalities": 'only modalities ["text"] are served',
    "store": "stored completions are not supported: nothing is kept after the reply; send store: false",
    "prediction": "predicted outputs are not supported; send the request without prediction",
    "reasoning_effort": "reasoning_effort is not supported: the policy always plans the way it was trained",
    "verbosity": "verbosity is not supported: the prompt's length is the policy's (see --max-new-tokens)",
    "web_search_options": "web search is not supported",
    "moderation": "moderation is not supported by this server",
    "stream_options.include_obfuscation": "stream obfuscation is not supported; send include_obfuscation: "
    "false",
}
"""Why each field (at a value this server would not honour) is refused; the 400's message."""


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: SafeStr
    text: SafeStr | None = None


class ChatMessage(BaseModel):
    """A message: only the last user message is read (the policy is prompted as it was trained), so
    other roles' fields (``name``, ``tool_calls``...) are accepted and not used."""

    model_config = ConfigDict(extra="ignore")

    role: SafeStr
    content: SafeStr | list[ContentPart] | None = None


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")

    include_usage: bool = False
    include_obfuscation: bool | None = None


class ChatRequest(BaseModel):
    """OpenAI's chat-completions request (see the module docstring for what each field does here)."""

    model_config = ConfigDict(extra="allow", allow_inf_nan=False)

    model: SafeStr
    messages: list[ChatMessage] = Field(min_length=1, max_length=MAX_MESSAGES)
    n: int = Field(default=1, ge=1, le=MAX_CHOICES)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    seed: int | None = Field(default=None, ge=0, le=2**63 - 1)
    repetition_penalty: float | None = Field(default=None, gt=0.0, le=10.0, description="vLLM extension")
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    # accepted only at values that ask for what the server does anyway (else 400: REFUSED says why)
    stop: SafeStr | list[SafeStr] | None = None
    response_format: dict[str, Any] | None = None
    tools: list[Any] | None = None
    functions: list[Any] | None = None
    tool_choice: SafeStr | dict[str, Any] | None = None
    function_call: SafeStr | dict[str, Any] | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    logit_bias: dict[str, Any] | None = None
    modalities: list[SafeStr] | None = None
    store: bool | None = None
    # accepted whatever their value (NO_EFFECT)
    user: SafeStr | None = None
    safety_identifier: SafeStr | None = None
    metadata: dict[str, Any] | None = None
    prompt_cache_key: SafeStr | None = None
    prompt_cache_retention: SafeStr | None = None
    prompt_cache_options: dict[str, Any] | None = None
    service_tier: SafeStr | None = None
    parallel_tool_calls: bool | None = None


def _asks_nothing(name: str, value: Any) -> bool:
    """Whether ``value`` of field ``name`` asks for what the server does anyway."""
    if value is None:
        return True
    if name in ("stop", "tools", "functions", "logit_bias"):
        return not value  # "" / [] / {}
    if name == "response_format":
        return value.get("type") == "text"
    if name in ("tool_choice", "function_call"):
        return value in ("none", "auto")
    if name in ("logprobs", "store"):
        return value is False
    if name == "top_logprobs":
        return value == 0
    if name in ("frequency_penalty", "presence_penalty"):
        return value == 0
    if name == "modalities":
        return list(value) == ["text"]
    return False


def refused_field(req: ChatRequest) -> tuple[str, str] | None:
    """(field, message starting with the field's name) for the first field of ``req`` the server will not
    honour; None when it can serve the request as asked."""
    found = _refused(req)
    return None if found is None else (found[0], f"{found[0]}: {found[1]}")


def _refused(req: ChatRequest) -> tuple[str, str] | None:
    for name in REFUSED:
        if name in ChatRequest.model_fields and not _asks_nothing(name, getattr(req, name)):
            return name, REFUSED[name]
    options = req.stream_options
    if options is not None:
        if options.include_obfuscation:
            name = "stream_options.include_obfuscation"
            return name, REFUSED[name]
        for name, value in (options.model_extra or {}).items():
            if value is not None:
                return f"stream_options.{name}", "unknown field: this server does not support it"
    for name, value in (req.model_extra or {}).items():
        if value is None:
            continue  # an explicit null asks for nothing
        if name in REFUSED:
            return name, REFUSED[name]
        return name, "unknown field: this server does not support it; send the request without it"
    return None
