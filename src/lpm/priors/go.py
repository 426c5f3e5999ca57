"""Gene features from Gene Ontology annotations, propagated up the GO DAG (true-path rule).

A gene annotated to a term is also annotated to every ancestor of that term, so two genes with
different but related leaf annotations (``cytosolic large ribosomal subunit`` vs ``... small
ribosomal subunit``) share their common ancestors. :func:`propagate_go` does this closure;
:func:`go_gene_features` turns the propagated gene×term matrix into dense, L2-normalised
low-rank features (TF-IDF-like weighting, seeded randomized truncated SVD) for featurised gene
encoders that must place genes never perturbed in training. Results are cached as Parquet,
keyed by the input files' content and every parameter.

Inputs are the Bioconductor exports in ``shared/data/gene_ontology/``:

* gene→GO (``human_gene2go_direct_orgHsEgDb_3.16.tsv.gz``): columns ``symbol``, ``go_id`` and,
  for evidence filtering, ``evidence``; direct annotations only;
* GO edges (``go_parents_GOdb_3.16.tsv.gz``): columns ``child``, ``parent``,
  ``relationship_type`` (``isa``, ``part of``, ``regulates``, ...).

Symbols are used as given: the org.Hs.eg.db export already carries official symbols, the same
ones :mod:`lpm.data.genes` harmonises to.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np
import polars as pl
import scipy.sparse as sp

from lpm._utils.atomic import atomic_file
from lpm._utils.cache import cache_file as cached_path
from lpm._utils.cache import file_key, read_cached
from lpm.data.io.symbol_tables import read_text_table
from lpm.data.validate import require_columns
from lpm.errors import LpmInputError

GENE2GO_COLUMNS: Final = ("symbol", "go_id")
PARENTS_COLUMNS: Final = ("child", "parent", "relationship_type")
#: Bump when the computation changes, so old cache files are not reused.
_CACHE_VERSION: Final = 1
_MAX_CLOSURE_ROUNDS: Final = 64


def _relation_key(name: str) -> str:
    """``is_a``, ``is a``, ``isa`` and ``IS_A`` all name the same relation."""
    return re.sub(r"[^a-z]", "", name.lower())


def _ancestor_closure(n_terms: int, child: np.ndarray, parent: np.ndarray) -> sp.csr_matrix:
    """Reflexive-transitive closure ``C`` of the child→parent relation (``C[i, j]``: j is i or an ancestor).

    Repeated squaring of the boolean reachability matrix: the reach doubles every round, so the
    loop ends after about log2(depth of GO) ≈ 5 rounds. A cycle does not break it (the fixed
    point exists for any graph): terms on a cycle simply become ancestors of one another.
    """
    eye = sp.identity(n_terms, dtype=np.int8, format="csr")
    edges = sp.csr_matrix(
        (np.ones(len(child), dtype=np.int8), (child, parent)), shape=(n_terms, n_terms)
    )
    closure = ((eye + edges) > 0).astype(np.int8).tocsr()
    for _ in range(_MAX_CLOSURE_ROUNDS):
        # int64 products so path counts cannot overflow before the > 0 test
        step = ((closure.astype(np.int64) @ closure.astype(np.int64)) > 0).astype(np.int8).tocsr()
        if step.nnz == closure.nnz:
            return step
        closure = step
    raise LpmInputError(None, "GO closure did not converge (graph deeper than 2^64 levels?)")


def propagate_go(
    gene2go: pl.DataFrame,
    parents: pl.DataFrame,
    *,
    relations: Sequence[str] | None = ("is_a", "part_of"),
) -> pl.DataFrame:
    """Each gene's direct GO terms plus all their ancestors (the true-path rule).

    Parameters
    ----------
    gene2go
        Direct annotations, columns ``symbol`` and ``go_id`` (others ignored; nulls dropped).
    parents
        GO edges, columns ``child``, ``parent``, ``relationship_type``.
    relations
        Edge types to follow, matched ignoring case, spaces and underscores (``"is_a"`` matches
        the file's ``isa``, ``"part_of"`` its ``part of``). ``None`` follows every edge. The
        default is the GO consortium's true-path set: ``regulates`` edges are not followed
        (a regulator of X is not part of X).

    Returns
    -------
    pl.DataFrame
        Long table ``symbol``, ``go_id`` (String), unique pairs, sorted. Terms absent from
        ``parents`` are kept as they are (no ancestors known). Cycles are tolerated: terms on
        a cycle become ancestors of each other.
    """
    require_columns(gene2go, GENE2GO_COLUMNS, "gene→GO table")
    require_columns(parents, PARENTS_COLUMNS, "GO parents table")
    ann = (
        gene2go.select(pl.col("symbol").cast(pl.String), pl.col("go_id").cast(pl.String))
        .drop_nulls()
        .unique()
    )
    edges = parents.select(
        pl.col("child").cast(pl.String),
        pl.col("parent").cast(pl.String),
        pl.col("relationship_type").cast(pl.String),
    ).drop_nulls()
    if relations is not None:
        wanted = sorted({_relation_key(r) for r in relations})
        edges = edges.filter(
            pl.col("relationship_type")
            .str.to_lowercase()
            .str.replace_all(r"[^a-z]", "")
            .is_in(wanted)
        )
    if ann.height == 0:
        return pl.DataFrame(schema={"symbol": pl.String, "go_id": pl.String})

    terms = pl.concat([ann["go_id"], edges["child"], edges["parent"]]).unique().sort()
    term_idx = pl.DataFrame({"go_id": terms, "t": pl.arange(0, terms.len(), eager=True)})
    genes = ann["symbol"].unique().sort()
    gene_idx = pl.DataFrame({"symbol": genes, "g": pl.arange(0, genes.len(), eager=True)})

    e = (
        edges.join(term_idx.rename({"go_id": "child", "t": "c"}), on="child")
        .join(term_idx.rename({"go_id": "parent", "t": "p"}), on="parent")
        .select("c", "p")
    )
    closure = _ancestor_closure(terms.len(), e["c"].to_numpy(), e["p"].to_numpy())

    a = ann.join(gene_idx, on="symbol").join(term_idx, on="go_id")
    direct = sp.csr_matrix(
        (np.ones(a.height, dtype=np.int64), (a["g"].to_numpy(), a["t"].to_numpy())),
        shape=(genes.len(), terms.len()),
    )
    full = (direct @ closure.astype(np.int64)).tocoo()
    out = pl.DataFrame({"g": full.row.astype(np.int64), "t": full.col.astype(np.int64)})
    return (
        out.join(gene_idx, on="g")
        .join(term_idx, on="t")
        .select("symbol", "go_id")
        .sort("symbol", "go_id")
    )


def _read_tsv(path: Path, columns: Sequence[str], what: str) -> pl.DataFrame:
    table = read_text_table(path, what, quote_char=None)
    require_columns(table, columns, path)
    return table


def go_gene_features(
    gene2go_path: str | Path,
    parents_path: str | Path,
    *,
    n_components: int = 64,
    min_genes: int = 5,
    max_genes_fraction: float = 0.1,
    idf: bool = True,
    evidence_exclude: Sequence[str] = ("ND",),
    relations: Sequence[str] | None = ("is_a", "part_of"),
    seed: int = 0,
    cache_dir: str | Path | None = None,
) -> pl.DataFrame:
    """Dense GO features per gene: propagated gene×term matrix → weighting → truncated SVD.

    Steps: drop annotations whose ``evidence`` code is in ``evidence_exclude``; propagate to
    ancestors (:func:`propagate_go`); keep terms annotated (after propagation) to at least
    ``min_genes`` genes and at most ``max_genes_fraction`` of the annotated genes (drops the
    roots and other near-universal terms, which carry no information, and singletons, which
    are noise for an SVD); binary gene×term matrix; optionally scale each term by its smoothed
    inverse document frequency ``log((1 + n_genes) / (1 + n_genes_with_term)) + 1``;
    L2-normalise gene rows (genes with hundreds of terms do not dominate); seeded randomized
    truncated SVD; L2-normalise the output rows (cosine similarity = dot product).

    Parameters
    ----------
    gene2go_path, parents_path
        The TSV(.gz) files described in the module docstring.
    n_components
        Feature width ``k``; clamped to ``min(n_genes, n_terms) - 1``.
    min_genes, max_genes_fraction
        Term filter (counts after propagation and evidence filtering).
    idf
        Weight terms by inverse document frequency (rare, specific terms count more).
    evidence_exclude
        Evidence codes to ignore. Default ``("ND",)``: "no biological data" annotations sit on
        the three root terms and only say nothing is known. Electronic annotations (``IEA``,
        ~22% of rows) are kept by default because the point of these features is coverage of
        genes never perturbed, and many lesser-studied genes have only IEA terms; pass
        ``("ND", "IEA")`` for curated-only features. Ignored if the file has no ``evidence``
        column and the tuple is empty; an error if it is not empty and the column is missing.
    relations
        Edge types followed by the propagation (see :func:`propagate_go`).
    seed
        ``random_state`` of the randomized SVD; same inputs and seed give identical output.
    cache_dir
        If given, the result is read from / written (atomically) to
        ``cache_dir/go_features_<key>.parquet``; the key hashes both files' content (size and
        sha256) and every parameter above.

    Returns
    -------
    pl.DataFrame
        ``symbol`` (String, sorted) then ``go_0 .. go_{k-1}`` (Float32), one row per gene with at
        least one kept term; rows have unit L2 norm (a gene whose weighted row projects to zero
        keeps a zero row).
    """
    gene2go_path, parents_path = Path(gene2go_path), Path(parents_path)
    _check_feature_params(gene2go_path, parents_path, n_components, min_genes, max_genes_fraction)
    settings = {
        "n_components": n_components,
        "min_genes": min_genes,
        "max_genes_fraction": max_genes_fraction,
        "idf": idf,
        "evidence_exclude": sorted(evidence_exclude),
        "relations": None if relations is None else sorted(map(_relation_key, relations)),
        "seed": seed,
    }
    cache_file = _cache_file(cache_dir, gene2go_path, parents_path, settings)
    if cache_file is not None and (hit := read_cached(cache_file)) is not None:
        return hit
    long = _propagated(gene2go_path, parents_path, evidence_exclude, relations)
    long = _informative_terms(long, min_genes, max_genes_fraction, gene2go_path)
    genes = long["symbol"].unique().sort()
    mat = _weighted_matrix(long, genes, idf=idf)
    return unit_svd_table(mat, genes, n_components, seed=seed, prefix="go_", cache_file=cache_file)


def _cache_file(
    cache_dir: str | Path | None, gene2go_path: Path, parents_path: Path, settings: dict[str, Any]
) -> Path | None:
    """Where features of these files (by content) and settings are cached, if anywhere."""
    if cache_dir is None:
        return None
    key = {
        "version": _CACHE_VERSION,
        "gene2go": file_key(gene2go_path),
        "parents": file_key(parents_path),
        **settings,
    }
    return cached_path(cache_dir, "go_features", key)


def _check_feature_params(
    gene2go_path: Path,
    parents_path: Path,
    n_components: int,
    min_genes: int,
    max_genes_fraction: float,
) -> None:
    if n_components < 1:
        raise LpmInputError(None, f"n_components must be ≥ 1, got {n_components}")
    if min_genes < 1:
        raise LpmInputError(None, f"min_genes must be ≥ 1, got {min_genes}")
    if not 0 < max_genes_fraction <= 1:
        raise LpmInputError(None, f"max_genes_fraction must be in (0, 1], got {max_genes_fraction}")
    for p, what in ((gene2go_path, "gene→GO"), (parents_path, "GO parents")):
        if not p.is_file():
            raise LpmInputError(p, f"no such {what} file")


def _propagated(
    gene2go_path: Path,
    parents_path: Path,
    evidence_exclude: Sequence[str],
    relations: Sequence[str] | None,
) -> pl.DataFrame:
    """The annotations whose evidence is not excluded, propagated to every ancestor term."""
    g2g = _read_tsv(
        gene2go_path,
        [*GENE2GO_COLUMNS, *(["evidence"] if evidence_exclude else [])],
        "gene→GO table",
    )
    parents = _read_tsv(parents_path, PARENTS_COLUMNS, "GO parents table")
    if evidence_exclude:
        g2g = g2g.filter(~pl.col("evidence").is_in(list(evidence_exclude)).fill_null(False))
    long = propagate_go(g2g, parents, relations=relations)
    if long.height == 0:
        raise LpmInputError(gene2go_path, "no annotations left after evidence filtering")
    return long


def _informative_terms(
    long: pl.DataFrame, min_genes: int, max_genes_fraction: float, source: Path
) -> pl.DataFrame:
    """The annotations of terms held by at least ``min_genes`` genes and at most a
    ``max_genes_fraction`` of the annotated ones (no roots, no singletons)."""
    n_annotated = long["symbol"].n_unique()
    counts = long.group_by("go_id").len()
    keep = counts.filter(
        (pl.col("len") >= min_genes) & (pl.col("len") <= max_genes_fraction * n_annotated)
    )["go_id"]
    long = long.filter(pl.col("go_id").is_in(keep.implode()))
    n_genes, n_terms = long["symbol"].n_unique(), long["go_id"].n_unique()
    if n_genes < 2 or n_terms < 2:
        raise LpmInputError(
            source,
            f"{n_genes} gene(s) and {n_terms} GO term(s) left after the term filter "
            f"(min_genes={min_genes}, max_genes_fraction={max_genes_fraction}); need ≥ 2 of each",
        )
    return long


def _weighted_matrix(long: pl.DataFrame, genes: pl.Series, *, idf: bool) -> sp.csr_matrix:
    """Binary gene × term matrix (rows in ``genes`` order), optionally idf-weighted, rows L2-normalised."""
    terms = long["go_id"].unique().sort()
    gi = long.join(
        pl.DataFrame({"symbol": genes, "g": pl.arange(0, genes.len(), eager=True)}), on="symbol"
    ).join(pl.DataFrame({"go_id": terms, "t": pl.arange(0, terms.len(), eager=True)}), on="go_id")
    mat = sp.csr_matrix(
        (np.ones(gi.height), (gi["g"].to_numpy(), gi["t"].to_numpy())),
        shape=(genes.len(), terms.len()),
    )
    if idf:
        df = np.asarray(mat.sum(axis=0)).ravel()
        mat = mat @ sp.diags(np.log((1.0 + mat.shape[0]) / (1.0 + df)) + 1.0)
    mat = sp.csr_matrix(mat)
    norms = np.sqrt(np.asarray(mat.multiply(mat).sum(axis=1)).ravel())
    return sp.csr_matrix(sp.diags(1.0 / norms) @ mat)


def unit_svd_table(
    matrix: sp.spmatrix | np.ndarray,
    genes: pl.Series,
    n_components: int,
    *,
    seed: int,
    prefix: str,
    cache_file: Path | None,
) -> pl.DataFrame:
    """``symbol`` + the seeded randomized truncated SVD factors of ``matrix``'s rows, each row
    L2-normalised (cosine = dot product), written atomically to ``cache_file`` if given."""
    from sklearn.decomposition import TruncatedSVD

    k = min(n_components, min(matrix.shape) - 1)
    factors = TruncatedSVD(
        n_components=k, algorithm="randomized", n_iter=7, random_state=seed
    ).fit_transform(matrix)
    lengths = np.linalg.norm(factors, axis=1, keepdims=True)
    factors = factors / np.where(lengths > 0, lengths, 1.0)
    out = pl.DataFrame(
        {"symbol": genes, **{f"{prefix}{i}": factors[:, i].astype(np.float32) for i in range(k)}}
    )
    if cache_file is not None:
        with atomic_file(cache_file, overwrite=True) as tmp:
            out.write_parquet(tmp)
    return out
