"""Things by name, one shape for models, tasks, split kinds and design strategies.

A registry holds a fixed table of built-ins (``"module:attr"`` targets, imported only when
asked for, or a function giving them), user registrations (one name once), and plugins from an
entry-point group. Nothing is registered by importing a module, and an unknown name is a
one-line error that lists the known ones.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from importlib.metadata import entry_points
from typing import Generic, TypeVar

from lpm.errors import LpmError, LpmInputError

T = TypeVar("T")


class Registry(Generic[T]):
    """Lookup by name.

    Parameters
    ----------
    kind
        What the registry holds, in messages (``model``, ``split kind``...).
    group
        The entry-point group plugins register in.
    builtins
        Name → ``"module:attr"``, or a function giving name → item (built-ins that are objects).
    accepts
        Whether an object may be registered or loaded (e.g. a subclass check).
    expected
        What ``accepts`` wants, in messages (``a PerturbationModel subclass``).
    ordered
        List built-ins in their table's order, then the others sorted (else all sorted).
    """

    def __init__(
        self,
        *,
        kind: str,
        group: str,
        builtins: Mapping[str, str] | Callable[[], Mapping[str, T]],
        accepts: Callable[[object], bool],
        expected: str,
        ordered: bool = False,
    ) -> None:
        self.kind = kind
        self.group = group
        self._builtins = builtins
        self._accepts = accepts
        self.expected = expected
        self.ordered = ordered
        self._registered: dict[str, T] = {}

    def _builtin_table(self) -> Mapping[str, str] | Mapping[str, T]:
        return self._builtins() if callable(self._builtins) else self._builtins

    def _plugins(self) -> dict[str, str]:
        return {ep.name: ep.value for ep in entry_points(group=self.group)}

    def _load(self, target: str) -> T:
        module, _, attr = target.partition(":")
        item: T = getattr(importlib.import_module(module), attr)
        if not self._accepts(item):
            raise LpmError(f"{target} is not {self.expected}")
        return item

    def register(self, name: str, item: T) -> T:
        """Add ``item`` under a new name; a name already taken is an error."""
        if name in self._builtin_table() or name in self._registered or name in self._plugins():
            raise LpmError(f"{self.kind} name {name!r} is already registered")
        if not self._accepts(item):
            raise LpmError(f"{item!r} is not {self.expected}")
        self._registered[name] = item
        return item

    def names(self) -> list[str]:
        """Every name available: built-ins, registered and plugins."""
        builtins = list(self._builtin_table())
        others = {*self._registered, *self._plugins()} - set(builtins)
        if self.ordered:
            return [*builtins, *sorted(others)]
        return sorted({*builtins, *others})

    def get(self, name: str) -> T:
        """The item of ``name``; an unknown name is a one-line error listing the known ones. An
        item that is a class is given the name it was asked by (its ``name`` attribute)."""
        item = self._find(name)
        if isinstance(item, type):
            item.name = name  # type: ignore[attr-defined]
        return item

    def _find(self, name: str) -> T:
        if name in self._registered:
            return self._registered[name]
        table = self._builtin_table()
        if name in table:
            if callable(self._builtins):  # a function gives the items themselves
                return table[name]  # type: ignore[return-value]
            return self._load(self._builtins[name])
        if name in (plugins := self._plugins()):
            return self._load(plugins[name])
        raise LpmInputError(None, f"unknown {self.kind} {name!r}; {self.known()}")

    def known(self) -> str:
        return f"available: {', '.join(self.names())}"


def is_subclass_of(base: type) -> Callable[[object], bool]:
    """An ``accepts`` test: a class derived from ``base``."""
    return lambda item: isinstance(item, type) and issubclass(item, base)
