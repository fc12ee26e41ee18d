"""Every PNG reprompt saves says where it came from, in text chunks that common tools read: AUTOMATIC1111's
``parameters`` (image viewers, Civitai, ComfyUI's loaders) and a ``reprompt`` JSON chunk. Read back here with
Pillow, from the CLI's ``generate``, the evaluation runners, the server's replies and files, and the UI's
turns (tests/test_ui_studio.py)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from PIL import Image

from reprompt.cli.main import main
from reprompt.utils.images import read_provenance

# AUTOMATIC1111's own reader of the last line (modules/infotext_utils.py): at least three `Key: value` pairs,
# a value either JSON-quoted or without a comma.
A1111_PAIR = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')


def a1111_parse(text: str) -> dict[str, str]:
    """What A1111 reads from a ``parameters`` chunk: prompt, negative prompt, and the last line's pairs."""
    *lines, last = text.strip().split("\n")
    pairs = {k: (json.loads(v) if v.startswith('"') else v) for k, v in A1111_PAIR.findall(last)}
    assert len(pairs) >= 3, f"A1111 would take this last line for part of the prompt: {last!r}"
    negative = [ln for ln in lines if ln.startswith("Negative prompt: ")]
    prompt = "\n".join(ln for ln in lines if not ln.startswith("Negative prompt: "))
    out = {"prompt": prompt, **pairs}
    if negative:
        out["negative"] = negative[0].removeprefix("Negative prompt: ")
    return out


def chunks(path: Path) -> dict[str, str]:
    with Image.open(path) as im:
        return dict(im.text)  # type: ignore[attr-defined]


def test_chunks_round_trip_with_quoting_and_unicode():
    from reprompt.utils.images import ImageProvenance, png_bytes

    prov = ImageProvenance(
        original='two "red" dogs, left: a cat',
        prompt="Two red dogs on the left.\nA cat on the right — ねこ.",
        seed=2**63 - 1,
        backbone="sdxl",
        settings={"width": 512, "height": 512, "steps": 30, "guidance": 5.0, "negative_prompt": "blur"},
        policy="qwen2.5-3b",
        reasoning="Plan: dogs, cat; colors: red.",
    )
    data = png_bytes(Image.new("RGB", (8, 8), "white"), prov)
    import io

    with Image.open(io.BytesIO(data)) as im:
        text = dict(im.text)  # type: ignore[attr-defined]
    parsed = a1111_parse(text["parameters"])
    assert parsed["prompt"] == prov.prompt and parsed["negative"] == "blur"
    assert parsed["Seed"] == str(2**63 - 1) and parsed["Size"] == "512x512"
    assert parsed["Steps"] == "30" and parsed["CFG scale"] == "5.0" and parsed["Model"] == "sdxl"
    assert parsed["Original prompt"] == prov.original and parsed["RePrompt reasoning"] == prov.reasoning
    assert parsed["RePrompt policy"] == "qwen2.5-3b" and parsed["RePrompt"] == "rewritten"
    record = read_provenance(data)
    assert record is not None and record["schema"] == "reprompt.provenance/1"
    assert record["original"] == prov.original and record["prompt"] == prov.prompt
    assert record["settings"]["negative_prompt"] == "blur" and record["seed"] == 2**63 - 1


def test_cli_generate_writes_provenance_into_every_png(tmp_path: Path, tiny_model):
    out = tmp_path / "out"
    policy = str(tiny_model("tiny-qwen2"))
    code = main(
        ["generate", "a photo of two red apples", "--policy", policy, "--images", "2", "--seed", "11"]
        + ["--out", str(out), "--width", "64", "--height", "64", "--max-new-tokens", "4"]
    )
    assert code == 0
    record = json.loads((out / "record.json").read_text())
    pngs = sorted(out.glob("*.png"))
    assert {p.name for p in pngs} == {
        "comparison.png",
        "original_0.png",
        "original_1.png",
        "rewritten_0.png",
        "rewritten_1.png",
    }
    for k in range(2):
        rewritten = chunks(out / f"rewritten_{k}.png")
        parsed = a1111_parse(rewritten["parameters"])
        assert parsed["prompt"] == record["rewritten"] and parsed["Seed"] == str(11 + k)
        assert parsed["Size"] == "64x64" and parsed["Model"] == "sketch"
        prov = json.loads(rewritten["reprompt"])
        assert prov["original"] == "a photo of two red apples" and prov["prompt"] == record["rewritten"]
        assert prov["reasoning"] == record["reasoning"] and prov["policy"] == "tiny-qwen2"
        assert prov["rewrite"] == ("fallback" if record["rewrite"]["fallback"] else "rewritten")
        assert prov["seed"] == 11 + k and prov["settings"] == {"width": 64, "height": 64}
        original = json.loads(chunks(out / f"original_{k}.png")["reprompt"])
        assert original["prompt"] == original["original"] and original["rewrite"] == "original"
        assert original["policy"] is None and original["reasoning"] == ""
    assert json.loads(chunks(out / "comparison.png")["reprompt"])["prompt"] == record["rewritten"]


def test_cli_generate_rewrite_off_says_so(tmp_path: Path):
    out = tmp_path / "plain"
    assert (
        main(["generate", "a cat", "--no-rewrite", "--out", str(out), "--width", "32", "--height", "32"]) == 0
    )
    prov = read_provenance(out / "image_0.png")
    assert prov is not None and prov["rewrite"] == "off" and prov["policy"] is None
    assert a1111_parse(chunks(out / "image_0.png")["parameters"])["RePrompt"] == "off"


def test_records_and_images_name_models_never_by_absolute_path(tmp_path: Path, tiny_model):
    folder = str(tiny_model("tiny-qwen2"))
    assert folder.startswith("/")
    out = tmp_path / "tiny"
    argv = ["generate", "a cat", "--policy", folder, "--out", str(out), "--max-new-tokens", "4"]
    assert main([*argv, "--width", "32", "--height", "32"]) == 0
    for path in out.iterdir():
        text = path.read_bytes().decode("latin-1")
        assert folder not in text, f"{path.name} holds the absolute model path"
    assert read_provenance(out / "rewritten_0.png")["policy"] == "tiny-qwen2"


def test_geneval_images_carry_provenance(tmp_path: Path, shared_benchmarks: Path, tiny_model):
    from reprompt.eval.geneval.generate import GenerateConfig, generate_run, image_path
    from reprompt.policy import load_policy

    metadata = shared_benchmarks / "geneval" / "evaluation_metadata.jsonl"
    out = tmp_path / "geneval"
    config = GenerateConfig(metadata=str(metadata), out=str(out), progress=False, limit=2, images=2, seed=3)
    generate_run(config, rewriter=load_policy(str(tiny_model("tiny-qwen2"))))
    meta = json.loads((out / "00000" / "metadata.jsonl").read_text())
    for k in range(2):
        prov = read_provenance(image_path(out, 0, k))
        assert prov is not None and prov["original"] == meta["prompt"]
        assert prov["prompt"] == meta["rewritten_prompt"] and prov["seed"] == 3 + k
        assert prov["backbone"] == "sketch" and prov["extra"]["task"] == "geneval"
        assert prov["policy"] == "tiny-qwen2" and prov["reasoning"] == meta["reasoning"]
        assert prov["rewrite"] == ("fallback" if meta["fallback"] else "rewritten")


def test_compbench_images_carry_provenance(tmp_path: Path, shared_benchmarks: Path):
    from reprompt.backbones import load_backbone
    from reprompt.eval.compbench.generate import CompBenchRunConfig, run_generate

    data = tmp_path / "data"
    shutil.copytree(shared_benchmarks / "t2i-compbench", data)
    out = tmp_path / "cb"
    cfg = CompBenchRunConfig(
        data_dir=str(data),
        out=str(out),
        categories="spatial",
        limit=1,
        images=2,
        progress=False,
        policy="none",
    )
    run_generate(cfg, backbone=load_backbone("sketch", width=32, height=32))
    samples = sorted((out / "spatial" / "samples").glob("*.png"))
    assert len(samples) == 2
    for k, path in enumerate(samples):
        prov = read_provenance(path)
        assert prov is not None and prov["rewrite"] == "off" and prov["seed"] == cfg.seed + k
        assert prov["prompt"] == prov["original"] and prov["settings"] == {"width": 32, "height": 32}


def test_an_image_without_provenance_reads_as_none(tmp_path: Path):
    plain = tmp_path / "plain.png"
    Image.new("RGB", (4, 4)).save(plain)
    assert read_provenance(plain) is None
