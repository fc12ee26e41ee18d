"""PNG images as data: base64 strings inside JSON (the reward service, the image API, VLM judges; never
pickle), a check that a PNG file on disk is whole (resumable benchmark runs), and the provenance every
image reprompt writes carries in its text chunks.

Provenance is written twice, for two kinds of readers: ``parameters``, the AUTOMATIC1111 text that image
viewers, Civitai and ComfyUI's loaders show (the rendered prompt, then ``Negative prompt:``, then one line of
``Key: value`` pairs), and ``reprompt``, one JSON object with every field (:class:`ImageProvenance`).
"""

from __future__ import annotations

import base64
import binascii
import io
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reprompt.errors import RepromptError

if TYPE_CHECKING:
    from PIL import Image

MAX_PIXELS = 4096 * 4096
PARAMETERS_CHUNK = "parameters"
PROVENANCE_CHUNK = "reprompt"
PROVENANCE_SCHEMA = "reprompt.provenance/1"


@dataclass(frozen=True)
class ImageProvenance:
    """Where one image came from: what was asked, what was rendered, with which seed, model and settings."""

    original: str
    """The prompt as the user wrote it."""
    prompt: str
    """The prompt the backbone rendered (the rewrite, the original on fallback or with rewriting off)."""
    seed: int
    backbone: str
    settings: Mapping[str, Any] = field(default_factory=dict)
    """What the render call used: width, height, steps, guidance, negative_prompt (where they apply)."""
    policy: str | None = None
    """The rewriter's public name; None when nothing was rewritten."""
    reasoning: str = ""
    rewrite: str = "rewritten"
    """How ``prompt`` came about: rewritten | fallback (the policy wrote no usable prompt) | off (rendered as
    given) | original (the original, rendered beside a rewrite) | edited (a prompt the user edited)."""
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from reprompt._version import __version__

        data = asdict(self)
        data["settings"], data["extra"] = dict(self.settings), dict(self.extra)
        return {"schema": PROVENANCE_SCHEMA, "reprompt_version": __version__, **data}

    def parameters(self) -> str:
        """AUTOMATIC1111's ``parameters`` text: the prompt, ``Negative prompt: …``, then ``Key: value`` pairs
        (values with a comma, colon or line break JSON-quoted, as A1111 writes them)."""
        s = self.settings
        lines = [self.prompt]
        if s.get("negative_prompt"):
            lines.append(f"Negative prompt: {s['negative_prompt']}")
        pairs: list[tuple[str, Any]] = []
        if s.get("steps") is not None:
            pairs.append(("Steps", s["steps"]))
        if s.get("guidance") is not None:
            pairs.append(("CFG scale", s["guidance"]))
        pairs += [("Seed", self.seed)]
        if s.get("width") and s.get("height"):
            pairs.append(("Size", f"{s['width']}x{s['height']}"))
        pairs += [("Model", self.backbone), ("RePrompt", self.rewrite)]
        if self.policy is not None:
            pairs.append(("RePrompt policy", self.policy))
        pairs.append(("Original prompt", self.original))
        if self.reasoning:
            pairs.append(("RePrompt reasoning", self.reasoning))
        lines.append(", ".join(f"{k}: {_quote(v)}" for k, v in pairs))
        return "\n".join(lines)

    def text_chunks(self) -> dict[str, str]:
        return {
            PARAMETERS_CHUNK: self.parameters(),
            PROVENANCE_CHUNK: json.dumps(self.to_dict(), sort_keys=True),  # ASCII: a plain tEXt chunk
        }


def _quote(value: Any) -> str:
    text = str(value)
    return json.dumps(text, ensure_ascii=False) if any(c in text for c in ',:\n\r"') else text


def png_bytes(image: Image.Image, provenance: ImageProvenance | None = None) -> bytes:
    """The image as PNG bytes, with ``provenance`` in text chunks (``parameters`` and ``reprompt``)."""
    from PIL.PngImagePlugin import PngInfo

    info = None
    if provenance is not None:
        info = PngInfo()
        for key, text in provenance.text_chunks().items():
            info.add_text(key, text)  # tEXt when Latin-1, else iTXt (UTF-8)
    buf = io.BytesIO()
    image.save(buf, format="PNG", pnginfo=info)
    return buf.getvalue()


def read_provenance(source: str | Path | bytes) -> dict[str, Any] | None:
    """The ``reprompt`` JSON chunk of a PNG file (or PNG bytes), or None when it has none."""
    from PIL import Image

    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    with Image.open(io.BytesIO(data), formats=["PNG"]) as image:
        text = image.text.get(PROVENANCE_CHUNK)  # type: ignore[attr-defined]
    return json.loads(text) if text else None


def encode_png(image: Image.Image, provenance: ImageProvenance | None = None) -> str:
    """Lossless base64 PNG (the decoded image has exactly the same pixels), with ``provenance`` if given."""
    return base64.b64encode(png_bytes(image, provenance)).decode("ascii")


def decode_png(data: str) -> Image.Image:
    """Decode a base64 PNG, refusing anything that is not a reasonably sized PNG."""
    from PIL import Image

    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError, TypeError) as e:
        raise RepromptError(f"image is not valid base64: {e}") from e
    if not raw.startswith(b"\x89PNG\r\n\x1a\n"):
        raise RepromptError("image is not a PNG")
    try:
        image = Image.open(io.BytesIO(raw), formats=["PNG"])
        if image.width * image.height > MAX_PIXELS:
            raise RepromptError(f"image of {image.width}x{image.height} pixels is too large")
        image.load()
    except (OSError, SyntaxError) as e:
        raise RepromptError(f"image is not a readable PNG: {e}") from e
    return image


def png_problem(path: Path) -> str | None:
    """What is wrong with an image file (missing, empty, truncated, not a PNG), or None if it is whole."""
    from PIL import Image

    try:
        if path.stat().st_size == 0:
            return "is empty (0 bytes)"
        with Image.open(path, formats=["PNG"]) as image:
            image.verify()  # reads every chunk and checks its CRC, without decoding pixels
    except FileNotFoundError:
        return "is missing"
    except Exception as e:  # PIL raises OSError, SyntaxError, ValueError... for broken files
        return f"is not a complete PNG ({type(e).__name__}: {e})"
    return None
