"""One-shot choice of perturbations from prior knowledge alone, before any model is trained.

Panagopoulos et al. (2025, "Efficient data selection for training genomic perturbation
models") show that a graph model with ``L`` message-passing layers learns about a gene from the
measured perturbations within ``L`` hops of it, so a good training set *covers* the graph:

- :func:`coverage_selection`: choose ``k`` genes whose ``hops``-hop neighbourhoods cover the most
  (weighted) candidate genes. Coverage is monotone submodular, so lazy greedy is within
  ``1 - 1/e`` of the optimum and needs only a few gain evaluations per pick.
- :func:`spectral_selection`: choose genes spread over the leading eigenvectors of the
  normalised adjacency (k-centre greedy, farthest-first), the paper's spectral variant.
- :func:`reach_matrix`: which genes lie within ``hops`` hops of which (sparse, boolean).

Both selections take ``selected`` (genes already measured): their coverage counts as done and
they are never chosen again, so a design loop can continue round after round. Ties are broken by
a random order drawn from ``seed``, so the output is the same for the same seed.
"""

from __future__ import annotations

import heapq
import logging
import math
from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np
import polars as pl
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from lpm.errors import LpmInputError

log = logging.getLogger(__name__)

__all__ = ["coverage_selection", "reach_matrix", "spectral_selection"]


def _check_unique(genes: Sequence[str], what: str) -> list[str]:
    """Duplicates would count a gene twice and make ranks ambiguous: refuse them."""
    genes = [str(g) for g in genes]
    if len(set(genes)) != len(genes):
        dup = sorted(g for g, n in Counter(genes).items() if n > 1)
        raise LpmInputError(None, f"duplicate {what}: {', '.join(dup[:10])}")
    return genes


def _nodes_and_adjacency(
    edges: pl.DataFrame, genes: Sequence[str], *, weighted: bool
) -> tuple[list[str], sp.csr_matrix]:
    """Graph genes then the extra ``genes`` (isolated), and the symmetric adjacency over them."""
    missing = [c for c in ("source", "target") if c not in edges.columns]
    if missing:
        raise LpmInputError(None, f"graph edge table misses column(s) {', '.join(missing)}")
    src = edges["source"].cast(pl.String)
    dst = edges["target"].cast(pl.String)
    in_graph = pl.concat([src, dst]).unique().sort()
    extra = pl.Series(genes, dtype=pl.String).filter(~pl.Series(genes).is_in(in_graph.implode()))
    nodes = in_graph.to_list() + extra.to_list()
    enum = pl.Enum(nodes)
    rows = src.cast(enum).to_physical().to_numpy().astype(np.int64)
    cols = dst.cast(enum).to_physical().to_numpy().astype(np.int64)
    if weighted and "weight" in edges.columns:
        w = np.abs(edges["weight"].cast(pl.Float64).to_numpy())
    else:
        w = np.ones(len(rows))
    n = len(nodes)
    adj = sp.csr_matrix((w, (rows, cols)), shape=(n, n))
    adj = adj.maximum(adj.T).tocsr()  # undirected even if only one direction is listed
    adj.setdiag(0)
    adj.eliminate_zeros()
    return nodes, adj


def reach_matrix(edges: pl.DataFrame, genes: Sequence[str], hops: int) -> sp.csr_matrix:
    """Which of ``genes`` lie within ``hops`` hops of each gene (row i: genes[i], itself included).

    Paths may pass through graph genes outside ``genes``; genes absent from the graph reach only
    themselves; edge weights are ignored (an edge is an edge). Built as ``S (I + A)^hops S^T``
    with sparse products, entries clipped to 1 after each, so it stays cheap on a 20k-gene graph.
    Returns a boolean ``len(genes) x len(genes)`` CSR matrix.
    """
    if hops < 0:
        raise LpmInputError(None, f"hops must be >= 0, got {hops}")
    genes = _check_unique(genes, "genes")
    n = len(genes)
    if hops == 0 or n == 0:
        return sp.identity(n, dtype=bool, format="csr")
    nodes, adj = _nodes_and_adjacency(edges, genes, weighted=False)
    step = (adj + sp.identity(len(nodes), format="csr")).tocsr()
    step.data[:] = 1.0
    step = step.astype(np.float32)
    index = pl.Series(genes, dtype=pl.String).cast(pl.Enum(nodes)).to_physical().to_numpy()
    reach = step[index]
    for _ in range(hops - 1):
        reach = (reach @ step).tocsr()
        reach.data[:] = 1.0
    out = reach[:, index].tocsr()
    out.eliminate_zeros()
    return out.astype(bool)


def _weights_vector(candidates: list[str], weights: Mapping[str, float] | None) -> np.ndarray:
    """Weight per candidate: 1 each by default; with a mapping, candidates it omits weigh 0."""
    if weights is None:
        return np.ones(len(candidates))
    cand = set(candidates)
    stray = sorted(g for g in weights if g not in cand)
    if stray:
        raise LpmInputError(
            None, f"weights given for non-candidate gene(s): {', '.join(stray[:10])}"
        )
    w = np.array([float(weights.get(g, 0.0)) for g in candidates], dtype=np.float64)
    bad = [g for g, x in zip(candidates, w, strict=True) if not (x >= 0)]  # catches NaN
    if bad:
        raise LpmInputError(None, f"weights must be finite and >= 0: {', '.join(bad[:10])}")
    return w


def _check_selection(
    candidates: Sequence[str], k: int, selected: Sequence[str]
) -> tuple[list[str], list[str]]:
    """Unique candidates, unique ``selected``, and ``k`` within what is left to choose."""
    cands = _check_unique(candidates, "candidates")
    chosen = list(dict.fromkeys(str(g) for g in selected))
    left = len(set(cands) - set(chosen))
    if k < 1:
        raise LpmInputError(None, f"k must be >= 1, got {k}")
    if k > left:
        raise LpmInputError(None, f"k={k} exceeds the {left} candidate(s) not already selected")
    return cands, chosen


def _log_absent(edges: pl.DataFrame, candidates: list[str]) -> None:
    in_graph = pl.concat([edges["source"], edges["target"]]).cast(pl.String).unique()
    absent = pl.Series(candidates, dtype=pl.String).is_in(in_graph.implode()).not_().sum()
    log.info("%d of %d candidate(s) are absent from the graph", absent, len(candidates))


def _tie_rank(n: int, seed: int) -> np.ndarray:
    """Position of each item in a seeded random order: lower wins a tie."""
    rank = np.empty(n, dtype=np.int64)
    rank[np.random.default_rng(seed).permutation(n)] = np.arange(n)
    return rank


def _lazy_greedy(
    reach: sp.csr_matrix,
    w: np.ndarray,
    covered: np.ndarray,
    pool: np.ndarray,
    k: int,
    tie: np.ndarray,
) -> list[tuple[int, float]]:
    """Pick ``k`` rows of ``pool`` by largest newly covered weight; bounds recomputed lazily.

    A popped bound computed in this round is exact and no smaller than any other bound (gains
    only shrink), so it is the greedy pick; a bound of 0 is exact too (gains are >= 0).
    """
    indptr, indices = reach.indptr, reach.indices
    free = np.where(covered, 0.0, w)

    def gain(i: int) -> float:
        return float(free[indices[indptr[i] : indptr[i + 1]]].sum())

    heap = [(-gain(int(i)), int(tie[i]), int(i), 0) for i in pool]
    heapq.heapify(heap)
    picks: list[tuple[int, float]] = []
    while len(picks) < k:
        neg, t, i, stamp = heapq.heappop(heap)
        if stamp == len(picks) or neg >= 0:
            picks.append((i, -neg if neg < 0 else 0.0))
            free[indices[indptr[i] : indptr[i + 1]]] = 0.0
        else:
            heapq.heappush(heap, (-gain(i), t, i, len(picks)))
    return picks


def coverage_selection(
    edges: pl.DataFrame,
    candidates: Sequence[str],
    k: int,
    *,
    hops: int = 2,
    weights: Mapping[str, float] | None = None,
    selected: Sequence[str] = (),
    seed: int = 0,
) -> pl.DataFrame:
    """Choose ``k`` candidates covering the most candidate weight within ``hops`` hops.

    ``hops`` is the number of message-passing layers of the graph model that will be trained:
    a gene is learnable when a measured perturbation lies that close. Lazy greedy (stale upper
    bounds in a priority queue) keeps the ``1 - 1/e`` guarantee of greedy for this coverage
    objective. When nothing is left to cover, picks go on in the seeded tie order with gain 0.

    Parameters
    ----------
    edges
        Graph table ``source, target[, weight]`` (weights ignored).
    candidates
        Genes that may be chosen; their weights define the objective.
    k
        How many to choose (at most the candidates not in ``selected``).
    hops
        Neighbourhood radius (0: each gene covers only itself).
    weights
        Weight per candidate (default 1 each); candidates the mapping omits weigh 0.
    selected
        Genes already measured (candidates or not): their coverage is done, never chosen again.
    seed
        Seed of the random tie order.

    Returns
    -------
    polars.DataFrame
        ``rank, gene, gain, covered, covered_fraction``: weight newly covered by each pick, the
        cumulative weight covered (including ``selected``) and its share of the total candidate
        weight (0 when the total is 0).
    """
    cands, chosen = _check_selection(candidates, k, selected)
    w = _weights_vector(cands, weights)
    _log_absent(edges, cands)
    cand_set, chosen_set = set(cands), set(chosen)
    extra = [g for g in chosen if g not in cand_set]
    reach = reach_matrix(edges, cands + extra, hops)[:, : len(cands)].tocsr()
    index = {g: i for i, g in enumerate(cands + extra)}
    covered = np.zeros(len(cands), dtype=bool)
    done = [index[g] for g in chosen]
    if done:
        covered[reach[done].indices] = True
    pool = np.array([i for i, g in enumerate(cands) if g not in chosen_set], dtype=np.int64)
    picks = _lazy_greedy(reach, w, covered, pool, k, _tie_rank(len(cands), seed))
    gains = np.array([g for _, g in picks])
    total = float(w.sum())
    cumulative = float(w[covered].sum()) + np.cumsum(gains)
    return pl.DataFrame(
        {
            "rank": np.arange(1, k + 1, dtype=np.int64),
            "gene": [cands[i] for i, _ in picks],
            "gain": gains,
            "covered": cumulative,
            "covered_fraction": cumulative / total if total > 0 else np.zeros(k),
        }
    )


def _leading_eigenvectors(adj: sp.csr_matrix, n_vectors: int, seed: int) -> np.ndarray:
    """``n_vectors`` eigenvectors of the largest eigenvalues of ``D^-1/2 A D^-1/2``."""
    n = adj.shape[0]
    deg = np.asarray(adj.sum(axis=1)).ravel()
    inv = np.divide(1.0, np.sqrt(deg), out=np.zeros_like(deg), where=deg > 0)
    norm = (sp.diags(inv) @ adj @ sp.diags(inv)).tocsr()
    m = min(n_vectors, n)
    if m >= n - 1:  # eigsh needs k < n - 1 for a reliable answer; tiny graphs go dense
        _, vecs = np.linalg.eigh(norm.toarray())
        return vecs[:, n - m :]
    v0 = np.random.default_rng(seed).standard_normal(n)
    _, vecs = spla.eigsh(norm, k=m, which="LA", v0=v0)
    return np.asarray(vecs)


def _farthest_first(
    points: np.ndarray, centres: np.ndarray, start: int | None, k: int, tie: np.ndarray
) -> list[tuple[int, float]]:
    """k-centre greedy: each pick is the point farthest from its nearest centre (ties by ``tie``)."""
    nearest = np.full(len(points), np.inf)
    for c in centres:
        nearest = np.minimum(nearest, np.linalg.norm(points - c, axis=1))
    taken = np.zeros(len(points), dtype=bool)
    picks: list[tuple[int, float]] = []
    if start is not None:
        picks.append((start, math.inf))
        taken[start] = True
        nearest = np.minimum(nearest, np.linalg.norm(points - points[start], axis=1))
    while len(picks) < k:
        d = np.where(taken, -np.inf, nearest)
        best = np.flatnonzero(d == d.max())
        i = int(best[np.argmin(tie[best])])
        picks.append((i, float(nearest[i])))
        taken[i] = True
        nearest = np.minimum(nearest, np.linalg.norm(points - points[i], axis=1))
    return picks


def spectral_selection(
    edges: pl.DataFrame,
    candidates: Sequence[str],
    k: int,
    *,
    n_vectors: int = 32,
    selected: Sequence[str] = (),
    seed: int = 0,
) -> pl.DataFrame:
    """Choose ``k`` candidates spread over the graph's leading eigenvectors (k-centre greedy).

    Genes close in the leading spectral embedding sit in the same graph region, so measuring
    genes far apart in it spreads the training set over the graph. Embedding: the ``n_vectors``
    leading eigenvectors of ``D^-1/2 A D^-1/2`` over the whole graph plus the candidates
    (isolated when absent), rows row-normalised (zero rows stay zero). The first centre is
    ``selected`` when given, else the candidate with the largest row norm before normalising.
    Eigenvectors use ``eigsh`` started from a seeded vector, so results repeat for a seed.

    Returns
    -------
    polars.DataFrame
        ``rank, gene, distance``: each pick's Euclidean distance to its nearest earlier centre
        when picked; ``inf`` for the first pick when ``selected`` is empty.
    """
    cands, chosen = _check_selection(candidates, k, selected)
    if n_vectors < 1:
        raise LpmInputError(None, f"n_vectors must be >= 1, got {n_vectors}")
    _log_absent(edges, cands)
    cand_set, chosen_set = set(cands), set(chosen)
    extra = [g for g in chosen if g not in cand_set]
    nodes, adj = _nodes_and_adjacency(edges, cands + extra, weighted=True)
    vecs = _leading_eigenvectors(adj, n_vectors, seed)
    index = pl.Series(cands + extra, dtype=pl.String).cast(pl.Enum(nodes)).to_physical()
    rows = vecs[index.to_numpy()]
    norms = np.linalg.norm(rows, axis=1)
    points = rows / np.where(norms > 0, norms, 1.0)[:, None]
    position = {g: i for i, g in enumerate(cands + extra)}
    pool = np.array([i for i, g in enumerate(cands) if g not in chosen_set], dtype=np.int64)
    tie = _tie_rank(len(pool), seed)
    start = None
    if not chosen:
        best = np.flatnonzero(norms[pool] == norms[pool].max())
        start = int(best[np.argmin(tie[best])])
    centres = points[[position[g] for g in chosen]]
    picks = _farthest_first(points[pool], centres, start, k, tie)
    return pl.DataFrame(
        {
            "rank": np.arange(1, k + 1, dtype=np.int64),
            "gene": [cands[int(pool[i])] for i, _ in picks],
            "distance": np.array([d for _, d in picks], dtype=np.float64),
        }
    )
