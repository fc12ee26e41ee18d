"""Renamed :mod:`reprompt.latency` (``bench`` read like the repository's ``benchmarks/`` scripts).
``reprompt.bench.latency`` and ``reprompt.bench.iterative`` still import: they are the same module objects
as ``reprompt.latency.measure`` and ``reprompt.latency.iterative``."""

import importlib
import sys

for _old, _new in (("latency", "measure"), ("iterative", "iterative")):
    sys.modules[f"{__name__}.{_old}"] = importlib.import_module(f"reprompt.latency.{_new}")
