"""Renamed :mod:`reprompt.rewards.composite` (``RewardPipeline`` is now ``CompositeReward``: "pipeline" in
reprompt means what diffusers means, a callable that renders images). This old path is the same module."""

import sys

from reprompt.rewards import composite as _module

sys.modules[__name__] = _module
