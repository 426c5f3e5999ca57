"""Small side tables (embeddings, edges, predictions) from Parquet, CSV or TSV, one-line errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from lpm.errors import LpmInputError


def read_table(path: str | Path, what: str, *, hint: str = "") -> pl.DataFrame:
    """Parquet by suffix, else CSV (tab-separated when the name says ``.tsv``)."""
    path = Path(path)
    if not path.is_file():
        raise LpmInputError(path, f"{what} not found{hint}")
    try:
        if path.suffix == ".parquet":
            return pl.read_parquet(path)
        return pl.read_csv(path, separator="\t" if ".tsv" in path.name else ",")
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise LpmInputError(path, f"cannot read {what}: {str(exc).splitlines()[0]}") from None


def read_embeddings(path: str | Path) -> tuple[list[str], np.ndarray]:
    """A table of vectors: first column the symbol (perturbation or gene), the rest numbers."""
    df = read_table(path, "embedding file")
    symbols = df.to_series(0).cast(pl.String).to_list()
    values = df.drop(df.columns[0]).to_numpy().astype(np.float64)
    if len(set(symbols)) != len(symbols):
        raise LpmInputError(path, "duplicate symbols in the first column")
    if not np.isfinite(values).all():
        raise LpmInputError(path, "embedding values contain NaN/inf")
    return symbols, values
