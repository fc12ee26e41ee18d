"""Renamed :mod:`reprompt.testing` (tiny random-weight models for tests and GPU timing; not a runtime layer).

``reprompt.zoo`` and ``reprompt.zoo.<module>`` still work: they are the same module objects as
``reprompt.testing`` and ``reprompt.testing.<module>``.
"""

import importlib
import sys

from reprompt import testing as _testing

for _name in ("diffusion", "full", "text", "tokenizers", "vision"):
    sys.modules[f"{__name__}.{_name}"] = importlib.import_module(f"reprompt.testing.{_name}")
sys.modules[__name__] = _testing
