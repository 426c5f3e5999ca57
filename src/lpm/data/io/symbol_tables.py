"""Small tables keyed by symbols: candidates, strengths, edges, feature and embedding tables,
and the reference tables of the priors.

Their symbol columns are always read as text, so ids such as ``2``, ``007`` or ``1e3`` stay as
written: a CSV/TSV column named as a symbol column is never parsed as a number, and a Parquet
symbol column must hold text (or integers, written back as their digits); a float or boolean one
is refused, since the text it was written from is lost. Other columns keep their inferred types.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from lpm.errors import LpmInputError, first_line

#: A symbol column by name, or by position (0 is the first column).
Column = str | int


def read_symbol_table(
    path: str | Path, what: str, *, symbols: Sequence[Column] = (0,), hint: str = ""
) -> pl.DataFrame:
    """A Parquet (by suffix) or CSV table (tab-separated when the name says ``.tsv``) whose
    ``symbols`` columns (those present) are text.

    Examples
    --------
    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "strength.csv"
    >>> _ = path.write_text("perturbation,energy\\n007,1.5\\n2,0.5\\n")
    >>> read_symbol_table(path, "strength table", symbols=["perturbation"])["perturbation"].to_list()
    ['007', '2']
    """
    path = Path(path)
    if not path.is_file():
        raise LpmInputError(path, f"{what} not found{hint}")
    try:
        if path.suffix == ".parquet":
            table = pl.read_parquet(path)
        else:
            sep = "\t" if ".tsv" in path.name else ","
            header = pl.read_csv(path, separator=sep, n_rows=0, infer_schema=False).columns
            text = dict.fromkeys(_names(symbols, header), pl.String)
            table = pl.read_csv(path, separator=sep, schema_overrides=text)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise LpmInputError(path, f"cannot read {what}: {first_line(exc)}") from None
    return table.with_columns(as_text(table[name], path) for name in _names(symbols, table.columns))


def read_text_table(
    path: str | Path, what: str, *, separator: str = "\t", **csv: Any
) -> pl.DataFrame:
    """A delimited text file (tab-separated unless told) with every cell as text, such as the
    reference tables of the priors; ``csv`` passes reading options (``quote_char``, ...)."""
    path = Path(path)
    if not path.is_file():
        raise LpmInputError(path, f"no such {what} file")
    try:
        return pl.read_csv(path, separator=separator, infer_schema=False, **csv)
    except (OSError, EOFError, pl.exceptions.PolarsError, UnicodeDecodeError) as exc:
        raise LpmInputError(path, f"cannot read {what}: {first_line(exc)}") from None


def read_embedding_table(path: str | Path, what: str = "embedding file") -> pl.DataFrame:
    """A table of vectors: the first column the symbol (text, each once), the rest finite numbers."""
    table = read_symbol_table(path, what, symbols=(0,))
    if table.width < 2:
        raise LpmInputError(path, f"{what} needs a symbol column and at least one number column")
    symbols = table.to_series(0)
    if symbols.null_count() or symbols.is_duplicated().any():
        raise LpmInputError(path, "duplicate or empty symbols in the first column")
    try:
        values = table.drop(table.columns[0]).to_numpy().astype(np.float64)
    except (ValueError, TypeError):
        raise LpmInputError(path, f"{what}: every column after the first must be numbers") from None
    if not np.isfinite(values).all():
        raise LpmInputError(path, "embedding values contain NaN/inf")
    return table


def as_text(series: pl.Series, source: str | Path | None) -> pl.Series:
    """A symbol column as text: strings as they are, integers as their digits; anything else
    (floats, booleans) is refused naming the column."""
    if series.dtype == pl.String:
        return series
    if series.dtype in (pl.Categorical, pl.Null) or series.dtype.is_integer():
        return series.cast(pl.String)
    if isinstance(series.dtype, pl.Enum):
        return series.cast(pl.String)
    raise LpmInputError(
        source,
        f"column {series.name!r} holds {series.dtype} values, not text; write its ids as strings",
    )


def _names(columns: Sequence[Column], present: Sequence[str]) -> list[str]:
    out = []
    for c in columns:
        if isinstance(c, int):
            if c < len(present):
                out.append(present[c])
        elif c in present:
            out.append(c)
    return list(dict.fromkeys(out))
