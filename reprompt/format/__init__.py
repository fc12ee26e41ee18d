"""The policy's output format: ``<reason>H</reason><prompt>P'</prompt>``.

Pure functions, no heavy imports. One function, :func:`build_messages`, produces the chat messages for a
user prompt; inference, SFT and GRPO all call it, so the policy sees identical tokens in training and use.
"""

from reprompt.format.messages import SYSTEM_PROMPT, build_messages, sanitize_user_prompt
from reprompt.format.parse import ParsedCompletion, parse_completion, render_completion
from reprompt.format.spec import ONE_SHOT, SPEC_FILE, PromptSpec
from reprompt.format.tags import PROMPT_ONLY, REASON_PROMPT, THINK_ANSWER, TagFormat, get_tag_format

__all__ = [
    "ONE_SHOT",
    "PROMPT_ONLY",
    "PromptSpec",
    "SPEC_FILE",
    "REASON_PROMPT",
    "SYSTEM_PROMPT",
    "THINK_ANSWER",
    "ParsedCompletion",
    "TagFormat",
    "build_messages",
    "get_tag_format",
    "parse_completion",
    "render_completion",
    "sanitize_user_prompt",
]
