"""PNG images as data: base64 strings inside JSON (the reward service, the image API, VLM judges; never
pickle), and a check that a PNG file on disk is whole (resumable benchmark runs)."""

from __future__ import annotations

import base64
import binascii
import io
from pathlib import Path
from typing import TYPE_CHECKING

from reprompt.errors import RepromptError

if TYPE_CHECKING:
    from PIL import Image

MAX_PIXELS = 4096 * 4096


def encode_png(image: Image.Image) -> str:
    """Lossless: the decoded image has exactly the same pixels."""
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")


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
