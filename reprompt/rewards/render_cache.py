"""Images the reward already rendered, kept for the next time the same request comes: the paired baseline.

The paired baseline renders the ORIGINAL prompt with the group's seeds. With seeds that depend on the
prompt only (``seed_schedule: per_prompt``) that is the same image every epoch, so it is rendered once and
then read from here. A request is keyed by what decides its image: the backbone (name, what was loaded,
its settings), the call's render settings, the prompt and the seed. The cache is bounded (least recently
used first out) and lives in one process: every training process keeps its own.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from reprompt.backbones.base import Backbone, RenderSettings


def backbone_key(backbone: Backbone, settings: RenderSettings | None) -> str:
    """What decides a backbone's images besides prompt and seed, as one string."""
    resolved, revision = backbone.source()
    return json.dumps(
        {
            "name": backbone.name,
            "source": [resolved, revision],
            "settings": backbone.settings(),
            "call": asdict(settings) if settings is not None else None,
        },
        sort_keys=True,
        default=str,
    )


class RenderCache:
    """``max_images`` rendered images (with the scene a simulator drew), least recently used out first."""

    def __init__(self, max_images: int) -> None:
        self.max_images = max(int(max_images), 0)
        self._items: OrderedDict[Hashable, tuple[Any, Any]] = OrderedDict()
        self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: Hashable) -> tuple[Any, Any] | None:
        """(image, scene) of ``key``, or None (counted as a hit or a miss)."""
        item = self._items.get(key)
        if item is None:
            self.misses += 1
            return None
        self._items.move_to_end(key)
        self.hits += 1
        return item

    def put(self, key: Hashable, image: Any, scene: Any) -> None:
        if not self.max_images:
            return
        self._items[key] = (image, scene)
        self._items.move_to_end(key)
        while len(self._items) > self.max_images:
            self._items.popitem(last=False)
