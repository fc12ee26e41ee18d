"""Moved to :mod:`reprompt.cli.compbench`: command-line code belongs to the CLI layer, which sits above
evaluation (evaluation code never imports the CLI)."""


def __getattr__(name: str) -> object:
    raise AttributeError(
        f"reprompt.eval.compbench.cli moved to reprompt.cli.compbench: import {name!r} from there "
        "(flag generation from config dataclasses is reprompt.cli.options.add_dataclass_args)"
    )
