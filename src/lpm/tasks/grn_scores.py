"""Reference networks and the scores of inferred edges (split from :mod:`lpm.tasks.grn`).

:func:`score_edges` ranks every pair of the universe (knocked-down genes × readouts) with
:func:`lpm.evaluation.ranking.edge_scores_auprc`, and scores the predicted top network rewired at
random with degrees kept (:func:`rewire_edges`), so the lift over a network with the same hubs
is visible.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Final

import numpy as np
import polars as pl

from lpm.errors import LpmInputError
from lpm.evaluation.ranking import degree_preserving_random, edge_scores_auprc

#: Cut-offs of precision@k unless given.
DEFAULT_K: Final = (100, 500, 1000)


def _ranked(edges: pl.DataFrame) -> pl.DataFrame:
    """Best first; ties broken by name so the order is the same on every run."""
    return edges.sort(["score", "source", "target"], descending=[True, False, False])


def load_reference(
    path: str | Path, *, gene_info: str | Path | None = None, context: str | None = None
) -> pl.DataFrame:
    """A reference network from a file (ChIP-seq, CollecTRI, DoRothEA, TRRUST, ...) or a
    simulator truth folder (:func:`lpm.sim.truth.read_true_network`); ``context`` applies to
    the simulator only."""
    path = Path(path)
    if path.is_dir() or path.suffix == ".parquet":
        from lpm.sim.truth import read_true_network

        return read_true_network(path, context=context)
    from lpm.priors import load_gene_network

    return load_gene_network(path, gene_info=gene_info)


def rewire_edges(
    edges: pl.DataFrame, *, seed: int, n_swaps_per_edge: int = 10, score_column: str = "score"
) -> pl.DataFrame:
    """A degree-preserving random copy of a scored directed network; scores stay with sources.

    Directed double-edge swaps (``a→b, c→d`` becomes ``a→d, c→b``), refused when they would make
    a self-loop or a repeated edge, as :func:`lpm.evaluation.ranking.degree_preserving_random`
    does; here each edge slot keeps its source and its score while targets move, so every
    node's out- and in-degree and every source's scores are unchanged. What the random copy
    scores is what a network with the same hubs and confidence profile gets by chance.

    Parameters
    ----------
    edges
        Columns ``source, target`` and ``score_column``; no self-loops, no repeated edges.
    seed
        The same seed and edges give the same network.
    n_swaps_per_edge
        Successful swaps to aim for, per edge (ten times as many tries at most).

    Returns
    -------
    polars.DataFrame
        ``source, target`` and the score column, as many rows as given, best first.

    Example
    -------
    >>> e = pl.DataFrame({"source": ["A", "B", "C", "D"], "target": ["B", "C", "D", "A"],
    ...                   "score": [4.0, 3.0, 2.0, 1.0]})
    >>> r = rewire_edges(e, seed=0)
    >>> sorted(r["target"]) == sorted(e["target"]), r["score"].to_list()
    (True, [4.0, 3.0, 2.0, 1.0])
    """
    out = degree_preserving_random(
        edges, seed=seed, n_swaps_per_edge=n_swaps_per_edge, keep=(score_column,)
    )
    return out.sort([score_column, "source", "target"], descending=[True, False, False])


def in_universe(edges: pl.DataFrame, sources: set[str], targets: set[str]) -> pl.DataFrame:
    """Edges from a perturbed gene to a measured one (no self-loops): what can be scored."""
    return edges.filter(
        pl.col("source").is_in(sorted(sources))
        & pl.col("target").is_in(sorted(targets))
        & (pl.col("source") != pl.col("target"))
    )


def _lift(real: float, rand: float) -> float:
    if rand > 0:
        return real / rand
    return float("inf") if real > 0 else float("nan")


def score_edges(
    edges: pl.DataFrame,
    reference: pl.DataFrame,
    *,
    universe_sources: Sequence[str],
    universe_targets: Sequence[str],
    k: Sequence[int] = DEFAULT_K,
    top: int = 1000,
    n_random: int = 3,
    seed: int = 0,
) -> dict[str, float]:
    """Score predicted edges against a reference, and against chance with the same hubs.

    The full ranking is scored by :func:`lpm.evaluation.ranking.edge_scores_auprc` (universe:
    ``universe_sources × universe_targets``, unscored pairs last). The predicted network is
    its ``top`` edges in the universe; it and ``n_random`` degree-preserving rewirings of it
    (:func:`rewire_edges`, seeds ``seed, seed + 1, ...``) are scored the same way, each with
    the rest of the universe ranked last. The lift is the network's score over the mean random
    score: above 1, the edges are right beyond which genes are hubs.

    Parameters
    ----------
    edges
        ``source, target, score``, one row per pair.
    reference
        ``source, target`` (e.g. :func:`load_reference`).
    universe_sources, universe_targets
        The genes perturbed and the genes measured.
    k
        Cut-offs for precision@k.
    top
        Size of the predicted network that is rewired.
    n_random
        Random rewirings averaged (0: no random baseline).
    seed
        Seed of the first rewiring.

    Returns
    -------
    dict
        ``auprc, auroc, precision_at_<k>, base_rate, n_reference, n_universe, n_scored`` of the
        full ranking; ``n_top, auprc_top`` (the network); ``random_auprc_top``,
        ``random_auprc_top_sd``, ``random_precision_at_<k>`` (means over rewirings);
        ``lift_auprc_top`` and ``lift_precision_at_<k>``.

    Raises
    ------
    LpmInputError
        As :func:`~lpm.evaluation.ranking.edge_scores_auprc` (e.g. no reference edge in the
        universe), or ``top < 1``.
    """
    if top < 1:
        raise LpmInputError("top", f"must be >= 1, got {top}")
    sources, targets = set(universe_sources), set(universe_targets)
    uni = {"universe_sources": sources, "universe_targets": targets, "k": list(k)}
    scored = edges.select(pl.col("source", "target").cast(pl.String), pl.col("score"))
    out = dict(edge_scores_auprc(scored, reference, **uni))  # type: ignore[arg-type]
    network = _ranked(in_universe(scored, sources, targets)).head(top)
    out["n_top"] = network.height
    if network.height == 0:
        return out
    out["auprc_top"] = edge_scores_auprc(network, reference, **uni)["auprc"]  # type: ignore[arg-type]
    if n_random < 1:
        return out
    draws = [
        edge_scores_auprc(rewire_edges(network, seed=seed + i), reference, **uni)  # type: ignore[arg-type]
        for i in range(n_random)
    ]
    rand = np.asarray([d["auprc"] for d in draws])
    out["random_auprc_top"] = float(rand.mean())
    out["random_auprc_top_sd"] = float(rand.std())
    out["lift_auprc_top"] = _lift(out["auprc_top"], out["random_auprc_top"])
    for cut in k:
        key = f"precision_at_{cut}"
        r = float(np.mean([d[key] for d in draws]))
        out[f"random_{key}"] = r
        out[f"lift_{key}"] = _lift(out[key], r)
    return out


__all__ = ["DEFAULT_K", "in_universe", "load_reference", "rewire_edges", "score_edges"]
