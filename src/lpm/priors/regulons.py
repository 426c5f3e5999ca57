"""Gene features from TF→target regulons: a spectral embedding of the union regulatory graph.

Why: a featurised gene encoder must place genes never perturbed in training. Genes that share
regulators tend to respond together, so a low-rank embedding of the TF→target graph puts a TF
near its targets and, more strongly, targets of the same TFs (co-regulated genes) near each
other, which is the prior a model needs to transfer effects between them.

Construction (:func:`regulon_gene_features`): the edges of the chosen resources (read with
:func:`lpm.priors.load_gene_network`, which harmonises symbols, drops self-loops and
merges repeats) are pooled into one undirected graph with weight 1 per gene pair (sign and
confidence ignored: a repressor is as informative about co-regulation as an activator);
``M = I + D^-1/2 A D^-1/2`` (the symmetric normalisation keeps hub TFs with thousands of
targets from owning every component; the identity keeps each gene's own direction, and makes
``M`` positive semi-definite, so its top singular vectors are its smoothest eigenvectors);
seeded randomized truncated SVD of ``M``; rows L2-normalised (cosine similarity = dot product).
Results are cached as Parquet, keyed by the input files' content and every parameter.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Final

import numpy as np
import polars as pl
import scipy.sparse as sp

from lpm._utils.cache import cache_file as cached_path
from lpm._utils.cache import file_key, read_cached
from lpm.errors import LpmInputError
from lpm.priors.go import unit_svd_table
from lpm.priors.networks import load_gene_network

#: Bump when the computation changes, so old cache files are not reused.
_CACHE_VERSION: Final = 1
_PREFIX: Final = "reg_"


def regulon_files(folder: str | Path, sources: Sequence[str]) -> dict[str, Path]:
    """The one file per source in ``folder``: its name starts with the source (case-insensitive).

    ``tf_regulons/`` ships ``collectri_2023__hengkp.csv.gz``, ``dorothea_ABC__hengkp.csv.gz``,
    ``trrust_v2_human__hasanalanya.tsv.gz``, ... so ``"collectri"`` names the first one.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise LpmInputError(folder, "no such regulon folder")
    if not sources:
        raise LpmInputError(None, "sources is empty; name at least one regulon resource")
    names = sorted(p.name for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    out: dict[str, Path] = {}
    for source in dict.fromkeys(s.lower() for s in sources):
        hits = [n for n in names if n.lower().startswith(source)]
        if len(hits) != 1:
            found = "none" if not hits else ", ".join(hits)
            raise LpmInputError(
                folder,
                f"need exactly one file starting with {source!r}, found {found} "
                f"(files: {', '.join(names) or 'none'})",
            )
        out[source] = folder / hits[0]
    return out


def _cache_params(
    files: dict[str, Path], gene_info: Path | None, n_components: int, seed: int
) -> dict[str, object]:
    return {
        "version": _CACHE_VERSION,
        "files": {s: file_key(p) for s, p in sorted(files.items())},
        "gene_info": None if gene_info is None else file_key(gene_info),
        "n_components": n_components,
        "seed": seed,
    }


def _normalised_adjacency(edges: pl.DataFrame, genes: pl.Series) -> sp.csr_matrix:
    """``I + D^-1/2 A D^-1/2`` of the undirected 0/1 graph of ``edges`` over sorted ``genes``."""
    index = pl.DataFrame({"gene": genes, "i": pl.arange(0, genes.len(), eager=True)})
    e = edges.join(index.rename({"gene": "source", "i": "s"}), on="source").join(
        index.rename({"gene": "target", "i": "t"}), on="target"
    )
    s, t = e["s"].to_numpy(), e["t"].to_numpy()
    n = genes.len()
    both = sp.csr_matrix(
        (np.ones(2 * len(s)), (np.concatenate([s, t]), np.concatenate([t, s]))), shape=(n, n)
    )
    adj = sp.csr_matrix((both > 0).astype(np.float64))  # A→B and B→A merge into one weight-1 edge
    deg = np.asarray(adj.sum(axis=1)).ravel()  # ≥ 1: every gene is on an edge
    scale = sp.diags(1.0 / np.sqrt(deg))
    return sp.csr_matrix(sp.identity(n, format="csr") + scale @ adj @ scale)


def regulon_gene_features(
    folder: str | Path,
    *,
    sources: Sequence[str] = ("collectri", "dorothea"),
    n_components: int = 32,
    gene_info: str | Path | None = None,
    seed: int = 0,
    cache_dir: str | Path | None = None,
) -> pl.DataFrame:
    """Dense regulon features per gene: union TF→target graph → normalised adjacency → SVD.

    Parameters
    ----------
    folder
        Folder holding the regulon files in the formats they ship in (``shared/data/tf_regulons``).
    sources
        Resources to pool; each names the one file in ``folder`` whose name starts with it
        (``"collectri"``, ``"dorothea"``, ``"trrust"``, ``"pathwaycommons"``).
    n_components
        Feature width ``k``; clamped to ``n_genes - 1``.
    gene_info
        Gene-info table for symbol harmonisation (``gene_ontology/human_gene_info_*.tsv.gz``);
        ``None`` only upper-cases names, so the same gene under an old and a new symbol stays
        two genes.
    seed
        ``random_state`` of the randomized SVD; same inputs and seed give identical output.
    cache_dir
        If given, the result is read from / written (atomically) to
        ``cache_dir/regulon_features_<key>.parquet``; the key hashes every input file's content
        (size and sha256) and every parameter above.

    Returns
    -------
    pl.DataFrame
        ``symbol`` (String, sorted) then ``reg_0 .. reg_{k-1}`` (Float32), one row per gene on at
        least one edge (TF or target); rows have unit L2 norm.

    Example
    -------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "trrust.tsv").write_text(
    ...     "TF\\tTarget\\tRegulation\\nA\\tX\\tActivation\\nA\\tY\\tRepression\\nB\\tZ\\tUnknown\\n"
    ... )
    >>> f = regulon_gene_features(d, sources=["trrust"], n_components=2)
    >>> f.columns, f["symbol"].to_list()
    (['symbol', 'reg_0', 'reg_1'], ['A', 'B', 'X', 'Y', 'Z'])
    """
    if n_components < 1:
        raise LpmInputError(None, f"n_components must be ≥ 1, got {n_components}")
    files = regulon_files(folder, sources)
    info = None if gene_info is None else Path(gene_info)
    if info is not None and not info.is_file():
        raise LpmInputError(info, "no such gene info file")

    cache_file: Path | None = None
    if cache_dir is not None:
        cache_file = cached_path(
            cache_dir, "regulon_features", _cache_params(files, info, n_components, seed)
        )
        hit = read_cached(cache_file)
        if hit is not None:
            return hit

    edges = pl.concat(
        [load_gene_network(p, gene_info=info).select("source", "target") for p in files.values()]
    ).unique()
    genes = pl.concat([edges["source"], edges["target"]]).unique().sort()
    if genes.len() < 2:
        raise LpmInputError(folder, f"{genes.len()} gene(s) in the regulon graph; need ≥ 2")
    matrix = _normalised_adjacency(edges, genes)

    return unit_svd_table(
        matrix, genes, n_components, seed=seed, prefix=_PREFIX, cache_file=cache_file
    )


__all__ = ["regulon_files", "regulon_gene_features"]
