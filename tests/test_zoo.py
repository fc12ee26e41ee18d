"""Tiny model zoo: each model builds, reloads with the user's ``from_pretrained`` call, and runs."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from reprompt.errors import RepromptError
from reprompt.geneval.vocabulary import COCO_CLASSES
from reprompt.testing import MARKER, TINY_MODELS, build_tiny, list_tiny

TAGGED = "<reason>Two red apples go left of a blue dog.</reason><prompt>A photo of two red apples.</prompt>"


def _image(width: int = 80, height: int = 64):
    import numpy as np
    from PIL import Image

    pixels = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    return Image.fromarray(pixels)


def _digest(folder: Path) -> dict[str, str]:
    """Hash of every weight and tokenizer file, by relative path."""
    files = [
        p for p in sorted(folder.rglob("*")) if p.suffix in {".safetensors", ".json"} and p.name != MARKER
    ]
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


# --- build_tiny contract ------------------------------------------------------------------------------------


def test_names_in_priority_order() -> None:
    assert list_tiny() == list(TINY_MODELS)
    assert list_tiny()[:3] == ["tiny-qwen2", "tiny-llama", "tiny-flux"]
    assert {"tiny-sd3", "tiny-pixart-sigma", "tiny-sdxl", "tiny-clip", "tiny-mask2former"} <= set(list_tiny())
    assert {"tiny-blip-vqa", "tiny-qwen2-vl", "tiny-qwen3-vl", "tiny-hunyuan-dense"} <= set(list_tiny())


def test_unknown_name_suggests_closest(tmp_path: Path) -> None:
    with pytest.raises(RepromptError, match="Did you mean 'tiny-flux'"):
        build_tiny("tiny-flx", tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_refuses_to_overwrite_a_foreign_folder(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(RepromptError, match="refusing to overwrite"):
        build_tiny("tiny-llama", tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_default_folder_is_under_reprompt_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REPROMPT_CACHE", str(tmp_path))
    assert build_tiny("tiny-llama") == tmp_path / "tiny" / "tiny-llama"
    assert [p.name for p in (tmp_path / "tiny").iterdir()] == ["tiny-llama"]  # no temporary leftovers


def _must_not_build(folder: Path, seed: int) -> None:
    raise AssertionError("rebuilt a cached tiny model")


def test_idempotent_and_rebuilds_on_other_seed(tmp_path: Path) -> None:
    import torch

    folder = tmp_path / "llama"
    state = torch.get_rng_state()
    build_tiny("tiny-llama", folder)
    assert torch.equal(torch.get_rng_state(), state)  # the caller's RNG is untouched
    weights = folder / "model.safetensors"
    stamp = weights.stat().st_mtime_ns
    from unittest import mock

    with mock.patch.dict("reprompt.testing.TINY_MODELS", {"tiny-llama": _must_not_build}):
        assert build_tiny("tiny-llama", folder) == folder  # a matching marker: nothing is built again
    assert weights.stat().st_mtime_ns == stamp
    build_tiny("tiny-llama", folder, seed=1)
    assert json.loads((folder / MARKER).read_text())["seed"] == 1


@pytest.mark.parametrize("name", ["tiny-qwen2", "tiny-flux"])
def test_same_seed_same_files(name: str, tmp_path: Path, tiny_model) -> None:
    first = _digest(tiny_model(name))
    assert first == _digest(build_tiny(name, tmp_path / "again"))
    other = _digest(tiny_model(name, seed=1))
    weights = [k for k in first if k.endswith(".safetensors")]
    assert weights and all(first[k] != other[k] for k in weights)
    assert all(
        first[k] == other[k] for k in first if "tokenizer" in k
    )  # the tokenizer does not depend on seed


def test_tokenizers_do_not_depend_on_hash_seed() -> None:
    """Tokenizer training must not follow set/dict hash order, which changes with every Python process."""
    import subprocess
    import sys

    code = (
        "import hashlib; from reprompt.testing import tokenizers as t; "
        "print([hashlib.sha256(f().backend_tokenizer.to_str().encode()).hexdigest() "
        "for f in (t.qwen2_tokenizer, t.smollm2_tokenizer, t.clip_tokenizer, t.t5_tokenizer, t.bert_tokenizer)])"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONHASHSEED": str(seed)},
            stdout=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).resolve().parents[1],
        )
        for seed in (1, 2)
    ]
    runs = {p.communicate(timeout=120)[0] for p in procs}
    assert all(p.returncode == 0 for p in procs)
    assert len(runs) == 1


# --- policies -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "model_class", "system"),
    [
        ("tiny-qwen2", "Qwen2ForCausalLM", "You are Qwen, created by Alibaba Cloud."),
        ("tiny-llama", "LlamaForCausalLM", "You are a helpful AI assistant named SmolLM"),
    ],
)
def test_policy_lm_generates(name: str, model_class: str, system: str, tiny_model) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = tiny_model(name)
    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder)
    assert type(model).__name__ == model_class
    assert tok.eos_token == "<|im_end|>" and tok.pad_token is not None
    assert tok.padding_side == "right"  # left padding is the policy code's decision
    assert 1000 <= len(tok) <= 2000 <= model.config.max_position_embeddings
    assert model.config.vocab_size >= len(tok)
    assert tok.decode(tok(TAGGED)["input_ids"]) == TAGGED
    assert tok.unk_token_id is None or tok.unk_token_id not in tok(TAGGED)["input_ids"]

    messages = [{"role": "user", "content": "a photo of three cats"}]
    text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert system in text and text.endswith("<|im_start|>assistant\n")
    assert "<|im_start|>user\na photo of three cats<|im_end|>\n" in text
    assert len(tok.convert_tokens_to_ids(tok.tokenize("<|im_start|>"))) == 1

    tok.padding_side = "left"
    batch = tok([text, "hi"], return_tensors="pt", padding=True)
    with torch.no_grad():
        out = model.generate(**batch, max_new_tokens=4, do_sample=False)
    assert batch["input_ids"].shape[1] < out.shape[1] <= batch["input_ids"].shape[1] + 4
    assert isinstance(tok.batch_decode(out, skip_special_tokens=True)[0], str)


def test_qwen2_matches_qwen2_5_instruct_layout(tiny_model) -> None:
    from transformers import AutoTokenizer, GenerationConfig

    folder = tiny_model("tiny-qwen2")
    tok = AutoTokenizer.from_pretrained(folder)
    generation = GenerationConfig.from_pretrained(folder)
    im_end, eot = tok.convert_tokens_to_ids(["<|im_end|>", "<|endoftext|>"])
    assert tok.pad_token == "<|endoftext|>" and tok.bos_token is None
    assert generation.eos_token_id == [im_end, eot] and generation.pad_token_id == eot
    assert "padding_side" not in json.loads((folder / "tokenizer_config.json").read_text())
    trl_templates = Path(pytest.importorskip("trl").__file__).parent / "chat_templates"
    # TRL recognises Qwen2.5 by template identity (to swap in its assistant-mask training template).
    assert tok.chat_template == (trl_templates / "qwen2_5.jinja").read_text()


# --- text-to-image pipelines --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "pipeline_class"),
    [
        ("tiny-flux", "FluxPipeline"),
        ("tiny-sd3", "StableDiffusion3Pipeline"),
        ("tiny-pixart-sigma", "PixArtSigmaPipeline"),
        ("tiny-sdxl", "StableDiffusionXLPipeline"),
    ],
)
def test_pipeline_renders_64px_in_two_steps(name: str, pipeline_class: str, tiny_model) -> None:
    import torch
    from diffusers import DiffusionPipeline

    pipe = DiffusionPipeline.from_pretrained(tiny_model(name))
    pipe.set_progress_bar_config(disable=True)
    assert type(pipe).__name__ == pipeline_class

    def render(prompt: str):
        generator = torch.Generator().manual_seed(0)
        kwargs = {"clean_caption": False} if name == "tiny-pixart-sigma" else {}
        return pipe(prompt, height=64, width=64, num_inference_steps=2, generator=generator, **kwargs).images[
            0
        ]

    image = render("a photo of two red apples left of a blue dog")
    assert image.size == (64, 64) and image.mode == "RGB"
    assert image.tobytes() == render("a photo of two red apples left of a blue dog").tobytes()


def test_flux_as_a_user_loads_it(tiny_model) -> None:
    import torch
    from diffusers import FluxPipeline

    pipe = FluxPipeline.from_pretrained(tiny_model("tiny-flux"))
    pipe.set_progress_bar_config(disable=True)
    assert pipe.tokenizer.model_max_length == 77 and pipe.tokenizer_2.model_max_length == 512
    assert pipe.vae_scale_factor == 8 and pipe.transformer.config.guidance_embeds  # FLUX.1-dev wiring

    def render(prompt: str):
        generator = torch.Generator().manual_seed(0)
        return pipe(prompt, height=64, width=64, num_inference_steps=2, generator=generator).images[0]

    image = render("a photo of a cat")
    assert image.size == (64, 64)
    assert image.tobytes() == render("a photo of a cat").tobytes()  # seeded: the same image again
    assert image.tobytes() != render("three green umbrellas above a red car").tobytes()


def test_text_encoder_lengths(tiny_model) -> None:
    from transformers import AutoTokenizer

    assert (
        AutoTokenizer.from_pretrained(tiny_model("tiny-pixart-sigma") / "tokenizer").model_max_length == 300
    )
    sdxl = tiny_model("tiny-sdxl")
    assert AutoTokenizer.from_pretrained(sdxl / "tokenizer").model_max_length == 77
    assert AutoTokenizer.from_pretrained(sdxl / "tokenizer_2").pad_token == "!"  # OpenCLIP-bigG padding


# --- scorers ------------------------------------------------------------------------------------------------


def test_clip_features(tiny_model) -> None:
    import torch
    from transformers import CLIPModel, CLIPProcessor

    folder = tiny_model("tiny-clip")
    model, processor = CLIPModel.from_pretrained(folder), CLIPProcessor.from_pretrained(folder)
    texts = ["a photo of a red apple", "a photo of a blue dog"]
    inputs = processor(text=texts, images=[_image()], return_tensors="pt", padding=True)
    with torch.no_grad():
        out = model(**inputs)
        image = model.get_image_features(pixel_values=inputs["pixel_values"]).pooler_output
        text = model.get_text_features(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"])
    assert out.logits_per_image.shape == (1, 2)
    assert image.shape == (1, 32) and text.pooler_output.shape == (2, 32)
    assert processor.tokenizer.model_max_length == 77


def test_mask2former_instance_segmentation(tiny_model) -> None:
    import torch
    from transformers import AutoImageProcessor, Mask2FormerForUniversalSegmentation

    folder = tiny_model("tiny-mask2former")
    model = Mask2FormerForUniversalSegmentation.from_pretrained(folder)
    processor = AutoImageProcessor.from_pretrained(folder)
    assert [model.config.id2label[i] for i in range(80)] == list(COCO_CLASSES)
    with torch.no_grad():
        outputs = model(**processor(images=[_image()], return_tensors="pt"))
    (result,) = processor.post_process_instance_segmentation(outputs, threshold=0.0, target_sizes=[(64, 80)])
    assert result["segmentation"].shape == (64, 80)
    assert all(0 <= s["label_id"] < 80 and 0.0 <= s["score"] <= 1.0 for s in result["segments_info"])


def test_coco_classes_match_geneval(shared_benchmarks: Path) -> None:
    names = (shared_benchmarks / "geneval" / "object_names.txt").read_text().splitlines()
    assert [n.strip() for n in names if n.strip()] == list(COCO_CLASSES)


def test_blip_vqa_answers(tiny_model) -> None:
    import torch
    from transformers import BlipForQuestionAnswering, BlipProcessor

    folder = tiny_model("tiny-blip-vqa")
    model, processor = BlipForQuestionAnswering.from_pretrained(folder), BlipProcessor.from_pretrained(folder)
    tok = processor.tokenizer
    assert tok.unk_token_id not in tok.convert_tokens_to_ids(["yes", "no"])
    assert model.config.text_config.bos_token_id == tok.convert_tokens_to_ids("[DEC]")
    inputs = processor(images=[_image()], text=["is the apple red?"], return_tensors="pt")
    with torch.no_grad():
        answer = model.generate(**inputs, max_new_tokens=3)
    assert isinstance(processor.batch_decode(answer, skip_special_tokens=True)[0], str)


def _qwen_vl_messages(image=None) -> list[dict]:
    picture = {"type": "image"} if image is None else {"type": "image", "image": image}
    return [
        {"role": "user", "content": [picture, {"type": "text", "text": "Is there a red apple? yes or no."}]}
    ]


def test_qwen2_vl_generates_from_image(tiny_model) -> None:
    """The model, image processor and tokenizer, wired by hand: works without torchvision."""
    import torch
    from transformers import AutoImageProcessor, AutoModelForImageTextToText, AutoTokenizer

    folder = tiny_model("tiny-qwen2-vl")
    model = AutoModelForImageTextToText.from_pretrained(folder)
    images, tok = AutoImageProcessor.from_pretrained(folder), AutoTokenizer.from_pretrained(folder)
    assert type(model).__name__ == "Qwen2_5_VLForConditionalGeneration"
    text = tok.apply_chat_template(_qwen_vl_messages(), tokenize=False, add_generation_prompt=True)
    assert "<|vision_start|><|image_pad|><|vision_end|>" in text
    pixels = images(images=[_image()], return_tensors="pt")
    n_tokens = int(pixels["image_grid_thw"][0].prod()) // images.merge_size**2
    inputs = tok([text.replace("<|image_pad|>", "<|image_pad|>" * n_tokens)], return_tensors="pt")
    with torch.no_grad():
        out = model.generate(**inputs, **pixels, max_new_tokens=4, do_sample=False)
    assert out.shape[1] > inputs["input_ids"].shape[1]


def test_qwen2_vl_auto_processor(tiny_model) -> None:
    """The user's path; transformers 5 needs torchvision for the Qwen2-VL video processor."""
    pytest.importorskip("torchvision")
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    folder = tiny_model("tiny-qwen2-vl")
    model, processor = (
        AutoModelForImageTextToText.from_pretrained(folder),
        AutoProcessor.from_pretrained(folder),
    )
    inputs = processor.apply_chat_template(
        _qwen_vl_messages(_image()),
        add_generation_prompt=True,
        tokenize=True,
        return_dict=True,
        return_tensors="pt",
    )
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=4, do_sample=False)
    assert out.shape[1] > inputs["input_ids"].shape[1]


def test_full_size_architectures_have_the_published_parameter_counts() -> None:
    """reprompt.testing.full (GPU timing at the paper's shapes) builds the real sizes: checked on the meta device,
    against the published counts (Qwen2.5-3B 3.09B, FLUX.1-dev transformer 11.9B, T5-v1.1-XXL encoder 4.76B,
    CLIP ViT-L/14 text 123M, FLUX VAE 84M, ImageReward-v1.0 (BLIP ViT-L + BERT-base) 0.45B, Qwen2.5-VL-3B 3.75B)."""
    from reprompt.testing.full import parameter_counts

    billions = {k: round(v / 1e9, 2) for k, v in parameter_counts().items()}
    assert billions == {
        "policy (Qwen2.5-3B)": 3.09,
        "flux transformer": 11.9,
        "flux T5-XXL encoder": 4.76,
        "flux CLIP-L text": 0.12,
        "flux VAE": 0.08,
        "ImageReward-v1.0": 0.45,
        "judge (Qwen2.5-VL-3B)": 3.75,
    }


def test_materialize_builds_on_the_given_device_and_dtype_and_restores() -> None:
    import torch

    from reprompt.testing.full import materialize

    with materialize("cpu", "bfloat16"):
        layer = torch.nn.Linear(4, 4)
    assert layer.weight.dtype == torch.bfloat16 and layer.weight.device.type == "cpu"
    assert torch.get_default_dtype() == torch.float32
