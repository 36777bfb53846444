"""Registries: name -> builder, filled by decorators.

A model, loss or optimizer defined outside the package is one decorated function away
(``@register_arch("my_net")``); the module that holds it is named under ``plugins`` in the config or the
space's ``fixed`` keys, and every process that builds a trial imports it first (``plugins.load_plugins``),
Ray's trial processes included. An unknown name fails at once, listing the valid ones.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from searchseg.errors import unknown_name

Builder = TypeVar("Builder", bound=Callable)


class Registry(dict[str, Builder], Generic[Builder]):
    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    def register(self, name: str) -> Callable[[Builder], Builder]:
        """Decorator: ``@REGISTRY.register("name")`` adds the decorated builder under ``name``."""

        def add(builder: Builder) -> Builder:
            if self.get(name, builder) is not builder:
                raise ValueError(f"{self.kind} {name!r} is already registered (by {self[name].__module__}); "
                                 "choose another name")
            self[name] = builder
            return builder

        return add

    def check(self, name: str) -> None:
        if name not in self:
            raise unknown_name(self.kind, name, self)

    def build(self, name: str, *args, **kwargs):
        self.check(name)
        return self[name](*args, **kwargs)
