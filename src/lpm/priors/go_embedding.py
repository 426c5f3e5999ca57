"""Gene embeddings from prior knowledge, for models that must place genes never perturbed in training."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import scipy.sparse as sp

from lpm.data.io.symbol_tables import read_text_table
from lpm.errors import LpmInputError


def go_gene_embedding(
    gene2go: str | Path, *, n_components: int = 32, seed: int = 0
) -> pl.DataFrame:
    """Low-rank factors of the gene×GO-term matrix (TF-IDF weighted, truncated SVD).

    Genes sharing annotations land close; the first column is the gene symbol.
    """
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfTransformer

    path = Path(gene2go)
    table = read_text_table(path, "gene→GO table", columns=["symbol", "go_id"])
    table = table.drop_nulls().unique().sort("symbol", "go_id")
    genes = table["symbol"].unique().sort()
    terms = table["go_id"].unique().sort()
    if genes.len() < 2 or terms.len() < 2:
        raise LpmInputError(path, "gene→GO table has too few genes or terms")
    gi = (
        table["symbol"]
        .replace_strict(
            dict(zip(genes.to_list(), range(genes.len()), strict=True)), return_dtype=pl.Int64
        )
        .to_numpy()
    )
    ti = (
        table["go_id"]
        .replace_strict(
            dict(zip(terms.to_list(), range(terms.len()), strict=True)), return_dtype=pl.Int64
        )
        .to_numpy()
    )
    mat = sp.csr_matrix((np.ones(len(gi)), (gi, ti)), shape=(genes.len(), terms.len()))
    weighted = TfidfTransformer().fit_transform(mat)
    k = min(n_components, min(mat.shape) - 1)
    factors = TruncatedSVD(n_components=k, random_state=seed).fit_transform(weighted)
    return pl.DataFrame(
        {
            "symbol": genes.to_list(),
            **{f"go{i}": factors[:, i].astype(np.float32) for i in range(k)},
        }
    )
