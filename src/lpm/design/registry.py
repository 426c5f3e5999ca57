"""Acquisition strategies by name: the built-ins (a fixed list), user registrations, plugins.

The same shape as the model registry: no import side effects fill it; the built-ins are
:data:`lpm.design.strategies.STRATEGIES`, loaded when first asked for, plugins come from the
``lpm.design_strategies`` entry-point group (each names a :class:`StrategySpec`), and
:func:`register_strategy` adds one strategy under one new name.

Example
-------
>>> list_strategies()
['random', 'coverage', 'spectral', 'variance', 'coreset', 'kernel']
>>> describe_strategy("variance")["needs_model"]
True
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from importlib.metadata import entry_points
from typing import Any

from lpm.design.base import StrategySpec
from lpm.errors import LpmError, LpmInputError

_registered: dict[str, StrategySpec] = {}


def _builtins() -> Mapping[str, StrategySpec]:
    from lpm.design.strategies import STRATEGIES

    return STRATEGIES


def _plugins() -> dict[str, str]:
    return {ep.name: ep.value for ep in entry_points(group="lpm.design_strategies")}


def _load(target: str) -> StrategySpec:
    module, _, attr = target.partition(":")
    spec = getattr(importlib.import_module(module), attr)
    if not isinstance(spec, StrategySpec):
        raise LpmError(f"{target} is not a StrategySpec")
    return spec


def register_strategy(name: str, spec: StrategySpec) -> StrategySpec:
    """Add a strategy under a new name; a name already taken is an error."""
    if name in _builtins() or name in _registered or name in _plugins():
        raise LpmError(f"strategy name {name!r} is already registered")
    if not isinstance(spec, StrategySpec):
        raise LpmError(f"{spec!r} is not a StrategySpec")
    _registered[name] = spec
    return spec


def list_strategies() -> list[str]:
    """Every strategy's name: built-ins in their order, then registered and plugins, sorted."""
    builtins = list(_builtins())
    return [*builtins, *sorted({*_registered, *_plugins()} - set(builtins))]


def get_strategy(name: str) -> StrategySpec:
    """A strategy by name; an unknown name is a one-line error listing the valid ones."""
    if name in _registered:
        return _registered[name]
    if name in (builtins := _builtins()):
        return builtins[name]
    if name in (plugins := _plugins()):
        return _load(plugins[name])
    raise LpmInputError(
        None, f"unknown strategy {name!r}; available: {', '.join(list_strategies())}"
    )


def describe_strategy(name: str) -> dict[str, Any]:
    """Name, first docstring line of its function, and whether it needs a fitted model."""
    spec = get_strategy(name)
    doc = (spec.choose.__doc__ or "").strip().splitlines()
    return {"name": name, "summary": doc[0] if doc else "", "needs_model": spec.needs_model}


def one_shot_strategies() -> list[str]:
    """Strategies that can choose the first round (they need no model)."""
    return [n for n in list_strategies() if not get_strategy(n).needs_model]
