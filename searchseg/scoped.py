"""Process-wide settings changed for the length of one call and put back after it: a library call must not leave
logging levels, warning filters or the environment changed behind it (the CLI is the place for that)."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager


@contextmanager
def environment_defaults(defaults: Mapping[str, str], restore: tuple[str, ...] = ()) -> Iterator[None]:
    """Set each of ``defaults`` the user has not set; afterwards those keys, and ``restore`` (keys the call may
    set itself), are as they were."""
    saved = {key: os.environ.get(key) for key in (*defaults, *restore)}
    for key, value in defaults.items():
        os.environ.setdefault(key, value)
    try:
        yield
    finally:
        for key, before in saved.items():
            if before is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = before


@contextmanager
def optuna_warnings_only() -> Iterator[None]:
    """Optuna's per-trial INFO lines and its experimental-feature warnings silenced, then restored."""
    import optuna

    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
            yield
    finally:
        optuna.logging.set_verbosity(level)
