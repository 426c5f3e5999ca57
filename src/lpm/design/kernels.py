"""Similarity kernels between candidate genes, for k-centre selection as IterPert does it
(Huang et al. 2024): prior knowledge (GO, regulons, a gene graph) and the model's own
predicted effects each give a kernel; their average says which genes are alike, and k-centre
greedy on it picks genes unlike anything measured yet.

Every kernel here is a cosine kernel (unit diagonal), so the distance
``d(i, j)² = K_ii + K_jj − 2 K_ij = 2 − 2 K_ij`` is comparable across sources. A gene a source
knows nothing about has a zero feature row: similarity 0 to every other gene, i.e. it looks new.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import polars as pl
import scipy.sparse as sp

from lpm.errors import LpmInputError
from lpm.priors.gene_graph import edge_table_graph, normalised_adjacency

#: Prior spec naming the loop's own gene graph (``--graph``).
GRAPH = "graph"


def cosine_kernel(features: np.ndarray | sp.spmatrix) -> np.ndarray:
    """Cosine similarity of feature rows; all-zero rows are similar to nothing but themselves."""
    x = sp.csr_matrix(features, dtype=np.float64)
    norm = np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel())
    inv = np.divide(1.0, norm, out=np.zeros_like(norm), where=norm > 0)
    x = sp.diags(inv) @ x
    k = np.asarray((x @ x.T).todense())
    np.fill_diagonal(k, 1.0)
    return np.clip(k, -1.0, 1.0)


def feature_kernel(table: pl.DataFrame, genes: Sequence[str], *, source: str = "") -> np.ndarray:
    """Kernel of a gene feature table (``symbol`` + numeric columns) over ``genes``."""
    if "symbol" not in table.columns:
        raise LpmInputError(source or None, "gene feature table misses column 'symbol'")
    values = table.drop("symbol").to_numpy().astype(np.float64)
    if not np.isfinite(values).all():
        raise LpmInputError(source or None, "gene feature table contains NaN/inf")
    index = {s: i for i, s in enumerate(table["symbol"].cast(pl.String).to_list())}
    x = np.zeros((len(genes), values.shape[1]))
    for i, g in enumerate(genes):
        if g in index:
            x[i] = values[index[g]]
    return cosine_kernel(x)


def graph_kernel(edges: pl.DataFrame, genes: Sequence[str], *, hops: int = 2) -> np.ndarray:
    """Genes are alike when their ``hops``-step random-walk neighbourhoods overlap: cosine of the
    rows of ``P^hops`` with ``P`` the row-normalised adjacency with self loops."""
    nodes = sorted(set(edges["source"].to_list()) | set(edges["target"].to_list()) | set(genes))
    walk = normalised_adjacency(edges, nodes, self_loops=True)
    index = {n: i for i, n in enumerate(nodes)}
    x = walk[[index[g] for g in genes]]
    for _ in range(hops - 1):
        x = x @ walk
    return cosine_kernel(x)


def prior_kernel(
    specs: Sequence[str], genes: Sequence[str], *, graph: pl.DataFrame | None, hops: int
) -> np.ndarray:
    """Average of prior kernels: ``graph`` (the loop's gene graph), ``go`` or ``regulons`` (gene
    features from the priors folder), a feature table (``symbol`` + columns) or an edge table."""
    if not specs:
        raise LpmInputError(None, "the kernel strategy needs at least one --prior source")
    kernels = [_one_prior(s, genes, graph=graph, hops=hops) for s in specs]
    return np.mean(kernels, axis=0)


def _one_prior(
    spec: str, genes: Sequence[str], *, graph: pl.DataFrame | None, hops: int
) -> np.ndarray:
    if spec == GRAPH:
        if graph is None:
            raise LpmInputError(None, "prior 'graph' needs a gene graph (--graph)")
        return graph_kernel(graph, genes, hops=hops)
    if spec in ("go", "regulons"):
        from lpm.priors.features import feature_table

        return feature_kernel(feature_table(spec, kind="member"), genes, source=spec)
    from lpm.data.io.symbol_tables import read_symbol_table

    table = read_symbol_table(
        Path(spec),
        "prior table",
        symbols=("symbol", "source", "target"),
        hint=" (or a keyword: graph, go, regulons)",
    )
    if "symbol" in table.columns:
        return feature_kernel(table, genes, source=spec)
    if {"source", "target"} <= set(table.columns):
        return graph_kernel(edge_table_graph(spec), genes, hops=hops)
    raise LpmInputError(
        Path(spec), "prior table needs a 'symbol' column (features) or 'source, target' (edges)"
    )


def kernel_distance(kernel: np.ndarray) -> np.ndarray:
    """Distance induced by a unit-diagonal kernel: ``sqrt(2 − 2K)``."""
    return np.sqrt(np.clip(2.0 - 2.0 * kernel, 0.0, None))
