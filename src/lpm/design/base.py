"""What an acquisition strategy sees and gives (PyRelationAL's strategy part).

A strategy is a function of the round's :class:`RoundState` that returns the chosen
perturbations in order with a score each; :class:`StrategySpec` pairs it with what it needs.
The strategies themselves are in :mod:`lpm.design.strategies`, looked up by name through
:mod:`lpm.design.registry`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from lpm.design.manager import ModelManager
from lpm.design.pool import Oracle
from lpm.errors import LpmInputError


@dataclass
class RoundState:
    """What a strategy may look at: the pool, the prior graph, this round's fitted model(s)."""

    round: int
    batch: int
    seed: int
    labelled: list[str]
    unlabelled: list[str]
    oracle: Oracle
    hops: int = 2
    graph: pl.DataFrame | None = None
    models: ModelManager | None = None
    ensemble: int = 3
    prior: Sequence[str] = ()
    prior_graph: pl.DataFrame | None = None
    gene: dict[str, str] = field(default_factory=dict)
    cache: dict[str, Any] = field(default_factory=dict)

    @property
    def rng(self) -> np.random.Generator:
        return np.random.default_rng([self.seed, self.round])

    def need_model(self, strategy: str) -> ModelManager:
        if self.models is None or not self.models.members:
            raise LpmInputError(
                None,
                f"strategy {strategy!r} needs a fitted model: it cannot choose the first round",
            )
        return self.models

    def need_graph(self, strategy: str) -> pl.DataFrame:
        if self.graph is None:
            raise LpmInputError(None, f"strategy {strategy!r} needs a gene graph (--graph)")
        return self.graph


Choice = tuple[list[str], list[float]]
Strategy = Callable[[RoundState], Choice]


@dataclass(frozen=True)
class StrategySpec:
    """A strategy and what it needs (a fitted model for every round but the first)."""

    choose: Strategy
    needs_model: bool
