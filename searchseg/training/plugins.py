"""Plugins: modules that register models, losses or optimizers (``searchseg.training.registry``) when imported.

The config key ``plugins`` names them (comma-separated module names, e.g. ``plugins: my_models,my_losses`` under
a space's ``fixed``). Every process that checks or builds a trial imports them first: the driver before the
space's names are checked, each Ray trial process before it builds its model (Ray starts those afresh, so a
registration made only in the driver would be unknown there). A plugin must be importable on every node.
"""

from __future__ import annotations

import importlib

from searchseg.errors import UserError


def plugin_modules(value: str | None) -> list[str]:
    return [name.strip() for name in (value or "").split(",") if name.strip()]


def load_plugins(value: str | None) -> None:
    """Import each module named in ``value`` (the ``plugins`` config value); one line naming it if it fails."""
    for name in plugin_modules(value):
        try:
            importlib.import_module(name)
        except ImportError as error:
            raise UserError(f"plugin module {name!r} cannot be imported ({error}); put its folder on PYTHONPATH or "
                            "install it, on every machine of a cluster") from None
