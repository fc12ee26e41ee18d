"""Moved to :mod:`reprompt.utils.images` (rewards use the codec too, and must not import the serving layer)."""

from reprompt.utils.images import MAX_PIXELS, decode_png, encode_png

__all__ = ["MAX_PIXELS", "decode_png", "encode_png"]
