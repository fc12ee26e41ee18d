"""Calibrate the ``sketch`` simulators against published GenEval numbers, and time them.

Renders GenEval's 553 prompts (4 seeds each) as written ("plain"), as an "ideal rewrite" generated
from the metadata (each object in its own sentence, with an exact count, its own reinforced color and
an absolute place consistent with the relation), and as rewritten by the two offline SFT teachers
applied directly to the GenEval prompts ("grounded": the upper bound; "generic": the general-LLM-style
teacher whose helpful strategies appear in only ~30% of targets). Scores each with the official GenEval
rules on the drawn scene (oracle detector and colors), with paired bootstrap 95% intervals of each
variant's overall difference to plain. ``--backbone`` picks the calibration: ``sketch`` should give
plain prompts FLUX.1-dev-like scores, ``sketch-b`` SD3-Medium-like ones; ideal rewrites should be far
above: that gap is what a rewriter can learn on CPU.

    OMP_NUM_THREADS=1 python benchmarks/sketch_calibration.py --out benchmarks/results/sketch_calibration.json
    OMP_NUM_THREADS=1 python benchmarks/sketch_calibration.py --backbone sketch-b \
        --out benchmarks/results/sketch_calibration_sketch-b.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from reprompt.backbones import SIMULATORS, load_backbone
from reprompt.backbones.sketch import SketchBackbone
from reprompt.data.strategies import STRATEGIES, strategy_table
from reprompt.data.teachers import GenericTeacher, GroundedTeacher
from reprompt.geneval.detectors import OracleDetector
from reprompt.geneval.rules import score_detections
from reprompt.geneval.vocabulary import FAMILY_TAGS, GENEVAL_TAGS
from reprompt.utils.benchmarks import GENEVAL_METADATA, benchmark_path
from reprompt.utils.english import plural
from reprompt.utils.io import atomic_write_json

# What plain prompts should score per calibration: published GenEval tables, rounded.
TARGETS = {
    "sketch": {  # FLUX.1-dev
        "single_object": 0.98,
        "two_object": 0.80,
        "counting": 0.70,
        "colors": 0.80,
        "position": 0.25,
        "color_attr": 0.45,
        "overall": 0.66,
    },
    "sketch-b": {  # SD3-Medium
        "single_object": 0.98,
        "two_object": 0.74,
        "counting": 0.63,
        "colors": 0.67,
        "position": 0.34,
        "color_attr": 0.36,
        "overall": 0.62,
    },
}
_NUMBER_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]
_PLACE = {
    "left": "on the left side of the image",
    "right": "on the right side of the image",
    "top": "at the top of the image",
    "bottom": "at the bottom of the image",
}
# include[1] is `rel` include[0]  ->  (place of include[0], place of include[1])
_PLACES_FOR_RELATION = {
    "left of": ("right", "left"),
    "right of": ("left", "right"),
    "above": ("bottom", "top"),
    "below": ("top", "bottom"),
}
# Ideal rewrite minus one ingredient: each should lose (only) the tags that ingredient serves.
ABLATIONS = {
    "no_exactly": {"exact": False},
    "no_places": {"placed": False},
    "one_clause": {"own_sentences": False},
}
_RELATION_WORDS = {
    "left of": "to the left of",
    "right of": "to the right of",
    "above": "above",
    "below": "below",
}


def ideal_rewrite(meta: dict, exact: bool = True, placed: bool = True, own_sentences: bool = True) -> str:
    """A well-planned rewrite: one sentence per object with exact count, own color and place.

    The flags drop one ingredient each (for the ablations): "exactly", the absolute places, or the
    sentence breaks (everything in one comma-separated clause).
    """
    include = meta["include"]
    places: list[str | None] = [None] * len(include)
    relation = next((req["position"] for req in include if "position" in req), None)
    if placed and relation is not None:
        rel, target = relation
        subject = next(i for i, req in enumerate(include) if "position" in req)
        places[target], places[subject] = _PLACES_FOR_RELATION[rel]
    elif placed and len(include) == 2:
        places = ["left", "right"]
    sentences = ["A simple, clear photo."]
    for req, place in zip(include, places, strict=True):
        n, cls = int(req["count"]), req["class"]
        name, verb = (cls, "is") if n == 1 else (plural(cls), "are")
        where = f" {_PLACE[place]}" if place else ""
        number = f"exactly {_NUMBER_WORDS[n]}" if exact else ("a" if n == 1 else _NUMBER_WORDS[n])
        sentences.append(f"There {verb} {number} {name}{where}.")
        if "color" in req:
            sentences.append(f"The {name} {verb} bright {req['color']}.")
    if relation is not None:
        rel, target = relation
        subject = next(i for i, req in enumerate(include) if "position" in req)
        a, b = include[subject]["class"], include[target]["class"]
        sentences.append(f"The {a} is {_RELATION_WORDS[rel]} the {b}.")
    if own_sentences:
        return " ".join(sentences)
    return sentences[0] + " " + ", ".join(x.rstrip(".") for x in sentences[1:]) + "."


def teacher_rewrites(teacher: GroundedTeacher | GenericTeacher, rows: list[dict]) -> list[str]:
    """The teacher's enhanced prompt for each GenEval prompt (record id = its line number)."""
    return [teacher.plan({**row, "id": f"geneval-{i:05d}"})[1] for i, row in enumerate(rows)]


def score_prompts(backbone: SketchBackbone, rows: list[dict], prompts: list[str], seeds: list[int]) -> dict:
    """Mean GenEval correctness per tag (over images), overall = mean of tag means."""
    oracle = OracleDetector()
    per_tag: dict[str, list[float]] = defaultdict(list)
    any_correct: dict[str, list[float]] = defaultdict(list)
    per_prompt: list[float] = []
    render_s = 0.0
    warnings = 0
    for meta, prompt in zip(rows, prompts, strict=True):
        out = backbone.render([prompt] * len(seeds), seeds)
        render_s += out.seconds
        warnings += len(out.warnings)
        verdicts = []
        for dets, scene in zip(oracle.detect(out.images, out.scenes), out.scenes, strict=True):
            verdicts.append(score_detections(meta, dets, classify_colors=oracle.colors_for(scene)).correct)
        per_tag[meta["tag"]].extend(map(float, verdicts))
        any_correct[meta["tag"]].append(float(any(verdicts)))
        per_prompt.append(statistics.fmean(map(float, verdicts)))
    scores = {tag: statistics.fmean(per_tag[tag]) for tag in FAMILY_TAGS if per_tag[tag]}
    scores["overall"] = statistics.fmean(scores.values())
    tokens = [backbone.count_tokens(p).tokens for p in prompts]
    return {
        "scores": scores,
        "prompts_with_a_correct_image": {t: statistics.fmean(v) for t, v in any_correct.items()},
        "per_prompt": per_prompt,
        "tokens": {
            "mean": statistics.fmean(tokens),
            "max": max(tokens),
            "over_77": sum(t > 77 for t in tokens),
        },
        "render_seconds": render_s,
        "warnings": warnings,
    }


def paired_difference(
    rows: list[dict], a: list[float], b: list[float], n_boot: int = 2000, seed: int = 0
) -> dict:
    """Overall (mean of tag means) of ``b`` minus ``a``, per-prompt paired, with a bootstrap 95% interval
    that resamples prompts within each tag."""
    tags = [row["tag"] for row in rows]
    index = {t: np.array([i for i, x in enumerate(tags) if x == t]) for t in GENEVAL_TAGS if t in tags}
    diff = np.asarray(b) - np.asarray(a)
    point = float(np.mean([diff[idx].mean() for idx in index.values()]))
    rng = np.random.default_rng(seed)
    boots = np.mean(
        [diff[idx][rng.integers(0, len(idx), (n_boot, len(idx)))].mean(axis=1) for idx in index.values()],
        axis=0,
    )
    lo, hi = np.percentile(boots, [2.5, 97.5])
    return {"difference": point, "ci95": [float(lo), float(hi)]}


def time_renders(backbone: SketchBackbone, prompts: list[str], n: int) -> dict:
    """Wall time of single-image renders at the configured size (after a warm-up)."""
    backbone.render(prompts[:1], [0])
    times = []
    for i in range(n):
        prompt = prompts[i % len(prompts)]
        t0 = time.perf_counter()
        backbone.render([prompt], [10_000 + i])
        times.append(time.perf_counter() - t0)
    times.sort()
    return {
        "size": [backbone.config.width, backbone.config.height],
        "images": n,
        "mean_ms": 1000 * statistics.fmean(times),
        "p95_ms": 1000 * times[int(0.95 * (n - 1))],
        "max_ms": 1000 * times[-1],
    }


def _fmt_difference(d: dict) -> str:
    return f"{d['difference']:+.3f} [{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}] (paired 95% CI)"


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--metadata",
        default=str(benchmark_path(*GENEVAL_METADATA)),
        help="GenEval evaluation_metadata.jsonl (default: the one under $REPROMPT_BENCHMARKS)",
    )
    p.add_argument(
        "--backbone", default="sketch", choices=SIMULATORS, help="simulator calibration to measure"
    )
    p.add_argument("--seeds", type=int, default=4, help="images per prompt")
    p.add_argument("--seed", type=int, default=42, help="image j of every prompt uses seed + j")
    p.add_argument("--size", type=int, default=512, help="image width and height")
    p.add_argument("--timing-images", type=int, default=500, help="single-image renders to time")
    p.add_argument(
        "--ablations", action="store_true", help="also score the ideal rewrite minus one ingredient"
    )
    p.add_argument("--out", default=None, help="write the results as JSON here")
    return p


def main(argv: list[str] | None = None) -> dict:
    args = make_parser().parse_args(argv)
    rows = [json.loads(line) for line in Path(args.metadata).read_text().splitlines() if line.strip()]
    backbone = load_backbone(args.backbone, width=args.size, height=args.size)
    targets = TARGETS[args.backbone]
    seeds = [args.seed + j for j in range(args.seeds)]
    prompts = {
        "plain": [row["prompt"] for row in rows],
        "ideal": [ideal_rewrite(row) for row in rows],
        "grounded": teacher_rewrites(GroundedTeacher(), rows),
        "generic": teacher_rewrites(GenericTeacher(), rows),
    }
    if args.ablations:
        for name, kw in ABLATIONS.items():
            prompts[name] = [ideal_rewrite(row, **kw) for row in rows]
    variants = {name: score_prompts(backbone, rows, texts, seeds) for name, texts in prompts.items()}
    for name, v in variants.items():
        if name != "plain":
            v["vs_plain"] = paired_difference(rows, variants["plain"]["per_prompt"], v["per_prompt"])
        v["strategies"] = strategy_table(zip(prompts[name], rows, strict=True))
    variants["generic"]["vs_grounded"] = paired_difference(
        rows, variants["grounded"]["per_prompt"], variants["generic"]["per_prompt"]
    )
    timing = time_renders(backbone, prompts["plain"] + prompts["ideal"], args.timing_images)

    print(
        f"{args.backbone}: {len(rows)} prompts x {len(seeds)} seeds, {args.size}x{args.size}, oracle "
        "detector, GenEval rules"
    )
    print(f"{'tag':15} {'target':>7}" + "".join(f" {name:>10}" for name in variants))
    for tag in [*GENEVAL_TAGS, "overall"]:
        print(
            f"{tag:15} {targets[tag]:7.2f}" + "".join(f" {v['scores'][tag]:10.3f}" for v in variants.values())
        )
    for name, v in variants.items():
        if name != "plain":
            print(f"{name} - plain: {_fmt_difference(v['vs_plain'])}")
    print(f"generic - grounded: {_fmt_difference(variants['generic']['vs_grounded'])}")
    print("strategy use (used / applicable):")
    for strategy in STRATEGIES:
        print(
            f"  {strategy:24}"
            + "".join(
                f" {name}={v['strategies'][strategy]['used']}/{v['strategies'][strategy]['applicable']}"
                for name, v in variants.items()
            )
        )
    for name, v in variants.items():
        t = v["tokens"]
        print(
            f"{name}: {t['mean']:.1f} approx CLIP tokens on average, max {t['max']}, {t['over_77']} over 77"
        )
    print(
        f"render {args.size}x{args.size}: mean {timing['mean_ms']:.2f} ms, p95 {timing['p95_ms']:.2f} ms, "
        f"max {timing['max_ms']:.2f} ms per image ({timing['images']} single renders)"
    )
    result = {
        "backbone": args.backbone,
        "metadata": str(args.metadata),
        "seeds": seeds,
        "size": args.size,
        "targets": targets,
        **variants,
        "examples": {name: texts[-1] for name, texts in prompts.items()},
        "ideal_tokens": variants["ideal"]["tokens"],
        "timing": timing,
        "config": backbone.config.__dict__ | {"background": list(backbone.config.background)},
    }
    if args.out:
        atomic_write_json(args.out, result)
        print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
