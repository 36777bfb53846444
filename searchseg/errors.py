"""User-facing errors: one line naming the file or value and the fix, exit code 2, no traceback."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
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


@contextmanager
def signal_handlers_kept() -> Iterator[None]:
    """Put back the SIGINT, SIGTERM (and SIGUSR1) handlers a block replaced. Ray Tune installs its own SIGINT
    handler for a search and leaves it installed when the search ends normally: Ctrl-C during the final model, the
    retraining or the report then did nothing, and the run trained on to its end. ``ray.init`` replaces the
    SIGTERM handler with one that exits wherever the driver is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    signals = [signal.SIGINT, signal.SIGTERM] + ([signal.SIGUSR1] if hasattr(signal, "SIGUSR1") else [])
    saved = {number: signal.getsignal(number) for number in signals}
    try:
        yield
    finally:
        for number, handler in saved.items():
            signal.signal(number, handler)


def _terminate_as_interrupt(number: int, frame) -> None:
    """SIGTERM (a scheduler's or a container's stop) is handled as Ctrl-C: the search saves its state, the run
    says how to resume and exits 130 (by default the driver aborted inside Ray with a C++ stack dump)."""
    signal.raise_signal(signal.SIGINT)


def _interrupt(number: int, frame) -> None:
    """Ctrl-C as ``Interrupted``, not a bare KeyboardInterrupt: CPython marks a bare one that passes through code a C
    extension evaluates (scipy's imports do) as unhandled, and after the run had printed its line and exited 130
    the interpreter killed itself with SIGINT (exit -2, 1 run in 4 when Ctrl-C landed in the imports)."""
    raise Interrupted()


def cli_entry(main: Callable[..., T]) -> Callable[..., T]:
    """Wrap a CLI ``main`` so a UserError prints one line on stderr and exits 2 instead of a traceback, and
    Ctrl-C or SIGTERM prints one line and exits 130."""

    @wraps(main)
    def wrapper(*args, **kwargs):
        in_main_thread = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGTERM, _terminate_as_interrupt) if in_main_thread else None
        previous_interrupt = signal.signal(signal.SIGINT, _interrupt) if in_main_thread else None
        try:
            return main(*args, **kwargs)
        except UserError as err:
            print(f"error: {err}", file=sys.stderr)
            sys.exit(EXIT_BAD_INPUT)
        except KeyboardInterrupt as err:
            print(f"interrupted{f': {err}' if str(err) else ''}", file=sys.stderr)
            sys.exit(EXIT_INTERRUPTED)
        finally:
            if in_main_thread:
                signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)
                signal.signal(signal.SIGINT, signal.default_int_handler if previous_interrupt is None
                              else previous_interrupt)

    return wrapper
