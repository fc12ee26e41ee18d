"""Client of the reward service: the same ``score(...)`` as an in-process :class:`CompositeReward`.

Several service URLs are used in turn, with the failover and retry policy of
:class:`~reprompt.utils.failover.FailoverClient`. The reply is checked (every list holds one entry per
completion, scores are numbers or null) before it reaches training. The bearer token is passed in
(``token=``) or read from an env var (``token_env``, default ``REPROMPT_REWARD_TOKEN``) at each request,
and is never logged.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from reprompt.errors import RemoteServiceError, RepromptError
from reprompt.rewards.base import ScoredBatch
from reprompt.utils.endpoints import REWARD_TOKEN_ENV
from reprompt.utils.failover import FailoverClient


class RewardClient(FailoverClient):
    """``RewardClient(urls, token_env=...)``; ``timeout``: seconds to wait for one reply (a batch renders
    and scores in that time), ``connect_timeout``: seconds to reach a host."""

    service = "reward service"

    def __init__(
        self, urls: str | Sequence[str], *, token_env: str | None = REWARD_TOKEN_ENV, **kw: Any
    ) -> None:
        super().__init__(urls, token_env=token_env, **kw)
        self._info: dict[str, Any] | None = None

    # -------------------------------------------------------------------------------------- api
    def health(self) -> dict[str, Any]:
        return self.request("GET", "/health")

    def info(self) -> dict[str, Any]:
        if self._info is None:
            self._info = self.request("GET", "/info")
        return self._info

    @property
    def component_names(self) -> list[str]:
        return list(self.info()["components"])

    @property
    def weights(self) -> dict[str, float]:
        return {k: float(v) for k, v in self.info()["weights"].items()}

    def score(
        self,
        originals: Sequence[str],
        completions: Sequence[str],
        metadata: Sequence[Any] | None = None,
        seeds: Sequence[Sequence[int]] | None = None,
        round: int = 0,
        keep_images: bool = False,
    ) -> ScoredBatch:
        """Score remotely; the result equals in-process scoring with the same config and seeds."""
        if len(originals) != len(completions):
            raise RepromptError(f"got {len(originals)} originals but {len(completions)} completions")
        payload: dict[str, Any] = {
            "originals": list(originals),
            "completions": list(completions),
            "round": int(round),
            "return_images": bool(keep_images),
        }
        if metadata is not None:
            payload["metadata"] = list(metadata)
        if seeds is not None:
            payload["seeds"] = [list(map(int, s)) for s in seeds]
        data = self.request("POST", "/score", payload)
        check_scored_reply(data, len(completions), keep_images)
        return ScoredBatch.from_dict(data)


def check_scored_reply(data: dict[str, Any], n: int, images: bool = False) -> None:
    """Refuse a reply that does not hold one entry per completion everywhere (a short batch or a
    string where a score belongs must not reach training)."""

    def bad(what: str) -> RemoteServiceError:
        return RemoteServiceError(f"the reward service sent a malformed reply: {what} (for {n} completions)")

    def scores(name: str, values: Any) -> None:
        if not isinstance(values, list) or len(values) != n:
            raise bad(
                f"{name} has {len(values) if isinstance(values, list) else type(values).__name__} entries"
            )
        for v in values:
            ok = v is None or (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v))
            if not ok:
                raise bad(f"{name} holds {v!r}, not a number or null")

    for key in ("components", "normalized", "weights", "total", "raw_total", "prompts", "seeds", "format_ok"):
        if key not in data:
            raise bad(f"{key!r} is missing")
    scores("total", data["total"])
    scores("raw_total", data["raw_total"])
    for key in ("components", "normalized", "baseline", "improvement"):
        table = data.get(key)
        if table is None and key in ("baseline", "improvement"):
            continue
        if not isinstance(table, dict):
            raise bad(f"{key} is not an object")
        for name, values in table.items():
            scores(f"{key}.{name}", values)
    for key, kind in (("prompts", str), ("seeds", list), ("format_ok", bool), ("fallback", bool)):
        values = data.get(key)
        if not isinstance(values, list) or len(values) != n or not all(isinstance(v, kind) for v in values):
            raise bad(f"{key} must hold {n} values of type {kind.__name__}")
    assigned = data.get("assigned")
    if assigned is not None and (
        not isinstance(assigned, list) or len(assigned) != n or not all(isinstance(v, bool) for v in assigned)
    ):
        raise bad(f"assigned must hold {n} values of type bool")
    if images and (not isinstance(data.get("images"), list) or len(data["images"]) != n):
        raise bad("images were asked for but the reply does not hold one row per completion")
