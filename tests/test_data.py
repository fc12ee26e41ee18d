"""Training data: GenEval-style prompt generation, the grounded teacher, and the SFT JSONL builder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reprompt.backbones import load_backbone
from reprompt.data.prompts import (
    PromptGenConfig,
    article,
    generate_prompts,
    load_exclusions,
    load_prompts,
    load_vocabulary,
    meaning_key,
    parse_template,
    plural,
    position,
    singular,
    split_prompts,
)
from reprompt.data.sft_data import build_sft_data, dropped_path, sft_examples
from reprompt.data.teachers import GroundedTeacher, PolicyTeacher, load_teacher
from reprompt.errors import ConfigError, RepromptError
from reprompt.eval.geneval.classes import GENEVAL_TAGS
from reprompt.eval.geneval.detectors import load_detector
from reprompt.eval.geneval.scoring import score_images
from reprompt.format import PromptSpec, parse_completion
from reprompt.utils.io import read_jsonl


@pytest.fixture(scope="module")
def geneval_file(shared_benchmarks: Path) -> Path:
    return shared_benchmarks / "geneval" / "evaluation_metadata.jsonl"


# ------------------------------------------------------------------------------------------ prompts


@pytest.mark.parametrize(
    ("name", "expected"),
    [("wine glass", "wine glasses"), ("bench", "benches"), ("person", "people"), ("sheep", "sheep"),
     ("knife", "knives"), ("dog", "dogs"), ("skis", "skis"), ("butterfly", "butterflies")],
)  # fmt: skip
def test_plural_and_back(name: str, expected: str) -> None:
    assert plural(name) == expected
    assert singular(expected, [name]) == name


def test_naive_geneval_plurals_are_understood() -> None:
    assert (
        singular("benchs") == "bench"
        and singular("sheeps") == "sheep"
        and singular("toothbrushs") == "toothbrush"
    )
    assert article("orange") == "an" and article("red") == "a"


def test_generation_is_seeded_unique_and_split() -> None:
    cfg = PromptGenConfig(n_sft=300, n_rl=100, n_heldout=20, seed=3)
    a, gen = split_prompts(cfg)
    b, _ = split_prompts(cfg)
    c, _ = split_prompts(PromptGenConfig(n_sft=300, n_rl=100, n_heldout=20, seed=4))
    assert a == b and a != c
    assert [len(a[k]) for k in ("sft", "rl", "heldout")] == [300, 100, 20]
    keys = [meaning_key(r) for rows in a.values() for r in rows]
    assert len(set(keys)) == len(keys)  # disjoint by meaning across splits
    assert a["sft"][0]["id"] == "sft-00000" and a["rl"][5]["id"] == "rl-00005"
    assert set(gen.per_tag) == set(GENEVAL_TAGS)
    for rec in a["sft"]:  # GenEval's own layout: exclude only for counting
        assert ("exclude" in rec) == (rec["tag"] == "counting")
        assert meaning_key(parse_template(rec["prompt"])) == meaning_key(rec)


def test_meaning_key_equates_mirrored_relations_and_object_order() -> None:
    assert meaning_key(position("dog", "left of", "cat")) == meaning_key(position("cat", "right of", "dog"))
    assert meaning_key(position("dog", "left of", "cat")) != meaning_key(position("dog", "right of", "cat"))
    two = parse_template("a photo of a dog and a cat")
    assert meaning_key(two) == meaning_key(parse_template("a photo of a cat and a dog"))


def test_test_prompts_are_never_emitted(geneval_file: Path) -> None:
    keys, texts = load_exclusions([geneval_file])
    assert len(texts) == 553 and len(keys) >= 550
    splits, gen = split_prompts(PromptGenConfig(n_sft=2000, n_rl=300, seed=0), keys, texts)
    emitted = [r for rows in splits.values() for r in rows]
    assert not {meaning_key(r) for r in emitted} & keys
    assert gen.excluded_hits > 0
    assert "single_object" not in gen.per_tag  # GenEval's test set already holds all 80 COCO singles
    mirrored = {meaning_key(position("zebra", "below", "dog"))}  # "a dog above a zebra" would be excluded too
    rows = generate_prompts(3000, PromptGenConfig(tags=("position",), seed=1), exclude=mirrored).records
    assert not any(meaning_key(r) in mirrored for r in rows)
    assert not any(r["prompt"] == "a photo of a dog above a zebra" for r in rows)


def test_exhausted_templates_drop_out_and_impossible_requests_fail() -> None:
    cfg = PromptGenConfig(tags=("single_object", "counting"), vocabulary=("cat", "dog", "cow"), seed=0)
    gen = generate_prompts(12, cfg, max_misses=200)  # 3 singles + 9 counts exist
    assert gen.per_tag == {"single_object": 3, "counting": 9}
    with pytest.raises(RepromptError, match="only 12 unique prompts"):
        generate_prompts(13, cfg, max_misses=200)
    with pytest.raises(ConfigError, match="Did you mean 'counting'"):
        PromptGenConfig(tags=("countin",))


def test_vocabulary_file_extends_or_replaces(tmp_path: Path) -> None:
    f = tmp_path / "vocab.txt"
    f.write_text("# extra objects\nhoodie\nyoga mat  # a comment\n\ndog\n")
    vocab = load_vocabulary(f)
    assert len(vocab) == 82 and vocab[-2:] == ("hoodie", "yoga mat")
    assert load_vocabulary(f, extend=False) == ("hoodie", "yoga mat", "dog")
    rows = generate_prompts(40, PromptGenConfig(vocabulary=load_vocabulary(f, extend=False), seed=0)).records
    assert any("yoga mat" in r["prompt"] for r in rows)
    with pytest.raises(RepromptError, match="not found"):
        load_vocabulary(tmp_path / "missing.txt")


def test_plain_prompt_lists_load_with_recovered_metadata(shared_benchmarks: Path, tmp_path: Path) -> None:
    rl = load_prompts(shared_benchmarks / "reprompt-rl-prompts" / "generation_prompts_1k_filterd.txt")
    assert len(rl) == 1108 and all(r.get("tag") in GENEVAL_TAGS for r in rl)
    counting = next(r for r in rl if r["prompt"] == "a photo of four sleeping bags")
    assert counting["include"] == [{"class": "sleeping bag", "count": 4}]
    f = tmp_path / "mine.txt"
    f.write_text("a photo of a blue cat\n# comment\na cozy cabin in the snow at dusk\n")
    rows = load_prompts(f)
    assert rows[0]["include"] == [{"class": "cat", "count": 1, "color": "blue"}]
    assert rows[1] == {"id": "mine-00001", "prompt": "a cozy cabin in the snow at dusk"}


# ------------------------------------------------------------------------------------------ teachers


def test_grounded_teacher_writes_well_formed_explicit_prompts(geneval_file: Path) -> None:
    records = load_prompts(geneval_file)
    outs = GroundedTeacher().write(records)
    sketch = load_backbone("sketch")
    for rec, out in zip(records, outs, strict=True):
        parsed = parse_completion(out.completion, rec["prompt"], out.fmt)
        assert parsed.format_ok and parsed.reasoning, out.completion
        assert 15 <= sketch.count_tokens(parsed.prompt).tokens <= 77
        for clause in rec["include"]:
            assert clause["class"] in parsed.prompt or plural(clause["class"]) in parsed.prompt
            if "color" in clause:  # each object's own colour clause
                assert f"The {clause['class']} is entirely {clause['color']}." in parsed.prompt
        if rec["tag"] == "counting":
            assert f"exactly {parsed.prompt.split('exactly ')[1].split()[0]}" in parsed.prompt
    assert GroundedTeacher().write(records[:5]) == outs[:5]  # deterministic
    assert GroundedTeacher(seed=1).write(records[:60]) != outs[:60]  # phrasing varies with the seed


def test_grounded_placement_is_consistent_with_the_relation() -> None:
    sketch = load_backbone("sketch")
    expected = {
        "left of": ("horizontal", "left", "right"),
        "right of": ("horizontal", "right", "left"),
        "above": ("vertical", "top", "bottom"),
        "below": ("vertical", "bottom", "top"),
    }
    for rel, (axis, subject, reference) in expected.items():
        _, prompt = GroundedTeacher().plan(position("dog", rel, "cup"))
        objects = {o.cls: o for o in sketch.read(prompt).objects}
        assert getattr(objects["dog"], axis) == subject and getattr(objects["cup"], axis) == reference, prompt


def test_grounded_rewrites_beat_the_plain_prompts_on_sketch(geneval_file: Path) -> None:
    records = [r for r in load_prompts(geneval_file)][::4]  # 139 prompts, every tag
    teacher = GroundedTeacher()
    rewritten = [
        parse_completion(o.completion, r["prompt"]).prompt
        for o, r in zip(teacher.write(records), records, strict=True)
    ]
    sketch, oracle = load_backbone("sketch", width=128, height=128), load_detector("oracle")

    def score(prompts: list[str]) -> float:
        out = sketch.render(prompts, [42] * len(prompts))
        return sum(r.correct for r in score_images(records, out.images, out.scenes, detector=oracle)) / len(
            prompts
        )

    plain, grounded = score([r["prompt"] for r in records]), score(rewritten)
    assert grounded > 0.9 and grounded > plain + 0.15, (plain, grounded)


def test_grounded_teacher_reports_records_it_cannot_handle() -> None:
    out = GroundedTeacher().write([{"id": "x", "prompt": "a cozy cabin"}])[0]
    assert out.completion == "" and "metadata" in out.error
    with pytest.raises(RepromptError, match="writes no reasoning"):
        load_teacher("none")


# ------------------------------------------------------------------------------------------ SFT data


def _records(n: int = 24) -> list[dict]:
    return split_prompts(PromptGenConfig(n_sft=n, n_rl=0, seed=5))[0]["sft"]


def test_sft_data_is_filtered_reported_and_resumable(tmp_path: Path) -> None:
    records = _records() + [{"id": "plain", "prompt": "a cozy cabin in the snow"}]
    out = tmp_path / "sft.jsonl"
    counter = load_backbone("sketch").count_tokens
    first = build_sft_data(records[:10], GroundedTeacher(), out, token_counter=counter, progress=False)
    assert first.kept == 10 and first.written_now == 10
    with open(out, "a") as f:  # a kill in the middle of a line
        f.write('{"id": "sft-00010", "prompt": "a photo')
    report = build_sft_data(
        records, GroundedTeacher(), out, token_counter=counter, progress=False, min_tokens=36
    )
    rows = read_jsonl(out)
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids)) and report.resumed == 10
    assert report.kept == len(rows) and report.total == len(records)
    assert report.dropped["teacher: no GenEval metadata (tag/include): the grounded teacher needs it"] == 1
    assert report.dropped.get("too short (< 36 tokens)", 0) >= 1
    assert len(read_jsonl(dropped_path(out))) == sum(report.dropped.values())
    row = rows[-1]
    assert {"id", "prompt", "completion", "reasoning", "rewritten", "tag", "include", "prompt_tokens"} <= set(
        row
    )
    assert json.loads((tmp_path / "sft.report.json").read_text())["kept"] == report.kept
    again = build_sft_data(
        records, GroundedTeacher(), out, token_counter=counter, progress=False, min_tokens=36
    )
    assert again.written_now == 0 and again.resumed == len(records) and again.kept == report.kept


def test_policy_teacher_completions_are_format_filtered(tmp_path: Path, tiny_model) -> None:
    teacher = load_teacher(str(tiny_model("tiny-qwen2")), options=None)
    assert isinstance(teacher, PolicyTeacher)
    from reprompt.policy import GenerationOptions

    teacher.options = GenerationOptions(max_new_tokens=8, batch_size=4)
    report = build_sft_data(_records(4), teacher, tmp_path / "sft.jsonl", progress=False)
    assert report.kept == 0 and sum(report.dropped.values()) == 4  # a random model writes no tags
    assert all(reason.startswith("format: ") for reason in report.dropped)


def test_sft_examples_use_the_inference_messages_and_the_spec_tags(tmp_path: Path) -> None:
    out = tmp_path / "sft.jsonl"
    build_sft_data(_records(3), GroundedTeacher(), out, progress=False)
    rows = read_jsonl(out)
    spec = PromptSpec()
    ex = sft_examples(rows, spec)[0]
    assert ex["prompt"] == spec.messages(rows[0]["prompt"])
    assert ex["completion"][0]["role"] == "assistant" and ex["completion"][0]["content"].startswith(
        "<reason>"
    )
    no_reason = sft_examples(rows, PromptSpec(tags="prompt"))[0]["completion"][0]["content"]
    assert no_reason == f"<prompt>{rows[0]['rewritten']}</prompt>"
    with pytest.raises(ConfigError, match="not in the reason/prompt format"):
        sft_examples([{"id": "b", "prompt": "a cat", "completion": "no tags"}], spec)


def test_cli_data_prompts_and_sft(tmp_path: Path, geneval_file: Path, capsys: pytest.CaptureFixture) -> None:
    from reprompt.cli.main import main

    out = tmp_path / "data"
    rc = main(["data", "prompts", "--out", str(out), "--n-sft", "40", "--n-rl", "10", "--n-heldout", "5",
               "--exclude", str(geneval_file), "--seed", "1"])  # fmt: skip
    assert rc == 0
    summary = json.loads((out / "prompts_summary.json").read_text())
    assert summary["counts"] == {"sft": 40, "rl": 10, "heldout": 5} and summary["excluded_prompts"] >= 550
    rc = main(
        [
            "data",
            "sft",
            "--prompts",
            str(out / "sft_prompts.jsonl"),
            "--out",
            str(out / "sft.jsonl"),
            "--limit",
            "12",
        ]
    )
    assert rc == 0 and "kept 12 of 12" in capsys.readouterr().out
    assert main(["data", "sft", "--prompts", str(out / "nope.jsonl"), "--out", str(out / "x.jsonl")]) == 2


def test_openai_compatible_teacher_through_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """A hosted or vLLM-served model as teacher: its completions are parsed, length-filtered and kept."""
    from reprompt.cli.main import main
    from tests.fake_openai import FakeOpenAI

    long = "A photo of exactly one {} standing alone in the center of a plain light background, sharp focus."

    def reply(body: dict) -> str:
        user = body["messages"][-1]["content"]
        if "dog" in user:
            return "<reason>one dog</reason><prompt>A dog.</prompt>"  # too short for the length filter
        return f"<reason>one object, centered</reason>\n<prompt>{long.format(user.split()[-1])}</prompt>"

    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a photo of a cat\na photo of a dog\na photo of a bench\n")
    out = tmp_path / "sft.jsonl"
    with FakeOpenAI(reply) as srv:
        rc = main(["data", "sft", "--prompts", str(prompts), "--out", str(out), "--teacher", "openai",
                   "--api-model", "teacher", "--api-base", srv.base_url, "--api-key-env", "NO_SUCH_KEY"])  # fmt: skip
    assert rc == 0 and "kept 2 of 3" in capsys.readouterr().out
    rows = read_jsonl(out)
    assert [r["teacher"] for r in rows] == ["policy:openai:teacher"] * 2
    assert rows[0]["rewritten"] == long.format("cat") and rows[0]["reasoning"] == "one object, centered"
    assert read_jsonl(dropped_path(out))[0]["reason"] == "too short (< 15 tokens)"
