"""The single source of the policy's chat messages (system prompt + user turn)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from reprompt.format.tags import REASON_PROMPT, TagFormat

SYSTEM_PROMPT = """\
You rewrite short requests for a text-to-image model so that the picture it draws matches the request \
exactly. First plan the scene inside {reason_open}{reason_close}: list every object the request names; \
state the exact number of each object; bind each color or attribute to the object it belongs to; decide \
where each object goes, both relative to the others and on the canvas (left, right, top, bottom, center); \
and resolve anything physically implausible in a way that keeps what the user asked for. Do not add \
objects the user did not ask for. Then write the final prompt inside {prompt_open}{prompt_close}: one \
vivid description that states every object with its exact count, its own color, and its place in the \
image, in under 70 words. Answer in exactly this form:
{reason_open}your plan{reason_close}
{prompt_open}the final prompt{prompt_close}"""

SYSTEM_PROMPT_NO_REASON = """\
You rewrite short requests for a text-to-image model so that the picture it draws matches the request \
exactly. Write one vivid description that states every object the request names with its exact count, \
its own color, and its place in the image (left, right, top, bottom, center), without adding objects \
the user did not ask for, in under 70 words. Answer in exactly this form:
{prompt_open}the final prompt{prompt_close}"""


def system_prompt(fmt: TagFormat = REASON_PROMPT) -> str:
    """The system prompt written for ``fmt``'s tag names."""
    if fmt.reason is None:
        return SYSTEM_PROMPT_NO_REASON.format(prompt_open=fmt.prompt_open, prompt_close=fmt.prompt_close)
    return SYSTEM_PROMPT.format(
        reason_open=f"<{fmt.reason}>",
        reason_close=f"</{fmt.reason}>",
        prompt_open=fmt.prompt_open,
        prompt_close=fmt.prompt_close,
    )


def _tag_pattern(fmt: TagFormat) -> re.Pattern[str]:
    names = "|".join(re.escape(t) for t in fmt.tag_names)
    return re.compile(rf"<\s*/?\s*(?:{names})\s*/?\s*>", re.IGNORECASE)


def sanitize_user_prompt(prompt: str, fmt: TagFormat = REASON_PROMPT) -> str:
    """Neutralise tag text in a user prompt (``</prompt>`` -> ``‹/prompt›``).

    The model never sees a literal tag coming from the user, so a prompt cannot smuggle in a
    ready-made ``<prompt>…</prompt>`` block that the parser would return as the model's answer.
    """
    return _tag_pattern(fmt).sub(lambda m: "‹" + m.group(0)[1:-1].strip() + "›", prompt)


def build_messages(
    prompt: str,
    fmt: TagFormat = REASON_PROMPT,
    system: str | None = None,
    examples: Sequence[tuple[str, str]] = (),
) -> list[dict[str, str]]:
    """Chat messages for one user prompt. Inference, SFT and GRPO all call this one function.

    ``examples`` are optional few-shot (user prompt, assistant completion) pairs placed before the
    user turn; small models need one to learn the format before training.
    """
    messages = [{"role": "system", "content": system if system is not None else system_prompt(fmt)}]
    for user, assistant in examples:
        messages.append({"role": "user", "content": sanitize_user_prompt(user.strip(), fmt)})
        messages.append({"role": "assistant", "content": assistant.strip()})
    messages.append({"role": "user", "content": sanitize_user_prompt(prompt.strip(), fmt)})
    return messages
