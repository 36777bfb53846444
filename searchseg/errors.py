"""User-facing errors: one line naming the file or value and the fix, exit code 2, no traceback."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from functools import wraps
from typing import TypeVar

T = TypeVar("T")

EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports Ctrl-C


class UserError(Exception):
    """Bad input from the user (a value, a file, a name); the message says what and how to fix it."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during a long job; the message says what was kept and how to continue."""


def unknown_name(kind: str, name: object, valid: Iterable[str]) -> UserError:
    """The error for a name that is not in a registry, listing the valid ones."""
    plural = f"{kind}es" if kind.endswith("s") else f"{kind}s"
    return UserError(f"unknown {kind} {name!r}; valid {plural}: {', '.join(sorted(valid))}")


def cli_entry(main: Callable[..., T]) -> Callable[..., T]:
    """Wrap a CLI ``main`` so a UserError prints one line on stderr and exits 2 instead of a traceback."""

    @wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except UserError as err:
            print(f"error: {err}", file=sys.stderr)
            sys.exit(EXIT_BAD_INPUT)
        except KeyboardInterrupt as err:
            print(f"interrupted{f': {err}' if str(err) else ''}", file=sys.stderr)
            sys.exit(EXIT_INTERRUPTED)

    return wrapper
