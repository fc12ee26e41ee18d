"""Moved to :mod:`reprompt.testing.browser` (a test and screenshot driver, not part of the UI):
``python -m reprompt.testing.browser --out docs/ui.png``."""

import sys


def __getattr__(name: str) -> object:
    raise AttributeError(f"reprompt.ui.browser moved to reprompt.testing.browser: import {name!r} from there")


if __name__ == "__main__":  # pragma: no cover
    sys.exit("reprompt.ui.browser moved: run python -m reprompt.testing.browser")
