"""``reprompt`` command line.

Each sub-command lives in its own module ``reprompt.cli.<module>`` exposing
``add_parser(subparsers)`` and ``run(args) -> int``. Those modules import only argparse at import
time; torch, transformers and diffusers are imported inside ``run`` so ``reprompt --help`` is instant.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

# Sub-command modules, in the order shown by --help.
COMMAND_MODULES = [
    "rewrite",
    "generate",
    "models",
    "score",
    "serve_rewards",
    "data",
    "train",
    "eval",
    "report",
    "bench",
    "serve",
    "ui",
]


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="reprompt",
        description="Reasoning-augmented prompt rewriting for text-to-image models.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="show debug logs")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"reprompt.cli.{name}").add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = make_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    if not args.verbose:  # keep the output to what reprompt says; -v shows library logs and bars
        for var, val in (
            ("HF_HUB_DISABLE_PROGRESS_BARS", "1"),
            ("TRANSFORMERS_VERBOSITY", "error"),
            ("DIFFUSERS_VERBOSITY", "error"),
            ("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1"),
        ):
            os.environ.setdefault(var, val)
        import warnings

        warnings.filterwarnings("ignore", category=FutureWarning)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    from reprompt.errors import RepromptError, file_problem

    try:
        return int(args.func(args) or 0)
    except RepromptError as e:
        print(f"reprompt: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `reprompt models | head`
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115
        return 0
    except KeyboardInterrupt:
        print("reprompt: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # an unexpected bug: keep the traceback behind --verbose
        if args.verbose or os.environ.get("REPROMPT_DEBUG"):
            raise
        if (problem := file_problem(e)) is not None:  # a path the user gave: one line, as for RepromptError
            print(f"reprompt: error: {problem}", file=sys.stderr)
            return 2
        print(
            f"reprompt: internal error: {type(e).__name__}: {e} (rerun with -v for details)", file=sys.stderr
        )
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
