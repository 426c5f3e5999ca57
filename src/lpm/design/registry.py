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

from collections.abc import Mapping
from typing import Any

from lpm._utils.registry import Registry
from lpm.design.base import StrategySpec


def _builtins() -> Mapping[str, StrategySpec]:
    from lpm.design.strategies import STRATEGIES

    return STRATEGIES


_STRATEGIES: Registry[StrategySpec] = Registry(
    kind="strategy",
    group="lpm.design_strategies",
    builtins=_builtins,
    accepts=lambda spec: isinstance(spec, StrategySpec),
    expected="a StrategySpec",
    ordered=True,
)


def register_strategy(name: str, spec: StrategySpec) -> StrategySpec:
    """Add a strategy under a new name; a name already taken is an error."""
    return _STRATEGIES.register(name, spec)


def list_strategies() -> list[str]:
    """Every strategy's name: built-ins in their order, then registered and plugins, sorted."""
    return _STRATEGIES.names()


def get_strategy(name: str) -> StrategySpec:
    """A strategy by name; an unknown name is a one-line error listing the valid ones."""
    return _STRATEGIES.get(name)


def describe_strategy(name: str) -> dict[str, Any]:
    """Name, first docstring line of its function, and whether it needs a fitted model."""
    spec = get_strategy(name)
    doc = (spec.choose.__doc__ or "").strip().splitlines()
    return {"name": name, "summary": doc[0] if doc else "", "needs_model": spec.needs_model}


def one_shot_strategies() -> list[str]:
    """Strategies that can choose the first round (they need no model)."""
    return [n for n in list_strategies() if not get_strategy(n).needs_model]
