"""Network defaults in one place: every server reprompt starts binds to this machine only unless told
otherwise, and an OpenAI-compatible policy is looked for on this machine with its key read from the
environment (never passed or logged as a value)."""

import ipaddress

from reprompt.errors import check_range

LOCALHOST = "127.0.0.1"
"""Default bind address of ``reprompt serve``, ``reprompt ui`` and the reward service."""

LOCAL_API_BASE = f"http://{LOCALHOST}:8000/v1"
"""Where an OpenAI-compatible policy is looked for unless told otherwise: vLLM's default port, on localhost."""

API_KEY_ENV = "OPENAI_API_KEY"
"""The environment variable read for a bearer key (the OpenAI SDK's own default name)."""

REWARD_TOKEN_ENV = "REPROMPT_REWARD_TOKEN"
"""The environment variable holding the reward service's bearer token, for the service and its clients."""


def is_loopback(host: str) -> bool:
    """Whether a bind address is reachable from this machine only (servers exposed beyond it want a token)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_port(what: str, port: int, *, free: bool = False) -> None:
    """Refuse a port a server cannot bind, before any model loads. ``free``: 0 asks the system for a free port
    (``reprompt ui`` says which); the other servers print the URL they serve on, so they want a real one."""
    check_range(what, port, 0 if free else 1, 65535)
