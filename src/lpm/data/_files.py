"""Small side tables (embeddings, edges, predictions) from Parquet, CSV or TSV, one-line errors."""

from __future__ import annotations

from pathlib import Path

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
