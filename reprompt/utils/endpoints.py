"""Defaults for OpenAI-compatible endpoints, in one place: a policy served on this machine (vLLM, or
``reprompt serve``) and the environment variable that holds its key (never the key itself)."""

LOCAL_API_BASE = "http://127.0.0.1:8000/v1"
"""Where an OpenAI-compatible policy is looked for unless told otherwise: vLLM's default port, on localhost."""

API_KEY_ENV = "OPENAI_API_KEY"
"""The environment variable read for a bearer key (the OpenAI SDK's own default name)."""
