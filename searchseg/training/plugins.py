"""Plugins: modules that register models, losses or optimizers (``searchseg.training.registry``) when imported.

The config key ``plugins`` names them (comma-separated module names, e.g. ``plugins: my_models,my_losses`` under
a space's ``fixed``). Every process that checks or builds a trial imports them first: the driver before the
space's names are checked, each Ray trial process before it builds its model (Ray starts those afresh, so a
registration made only in the driver would be unknown there). A plugin must be importable on every node.

A results folder is data, never code: a module is imported only when the user named it (``--plugins``, ``--set
plugins=...``, the space file given to a new search, ``trust_plugins`` from Python), when it is installed as an
entry point of the ``searchseg.plugins`` group, or when it is imported already. A saved config, space or model
card that names another module is refused in one line, so whoever can write a results folder that someone else
runs ``predict``, ``retrain`` or ``--resume`` on cannot choose code for them to run.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import sys
from importlib.metadata import entry_points

from searchseg.errors import UserError

ENTRY_POINT_GROUP = "searchseg.plugins"
_named_by_user: set[str] = set()


def plugin_modules(value: object) -> list[str]:
    if value is not None and not isinstance(value, str):
        raise UserError(f"plugins must be module names separated by commas, e.g. my_models,my_losses; got {value!r}")
    return [name.strip() for name in (value or "").split(",") if name.strip()]


def trust_plugins(value: object) -> None:
    """Let ``load_plugins`` import these modules (comma-separated): the user named them."""
    _named_by_user.update(plugin_modules(value))


@functools.cache  # installed packages do not change while a process runs; every Trainer checks its plugins
def installed_plugins() -> frozenset[str]:
    """Modules of the ``searchseg.plugins`` entry points: installed with a package, and so trusted."""
    return frozenset(point.module for point in entry_points(group=ENTRY_POINT_GROUP))


def load_plugins(value: object) -> None:
    """Import every installed plugin, then each module named in ``value`` (the ``plugins`` config value) that the
    user named or that is installed; one line naming the module and the way to trust it otherwise."""
    installed = installed_plugins()
    for name in sorted(installed) + plugin_modules(value):
        if name in sys.modules:
            continue
        if name not in _named_by_user and name not in installed:
            raise UserError(f"plugin module {name!r} is named by a saved file, not by you: searchseg imports plugins "
                            f"only when you name them; add --plugins {name} if you trust it (Python: "
                            f"searchseg.trust_plugins({name!r})), or install it as a {ENTRY_POINT_GROUP!r} entry point")
        try:
            importlib.import_module(name)
        except ImportError as error:
            raise UserError(f"plugin module {name!r} cannot be imported ({error}); put its folder on PYTHONPATH or "
                            "install it, on every machine of a cluster") from None
        except Exception as error:  # the plugin's own code failed: its message, not a traceback through ours
            raise UserError(f"plugin module {name!r} failed while importing: {type(error).__name__}: {error}; "
                            "fix the plugin (python -c 'import " + name + "' shows where)") from None


def add_plugins_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--plugins", metavar="MODULE[,MODULE]",
                        help="modules to import that register models, losses or optimizers; a module named only in "
                             "a results folder's files is never imported (the folder is data, not code)")
