"""Name -> factory registries for the pluggable parts (estimators, symbol denoisers): the blocks
offer ``names()`` as their method list, and an unknown name is refused with the valid ones."""
from __future__ import annotations

from typing import Callable


class Registry:
    def __init__(self, kind: str, valid_label: str = "valid"):
        self.kind, self.valid_label = kind, valid_label
        self._factories: dict[str, Callable] = {}

    def register(self, name: str):
        def deco(factory):
            self._factories[name] = factory
            return factory
        return deco

    def names(self) -> list[str]:
        return list(self._factories)

    def get(self, name: str) -> Callable:
        if name not in self._factories:
            raise ValueError(f"unknown {self.kind} {name!r}; {self.valid_label}: {', '.join(self._factories)}")
        return self._factories[name]
