"""What the UI, the ComfyUI node and the diffusers wrapper share: naming a policy the way their users do
(a registered name, a folder, or an OpenAI-compatible URL), picking one of several candidates, and
giving memory back after use (peers' most common complaint is an enhancer that keeps the GPU full).

Only the standard library at import time (httpx when a URL is listed); torch is touched only if something already imported it.
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from reprompt.errors import RemoteServiceError, RepromptError
from reprompt.utils.endpoints import API_KEY_ENV

if TYPE_CHECKING:
    from reprompt.policy.base import Rewrite, Rewriter


def is_url(name: str) -> bool:
    """Whether a policy name is an OpenAI-compatible endpoint rather than a local model."""
    return name.strip().lower().startswith(("http://", "https://"))


def served_models(base_url: str, api_key_env: str | None = API_KEY_ENV, timeout: float = 10.0) -> list[str]:
    """Model ids listed by ``GET {base_url}/models`` (the OpenAI convention, also vLLM's and reprompt's)."""
    import httpx

    url = base_url.rstrip("/") + "/models"
    key = os.environ.get(api_key_env, "") if api_key_env else ""
    try:
        r = httpx.get(url, headers={"Authorization": f"Bearer {key}"} if key else {}, timeout=timeout)
        r.raise_for_status()
        return [m["id"] for m in r.json()["data"]]
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as e:
        raise RemoteServiceError(
            f"could not list models at {url} ({type(e).__name__}); give the base URL ending in /v1, "
            "or name the model explicitly (api_model)"
        ) from e


def load_named_policy(name: str, **kw: Any) -> Rewriter:
    """``load_policy`` that also takes an OpenAI-compatible base URL as the policy name.

    A URL becomes ``load_policy("openai", api_base=URL, ...)``; without ``api_model`` it uses the first
    model the endpoint lists. Everything else (``none``, ``smollm2-sketch``, ``qwen2.5-3b``, a folder, a
    hub id) goes to :func:`reprompt.policy.load_policy` with ``kw`` (``device``, ``dtype``, ...).
    """
    from reprompt.policy import load_policy

    name = (name or "").strip()
    if not name:
        raise RepromptError("name a policy: none, smollm2-sketch, a model folder, or an http(s) URL")
    if is_url(name):
        kw["api_base"] = name
        if not kw.get("api_model"):
            models = served_models(name, kw.get("api_key_env", API_KEY_ENV))
            if not models:
                raise RemoteServiceError(f"{name} lists no models; name one with api_model")
            kw["api_model"] = models[0]
        name = "openai"
    return load_policy(name, **kw)


def pick_rewrite(candidates: Sequence[Rewrite]) -> Rewrite:
    """The candidate to render: the first one in the format that the intent guard (if it ran) passed,
    else the first one in the format, else the first (which then falls back to the original prompt)."""
    if not candidates:
        raise RepromptError("the policy returned no candidates")

    def guard_ok(c: Rewrite) -> bool:
        report = getattr(c, "guard", None)
        return report is None or report.ok

    return next(
        (c for c in candidates if not c.fallback and guard_ok(c)),
        next((c for c in candidates if not c.fallback), candidates[0]),
    )


def guard_modes() -> tuple[str, ...]:
    """The intent guard's modes (``off``, ``warn``, ``retry``, ``fallback``), or ``()`` in a build
    without :mod:`reprompt.guard`; front ends show a guard control only when there is one."""
    try:
        from reprompt.guard import GUARD_MODES
    except ImportError:
        return ()
    return tuple(GUARD_MODES)


def group_candidates(rewrites: Sequence[Rewrite], n_prompts: int) -> list[list[Rewrite]]:
    """Split ``Rewriter.rewrite``'s flat list (grouped by prompt) into one list per prompt."""
    if n_prompts < 1 or len(rewrites) % n_prompts:
        raise RepromptError(f"{len(rewrites)} rewrites do not split over {n_prompts} prompts")
    n = len(rewrites) // n_prompts
    return [list(rewrites[i * n : (i + 1) * n]) for i in range(n_prompts)]


def auto_device() -> str:
    """``cuda`` when a GPU is visible, else ``mps`` on Apple silicon, else ``cpu``."""
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def free_memory() -> None:
    """Collect garbage and return cached accelerator memory to the driver.

    Call it after dropping the last reference to a model: the weights are freed by the collector, and
    the CUDA caching allocator keeps the blocks until ``empty_cache``.
    """
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is None:
        return
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    mps = getattr(torch, "mps", None)
    if (
        mps is not None
        and getattr(torch.backends, "mps", None) is not None
        and torch.backends.mps.is_available()
    ):
        mps.empty_cache()
