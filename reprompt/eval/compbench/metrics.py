"""T2I-CompBench's metrics on transformers models: BLIP-VQA, CLIP similarity, detector + depth spatial,
detector numeracy. Pure decision rules live in :mod:`rules`; prompt parsing in :mod:`nlp`.

Models load lazily and only from local folders or the Hugging Face cache (no ``trust_remote_code``).

Every way these scores differ from the official tools (UniDet, the depth expert, spaCy) is listed in
:data:`DEVIATIONS`; each ``scores.json`` carries the entries that apply to it, and
:func:`deviations_markdown` renders the list for the README.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from reprompt.eval.compbench import nlp, rules
from reprompt.utils.dtypes import resolve_dtype
from reprompt.utils.hub import from_pretrained

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

logger = logging.getLogger(__name__)

DEFAULT_BLIP = "Salesforce/blip-vqa-capfilt-large"
DEFAULT_CLIP = "openai/clip-vit-base-patch32"
DEFAULT_DEPTH = "Intel/dpt-hybrid-midas"
UNIDET_THRESHOLD = 0.5  # the official experts/model_bank.py --confidence-threshold

DEVIATIONS: dict[str, str] = {
    "detector": (
        "2D spatial, 3D spatial, numeracy and the spatial part of complex use our GenEval detectors "
        "(mask2former: COCO's 80 classes; oracle: the sketch simulator's scene) instead of UniDet "
        "(Unified_learned_OCIM_RS200, ~700 classes). Objects outside the detector's vocabulary can never be "
        "found, so these scores are lower bounds; each result reports the share of objects the detector can name."
    ),
    "detector_threshold": (
        "detections are kept above 0.5 as with UniDet's confidence threshold, but Mask2Former's score "
        "(class prob x mask quality) is not calibrated like UniDet's; boxes are rescaled to UniDet's "
        "479x480 input frame so the 150 px distance rule means the same."
    ),
    "object_names": (
        "prompt nouns map to detector classes by singular form, person words (official) and a short rename "
        "table (ship->boat, sofa->couch, mouse->computer mouse, ...); UniDet matched its own label strings."
    ),
    "nlp": (
        "noun phrases, nouns and adjectives come from spaCy en_core_web_sm when it is installed (official); "
        "otherwise from a built-in rule-based tagger (results say which: 'nlp')."
    ),
    "numeracy_vocabulary": (
        "the official numeracy parser only accepts objects from its generation word list (new_objects.txt, "
        "not released with the prompts); we accept any noun after one..twelve, and after 'a'/'an' only nouns "
        "the detector can name."
    ),
    "on_top_of": "'on top of' is scored like 'on the top of' (the official 2D rule has no branch for it: always 0).",
    "depth_model": (
        "3D spatial uses transformers' depth-estimation models (default Intel/dpt-hybrid-midas, the same "
        "DPT-Hybrid MiDaS weights Prismer's expert loads) at 480x480; the depth map stays float (official: "
        "saved as 8-bit PNG) and box means index it [y, x] (official: [x, y], transposed)."
    ),
    "depth_object_choice": "3D spatial takes each object's best detection (official: a quirky last-match loop).",
    "blip_image_size": (
        "BLIP-VQA runs at the image processor's size unless --blip-image-size is given (official: 480); "
        "questions start with [ENC] as in the official BLIP when the tokenizer has it."
    ),
    "clip": "CLIP ViT-B/32 via transformers (same OpenAI weights and preprocessing as the clip package).",
}

# fmt: off
METRIC_DEVIATIONS: dict[str, tuple[str, ...]] = {
    "blip_vqa": ("nlp", "blip_image_size"),
    "clip": ("clip",),
    "spatial_2d": ("detector", "detector_threshold", "object_names", "nlp", "on_top_of"),
    "spatial_3d": ("detector", "detector_threshold", "object_names", "nlp", "depth_model", "depth_object_choice"),
    "numeracy": ("detector", "detector_threshold", "object_names", "nlp", "numeracy_vocabulary"),
    "three_in_one": (
        "nlp", "blip_image_size", "clip", "detector", "detector_threshold", "object_names", "on_top_of",
    ),
}
# fmt: on


def deviations_markdown() -> str:
    """The deviation list as Markdown bullets, for the README."""
    return "\n".join(f"- **{key}**: {text}" for key, text in DEVIATIONS.items())


def _load(kind: str, id_or_path: str, loader: Any, **kw: Any) -> Any:
    return from_pretrained(loader, id_or_path, kind=f"{kind} model", errors=(OSError, ValueError), **kw)


def _dtype(dtype: Any) -> Any:
    """Scorers run in float32 unless told otherwise (their numbers are what a benchmark reports)."""
    return resolve_dtype(dtype or "float32")


def _model_and_processor(
    kind: str, id_or_path: str, model_cls: Any, processor_cls: Any, dtype: Any, device: str
) -> tuple[Any, Any, Any]:
    """(dtype, model in eval mode on ``device``, processor) of one scoring model."""
    dtype = _dtype(dtype)
    model = _load(kind, id_or_path, model_cls, dtype=dtype).to(device).eval()
    return dtype, model, _load(f"{kind} processor", id_or_path, processor_cls)


# -------------------------------------------------------------------------------------------- BLIP-VQA


class BlipVqaScorer:
    """BLIP-VQA score: for each noun phrase NP of the prompt ask "NP?" and multiply P(yes).

    P(yes) is the official ``vqa_prob``: softmax of the answer decoder's first token after [DEC], yes
    over yes + no. At most ``max_phrases`` (official ``--np_num`` 8) phrases are asked; a prompt without
    noun phrases scores 1 (the official product over empty questions).
    """

    def __init__(
        self,
        model_id_or_path: str = DEFAULT_BLIP,
        device: str = "cpu",
        dtype: Any = None,
        *,
        batch_size: int = 16,
        image_size: int | None = None,
        max_phrases: int = 8,
    ) -> None:
        from transformers import AutoProcessor, BlipForQuestionAnswering

        self.dtype, self.model, self.processor = _model_and_processor(
            "BLIP-VQA", model_id_or_path, BlipForQuestionAnswering, AutoProcessor, dtype, device
        )
        self.device, self.batch_size, self.max_phrases = device, batch_size, max_phrases
        tok = self.processor.tokenizer
        self.yes_id, self.no_id = tok.convert_tokens_to_ids("yes"), tok.convert_tokens_to_ids("no")
        enc = tok.convert_tokens_to_ids("[ENC]")
        self.enc_id = None if enc in (None, tok.unk_token_id) else enc
        self.image_size = image_size
        self.name = str(model_id_or_path)

    def info(self) -> dict[str, Any]:
        size = self.image_size
        if size is None:
            proc_size = getattr(self.processor.image_processor, "size", None)
            size = getattr(proc_size, "height", None) or (proc_size or {}).get("height")
        return {
            "model": self.name,
            "image_size": size,
            "enc_token": self.enc_id is not None,
            "max_phrases": self.max_phrases,
        }

    def questions(self, prompt: str, analyzer: nlp.TextAnalyzer) -> list[str]:
        return [f"{chunk}?" for chunk in nlp.noun_chunks(prompt, analyzer)[: self.max_phrases]]

    def p_yes(self, images: Sequence[Image.Image], questions: Sequence[Sequence[str]]) -> list[list[float]]:
        """P(yes) for every question of every image."""
        import torch

        out: list[list[float]] = []
        proc_kw: dict[str, Any] = {}
        interpolate = False
        if self.image_size:
            proc_kw["size"] = {"height": self.image_size, "width": self.image_size}
            interpolate = self.image_size != self.model.config.vision_config.image_size
        for start in range(0, len(images), self.batch_size):
            batch = [im.convert("RGB") for im in images[start : start + self.batch_size]]
            qs = questions[start : start + self.batch_size]
            pixels = self.processor.image_processor(batch, return_tensors="pt", **proc_kw)["pixel_values"]
            owners = [i for i, q in enumerate(qs) for _ in q]
            flat = [x for q in qs for x in q]
            if not flat:
                out.extend([] for _ in batch)
                continue
            with torch.inference_mode():
                vision = self.model.vision_model(
                    pixel_values=pixels.to(self.device, self.dtype), interpolate_pos_encoding=interpolate
                ).last_hidden_state
                enc = self.processor.tokenizer(
                    flat, padding="longest", truncation=True, max_length=35, return_tensors="pt"
                )
                ids, mask = enc["input_ids"].to(self.device), enc["attention_mask"].to(self.device)
                if self.enc_id is not None:
                    ids[:, 0] = self.enc_id
                img = vision[torch.tensor(owners, device=vision.device)]
                img_mask = torch.ones(img.shape[:-1], dtype=torch.long, device=img.device)
                q_states = self.model.text_encoder(
                    input_ids=ids,
                    attention_mask=mask,
                    encoder_hidden_states=img,
                    encoder_attention_mask=img_mask,
                ).last_hidden_state
                bos = torch.full((len(flat), 1), self.model.decoder_start_token_id, device=ids.device)
                logits = (
                    self.model.text_decoder(
                        input_ids=bos,
                        encoder_hidden_states=q_states,
                        encoder_attention_mask=mask,
                        reduction="none",
                    )
                    .logits[:, 0, :]
                    .float()
                )
                probs = logits.softmax(-1)
                p = (probs[:, self.yes_id] / (probs[:, self.yes_id] + probs[:, self.no_id])).tolist()
            per: list[list[float]] = [[] for _ in batch]
            for owner, value in zip(owners, p, strict=True):
                per[owner].append(float(value))
            out.extend(per)
        return out

    def score(
        self, images: Sequence[Image.Image], prompts: Sequence[str], analyzer: nlp.TextAnalyzer
    ) -> list[dict[str, Any]]:
        questions = [self.questions(p, analyzer) for p in prompts]
        results = []
        for qs, ps in zip(questions, self.p_yes(images, questions), strict=True):
            score = 1.0
            for v in ps:
                score *= v
            results.append({"score": score, "questions": qs, "p_yes": [round(v, 6) for v in ps]})
        return results


# ------------------------------------------------------------------------------------------------ CLIP


class ClipScorer:
    """Cosine similarity of CLIP image and text embeddings (official ``CLIP_similarity.py``)."""

    def __init__(
        self, model: str = DEFAULT_CLIP, device: str = "cpu", dtype: Any = None, *, batch_size: int = 32
    ):
        from transformers import AutoProcessor, CLIPModel

        self.dtype, self.model, self.processor = _model_and_processor(
            "CLIP", model, CLIPModel, AutoProcessor, dtype, device
        )
        self.device, self.batch_size, self.name = device, batch_size, str(model)

    def info(self) -> dict[str, Any]:
        return {"model": self.name}

    def score(self, images: Sequence[Image.Image], texts: Sequence[str]) -> list[float]:
        from reprompt.rewards.clipscore import clip_similarity

        return clip_similarity(self.model, self.processor, images, texts, self.device, self.batch_size)


# ----------------------------------------------------------------------------------------------- depth


class DepthEstimator:
    """Relative inverse depth (larger = nearer) from a transformers depth-estimation model, min-max
    normalised per image to [0, 1] and resized to a requested (height, width), as the official expert."""

    def __init__(
        self,
        model_id_or_path: str = DEFAULT_DEPTH,
        device: str = "cpu",
        dtype: Any = None,
        *,
        image_size: int | None = 480,
        batch_size: int = 8,
    ) -> None:
        from transformers import AutoImageProcessor, AutoModelForDepthEstimation

        self.dtype, self.model, self.processor = _model_and_processor(
            "depth", model_id_or_path, AutoModelForDepthEstimation, AutoImageProcessor, dtype, device
        )
        self.device, self.image_size, self.batch_size = device, image_size, batch_size
        self.name = str(model_id_or_path)

    def info(self) -> dict[str, Any]:
        return {"model": self.name, "image_size": self.image_size}

    def predict(self, images: Sequence[Image.Image], sizes: Sequence[tuple[int, int]]) -> list[np.ndarray]:
        """One (height, width) float map per image, at ``sizes[i]``."""
        import torch
        import torch.nn.functional as F

        kw: dict[str, Any] = {}
        if self.image_size:
            kw = {"size": {"height": self.image_size, "width": self.image_size}, "keep_aspect_ratio": False}
        out = []
        for start in range(0, len(images), self.batch_size):
            batch = [im.convert("RGB") for im in images[start : start + self.batch_size]]
            pixels = self.processor(images=batch, return_tensors="pt", **kw)["pixel_values"]
            with torch.inference_mode():
                pred = self.model(pixel_values=pixels.to(self.device, self.dtype)).predicted_depth.float()
            for i, depth in enumerate(pred):
                lo, hi = depth.min(), depth.max()
                depth = (depth - lo) / (hi - lo) if hi > lo else torch.zeros_like(depth)
                size = sizes[start + i]
                depth = F.interpolate(depth[None, None], size=size, mode="bilinear", align_corners=True)[0, 0]
                out.append(depth.cpu().numpy())
        return out


# -------------------------------------------------------------------------------------- detector-based


def detector_vocabulary(detector: Any) -> set[str]:
    """Class names the detector can return (Mask2Former's mapped labels; the oracle draws COCO classes)."""
    labels = getattr(detector, "labels", None)
    if labels:
        return set(labels.values())
    from reprompt.geneval.vocabulary import COCO_CLASSES

    return set(COCO_CLASSES)


def detect(
    detector: Any,
    images: Sequence[Image.Image],
    scenes: Sequence[Any] | None,
    threshold: float = UNIDET_THRESHOLD,
) -> list[list[rules.Found]]:
    """Kept detections per image, best first, boxes in the official 479x480 frame."""
    raw = detector.detect(list(images), list(scenes) if scenes is not None else None)
    return [
        rules.flatten_detections(dets, rules.official_frame(im.width, im.height), threshold)
        for dets, im in zip(raw, images, strict=True)
    ]


def frame_size(image: Image.Image) -> tuple[int, int]:
    """(height, width) of the official frame for this image."""
    s = rules.official_frame(image.width, image.height)
    return round(image.height * s), round(image.width * s)


def spatial_2d(
    found: list[rules.Found],
    prompt: str,
    analyzer: nlp.TextAnalyzer,
    vocab: set[str],
    complex_prompt: bool = False,
) -> dict[str, Any]:
    pair = nlp.complex_pair(prompt, analyzer) if complex_prompt else nlp.simple_pair(prompt, analyzer)
    names = [rules.to_class(w, vocab) for w in pair]
    relation = nlp.find_relation(prompt, nlp.POSITION_WORDS)
    res = rules.pair_score(found, names[0], names[1], relation)
    return _pair_details(res, pair, names, relation)


def _pair_details(res: Any, pair: Sequence[str | None], names: list[Any], relation: Any) -> dict[str, Any]:
    """The score of a two-object relation and how it was read (2D and 3D spatial)."""
    return {
        "score": res.score,
        "objects": list(pair),
        "classes": names,
        "relation": relation,
        "found": list(res.found),
        "position": res.position,
    }


def spatial_3d(
    found: list[rules.Found], depth: Any, prompt: str, analyzer: nlp.TextAnalyzer, vocab: set[str]
) -> dict[str, Any]:
    pair = nlp.simple_pair(prompt, analyzer)
    names = [rules.to_class(w, vocab) for w in pair]
    relation = nlp.find_relation(prompt, nlp.DEPTH_WORDS)
    res = rules.pair_score(found, names[0], names[1], relation, depth=depth, cut_below_half=False)
    return _pair_details(res, pair, names, relation)


def numeracy(
    found: list[rules.Found], prompt: str, analyzer: nlp.TextAnalyzer, vocab: set[str]
) -> dict[str, Any]:
    wanted = nlp.counted_objects(prompt, analyzer, lambda name: rules.to_class(name, vocab) is not None)
    mapped = [(rules.to_class(name, vocab), count) for name, count in wanted]
    score, counts = rules.numeracy_score(found, mapped)
    return {
        "score": score,
        "wanted": [[n, c] for n, c in wanted],
        "classes": [m for m, _ in mapped],
        "counts": counts,
    }
