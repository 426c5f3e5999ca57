"""The built-in acquisition strategies: a scoring function and a batch rule each (PyRelationAL's
strategy part). Every strategy returns the chosen perturbations in order with a score;
:mod:`lpm.design.registry` looks them up by name.

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

from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, Final

import numpy as np
import polars as pl

from lpm.design.base import Choice, RoundState, StrategySpec
from lpm.design.kernels import cosine_kernel, kernel_distance, prior_kernel
from lpm.design.manager import predicted_profiles
from lpm.design.selection import coverage_selection, spectral_selection
from lpm.errors import LpmInputError


def random_strategy(state: RoundState) -> Choice:
    """A seeded uniform draw from the unlabelled pool."""
    idx = state.rng.choice(len(state.unlabelled), size=state.batch, replace=False)
    return [state.unlabelled[i] for i in sorted(idx)], [float("nan")] * state.batch


def _graph_choice(
    state: RoundState, select: Callable[..., pl.DataFrame], name: str, score: str, **options: Any
) -> Choice:
    """Continue a one-shot selection: what is labelled counts as chosen, the batch comes next."""
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
    """Coverage of the gene graph within L hops, what is labelled counted as covered."""
    return _graph_choice(state, coverage_selection, "coverage", "gain", hops=state.hops)


def spectral_strategy(state: RoundState) -> Choice:
    """k-centre over the graph's leading eigenvectors."""
    return _graph_choice(state, spectral_selection, "spectral", "distance")


def variance_strategy(state: RoundState) -> Choice:
    """The largest spread of a bagged ensemble's predictions."""
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
    """k-centre greedy in the model's perturbation space."""
    models = state.need_model("coreset")
    perts = [*state.labelled, *state.unlabelled]
    emb = models.embedding(perts, state.oracle.keys(perts))
    scale = emb.std(axis=0)
    emb = emb / np.where(scale > 0, scale, 1.0)

    def row(i: int) -> np.ndarray:
        return np.linalg.norm(emb - emb[i], axis=1)

    return _k_centre(row, len(perts), len(state.labelled), state.batch, perts)


def kernel_strategy(state: RoundState) -> Choice:
    """k-centre greedy on prior kernels averaged with the predicted-effect kernel."""
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


#: The built-in strategies, in the order figures list them (the registry's fixed list).
STRATEGIES: Final[Mapping[str, StrategySpec]] = MappingProxyType(
    {
        "random": StrategySpec(random_strategy, needs_model=False),
        "coverage": StrategySpec(coverage_strategy, needs_model=False),
        "spectral": StrategySpec(spectral_strategy, needs_model=False),
        "variance": StrategySpec(variance_strategy, needs_model=True),
        "coreset": StrategySpec(coreset_strategy, needs_model=True),
        "kernel": StrategySpec(kernel_strategy, needs_model=True),
    }
)
