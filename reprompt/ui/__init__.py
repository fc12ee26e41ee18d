"""The browser UI (``reprompt ui``): :mod:`reprompt.ui.studio` is the engine (no web framework),
:mod:`reprompt.ui.app` the Gradio page; :mod:`reprompt.testing.browser` drives it in headless Chromium (the
browser test and the README screenshot). Nothing here is imported by ``import reprompt``."""

UI_PORT = 7860
"""Default port of ``reprompt ui`` (Gradio's own default)."""
