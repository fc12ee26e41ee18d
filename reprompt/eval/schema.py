"""Typed schemas of what evaluation writes (``run.json``, ``summary.json`` of GenEval and GenEval 2,
``compare.json``, T2I-CompBench's ``scores.json`` and ``compbench_summary.json``).

TypedDicts, in the spirit of lm-evaluation-harness's ``result_schema.py``: the files are plain JSON, and
these types say what every key means, so a reader (or another tool) can rely on them. Per-image records
in ``results.jsonl`` keep GenEval's own schema (:class:`GenEvalImageRecord`) so the official
``summary_scores.py`` reads them unchanged.
"""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict


class ModelInfo(TypedDict):
    """Which policy or backbone produced a run, precisely enough to reproduce it."""

    name: str
    """What the user asked for (``none``, ``smollm2``, a folder, a hub id, ``sketch``, ``flux-dev``)."""
    resolved: str
    """What was actually loaded (a folder path, a hub id, ``openai:<model>``)."""
    cls: str
    """Python class of the rewriter or backbone."""
    revision: str | None
    """Hub commit hash, or ``sha256:<16 hex>`` fingerprint of a local folder, or a package version."""
    settings: dict[str, Any]
    """Settings that change the output (prompt spec, image size, steps, simulator config ...)."""


class SeedInfo(TypedDict):
    base_seed: int
    images_per_prompt: int
    rule: str
    """How image ``k`` of every prompt gets its seed (``seed_k = base_seed + k``)."""


class SampleCounts(TypedDict):
    original: int
    """Prompts in the metadata file."""
    selected: int
    """Prompts this run covers (after ``--limit`` / ``--per-tag``, before sharding)."""
    effective: int
    """Prompts actually scored (all their images present)."""
    images: int


class RunInfo(TypedDict):
    """``<run>/run.json``: what a generation run is. Resuming or adding shards must match it."""

    format: str
    """``reprompt-geneval-run/1``."""
    task: str
    task_version: str
    metadata_file: str
    metadata_sha256: str
    n_prompts: int
    selection: dict[str, Any]
    """``{"limit": N | None, "per_tag": K | None}``: which prompts of the file the run covers."""
    seeds: SeedInfo
    policy: ModelInfo
    backbone: ModelInfo
    generation: dict[str, Any]
    """The policy's decoding options (max_new_tokens, temperature, batch size ...)."""
    scenes: str
    """``rle`` (scene sidecars with RLE masks), ``boxes`` (no masks), or ``none``."""
    git_hash: str | None
    reprompt_version: str
    created: str


class ImageResult(TypedDict):
    filename: str
    image_index: int
    seed: int | None
    correct: bool
    reason: str


class RewriteFields(TypedDict):
    """What every scored prompt records of its rewrite (GenEval and GenEval 2 alike)."""

    prompt: str
    rewritten_prompt: str
    """The prompt that was rendered (the original where the rewrite fell back)."""
    reasoning: str
    format_ok: bool
    fallback: bool


class SampleRecord(RewriteFields):
    """One prompt of a scored run: the original, the rewrite, and how each image fared."""

    index: int
    tag: str
    score: float
    """Fraction of this prompt's images judged correct."""
    images: list[ImageResult]


class GenEvalImageRecord(TypedDict):
    """One line of ``results.jsonl``: GenEval's official per-image schema, nothing added."""

    filename: str
    tag: str
    prompt: str
    correct: bool
    reason: str
    metadata: str
    """The prompt's original metadata line as a JSON string (the official grouping key)."""
    details: str
    """JSON ``{class: [[x1, y1, x2, y2, score], ...]}`` of the kept detections."""


class ScorerInfo(TypedDict):
    detector: str
    detector_model: str | None
    colors: str
    """``oracle`` (the drawn colours) or ``clip:<model>``."""
    options: dict[str, float | int]
    """GenEvalOptions used (threshold, counting_threshold, max_objects, max_overlap, position_threshold)."""


class ScoredRun(TypedDict):
    """What every scored run's ``summary.json`` says of the run itself (GenEval and GenEval 2 alike)."""

    task: str
    versions: dict[str, str]
    """Task name -> task version (``task.yaml``); numbers from different versions do not compare."""
    complete: bool
    """Whether every selected prompt was scored (False while shards are still running)."""
    higher_is_better: dict[str, bool]
    n_samples: SampleCounts
    seeds: SeedInfo | None
    policy: ModelInfo | None
    backbone: ModelInfo | None
    run_dir: str
    git_hash: str | None
    """Of the code that scored (the generation's hash is in ``run.json``)."""
    created: str


class GenEvalSummary(ScoredRun):
    """``summary.json`` of a scored GenEval run (fractions in [0, 1])."""

    results: dict[str, float]
    """Per-tag score (mean image correctness) and ``overall`` (unweighted mean of the six tags)."""
    correct_images: float
    correct_prompts: float
    """Fraction of prompts with at least one correct image."""
    tag_counts: dict[str, list[int]]
    """Tag -> [correct images, images]."""
    missing_tags: list[str]
    scorer: ScorerInfo
    samples: list[SampleRecord]


class Geneval2ImageResult(TypedDict):
    """One judged image of a GenEval 2 run."""

    filename: str
    image_index: int
    seed: int | None
    score: float | None
    """Soft-TIFA AM of the image (mean of its answered atoms' scores); None when no atom was answered."""
    gm: float | None
    """Soft-TIFA GM of the image (geometric mean of its answered atoms' scores)."""
    correct: bool
    """Every answered atom scored at least 0.5 (the judge's likeliest answer is the expected one)."""
    reason: str
    """The atoms that scored under 0.5 ("question (expected answer): score"), and how many went unanswered."""
    skills: dict[str, list[float]]
    """Skill -> [sum of the answered atoms' scores, number of answered atoms] (per-skill statistics)."""
    unanswered: int


class Geneval2Sample(RewriteFields):
    """One prompt of a scored GenEval 2 run (only prompts with at least one answered atom)."""

    index: int
    tag: str
    """The prompt's group, its atom count ("5 atoms"): the stratum of comparisons."""
    atom_count: int
    score: float
    """Mean over the prompt's judged images of their Soft-TIFA AM."""
    gm: float
    """Mean over the prompt's judged images of their Soft-TIFA GM."""
    images: list[Geneval2ImageResult]


class Geneval2Summary(ScoredRun):
    """``summary.json`` of a scored GenEval 2 run (fractions in [0, 1]; the official script prints x100)."""

    results: dict[str, float]
    """``soft_tifa_am`` (atom-level) and ``soft_tifa_gm`` (prompt-level), over the judged images."""
    skills: dict[str, float]
    """Per skill, the mean score of its answered atoms (Soft-TIFA AM)."""
    atomicity: dict[str, float]
    """Per atom count ("3" .. "10"), the mean Soft-TIFA GM of its judged images."""
    coverage: dict[str, Any]
    """``atoms``, ``answered``, ``by_skill`` (skill -> [answered, total]), ``unanswered`` (reason -> atoms),
    ``images``, ``images_judged``, ``prompts``, ``prompts_judged``."""
    scorer: dict[str, Any]
    """The judge: ``judge`` (oracle, local, openai), ``model``, how an atom is scored."""
    samples: list[Geneval2Sample]


class TagDifference(TypedDict):
    a: float
    b: float
    diff: float
    """``b - a``: positive means run B scored higher."""
    ci_low: float
    ci_high: float
    n_prompts: int


class PromptChange(TypedDict):
    index: int
    tag: str
    prompt: str
    a: float
    b: float
    rewritten_a: str
    rewritten_b: str
    reasons_b: list[str]


class CompareResult(TypedDict):
    """``compare.json``: run B against run A (GenEval or GenEval 2), paired by prompt and seed."""

    task: str
    """``geneval`` or ``geneval2``."""
    run_a: str
    run_b: str
    policy_a: str | None
    policy_b: str | None
    seeds_match: bool
    n_prompts: int
    confidence: float
    bootstrap: dict[str, Any]
    """``{"resamples": N, "seed": S, "unit": "prompt", "stratified_by": "tag" | "atom count"}``."""
    group_label: str
    """What ``tags`` holds: ``tag`` (GenEval) or ``skill`` (GenEval 2)."""
    tags: dict[str, TagDifference]
    """Per GenEval tag, or per GenEval 2 skill (the mean score of its answered atoms)."""
    overall: TagDifference
    """The headline row: GenEval's overall (mean of the per-tag rows), GenEval 2's Soft-TIFA GM."""
    headline: str
    """The headline's name: ``overall`` or ``soft_tifa_gm``."""
    metrics: dict[str, TagDifference]
    """The other rows: GenEval's ``correct_images`` and ``correct_prompts`` (fraction of prompts with at
    least one correct image); GenEval 2's ``soft_tifa_am`` and ``gm <n> atoms`` (the GM of the prompts with
    that many atoms)."""
    prompts: dict[str, int]
    """``won`` / ``lost`` / ``tied``: prompts where B's score (GenEval: image correctness; GenEval 2: GM) is
    higher / lower / equal."""
    images: dict[str, int]
    """Same-seed image pairs: ``won`` (B correct, A not), ``lost``, ``both``, ``neither``."""
    worse: list[PromptChange]
    better: list[PromptChange]
    warnings: NotRequired[list[str]]


class CategoryScores(TypedDict):
    """``RUN/<category>/scores.json`` of a scored T2I-CompBench category."""

    task: str
    task_version: int
    category: str
    metric: str
    """The registered metric that scores the category (``blip_vqa``, ``spatial_2d``, ...)."""
    metric_info: dict[str, Any]
    """The metric's help, aggregation, direction and scoring model, from ``task.yaml``."""
    key: str
    """Hash of the settings that decide the numbers; saved scores with another key are recomputed."""
    score: float
    """The metric over the category's images (its registered aggregation)."""
    n_images: int
    n_prompts: int
    models: dict[str, Any]
    deviations: list[str]
    """Names of the deviations from the official tools that apply (``metrics.DEVIATIONS``)."""
    deviation_text: dict[str, str]
    per_prompt: dict[str, float]
    per_image: list[dict[str, Any]]
    detector_coverage: NotRequired[float | None]
    """Share of prompt objects the detector can name (detector-based metrics only)."""


class CompBenchSummary(TypedDict):
    """``RUN/compbench_summary.json``: every scored category and their mean."""

    task: str
    task_version: int
    run_dir: str
    scores: dict[str, float]
    n_images: dict[str, int]
    mean_over_categories: float | None
    """The registered ``mean_over_categories`` metric: the unweighted mean of the category scores."""
    metrics: dict[str, str]
    models: dict[str, Any]
    deviations: dict[str, str]
    settings: dict[str, Any]
    created: str
