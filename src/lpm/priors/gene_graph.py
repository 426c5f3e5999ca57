"""Gene–gene graphs for graph neural networks: GO similarity (as GEARS builds it), edge tables,
and co-expression of measured effects.

Every graph is one tidy table ``source, target, weight`` with both directions of each
undirected edge, at most ``k`` neighbours kept per source gene (the strongest), no self loops.

- :func:`go_similarity_graph`: genes share GO terms → Jaccard similarity of their direct GO
  annotation sets, the ``k`` most similar genes per gene above ``min_similarity``. GEARS
  (Roohani et al. 2023) keeps 20 neighbours above 0.1 Jaccard; those are the defaults. Terms
  annotated to more than ``max_genes_fraction`` of genes (``protein binding``, the roots) are
  dropped first: they make every pair look alike and the product dense.
- :func:`edge_table_graph`: a graph from a file (``source, target[, weight]``), e.g. a reference
  network; directed edges are made undirected (the larger |weight| wins).
- :func:`coexpression_graph`: readouts whose measured effects move together across training
  perturbations (Pearson), top ``k`` above ``min_correlation`` (GEARS: 20 above 0.4).

:func:`graph_source` resolves a spec (``go`` or a file) to a table; the GO graph is cached in the
feature cache folder, keyed by the annotation file's content and every parameter.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Final

import numpy as np
import polars as pl
import scipy.sparse as sp

from lpm._utils.atomic import atomic_file
from lpm._utils.cache import cache_file, file_key, read_cached
from lpm.data.io.symbol_tables import read_symbol_table
from lpm.errors import LpmInputError

GO_GENE2GO: Final = "gene_ontology/human_gene2go_direct_orgHsEgDb_3.16.tsv.gz"
_CACHE_VERSION: Final = 1
_CHUNK: Final = 1024


def _top_k_edges(
    sim_rows: np.ndarray, row_offset: int, k: int, threshold: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Strongest ``k`` columns of each row above ``threshold`` (self excluded); ties by column."""
    n = sim_rows.shape[0]
    sim = sim_rows.copy()
    sim[np.arange(n), row_offset + np.arange(n)] = -np.inf
    k = min(k, sim.shape[1] - 1)
    # stable order: sort by (-similarity, column) so equal similarities keep the lower index
    order = np.argsort(-sim, axis=1, kind="stable")[:, :k]
    best = np.take_along_axis(sim, order, axis=1)
    keep = best >= threshold
    rows = np.repeat(np.arange(n) + row_offset, k).reshape(n, k)
    return rows[keep], order[keep], best[keep]


def _symmetrise(
    genes: Sequence[str], src: np.ndarray, dst: np.ndarray, w: np.ndarray
) -> pl.DataFrame:
    """Both directions of every kept edge; an edge kept from both ends keeps its larger weight."""
    names = pl.Series(list(genes), dtype=pl.String)
    both = pl.DataFrame(
        {
            "s": np.concatenate([src, dst]).astype(np.int64),
            "t": np.concatenate([dst, src]).astype(np.int64),
            "weight": np.concatenate([w, w]).astype(np.float32),
        }
    )
    both = both.group_by("s", "t").agg(pl.col("weight").max()).sort("s", "t")
    return pl.DataFrame(
        {
            "source": names.gather(both["s"]),
            "target": names.gather(both["t"]),
            "weight": both["weight"],
        }
    )


def go_similarity_graph(
    gene2go_path: str | Path,
    *,
    k: int = 20,
    min_similarity: float = 0.1,
    max_genes_fraction: float = 0.05,
    evidence_exclude: Sequence[str] = ("ND",),
    cache_dir: str | Path | None = None,
) -> pl.DataFrame:
    """GEARS-style GO graph: Jaccard of direct GO sets, top ``k`` per gene above ``min_similarity``."""
    from lpm.priors.go import _read_tsv

    path = Path(gene2go_path)
    params = {
        "v": _CACHE_VERSION,
        "file": file_key(path) if path.is_file() else str(path),
        "k": k,
        "min": min_similarity,
        "max_frac": max_genes_fraction,
        "exclude": sorted(evidence_exclude),
    }
    cached = cache_file(cache_dir, "go_graph", params) if cache_dir is not None else None
    if cached is not None and (table := read_cached(cached)) is not None:
        return table
    ann = _read_tsv(path, ("symbol", "go_id"), "gene→GO annotation")
    if evidence_exclude and "evidence" in ann.columns:
        ann = ann.filter(~pl.col("evidence").is_in(list(evidence_exclude)))
    ann = ann.select("symbol", "go_id").unique()
    n_genes_total = ann["symbol"].n_unique()
    term_size = ann.group_by("go_id").len()
    broad = term_size.filter(pl.col("len") > max_genes_fraction * n_genes_total)["go_id"]
    ann = ann.filter(~pl.col("go_id").is_in(broad.implode()))
    genes = sorted(ann["symbol"].unique().to_list())
    terms = sorted(ann["go_id"].unique().to_list())
    if len(genes) < 2:
        raise LpmInputError(path, "fewer than two genes with GO annotations; no graph to build")
    g_idx = {g: i for i, g in enumerate(genes)}
    t_idx = {t: i for i, t in enumerate(terms)}
    rows = np.fromiter((g_idx[g] for g in ann["symbol"]), np.int64, ann.height)
    cols = np.fromiter((t_idx[t] for t in ann["go_id"]), np.int64, ann.height)
    member = sp.csr_matrix(
        (np.ones(ann.height, np.float32), (rows, cols)), shape=(len(genes), len(terms))
    )
    sizes = np.asarray(member.sum(axis=1)).ravel()
    member_t = member.T.tocsc()
    parts = []
    for start in range(0, len(genes), _CHUNK):
        block = member[start : start + _CHUNK]
        inter = (block @ member_t).toarray()
        union = sizes[start : start + _CHUNK, None] + sizes[None, :] - inter
        jaccard = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
        parts.append(_top_k_edges(jaccard, start, k, min_similarity))
    src, dst, w = (np.concatenate(p) for p in zip(*parts, strict=True))
    table = _symmetrise(genes, src, dst, w)
    if cached is not None:
        with atomic_file(cached, overwrite=True) as tmp:
            table.write_parquet(tmp)
    return table


def edge_table_graph(path: str | Path) -> pl.DataFrame:
    """A graph from an edge file (Parquet, CSV or TSV): ``source, target`` and optional ``weight``."""
    path = Path(path)
    df = read_symbol_table(
        path, "graph edge table", symbols=("source", "target"), hint=" (or not a keyword: go)"
    )
    missing = [c for c in ("source", "target") if c not in df.columns]
    if missing:
        raise LpmInputError(path, f"graph edge table misses column(s) {', '.join(missing)}")
    weight = (
        pl.col("weight").cast(pl.Float32).abs()
        if "weight" in df.columns
        else pl.lit(1.0, pl.Float32)
    )
    df = df.select(
        pl.col("source").cast(pl.String), pl.col("target").cast(pl.String), weight.alias("weight")
    )
    if df["source"].null_count() or df["target"].null_count():
        raise LpmInputError(path, "graph edge table has empty source/target values")
    if not np.isfinite(df["weight"].to_numpy()).all():
        raise LpmInputError(path, "column weight contains NaN/inf")
    df = df.filter(pl.col("source") != pl.col("target"))
    both = pl.concat(
        [
            df,
            df.select(pl.col("target").alias("source"), pl.col("source").alias("target"), "weight"),
        ]
    )
    return both.group_by("source", "target").agg(pl.col("weight").max()).sort("source", "target")


def coexpression_graph(
    effects: np.ndarray, readouts: Sequence[str], *, k: int = 20, min_correlation: float = 0.4
) -> pl.DataFrame:
    """Readouts whose effects correlate across perturbations (rows of ``effects``; NaN = unmeasured)."""
    x = np.asarray(effects, dtype=np.float64)
    if x.shape[1] != len(readouts):
        raise LpmInputError(None, f"effects have {x.shape[1]} columns for {len(readouts)} readouts")
    x = np.where(np.isfinite(x), x, np.nan)
    x = x - np.nanmean(x, axis=0, keepdims=True)
    x = np.nan_to_num(x)
    norm = np.linalg.norm(x, axis=0)
    x = np.divide(x, norm, out=np.zeros_like(x), where=norm > 0)
    parts = []
    for start in range(0, x.shape[1], _CHUNK):
        corr = x[:, start : start + _CHUNK].T @ x
        parts.append(_top_k_edges(corr, start, k, min_correlation))
    src, dst, w = (np.concatenate(p) for p in zip(*parts, strict=True))
    return _symmetrise(readouts, src, dst, w)


def graph_source(spec: str, **params: float) -> pl.DataFrame:
    """``go`` (GO Jaccard graph from the priors folder), ``none`` (no prior graph: every gene
    stands alone) or an edge-table file."""
    if spec == "none":
        return pl.DataFrame(schema={"source": pl.String, "target": pl.String, "weight": pl.Float32})
    if spec == "go":
        from lpm.priors.locations import cache_folder, priors_folder

        return go_similarity_graph(
            priors_folder() / GO_GENE2GO,
            k=int(params.get("k", 20)),
            min_similarity=float(params.get("min_similarity", 0.1)),
            cache_dir=cache_folder(),
        )
    return edge_table_graph(spec)


def normalised_adjacency(
    edges: pl.DataFrame, nodes: Sequence[str], *, self_loops: bool = False
) -> sp.csr_matrix:
    """Row-normalised adjacency over ``nodes`` (edges touching other genes dropped): mean of neighbours."""
    index = {n: i for i, n in enumerate(nodes)}
    src = np.array([index.get(s, -1) for s in edges["source"].to_list()], dtype=np.int64)
    dst = np.array([index.get(t, -1) for t in edges["target"].to_list()], dtype=np.int64)
    w = edges["weight"].to_numpy().astype(np.float32)
    ok = (src >= 0) & (dst >= 0)
    n = len(nodes)
    adj = sp.csr_matrix((w[ok], (src[ok], dst[ok])), shape=(n, n))
    if self_loops:
        adj = adj + sp.identity(n, dtype=np.float32, format="csr")
    deg = np.asarray(adj.sum(axis=1)).ravel()
    inv = np.divide(1.0, deg, out=np.zeros_like(deg), where=deg > 0)
    return (sp.diags(inv) @ adj).tocsr().astype(np.float32)
