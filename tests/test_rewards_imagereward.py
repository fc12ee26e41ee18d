"""ImageReward: the transformers port against an independent re-implementation of the original BLIP code,
checkpoint conversion (.pt -> safetensors, weights_only), the tiny model and the reward component."""

from __future__ import annotations

import argparse
import dataclasses
import math
import pickle
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from reprompt.errors import ModelNotFoundError, RepromptError
from reprompt.rewards import build_component
from reprompt.rewards.imagereward_model import (
    ImageRewardModel,
    arch_from_state_dict,
    convert_checkpoint,
    convert_state_dict,
    preprocess,
)
from reprompt.testing.imagereward import TINY_ARCH, build_tiny_imagereward


@pytest.fixture(scope="module")
def tiny_ir(tmp_path_factory):
    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("ir") / "tiny-imagereward"
    build_tiny_imagereward(folder, seed=0)
    return folder


def tiny_tokenizer():
    from reprompt.testing import tokenizers

    tok = tokenizers.bert_tokenizer()
    tok.add_special_tokens({"bos_token": "[DEC]", "additional_special_tokens": ["[ENC]"]})
    return tok


# The original checkpoint's key names (BLIP's timm-style ViT and med.py BERT), written independently of the
# converter: the inverse renaming.
_INVERSE = [
    (r"^vision\.embeddings\.class_embedding$", "blip.visual_encoder.cls_token"),
    (r"^vision\.embeddings\.position_embedding$", "blip.visual_encoder.pos_embed"),
    (r"^vision\.embeddings\.patch_embedding\.", "blip.visual_encoder.patch_embed.proj."),
    (r"^vision\.encoder\.layers\.(\d+)\.layer_norm1\.", r"blip.visual_encoder.blocks.\1.norm1."),
    (r"^vision\.encoder\.layers\.(\d+)\.layer_norm2\.", r"blip.visual_encoder.blocks.\1.norm2."),
    (r"^vision\.encoder\.layers\.(\d+)\.self_attn\.qkv\.", r"blip.visual_encoder.blocks.\1.attn.qkv."),
    (
        r"^vision\.encoder\.layers\.(\d+)\.self_attn\.projection\.",
        r"blip.visual_encoder.blocks.\1.attn.proj.",
    ),
    (r"^vision\.encoder\.layers\.(\d+)\.mlp\.", r"blip.visual_encoder.blocks.\1.mlp."),
    (r"^vision\.post_layernorm\.", "blip.visual_encoder.norm."),
    (r"^text\.", "blip.text_encoder."),
    (r"^mlp\.", "mlp."),
]


def to_original(state):
    out = {}
    for key, value in state.items():
        for pat, repl in _INVERSE:
            if re.search(pat, key):
                out[re.sub(pat, repl, key)] = value.clone()
                break
        else:
            raise AssertionError(f"unmapped key {key}")
    return out


def reference_reward(sd, arch, input_ids, attention_mask, pixels):
    """ImageReward's forward written from the original code (ViT blocks, med.py BERT with cross-attention,
    MLP head, standardization) over the ORIGINAL state-dict names."""
    ln = F.layer_norm

    def lin(x, p):
        return F.linear(x, sd[p + ".weight"], sd[p + ".bias"])

    def attend(q, k, v, heads, mask=None):
        b, n, c = q.shape
        d = c // heads
        q, k, v = (t.reshape(b, -1, heads, d).transpose(1, 2) for t in (q, k, v))
        scores = q @ k.transpose(-1, -2) / math.sqrt(d)
        if mask is not None:
            scores = scores + mask
        return (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, n, c)

    # vision: timm-style ViT as in BLIP's vit.py
    v = "blip.visual_encoder."
    x = F.conv2d(
        pixels, sd[v + "patch_embed.proj.weight"], sd[v + "patch_embed.proj.bias"], stride=arch.patch_size
    )
    x = x.flatten(2).transpose(1, 2)
    x = torch.cat([sd[v + "cls_token"].expand(x.shape[0], -1, -1), x], 1) + sd[v + "pos_embed"]
    for i in range(arch.vision_layers):
        p = f"{v}blocks.{i}."
        h = ln(x, (x.shape[-1],), sd[p + "norm1.weight"], sd[p + "norm1.bias"], eps=1e-6)
        q, k, val = lin(h, p + "attn.qkv").chunk(3, dim=-1)
        x = x + lin(attend(q, k, val, arch.vision_heads), p + "attn.proj")
        h = ln(x, (x.shape[-1],), sd[p + "norm2.weight"], sd[p + "norm2.bias"], eps=1e-6)
        x = x + lin(F.gelu(lin(h, p + "mlp.fc1")), p + "mlp.fc2")
    image = ln(x, (x.shape[-1],), sd[v + "norm.weight"], sd[v + "norm.bias"], eps=1e-6)

    # text: med.py BertModel, mode multimodal
    t = "blip.text_encoder."
    hdim = arch.text_hidden
    y = sd[t + "embeddings.word_embeddings.weight"][input_ids]
    y = y + sd[t + "embeddings.position_embeddings.weight"][: input_ids.shape[1]]
    y = ln(y, (hdim,), sd[t + "embeddings.LayerNorm.weight"], sd[t + "embeddings.LayerNorm.bias"], eps=1e-12)
    mask = (1.0 - attention_mask[:, None, None, :].float()) * -10000.0
    for i in range(arch.text_layers):
        p = f"{t}encoder.layer.{i}."
        a = attend(
            lin(y, p + "attention.self.query"),
            lin(y, p + "attention.self.key"),
            lin(y, p + "attention.self.value"),
            arch.text_heads,
            mask,
        )
        y = ln(
            lin(a, p + "attention.output.dense") + y,
            (hdim,),
            sd[p + "attention.output.LayerNorm.weight"],
            sd[p + "attention.output.LayerNorm.bias"],
            eps=1e-12,
        )
        c = attend(
            lin(y, p + "crossattention.self.query"),
            lin(image, p + "crossattention.self.key"),
            lin(image, p + "crossattention.self.value"),
            arch.text_heads,
        )
        y = ln(
            lin(c, p + "crossattention.output.dense") + y,
            (hdim,),
            sd[p + "crossattention.output.LayerNorm.weight"],
            sd[p + "crossattention.output.LayerNorm.bias"],
            eps=1e-12,
        )
        z = lin(F.gelu(lin(y, p + "intermediate.dense")), p + "output.dense")
        y = ln(z + y, (hdim,), sd[p + "output.LayerNorm.weight"], sd[p + "output.LayerNorm.bias"], eps=1e-12)
    r = y[:, 0, :]
    for i in (0, 2, 4, 6, 7):
        r = lin(r, f"mlp.layers.{i}")
    return ((r - arch.reward_mean) / arch.reward_std).squeeze(-1)


def random_original_checkpoint(arch, seed=0):
    gen = torch.Generator().manual_seed(seed)
    model = ImageRewardModel(arch)
    state = {k: torch.randn(v.shape, generator=gen) * 0.2 for k, v in model.state_dict().items()}
    for k in state:
        if k.endswith("LayerNorm.weight") or re.search(r"(norm\d?|layernorm)\.weight$", k):
            state[k] = 1.0 + state[k] * 0.5
    original = to_original(state)
    # extra tensors the official checkpoint carries (BLIP's ITC projections, a position_ids buffer)
    original["blip.vision_proj.weight"] = torch.randn(8, arch.vision_hidden, generator=gen)
    original["blip.text_proj.weight"] = torch.randn(8, arch.text_hidden, generator=gen)
    original["blip.text_encoder.embeddings.position_ids"] = torch.arange(arch.text_max_positions)[None]
    return original


def test_port_matches_the_original_computation(tmp_path):
    tok = tiny_tokenizer()
    arch = dataclasses.replace(TINY_ARCH, text_vocab=len(tok))
    original = random_original_checkpoint(arch)
    pt = tmp_path / "ImageReward.pt"
    torch.save(original, pt)
    folder = convert_checkpoint(pt, tmp_path / "converted", tokenizer=tok, vision_heads=4, text_heads=4)
    assert (folder / "model.safetensors").is_file() and not list(tmp_path.glob(".converted.*"))
    model = ImageRewardModel.from_folder(folder)
    assert model.arch == arch
    texts = ["a photo of a red cat", "two dogs and a cup on a table"]
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 255, (40 + 8 * i, 48, 3), dtype=np.uint8)) for i in range(2)]
    tokens = tok(
        texts, padding="max_length", truncation=True, max_length=arch.max_length, return_tensors="pt"
    )
    pixels = preprocess(images, arch)
    with torch.no_grad():
        ours = model(tokens.input_ids, tokens.attention_mask, pixels)
        ref = reference_reward(original, arch, tokens.input_ids, tokens.attention_mask, pixels)
    assert ours.shape == (2,)
    assert torch.allclose(ours, ref, atol=1e-4, rtol=1e-4), (ours, ref)
    assert not torch.allclose(ours[0], ours[1])


def test_arch_inference_and_refusals(tmp_path):
    original = random_original_checkpoint(dataclasses.replace(TINY_ARCH, text_vocab=700))
    arch = arch_from_state_dict(original)
    assert (arch.image_size, arch.patch_size, arch.vision_layers, arch.text_layers, arch.text_vocab) == (
        32,
        8,
        2,
        2,
        700,
    )
    assert arch.mlp_hidden == [1024, 128, 64, 16]
    assert arch_from_state_dict(original, vision_heads=4).vision_heads == 4
    with pytest.raises(RepromptError, match="unexpected keys"):
        convert_state_dict({**original, "head.weight": torch.zeros(1)})

    bad = tmp_path / "evil.pt"  # a pickled object, not tensors: weights_only refuses to build it
    torch.save({"x": argparse.Namespace(code="anything")}, bad)
    with pytest.raises(RepromptError, match="plain tensor state dict"):
        convert_checkpoint(bad, tmp_path / "out", tokenizer=tiny_tokenizer())
    with pytest.raises(ModelNotFoundError):
        convert_checkpoint(tmp_path / "missing.pt", tmp_path / "out2", tokenizer=tiny_tokenizer())


def test_official_checkpoint_shape_of_v1_is_the_default_arch():
    # ImageReward-v1.0 = BLIP ViT-L/16 at 224 px + BERT-base (+[DEC],[ENC]) + 768->1024->128->64->16->1 head
    from reprompt.rewards.imagereward_model import ImageRewardArch

    a = ImageRewardArch()
    with torch.device("meta"):  # full size, no memory: the real checkpoint's names and shapes round-trip
        state = ImageRewardModel(a).state_dict()
    original = to_original(state)
    assert original["blip.visual_encoder.pos_embed"].shape == (1, 197, 1024)
    assert original["blip.text_encoder.encoder.layer.0.crossattention.self.key.weight"].shape == (768, 1024)
    assert original["mlp.layers.0.weight"].shape == (1024, 768) and original["mlp.layers.7.weight"].shape == (
        1,
        16,
    )
    assert arch_from_state_dict(original) == a
    assert convert_state_dict(original).keys() == state.keys()
    assert (a.image_size, a.patch_size, a.vision_hidden, a.vision_layers, a.vision_heads) == (
        224,
        16,
        1024,
        24,
        16,
    )
    assert (a.text_vocab, a.text_hidden, a.text_layers, a.max_length) == (30524, 768, 12, 35)


def test_component_on_the_tiny_model(tiny_ir, monkeypatch, tmp_path):
    reward = build_component("imagereward", {"model": str(tiny_ir), "batch_size": 2})
    assert reward.backend == "transformers"
    rng = np.random.default_rng(3)
    images = [Image.fromarray(rng.integers(0, 255, (64, 48, 3), dtype=np.uint8)) for _ in range(3)]
    texts = ["a red cat", "a blue dog", "a red cat"]
    scores = reward.score_images(texts, images, [None] * 3, [None] * 3)
    assert len(scores) == 3 and all(isinstance(s, float) and math.isfinite(s) for s in scores)
    assert len(set(scores)) == 3
    single = [reward.score_images([t], [im], [None], [None])[0] for t, im in zip(texts, images, strict=True)]
    assert single == pytest.approx(scores, abs=1e-5)
    clone = pickle.loads(pickle.dumps(reward))
    assert clone._model is None and clone.__name__ == "imagereward"
    assert clone.score_images(texts, images, [None] * 3, [None] * 3) == pytest.approx(scores, abs=1e-6)


def test_component_converts_a_pt_once(tmp_path, monkeypatch):
    monkeypatch.setenv("REPROMPT_CACHE", str(tmp_path / "cache"))
    tok = tiny_tokenizer()
    tok_dir = tmp_path / "tok"
    tok.save_pretrained(tok_dir)
    arch = dataclasses.replace(TINY_ARCH, text_vocab=len(tok), text_heads=2, vision_heads=2)
    # heads inferred as width // 64 are wrong for toy widths; a real checkpoint uses 64-dim heads.
    arch = dataclasses.replace(
        arch,
        vision_hidden=64,
        vision_heads=1,
        text_hidden=64,
        text_heads=1,
        vision_mlp=64,
        text_intermediate=64,
    )
    pt = tmp_path / "my.pt"
    torch.save(random_original_checkpoint(arch), pt)
    reward = build_component("imagereward", {"model": str(pt), "tokenizer": str(tok_dir)})
    image = Image.new("RGB", (32, 32), (10, 200, 30))
    first = reward.score_images(["a green cup"], [image], [None], [None])
    converted = list((tmp_path / "cache" / "imagereward").iterdir())
    assert len(converted) == 1 and (converted[0] / "model.safetensors").is_file()
    again = build_component("imagereward", {"model": str(pt), "tokenizer": str(tok_dir)})
    assert again.score_images(["a green cup"], [image], [None], [None]) == first


def test_missing_weights_say_what_to_do(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(ModelNotFoundError, match="reprompt\\[imagereward\\]"):
        build_component("imagereward", {"model": "ImageReward-v1.0"})
    with pytest.raises(ModelNotFoundError):
        build_component("imagereward", {"model": str(tmp_path / "nope"), "backend": "transformers"}).load()
