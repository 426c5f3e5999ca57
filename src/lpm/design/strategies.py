"""Acquisition strategies by name: a scoring function and a batch rule each (PyRelationAL's
strategy part). Every strategy returns the chosen perturbations in order with a score.

- ``random``: a seeded uniform draw; the baseline every strategy must beat.
- ``coverage``: one-shot coverage of the gene graph within L hops (lazy greedy), continued
  round after round with what is labelled counted as covered; needs no model.
- ``spectral``: k-centre over the graph's leading eigenvectors; needs no model.
- ``variance``: the spread of an ensemble's predictions (mean over readouts of the variance
  across bagged members; a BALD-like score), top of the batch.
- ``coreset``: k-centre greedy in the model's perturbation space (Sener & Savarese 2018):
  the candidate farthest from everything labelled, one at a time.
- ``kernel``: k-centre greedy on the average of prior kernels (GO, regulons, the gene graph)
  and the model's predicted-effect kernel, as IterPert does (Huang et al. 2024).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from lpm.design.kernels import cosine_kernel, kernel_distance, prior_kernel
from lpm.design.manager import ModelManager, predicted_profiles
from lpm.design.pool import Oracle
from lpm.design.selection import coverage_selection, spectral_selection
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


def random_strategy(state: RoundState) -> Choice:
    idx = state.rng.choice(len(state.unlabelled), size=state.batch, replace=False)
    return [state.unlabelled[i] for i in sorted(idx)], [float("nan")] * state.batch


def _graph_choice(state: RoundState, name: str, score: str, **options: Any) -> Choice:
    """Continue a one-shot selection: what is labelled counts as chosen, the batch comes next."""
    select = coverage_selection if name == "coverage" else spectral_selection
    table = select(
        state.need_graph(name),
        [*state.labelled, *state.unlabelled],
        state.batch,
        selected=state.labelled,
        seed=state.seed + state.round,
        **options,
    )
    return table["gene"].to_list(), table[score].cast(pl.Float64).to_list()


def coverage_strategy(state: RoundState) -> Choice:
    return _graph_choice(state, "coverage", "gain", hops=state.hops)


def spectral_strategy(state: RoundState) -> Choice:
    return _graph_choice(state, "spectral", "distance")


def variance_strategy(state: RoundState) -> Choice:
    models = state.need_model("variance")
    models.ensure_members(state.ensemble, round_=state.round)
    keys = state.oracle.keys(state.unlabelled)
    spread = predicted_profiles(
        keys, models.predict_members(keys).var(axis=0), state.unlabelled
    ).mean(axis=1)
    order = sorted(range(len(spread)), key=lambda i: (-spread[i], state.unlabelled[i]))
    top = order[: state.batch]
    return [state.unlabelled[i] for i in top], [float(spread[i]) for i in top]


def coreset_strategy(state: RoundState) -> Choice:
    models = state.need_model("coreset")
    perts = [*state.labelled, *state.unlabelled]
    emb = models.embedding(perts, state.oracle.keys(perts))
    scale = emb.std(axis=0)
    emb = emb / np.where(scale > 0, scale, 1.0)

    def row(i: int) -> np.ndarray:
        return np.linalg.norm(emb - emb[i], axis=1)

    return _k_centre(row, len(perts), len(state.labelled), state.batch, perts)


def kernel_strategy(state: RoundState) -> Choice:
    models = state.need_model("kernel")
    perts = [*state.labelled, *state.unlabelled]
    key = "prior:" + ",".join(sorted(perts))
    if key not in state.cache:  # the pool is fixed: the prior kernel is computed once per loop
        genes = [state.gene.get(p, p) for p in perts]
        state.cache.clear()
        state.cache[key] = (
            {p: i for i, p in enumerate(perts)},
            prior_kernel(state.prior, genes, graph=state.prior_graph, hops=state.hops),
        )
    index, prior = state.cache[key]
    order = [index[p] for p in perts]
    prior = prior[np.ix_(order, order)]
    keys = state.oracle.keys(perts)
    effects = predicted_profiles(keys, models.model.predict(keys), perts)
    effect_kernel = cosine_kernel(effects - effects.mean(axis=0))
    n_prior = len(state.prior)
    kernel = (n_prior * prior + effect_kernel) / (n_prior + 1)
    dist = kernel_distance(kernel)
    return _k_centre(lambda i: dist[i], len(perts), len(state.labelled), state.batch, perts)


def _k_centre(
    row: Callable[[int], np.ndarray], n: int, n_centres: int, k: int, names: Sequence[str]
) -> Choice:
    """Farthest-first traversal: points ``0..n_centres-1`` are the centres already held; each
    pick is the point farthest from its nearest centre (ties: the earlier name)."""
    if n_centres == 0:
        raise LpmInputError(None, "k-centre selection needs at least one labelled perturbation")
    nearest = np.full(n, np.inf)
    for c in range(n_centres):
        nearest = np.minimum(nearest, row(c))
    nearest[:n_centres] = -np.inf
    chosen: list[int] = []
    scores: list[float] = []
    for _ in range(k):
        best = int(np.argmax(nearest))  # argmax returns the first of ties: pool order
        chosen.append(best)
        scores.append(float(nearest[best]))
        nearest = np.minimum(nearest, row(best))
        nearest[best] = -np.inf
    return [names[i] for i in chosen], scores


STRATEGIES: dict[str, StrategySpec] = {
    "random": StrategySpec(random_strategy, needs_model=False),
    "coverage": StrategySpec(coverage_strategy, needs_model=False),
    "spectral": StrategySpec(spectral_strategy, needs_model=False),
    "variance": StrategySpec(variance_strategy, needs_model=True),
    "coreset": StrategySpec(coreset_strategy, needs_model=True),
    "kernel": StrategySpec(kernel_strategy, needs_model=True),
}

#: Strategies that can choose the first round (no model yet).
ONE_SHOT = tuple(n for n, s in STRATEGIES.items() if not s.needs_model)


def get_strategy(name: str) -> StrategySpec:
    if name not in STRATEGIES:
        raise LpmInputError(None, f"unknown strategy {name!r}; available: {', '.join(STRATEGIES)}")
    return STRATEGIES[name]
