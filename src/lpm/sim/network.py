"""The simulated gene regulatory network: hub regulators, signed edges and per-context rewiring.

Genes ``G0001..`` are split into regulators (about 10%, ranked by hub weight, Zipf-like) and the
rest, which regulate nothing (leaves). Every gene gets 2-4 regulators drawn by hub weight; a
regulator only takes inputs from bigger hubs, so the graph is a DAG apart from a few feedback
edges. Edges into regulators are weaker than edges into leaves, so cascades stay damped. Each
context drops, sign-flips and adds 10-20% of the edges; its feedback edges are scaled down where
needed so the spectral radius of ``|W|`` stays below :data:`RHO_MAX` and the steady state exists.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import splu

REGULATOR_FRACTION = 0.1
HUB_EXPONENT = 0.8
IN_DEGREE = (2, 4)
FEEDBACK_FRACTION = 0.02
POSITIVE_FRACTION = 0.6
WEIGHT_RANGE = (0.2, 0.7)  # |weight| of an edge into a leaf
CASCADE_WEIGHT_RANGE = (0.1, 0.4)  # |weight| of an edge into a regulator: cascades stay damped
REWIRE_RANGE = (0.10, 0.20)
RHO_MAX = 0.7


def gene_names(n_genes: int) -> list[str]:
    width = max(4, len(str(n_genes)))
    return [f"G{i:0{width}d}" for i in range(1, n_genes + 1)]


@dataclass(frozen=True)
class Edges:
    """A signed weight matrix as edge arrays: ``x[target] += weight * x[source]``."""

    source: np.ndarray
    target: np.ndarray
    weight: np.ndarray

    def __len__(self) -> int:
        return len(self.source)

    def matrix(self, n_genes: int) -> sp.csc_matrix:
        return sp.csc_matrix((self.weight, (self.target, self.source)), shape=(n_genes, n_genes))

    def sorted(self) -> Edges:
        order = np.lexsort((self.target, self.source))
        return Edges(self.source[order], self.target[order], self.weight[order])


@dataclass(frozen=True)
class Network:
    """The shared reference network before any context rewires it."""

    n_genes: int
    regulators: np.ndarray  # gene indices by hub rank, biggest hub first
    rank: np.ndarray  # per gene: hub rank, -1 for non-regulators
    hub_weight: np.ndarray  # per regulator rank: attachment weight (sums to 1)
    edges: Edges


@dataclass(frozen=True)
class ContextNetwork:
    """One context's rewired network and what was changed."""

    edges: Edges
    scale: float
    n_dropped: int
    n_flipped: int
    n_added: int

    def total_effects(self, n_genes: int, columns: np.ndarray) -> np.ndarray:
        """Columns of ``(I - W)^-1``: the steady-state change of every gene per unit change of each."""
        m = (sp.identity(n_genes, format="csc") - self.edges.matrix(n_genes)).tocsc()
        rhs = np.zeros((n_genes, len(columns)))
        rhs[columns, np.arange(len(columns))] = 1.0
        out: np.ndarray = splu(m).solve(rhs)
        return out


def _weights(rng: np.random.Generator, into_regulator: np.ndarray) -> np.ndarray:
    n = len(into_regulator)
    sign = np.where(rng.random(n) < POSITIVE_FRACTION, 1.0, -1.0)
    leaf = rng.uniform(*WEIGHT_RANGE, size=n)
    cascade = rng.uniform(*CASCADE_WEIGHT_RANGE, size=n)
    return sign * np.where(into_regulator, cascade, leaf)


def spectral_bound(edges: Edges, n_genes: int, *, iterations: int = 60) -> float:
    """An upper bound on the spectral radius of ``W`` (Collatz-Wielandt bound on ``|W|``)."""
    a = sp.csr_matrix(
        (np.abs(edges.weight), (edges.target, edges.source)), shape=(n_genes, n_genes)
    )
    v = np.ones(n_genes)
    for _ in range(iterations):
        v = a @ v + v  # power iteration on |W| + I keeps v positive
        v /= v.max()
    return float(np.max((a @ v) / v))


def _stable(edges: Edges, rank: np.ndarray) -> tuple[Edges, float]:
    """Scale the feedback edges (the only ones closing cycles) until the spectral bound is met."""
    n_genes = len(rank)
    feedback = ~_allowed(rank, edges.source, edges.target)

    def scaled(s: float) -> Edges:
        return Edges(edges.source, edges.target, np.where(feedback, s * edges.weight, edges.weight))

    if spectral_bound(edges, n_genes) <= RHO_MAX:
        return edges, 1.0
    lo, hi = 0.0, 1.0
    for _ in range(20):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if spectral_bound(scaled(mid), n_genes) <= RHO_MAX else (lo, mid)
    return scaled(lo), lo


def _allowed(rank: np.ndarray, source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """DAG rule: no self-loops; a regulator's inputs come only from bigger hubs."""
    return (source != target) & ((rank[target] < 0) | (rank[source] < rank[target]))


def build_network(rng: np.random.Generator, n_genes: int) -> Network:
    n_reg = int(np.clip(round(REGULATOR_FRACTION * n_genes), 3, n_genes - 1))
    regulators = rng.permutation(n_genes)[:n_reg]
    rank = np.full(n_genes, -1, dtype=np.int64)
    rank[regulators] = np.arange(n_reg)
    hub = (np.arange(n_reg) + 1.0) ** -HUB_EXPONENT
    hub /= hub.sum()
    sources: list[np.ndarray] = []
    targets: list[np.ndarray] = []
    k_all = rng.integers(IN_DEGREE[0], IN_DEGREE[1] + 1, size=n_genes)
    for g in range(n_genes):
        n_cand = n_reg if rank[g] < 0 else int(rank[g])
        k = min(int(k_all[g]), n_cand)
        if k == 0:
            continue
        p = hub[:n_cand] / hub[:n_cand].sum()
        src = regulators[rng.choice(n_cand, size=k, replace=False, p=p)]
        sources.append(src)
        targets.append(np.full(k, g))
    source = np.concatenate(sources)
    target = np.concatenate(targets)
    # a few feedback edges: a smaller hub regulating a bigger one makes cycles
    n_fb = max(1, round(FEEDBACK_FRACTION * len(source)))
    a = rng.integers(0, n_reg, size=4 * n_fb)
    b = rng.integers(0, n_reg, size=4 * n_fb)
    keep = a > b
    fb_src, fb_tgt = regulators[a[keep]][:n_fb], regulators[b[keep]][:n_fb]
    source = np.concatenate([source, fb_src])
    target = np.concatenate([target, fb_tgt])
    source, target = _unique_pairs(source, target)
    edges = Edges(source, target, _weights(rng, rank[target] >= 0))
    return Network(n_genes, regulators, rank, hub, edges.sorted())


def _unique_pairs(source: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    _, first = np.unique(np.stack([source, target]), axis=1, return_index=True)
    first = np.sort(first)
    return source[first], target[first]


def rewire(rng: np.random.Generator, net: Network) -> ContextNetwork:
    """A context's network: drop, sign-flip and add edges (together 10-20% of them)."""
    e = net.edges
    n_rw = round(rng.uniform(*REWIRE_RANGE) * len(e))
    n_drop = n_flip = n_rw // 3
    n_add = n_rw - n_drop - n_flip
    perm = rng.permutation(len(e))
    keep = np.ones(len(e), dtype=bool)
    keep[perm[:n_drop]] = False
    weight = e.weight.copy()
    weight[perm[n_drop : n_drop + n_flip]] *= -1.0
    src = rng.choice(net.regulators, size=8 * n_add + 8, p=net.hub_weight)
    tgt = rng.integers(0, net.n_genes, size=len(src))
    ok = _allowed(net.rank, src, tgt)
    existing = set(zip(e.source.tolist(), e.target.tolist(), strict=True))
    added: list[tuple[int, int]] = []
    seen: set[tuple[int, int]] = set()
    for s, t in zip(src[ok].tolist(), tgt[ok].tolist(), strict=True):
        if len(added) == n_add:
            break
        if (s, t) not in existing and (s, t) not in seen:
            seen.add((s, t))
            added.append((s, t))
    add = np.array(added, dtype=np.int64).reshape(-1, 2)
    edges = Edges(
        np.concatenate([e.source[keep], add[:, 0]]),
        np.concatenate([e.target[keep], add[:, 1]]),
        np.concatenate([weight[keep], _weights(rng, net.rank[add[:, 1]] >= 0)]),
    ).sorted()
    stable, scale = _stable(edges, net.rank)
    return ContextNetwork(stable, scale, n_drop, n_flip, len(add))
