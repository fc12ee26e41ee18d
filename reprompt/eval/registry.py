"""Benchmark tasks as versioned YAML files, and their metrics registered with their meaning.

As in lm-evaluation-harness: a task is declared in ``reprompt/eval/<task>/task.yaml``, one schema for every
task (``task``, ``layout: module:Class`` -- the task's side of the shared runner in
:mod:`reprompt.eval.runner` --, ``description``, ``dataset``, ``tags``, ``protocol``, ``metric_list`` and
``metadata.version``); a metric is registered with an aggregation and ``higher_is_better``, separately from
the per-image scorer that produces its inputs, and **computes the reported number**:
:meth:`Metric.compute` aggregates per-item values (within groups first, with ``group_by``/``then``), and the
benchmarks' summaries are these results, not numbers computed elsewhere. Aggregations are plain functions
from values to one number. Tasks are discovered by scanning for ``task.yaml`` files, so adding a benchmark
needs no edit here: a task file and its layout class. Nothing heavy is imported.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from reprompt.errors import ConfigError, RepromptError, did_you_mean
from reprompt.utils.io import read_yaml_mapping

Aggregation = Callable[[Sequence[float]], float]

AGGREGATIONS: dict[str, Aggregation] = {}


def register_aggregation(name: str) -> Callable[[Aggregation], Aggregation]:
    def wrap(fn: Aggregation) -> Aggregation:
        if name in AGGREGATIONS and AGGREGATIONS[name] is not fn:
            raise ConfigError(f"aggregation {name!r} is already registered")
        AGGREGATIONS[name] = fn
        return fn

    return wrap


@register_aggregation("mean")
def mean(values: Sequence[float]) -> float:
    """The mean, summed exactly (``math.fsum``, as ``statistics.fmean``); 0.0 for no values."""
    return math.fsum(values) / len(values) if values else 0.0


@register_aggregation("median")
def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else 0.0


@register_aggregation("geometric_mean")
def geometric_mean(values: Sequence[float]) -> float:
    """The geometric mean of non-negative values (``scipy.stats.gmean``: 0.0 as soon as one value is 0);
    0.0 for no values. GenEval 2's prompt-level Soft-TIFA (GM) is this over a prompt's atom scores."""
    if not values:
        return 0.0
    if any(v < 0 for v in values):
        raise ValueError("the geometric mean is defined for non-negative values only")
    if any(v == 0 for v in values):
        return 0.0
    return math.exp(math.fsum(math.log(v) for v in values) / len(values))


@register_aggregation("any")
def any_true(values: Sequence[float]) -> float:
    """1.0 if any item is truthy (e.g. 'a prompt has at least one correct image')."""
    return float(any(values))


@dataclass(frozen=True)
class Metric:
    """A metric's meaning: how items aggregate, which direction is better, and over what."""

    name: str
    aggregation: str = field(metadata={"help": "registered aggregation over items (mean, median, any)"})
    higher_is_better: bool = True
    over: str = field(default="image", metadata={"help": "the item the aggregation runs over"})
    group_by: str | None = field(
        default=None, metadata={"help": "aggregate within groups of items first (tag, prompt)"}
    )
    then: str | None = field(
        default=None, metadata={"help": "aggregation across groups (e.g. mean of per-tag means)"}
    )
    help: str = ""
    extra: tuple[tuple[str, Any], ...] = field(
        default=(), metadata={"help": "other keys of the YAML entry (e.g. the scoring model)"}
    )

    def __post_init__(self) -> None:
        for agg in (self.aggregation, self.then):
            if agg is not None and agg not in AGGREGATIONS:
                raise ConfigError(
                    f"metric {self.name!r}: unknown aggregation {agg!r}.{did_you_mean(agg, list(AGGREGATIONS))}"
                )

    def aggregate(self, values: Sequence[float]) -> float:
        return AGGREGATIONS[self.aggregation](values)

    def compute(
        self, items: Sequence[Mapping[str, Any]], order: Sequence[str] = ()
    ) -> float | dict[str, float]:
        """The metric over per-item records (each with its ``value`` and the ``group_by`` key): the
        aggregation over all items; with ``group_by``, per group (in ``order``, then the others sorted), and
        with ``then`` those group results aggregated again into one number (GenEval's overall: the mean of
        the per-tag means)."""
        if self.group_by is None:
            return self.aggregate([float(it["value"]) for it in items])
        per_group = self.per_group(items, order)
        if self.then is None:
            return per_group
        return AGGREGATIONS[self.then](list(per_group.values()))

    def per_group(self, items: Sequence[Mapping[str, Any]], order: Sequence[str] = ()) -> dict[str, float]:
        """The aggregation within each ``group_by`` group (in ``order``, then the others sorted), before any
        ``then`` (GenEval 2: each image's Soft-TIFA GM, which its per-atomicity analysis averages again)."""
        if self.group_by is None:
            raise RepromptError(f"metric {self.name!r} has no group_by")
        groups: dict[str, list[float]] = {}
        for it in items:
            groups.setdefault(str(it[self.group_by]), []).append(float(it["value"]))
        rank = {name: i for i, name in enumerate(order)}
        keys = sorted(groups, key=lambda k: (rank.get(k, len(rank)), k))
        return {k: self.aggregate(groups[k]) for k in keys}

    def score(self, items: Sequence[Mapping[str, Any]], order: Sequence[str] = ()) -> float:
        """:meth:`compute` for a metric that gives one number (no ``group_by``, or a ``then``)."""
        result = self.compute(items, order)
        if isinstance(result, dict):
            raise RepromptError(f"metric {self.name!r} gives one number per {self.group_by}, not one number")
        return result

    def info(self) -> dict[str, Any]:
        """What the metric means, as written into result files (help, aggregation, direction, and the
        task file's other keys, such as the scoring model)."""
        return {
            "help": self.help,
            **dict(self.extra),
            "aggregation": self.aggregation,
            "higher_is_better": self.higher_is_better,
        }


METRICS: dict[str, Metric] = {}
TASK_KEYS = ("task", "layout", "description", "dataset", "tags", "protocol", "metric_list", "metadata")
"""The one task.yaml schema (lm-evaluation-harness's spelling)."""
_METRIC_FIELDS = ("aggregation", "higher_is_better", "over", "group_by", "then", "help")


def register_metric(metric: Metric, task: str | None = None) -> Metric:
    """Register a metric under ``task/name`` (or ``name``); the same definition twice is a no-op."""
    key = f"{task}/{metric.name}" if task else metric.name
    old = METRICS.get(key)
    if old is not None and old != metric:
        raise ConfigError(f"metric {key!r} is already registered with a different definition")
    METRICS[key] = metric
    return metric


def get_metric(name: str) -> Metric:
    """A registered metric by ``task/name`` (tasks register theirs when loaded)."""
    if name not in METRICS:
        raise RepromptError(f"unknown metric {name!r}.{did_you_mean(name, list(METRICS))}")
    return METRICS[name]


@dataclass(frozen=True)
class TaskConfig:
    """A task YAML, parsed. ``protocol`` holds the benchmark's fixed settings (images, seed, scorer)."""

    task: str
    version: str
    description: str
    tags: tuple[str, ...]
    metrics: tuple[Metric, ...]
    protocol: dict[str, Any]
    path: Path
    layout: str | None = None
    """``module:Class`` of the task's :class:`~reprompt.eval.runner.Layout` (None: scoring only)."""
    dataset: dict[str, Any] = field(default_factory=dict)
    """What the task's data is (files, splits, categories): read by the task's own modules."""

    def metric(self, name: str) -> Metric:
        for m in self.metrics:
            if m.name == name:
                return m
        raise RepromptError(
            f"task {self.task!r} has no metric {name!r}.{did_you_mean(name, [m.name for m in self.metrics])}"
        )

    @property
    def higher_is_better(self) -> dict[str, bool]:
        return {m.name: m.higher_is_better for m in self.metrics}

    def compute(
        self,
        items: Sequence[Mapping[str, Any]],
        names: Sequence[str] | None = None,
        order: Sequence[str] = (),
    ) -> dict[str, float | dict[str, float]]:
        """Every metric (or the ``names`` given) over the same per-item records (see :meth:`Metric.compute`)."""
        return {m.name: m.compute(items, order) for m in self.metrics if names is None or m.name in names}


def _task_files() -> dict[str, Path]:
    root = Path(__file__).parent
    out: dict[str, Path] = {}
    for path in sorted(root.glob("*/task.yaml")):
        out[read_yaml_mapping(path, "task file").get("task", path.parent.name)] = path
    return out


def task_names() -> list[str]:
    return sorted(_task_files())


@cache
def load_task(name_or_path: str) -> TaskConfig:
    """Load a task by name (``geneval``) or from a YAML path, registering its metrics."""
    path = Path(name_or_path)
    if not path.suffix:
        files = _task_files()
        if name_or_path not in files:
            raise RepromptError(
                f"unknown task {name_or_path!r}: known tasks are {', '.join(files) or 'none'}."
                + did_you_mean(name_or_path, list(files))
            )
        path = files[name_or_path]
    data = read_yaml_mapping(path, "task file")
    unknown = sorted(set(data) - set(TASK_KEYS))
    if unknown:
        raise ConfigError(
            f"task file {path}: unknown key(s) {unknown}.{did_you_mean(unknown[0], list(TASK_KEYS))} A task file "
            f"has {', '.join(TASK_KEYS)}"
        )
    version = str((data.get("metadata") or {}).get("version", ""))
    entries = list(data.get("metric_list") or [])
    if "task" not in data or not version or not entries:
        raise ConfigError(
            f"task file {path} needs 'task', 'metadata: {{version}}' and at least one metric_list entry"
        )
    metrics = []
    for entry in entries:
        entry = dict(entry)
        name = entry.pop("metric", None)
        if not name:
            raise ConfigError(f"task file {path}: every metric_list entry needs 'metric'")
        known = {k: entry.pop(k) for k in list(entry) if k in _METRIC_FIELDS}
        try:
            metric = Metric(name=name, **known, extra=tuple(sorted(entry.items())))
        except TypeError as e:
            raise ConfigError(f"task file {path}, metric {name!r}: {e}") from e
        metrics.append(register_metric(metric, task=str(data["task"])))
    return TaskConfig(
        task=data["task"],
        version=version,
        description=str(data.get("description", "")).strip(),
        tags=tuple(data.get("tags", ())),
        metrics=tuple(metrics),
        protocol=dict(data.get("protocol", {})),
        path=path,
        layout=data.get("layout"),
        dataset=dict(data.get("dataset") or {}),
    )


def get_layout(name: str) -> Any:
    """A new instance of the runner layout that task ``name`` declares."""
    import importlib

    task = load_task(name)
    if not task.layout or ":" not in task.layout:
        raise ConfigError(f"task {name!r} ({task.path}) declares no runner layout ('layout: module:Class')")
    module, attr = task.layout.split(":")
    return getattr(importlib.import_module(module), attr)()
