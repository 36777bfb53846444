"""Registries: name -> builder, filled by decorators.

A model, loss or optimizer defined outside the package is one decorated function away
(``@register_arch("my_net")``); the module that holds it is named under ``plugins`` in the config or the
space's ``fixed`` keys, and every process that builds a trial imports it first (``plugins.load_plugins``),
Ray's trial processes included. An unknown name fails at once, listing the valid ones.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

from searchseg.errors import UserError, unknown_name

Builder = TypeVar("Builder", bound=Callable)


class Registry(dict[str, Builder], Generic[Builder]):
    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self.defaults: dict[str, dict[str, Any]] = {}  # name -> its own parameters and their defaults

    def register(self, name: str, **params: Any) -> Callable[[Builder], Builder]:
        """Decorator: ``@REGISTRY.register("name", gamma=2.0)`` adds the decorated builder under ``name``. Its own
        parameters (``gamma``) are keyword arguments of the builder, set by the config keys ``KIND.name.gamma``
        and searchable like any other key."""

        def add(builder: Builder) -> Builder:
            if self.get(name, builder) is not builder:
                raise ValueError(f"{self.kind} {name!r} is already registered (by {self[name].__module__}); "
                                 "choose another name")
            self[name], self.defaults[name] = builder, dict(params)
            return builder

        return add

    def check(self, name: str) -> None:
        if name not in self:
            raise unknown_name(self.kind, name, self)

    def options(self, name: str, given: Mapping[str, Any]) -> dict[str, Any]:
        """``name``'s parameters: its defaults, with ``given`` (from the config) in place of some."""
        self.check(name)
        declared = self.defaults.get(name, {})
        unknown = sorted(set(given) - set(declared))
        if unknown:
            valid = ", ".join(sorted(declared)) or "none (register it with keyword defaults to add some)"
            raise UserError(f"{self.kind} {name!r} has no parameter {', '.join(map(repr, unknown))}; "
                            f"its parameters: {valid}")
        return {**declared, **given}

    def build(self, name: str, *args, options: Mapping[str, Any] | None = None):
        """Call ``name``'s builder with ``args`` and its parameters (defaults, with ``options`` in place)."""
        params = self.options(name, options or {})
        return self[name](*args, **params)
