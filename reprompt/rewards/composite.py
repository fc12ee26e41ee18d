"""The composite reward: render once, score many. (original prompt, completion) pairs -> per-component
scores and ``R_total = sum_c weight_c * normalize(component_c)``.

For a batch of N completions :class:`CompositeReward`
1. parses each completion (:func:`reprompt.format.parse_completion`); one with no usable prompt block
   (a fallback) is scored by the configured rule (``fallback_score``): in training it is not rendered and
   gets the worst score of its group in every component (:func:`no_harbour`), because rendering the
   user's ORIGINAL prompt for it, as inference does, would make falling back a safe harbour;
2. gives every completion of one original prompt the same K seeds (the group then differs only by its
   prompts), derived from ``(seed, round, original)`` -- or ``(seed, original)`` under ``seed_schedule:
   per_prompt`` -- unless the caller passes seeds;
3. renders each (prompt, seed) pair once -- N x K images, plus the original prompt with the same seeds
   for the paired baseline -- in one backbone call with the reward's render profile (``render``), serves
   baseline images it rendered before from a bounded cache, and counts renders and cache hits;
4. calls every component on the shared images, normalizes each component (none / group / batch
   statistics) and sums ``weight x normalized``.

Why one ~470-line module: seeding, the one render call, normalization and the logged statistics all
work on the same batch and must agree row by row; the per-function pieces are pure and tested directly.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from reprompt.errors import ConfigError, RepromptError, check_choice, check_range
from reprompt.format import ParsedCompletion, get_tag_format, parse_completion
from reprompt.rewards.base import (
    RewardBatch,
    RewardComponent,
    Score,
    ScoredBatch,
    collect_metrics,
    log_metric,
    mean,
)
from reprompt.rewards.config import A_PHOTO, FALLBACK_SCORES, NORMALIZATIONS, SEED_SCHEDULES, RewardConfig
from reprompt.rewards.render_cache import RenderCache, backbone_key

if TYPE_CHECKING:
    from reprompt.backbones.base import Backbone, RenderSettings

logger = logging.getLogger(__name__)

SEED_MODULUS = 2**31 - 1


def derive_seeds(seed: int, round_: int, original: str, k: int) -> list[int]:
    """K seeds for one original prompt: a pure function of (base seed, round, prompt), so every
    completion of the prompt, every process and the remote service agree on them."""
    digest = hashlib.sha256(f"{int(seed)}\x1f{int(round_)}\x1f{original}".encode()).digest()
    base = int.from_bytes(digest[:8], "big")
    return [(base + 7919 * j) % SEED_MODULUS for j in range(k)]


def normalize(values: Sequence[Score], groups: Sequence[int], mode: str, floor: float = 0.0) -> list[Score]:
    """Standardize to zero mean and unit variance within each group (``group``), over the batch
    (``batch``), or not at all (``none``). The standard deviation used is at least ``floor`` (in the
    values' own units), so noise-level differences stay small instead of being blown up to +-1.7 in a
    group of four. Missing values stay missing (see :func:`impute_missing`); a bucket with fewer than two
    values or no spread (and no floor) contributes 0 (it carries no ranking signal)."""
    if mode == "none":
        return list(values)
    check_choice("normalization", mode, NORMALIZATIONS)
    keys = list(groups) if mode == "group" else [0] * len(values)
    buckets: dict[int, list[float]] = {}
    for key, v in zip(keys, values, strict=True):
        if v is not None:
            buckets.setdefault(key, []).append(v)
    stats: dict[int, tuple[float, float]] = {}
    for key, vals in buckets.items():
        m = sum(vals) / len(vals)
        std = math.sqrt(sum((v - m) ** 2 for v in vals) / len(vals))
        stats[key] = (m, std)
    out: list[Score] = []
    for key, v in zip(keys, values, strict=True):
        if v is None:
            out.append(None)
            continue
        m, std = stats[key]
        scale = max(std, floor)
        out.append((v - m) / scale if scale > 1e-8 and len(buckets[key]) > 1 else 0.0)
    return out


def impute_missing(values: Sequence[Score], groups: Sequence[int]) -> list[float]:
    """Replace each missing value by the mean of its group's present values (0.0 when the whole group is
    missing), so that a missing score is neutral: GRPO compares a completion with the others of its prompt,
    and the group mean neither rewards nor penalises it. This holds in every normalization mode, because
    the advantage is taken within the group whatever the component's scale."""
    sums: dict[int, list[float]] = {}
    for g, v in zip(groups, values, strict=True):
        if v is not None:
            sums.setdefault(g, []).append(v)
    means = {g: sum(vs) / len(vs) for g, vs in sums.items()}
    return [float(v) if v is not None else means.get(g, 0.0) for g, v in zip(groups, values, strict=True)]


def group_stds(values: Sequence[Score], groups: Sequence[int]) -> list[float]:
    """The within-group standard deviation of each group with two or more present values."""
    buckets: dict[int, list[float]] = {}
    for g, v in zip(groups, values, strict=True):
        if v is not None:
            buckets.setdefault(g, []).append(v)
    stds = []
    for vals in buckets.values():
        if len(vals) > 1:
            m = sum(vals) / len(vals)
            stds.append(math.sqrt(sum((v - m) ** 2 for v in vals) / len(vals)))
    return stds


def no_harbour(
    values: Sequence[Score], fallback: Sequence[bool], groups: Sequence[int], higher_is_better: bool = True
) -> list[Score]:
    """No safe harbour for a completion that wrote no prompt: each fallback row gets the worst value among
    the rows of its group that wrote one (or its own value, when that is worse: the format reward's -1),
    so in this component it never outscores a completion of its group that wrote a prompt, whatever that
    prompt drew. A group where every row fell back keeps its own values (equal within the group: no
    advantage either way); an image component has none there, since the rows were never rendered."""
    worse = min if higher_is_better else max
    worst: dict[int, float] = {}
    for g, v, fb in zip(groups, values, fallback, strict=True):
        if not fb and v is not None:
            worst[g] = worse(worst[g], v) if g in worst else v
    out: list[Score] = []
    for g, v, fb in zip(groups, values, fallback, strict=True):
        if not fb:
            out.append(v)
            continue
        candidates = [x for x in (v, worst.get(g)) if x is not None]
        out.append(worse(candidates) if candidates else None)
    return out


@dataclass
class RenderCounts:
    """Images one batch rendered (for its completions, for the paired baseline) and read from the cache."""

    main: int = 0
    baseline: int = 0
    cache_hits: int = 0


def weighted_sum(columns: dict[str, list[Score]], weights: dict[str, float], n: int) -> list[Score]:
    """Per row: sum of weight x value over the components that are not missing (None if all are)."""
    out: list[Score] = []
    for i in range(n):
        parts = [weights[name] * value for name, col in columns.items() if (value := col[i]) is not None]
        out.append(sum(parts) if parts else None)
    return out


class CompositeReward:
    """Components + the backbone that renders for them. ``score(...)`` is the one entry point; the
    remote :class:`reprompt.serving.reward_client.RewardClient` has the same signature."""

    def __init__(
        self,
        components: Sequence[RewardComponent],
        *,
        weights: dict[str, float] | None = None,
        backbone: Backbone | None = None,
        tags: str = "reason/prompt",
        normalization: str = "group",
        images_per_completion: int = 1,
        seed: int = 0,
        paired_baseline: bool = False,
        dedupe_renders: bool = True,
        std_floor: dict[str, float] | None = None,
        min_reason_words: int = 3,
        fallback_score: str = "group_worst",
        render: RenderSettings | None = None,
        seed_schedule: str = "per_step",
        baseline_cache: int = 0,
    ) -> None:
        names = [c.name for c in components]
        if len(set(names)) != len(names):
            raise ConfigError(f"duplicate reward component names: {names}")
        check_choice("normalization", normalization, NORMALIZATIONS)
        check_range("images_per_completion", images_per_completion, 1)
        check_choice("fallback_score", fallback_score, FALLBACK_SCORES)
        check_choice("seed_schedule", seed_schedule, SEED_SCHEDULES)
        self.fallback_score = fallback_score
        self.render_settings = render
        """The render profile of this reward's renders (None: the backbone's own settings)."""
        self.seed_schedule = seed_schedule
        self.cache = RenderCache(baseline_cache)
        self._backbone_key: str | None = None
        self.components = list(components)
        self.weights = {n: float((weights or {}).get(n, 1.0)) for n in names}
        self.backbone = backbone
        self.fmt = get_tag_format(tags)
        self.normalization = normalization
        self.images_per_completion = images_per_completion
        self.seed = seed
        self.paired_baseline = paired_baseline
        self.dedupe_renders = dedupe_renders
        unknown = sorted(set(std_floor or {}) - set(names))
        if unknown:
            raise ConfigError(f"std_floor names {unknown}, which are not reward components {names}")
        self.std_floor = {n: float((std_floor or {}).get(n, 0.0)) for n in names}
        self.min_reason_words = min_reason_words
        self.render_calls = 0
        """Images rendered by the backbone over this pipeline's life (baseline included; cache hits not)."""
        if self.needs_images and backbone is None:
            raise ConfigError(
                f"reward components {[c.name for c in self.components if c.needs_images]} score images: "
                "give the composite reward a backbone"
            )

    @classmethod
    def from_config(cls, config: RewardConfig, backbone: Backbone | None = None) -> CompositeReward:
        """Build the components and (unless given) the backbone named in ``config``."""
        from reprompt.backbones.base import RenderSettings
        from reprompt.rewards import build_component

        components = [build_component(name, config.options.get(name)) for name in config.components]
        if backbone is None:
            from reprompt.backbones import load_backbone

            backbone = load_backbone(config.backbone, model=config.backbone_model, **config.backbone_options)
        return cls(
            components,
            weights={n: config.weight(n) for n in config.components},
            backbone=backbone,
            tags=config.tags,
            normalization=config.normalization,
            images_per_completion=config.images_per_completion,
            seed=config.seed,
            paired_baseline=config.paired_baseline,
            dedupe_renders=config.dedupe_renders,
            std_floor=config.std_floor,
            min_reason_words=config.min_reason_words,
            fallback_score=config.fallback_score,
            render=config.render if config.render != RenderSettings() else None,
            seed_schedule=config.seed_schedule,
            baseline_cache=config.baseline_cache,
        )

    @property
    def component_names(self) -> list[str]:
        return [c.name for c in self.components]

    @property
    def needs_images(self) -> bool:
        return any(c.needs_images for c in self.components)

    def info(self) -> dict[str, Any]:
        """What a client needs to know to mirror this pipeline (no secrets)."""
        return {
            "components": self.component_names,
            "weights": dict(self.weights),
            "normalization": self.normalization,
            "images_per_completion": self.images_per_completion,
            "paired_baseline": self.paired_baseline,
            "backbone": getattr(self.backbone, "name", None),
            "tags": self.fmt.name,
            "std_floor": dict(self.std_floor),
            "min_reason_words": self.min_reason_words,
            "fallback_score": self.fallback_score,
            "failure_components": self.failure_components,
            "render": asdict(self.render_settings) if self.render_settings is not None else None,
            "seed_schedule": self.seed_schedule,
        }

    @property
    def failure_components(self) -> list[str]:
        """Components whose missing score means a failure (a judge down), watched by training."""
        return [c.name for c in self.components if getattr(c, "missing_is_failure", False)]

    # ------------------------------------------------------------------------------------- scoring
    def score(
        self,
        originals: Sequence[str],
        completions: Sequence[str],
        metadata: Sequence[dict[str, Any] | str | None] | None = None,
        seeds: Sequence[Sequence[int]] | None = None,
        round: int = 0,
        keep_images: bool = False,
    ) -> ScoredBatch:
        """Score ``completions[i]`` (the policy's text) against ``originals[i]`` (the user's prompt).

        ``metadata[i]``: GenEval clauses for the verifiable reward (dict or JSON string) or None.
        ``seeds[i]``: the K seeds of row i (default: derived per original prompt from ``round``).
        """
        originals, completions = list(originals), list(completions)
        n = len(completions)
        if len(originals) != n:
            raise RepromptError(f"got {len(originals)} original prompts but {n} completions")
        for what, texts in (("original prompt", originals), ("completion", completions)):
            bad = [t for t in texts if not isinstance(t, str)]
            if bad:
                raise RepromptError(f"every {what} must be a string, got {type(bad[0]).__name__}")
        metadata = list(metadata) if metadata is not None else [None] * n
        if len(metadata) != n:
            raise RepromptError(f"got {len(metadata)} metadata entries for {n} completions")
        group_of: dict[str, int] = {}
        groups = [group_of.setdefault(o, len(group_of)) for o in originals]
        row_seeds = self._seeds(originals, seeds, round)

        t0 = time.perf_counter()
        with collect_metrics() as store:
            parsed = [
                parse_completion(c, o, self.fmt, self.min_reason_words)
                for c, o in zip(completions, originals, strict=True)
            ]
            prompts = [p.prompt for p in parsed]
            fallback = [p.fallback for p in parsed]
            if self.fallback_score == "render_a_photo":
                prompts = [A_PHOTO if fb else p for p, fb in zip(prompts, fallback, strict=True)]
            assigned = fallback if self.fallback_score == "group_worst" else [False] * n
            batch = RewardBatch(
                originals=originals,
                completions=completions,
                parsed=parsed,
                prompts=prompts,
                metadata=metadata,
                seeds=row_seeds,
                groups=groups,
                token_counter=getattr(self.backbone, "count_tokens", None),
            )
            baseline_batch = None
            counts = RenderCounts()
            if n and self.needs_images:  # text-only rewards render nothing (the baseline is about images)
                baseline_batch, counts = self._render(batch, group_of, assigned)
            render_calls, baseline_calls = counts.main, counts.baseline
            raw: dict[str, list[Score]] = {}
            for comp in self.components:
                tc = time.perf_counter()
                values = list(comp(batch)) if n else []
                if len(values) != n:
                    raise RuntimeError(
                        f"reward {comp.name!r} returned {len(values)} scores for {n} completions"
                    )
                raw[comp.name] = [None if v is None or not math.isfinite(v) else float(v) for v in values]
                log_metric(f"seconds/{comp.name}", time.perf_counter() - tc)
            baseline, improvement = self._baseline(baseline_batch, raw, groups)
            measured = raw
            if any(assigned):
                raw = {
                    name: no_harbour(col, assigned, groups, higher_is_better=self.weights[name] >= 0)
                    for name, col in raw.items()
                }
                log_metric("fallback/assigned", sum(assigned) / n)
            normalized: dict[str, list[Score]] = {
                name: list(
                    impute_missing(normalize(col, groups, self.normalization, self.std_floor[name]), groups)
                )
                for name, col in raw.items()
            }
            total = weighted_sum(normalized, self.weights, n)
            raw_total = weighted_sum(raw, self.weights, n)
            self._log_batch(
                measured,
                raw,
                normalized,
                groups,
                total,
                baseline,
                improvement,
                counts,
                assigned,
            )
            self._log_completions(parsed, batch.token_counter)
            log_metric("seconds/batch", time.perf_counter() - t0)
        metrics = {k: sum(v) / len(v) for k, v in store.items() if v}
        return ScoredBatch(
            components=raw,
            normalized=normalized,
            weights=dict(self.weights),
            total=total,
            raw_total=raw_total,
            prompts=prompts,
            seeds=row_seeds,
            format_ok=[p.format_ok for p in parsed],
            fallback=fallback,
            assigned=list(assigned),
            fallback_score=self.fallback_score,
            render_calls=render_calls,
            baseline_render_calls=baseline_calls,
            render_cache_hits=counts.cache_hits,
            baseline=baseline,
            improvement=improvement,
            metrics=metrics,
            images=batch.images if keep_images else None,
        )

    def _seeds(
        self, originals: list[str], seeds: Sequence[Sequence[int]] | None, round_: int
    ) -> list[list[int]]:
        if seeds is None:
            if self.seed_schedule == "per_prompt":  # the same seeds every time training meets the prompt
                round_ = 0
            cache: dict[str, list[int]] = {}
            return [
                list(cache.setdefault(o, derive_seeds(self.seed, round_, o, self.images_per_completion)))
                for o in originals
            ]
        rows = [list(s) for s in seeds]
        if len(rows) != len(originals):
            raise RepromptError(f"got seeds for {len(rows)} completions, expected {len(originals)}")
        for s in rows:
            if not s or any(not isinstance(x, int) or isinstance(x, bool) or x < 0 for x in s):
                raise RepromptError("each completion needs a non-empty list of non-negative integer seeds")
        return rows

    def _render(
        self, batch: RewardBatch, group_of: dict[str, int], skip: Sequence[bool]
    ) -> tuple[RewardBatch | None, RenderCounts]:
        """Render every (prompt, seed) of the batch (and the baseline) in ONE backbone call with the render
        profile; rows in ``skip`` (fallbacks whose scores the rule assigns) render nothing and get no
        images. Requests the cache holds (baselines rendered before) are served from it instead."""
        assert self.backbone is not None
        requests = [
            (p, s)
            for p, seeds, skipped in zip(batch.prompts, batch.seeds, skip, strict=True)
            if not skipped
            for s in seeds
        ]
        first_row: dict[str, int] = {}
        for i, o in enumerate(batch.originals):
            first_row.setdefault(o, i)
        base_requests = (
            [(o, s) for o, i in first_row.items() for s in batch.seeds[i]] if self.paired_baseline else []
        )
        if self.dedupe_renders:
            unique = list(dict.fromkeys(requests))
            n_main = len(unique)
            seen = set(unique)
            unique += [r for r in dict.fromkeys(base_requests) if r not in seen]
            index = {r: j for j, r in enumerate(unique)}
            main_idx = [index[r] for r in requests]
            base_idx = [index[r] for r in base_requests]
        else:
            unique = requests + base_requests
            n_main = len(requests)
            main_idx = list(range(len(requests)))
            base_idx = list(range(len(requests), len(unique)))
        counts = RenderCounts()
        if not unique:  # every row fell back and no baseline is asked for
            batch.images = [[] for _ in batch.prompts]
            batch.scenes = [[] for _ in batch.prompts]
            return None, counts
        images: list[Any] = [None] * len(unique)
        scenes: list[Any] = [None] * len(unique)
        todo = list(range(len(unique)))
        if self.cache.max_images:
            key = self._cache_key()
            todo = []
            for j, (p, s) in enumerate(unique):
                hit = self.cache.get((key, p, s))
                if hit is None:
                    todo.append(j)
                else:
                    images[j], scenes[j] = hit
                    counts.cache_hits += 1
        t0 = time.perf_counter()
        if todo:
            out = self.backbone.render(
                [unique[j][0] for j in todo], [unique[j][1] for j in todo], self.render_settings
            )
            if len(out.images) != len(todo):
                raise RuntimeError(f"backbone returned {len(out.images)} images for {len(todo)} prompts")
            drawn = out.scenes if out.scenes is not None else [None] * len(todo)
            baseline_keys = set(base_requests)
            for j, image, scene in zip(todo, out.images, drawn, strict=True):
                images[j], scenes[j] = image, scene
                if self.cache.max_images and unique[j] in baseline_keys:
                    self.cache.put((self._cache_key(), *unique[j]), image, scene)
            log_metric("render/warnings", len(out.warnings))
            for w in out.warnings:
                logger.debug("render warning: %s", w)
        counts.main = sum(j < n_main for j in todo)
        counts.baseline = len(todo) - counts.main
        self.render_calls += len(todo)
        log_metric("seconds/render", time.perf_counter() - t0)

        def split(idx: list[int], sizes: list[int]) -> tuple[list[list[Any]], list[list[Any]]]:
            imgs, scs, j = [], [], 0
            for size in sizes:
                imgs.append([images[idx[j + k]] for k in range(size)])
                scs.append([scenes[idx[j + k]] for k in range(size)])
                j += size
            return imgs, scs

        batch.images, batch.scenes = split(
            main_idx, [0 if skipped else len(s) for s, skipped in zip(batch.seeds, skip, strict=True)]
        )
        baseline_batch = None
        if self.paired_baseline:
            originals = list(first_row)
            sizes = [len(batch.seeds[i]) for i in first_row.values()]
            b_images, b_scenes = split(base_idx, sizes)
            baseline_batch = RewardBatch(
                originals=originals,
                completions=originals,
                parsed=[ParsedCompletion("", o, True) for o in originals],
                prompts=originals,
                metadata=[batch.metadata[i] for i in first_row.values()],
                seeds=[batch.seeds[i] for i in first_row.values()],
                groups=[group_of[o] for o in originals],
                images=b_images,
                scenes=b_scenes,
                token_counter=batch.token_counter,
            )
        return baseline_batch, counts

    def _cache_key(self) -> str:
        """What decides this reward's images besides prompt and seed (computed once)."""
        if self._backbone_key is None:
            assert self.backbone is not None
            self._backbone_key = backbone_key(self.backbone, self.render_settings)
        return self._backbone_key

    def _baseline(
        self, baseline_batch: RewardBatch | None, raw: dict[str, list[Score]], groups: list[int]
    ) -> tuple[dict[str, list[Score]] | None, dict[str, list[Score]] | None]:
        """Image components on the original prompt (same seeds), and each completion's gain over it."""
        if baseline_batch is None:
            return None, None
        baseline: dict[str, list[Score]] = {}
        improvement: dict[str, list[Score]] = {}
        for comp in self.components:
            if not comp.needs_images:
                continue
            per_group = dict(zip(baseline_batch.groups, comp(baseline_batch), strict=True))
            baseline[comp.name] = [per_group[g] for g in groups]
            improvement[comp.name] = [
                None if r is None or b is None else r - b
                for r, b in zip(raw[comp.name], baseline[comp.name], strict=True)
            ]
        return baseline, improvement

    @staticmethod
    def _log_completions(parsed: list[ParsedCompletion], token_counter: Any) -> None:
        """How the policy wrote: well-formed, fallback and recovered rates, and the rendered prompt's length in
        the backbone's text-encoder tokens (every reward configuration logs these, whatever its components)."""
        if not parsed:
            return
        n = len(parsed)
        log_metric("completions/format_ok", sum(p.format_ok for p in parsed) / n)
        log_metric("completions/fallback", sum(p.fallback for p in parsed) / n)
        log_metric("completions/recovered", sum(p.recovered for p in parsed) / n)
        if token_counter is not None:
            counts = [token_counter(p.prompt) for p in parsed]
            log_metric("completions/prompt_tokens", sum(c.tokens for c in counts) / n)
            log_metric("completions/prompt_truncated", sum(bool(c.truncated) for c in counts) / n)

    def _log_batch(
        self,
        measured: dict[str, list[Score]],
        raw: dict[str, list[Score]],
        normalized: dict[str, list[Score]],
        groups: list[int],
        total: list[Score],
        baseline: dict[str, list[Score]] | None,
        improvement: dict[str, list[Score]] | None,
        counts: RenderCounts,
        assigned: list[bool],
    ) -> None:
        n = len(assigned)
        for name, col in raw.items():
            m = mean(measured[name])  # what was measured: a fallback's assigned worst score is not
            if m is not None:
                log_metric(f"{name}/mean", m)
            log_metric(  # a measured score that failed, not a fallback the rule scored
                f"{name}/missing",
                sum(v is None for v, a in zip(measured[name], assigned, strict=True) if not a),
            )
            if self.normalization != "none":  # raw spread within groups, and what GRPO sees after scaling
                if stds := group_stds(col, groups):
                    log_metric(f"{name}/group_std", sum(stds) / len(stds))
                    log_metric(f"{name}/zero_std_groups", sum(sd <= 1e-8 for sd in stds) / len(stds))
                    if self.std_floor[name] > 0:  # groups whose spread the floor scaled down
                        log_metric(
                            f"{name}/floored_groups",
                            sum(1e-8 < sd < self.std_floor[name] for sd in stds) / len(stds),
                        )
                norm = normalized[name]
                if norm:
                    log_metric(f"{name}/normalized_abs_mean", sum(abs(v or 0.0) for v in norm) / len(norm))
        if (m := mean(total)) is not None:
            log_metric("total/mean", m)
        for prefix, cols in (("baseline", baseline), ("improvement", improvement)):
            for name, col in (cols or {}).items():
                if (m := mean(col)) is not None:
                    log_metric(f"{prefix}/{name}", m)
        log_metric("render_calls", counts.main)
        log_metric("baseline_render_calls", counts.baseline)
        log_metric("renders", counts.main + counts.baseline)  # images rendered for this batch, all told
        log_metric("render_cache_hits", counts.cache_hits)  # images served from the cache instead
        log_metric("completions", n)
