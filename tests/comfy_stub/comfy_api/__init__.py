"""Test stand-in for ComfyUI's ``comfy_api`` (see tests/comfy_stub/README.md)."""
