"""Moved to :mod:`reprompt.geneval.vocabulary`: GenEval's definitions and scorer serve the simulator, the data, the
reward and the evaluator alike, so they live below all of them. This old path is the same module object."""

import sys

from reprompt.geneval import vocabulary as _module

sys.modules[__name__] = _module
