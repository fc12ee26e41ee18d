"""User-facing errors.

Anything a user can cause (bad prompt, missing model, bad config, remote service down) raises
:class:`RepromptError`. The CLI turns it into a one-line message and exit code 2 instead of a traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Callable


class RepromptError(Exception):
    """An error the user can fix; its message says how."""


class ModelNotFoundError(RepromptError):
    """A model id or folder could not be found locally (and the hub is not reachable or not allowed)."""


class ConfigError(RepromptError):
    """A configuration value is invalid."""


class RemoteServiceError(RepromptError):
    """A remote endpoint (policy server, judge API, reward service) failed after its retries."""


class RewardOutageError(RepromptError):
    """Too many scores of a reward component went missing for too long (e.g. the judge API is down):
    training stops instead of silently optimising what is left (format + length)."""


def did_you_mean(name: str, choices: list[str] | tuple[str, ...]) -> str:
    """Return ' Did you mean X?' for the closest choice, or '' when nothing is close."""
    import difflib

    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.5)
    return f" Did you mean {close[0]!r}?" if close else ""


def check_choice(what: str, value: object, choices: list[str] | tuple[str, ...]) -> None:
    """Refuse ``value`` unless it is one of ``choices``: one wording for every option with a fixed set of
    values (its name, the choices, what was given and the closest choice), so a typo reads the same everywhere."""
    if value not in choices:
        hint = did_you_mean(value, choices) if isinstance(value, str) else ""
        raise ConfigError(f"{what} must be one of {', '.join(choices)}, got {value!r}.{hint}")


def check_range(
    what: str,
    value: float | None,
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> None:
    """Refuse a number outside its bounds: one wording for every numeric option (its name, the bounds, what was
    given), a :class:`ConfigError` everywhere. ``None`` passes (an optional left unset); ``low_open`` /
    ``high_open`` exclude the bound itself."""
    if value is None:
        return
    below = low is not None and (value <= low if low_open else value < low)
    above = high is not None and (value >= high if high_open else value > high)
    if not (below or above):
        return
    if high is None:
        bound = f"{'>' if low_open else '>='} {low}"
    elif low is None:
        bound = f"{'<' if high_open else '<='} {high}"
    elif low_open or high_open:
        bound = f"in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
    else:
        bound = f"between {low} and {high}"
    raise ConfigError(f"{what} must be {bound}, got {value!r}")


def file_problem(e: BaseException) -> str | None:
    """A user's file or folder problem in words (an ``OSError`` that names a path: a file where a folder is
    needed, no permission, a full disk), or None for anything else, which stays an internal error."""
    import errno

    if not isinstance(e, OSError) or e.filename is None:
        return None
    path = e.filename if e.filename2 is None else f"{e.filename} -> {e.filename2}"
    blocked = " (a file stands where a folder is needed: choose another path or move it away)"
    read_only = " (choose a path you can write to)"
    hint = {
        errno.EEXIST: blocked,
        errno.ENOTDIR: blocked,
        errno.EACCES: read_only,
        errno.EROFS: read_only,
        errno.ENOSPC: " (free some space or choose another disk)",
    }.get(e.errno or 0, "")
    return f"{path}: {e.strerror or type(e).__name__}{hint}"


def run_or_exit(main: Callable[[], int], prog: str = "reprompt") -> int:
    """Run a module's ``main`` (``python -m reprompt.train.grpo``, as ``accelerate launch -m`` does) and turn a
    :class:`RepromptError` or a file problem (:func:`file_problem`) into the CLI's one line on stderr and exit
    code 2 instead of a traceback."""
    try:
        return main()
    except RepromptError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        if (problem := file_problem(e)) is None:
            raise
        print(f"{prog}: error: {problem}", file=sys.stderr)
        return 2
