"""User-facing errors: one line naming the file or value and the fix, exit code 2, no traceback."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from functools import wraps
from typing import TypeVar

T = TypeVar("T")

EXIT_BAD_INPUT = 2


class UserError(Exception):
    """Bad input from the user (a value, a file, a name); the message says what and how to fix it."""


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
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            sys.exit(130)

    return wrapper
