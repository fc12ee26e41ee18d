"""The intent guard: a rewrite must keep what the user asked for.

``check_rewrite(original, rewrite)`` returns a :class:`GuardReport` listing the objects, counts, colors,
quoted texts and capitalised names of the original that the rewrite dropped or changed. The rewriting path
applies it through ``GenerationOptions.guard`` (``off | warn | retry | fallback``, ``reprompt rewrite
--guard``), and the ``faithful`` reward component scores with it. Pure text analysis: no model, no heavy
imports, nothing above ``format`` in the package layers.
"""

from reprompt.guard.check import KINDS, Finding, GuardReport, Rejected, check_intent, check_rewrite
from reprompt.guard.intent import Intent, ObjectIntent, extract_intent

GUARD_MODES = ("off", "warn", "retry", "fallback")
"""off: no check | warn: report only | retry: try further candidates, then the original | fallback: the
original prompt on any violation."""

__all__ = [
    "GUARD_MODES",
    "KINDS",
    "Finding",
    "GuardReport",
    "Intent",
    "ObjectIntent",
    "Rejected",
    "check_intent",
    "check_rewrite",
    "extract_intent",
]
