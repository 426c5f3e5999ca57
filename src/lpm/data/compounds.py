"""The store's compound table: what a source file says about each compound it measured.

A GCT/GCTX file often carries each compound's structure (a SMILES column) and its Broad ids in
its column metadata. They are kept beside the measurements, one row per compound symbol, in
``compounds.parquet`` (recorded in ``store.json`` like the other data files), so that
``lpm features compounds`` uses the file's own structures before any lookup by name.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Final

import polars as pl

from lpm.data import schema as S
from lpm.errors import LpmInputError

COMPOUND_ID: Final = "compound_id"
SMILES: Final = "smiles"
#: Columns of the table, in order: the perturbation symbol (``compound:<name>``), the source's
#: compound ids joined by ``|`` (Broad ids, where a name has several), its SMILES (or empty).
COLUMNS: Final = (S.PERTURBATION, COMPOUND_ID, SMILES)
TYPES: Final[dict[str, pl.DataType]] = {c: pl.String() for c in COLUMNS}
ID_SEPARATOR: Final = "|"


def conform_compounds(table: pl.DataFrame, source: str | Path | None) -> pl.DataFrame:
    """The table in store columns and order, one row per compound symbol, or a one-line error."""
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise LpmInputError(source, f"compound table misses column(s) {', '.join(missing)}")
    df = table.select([pl.col(c).cast(TYPES[c]) for c in COLUMNS])
    if df[S.PERTURBATION].null_count():
        raise LpmInputError(source, "compound table has rows without a perturbation symbol")
    bad = df.filter(~pl.col(S.PERTURBATION).str.starts_with("compound:"))
    if bad.height:
        raise LpmInputError(
            source, f"compound table row {bad[S.PERTURBATION][0]!r} is not a compound symbol"
        )
    dup = df.filter(pl.col(S.PERTURBATION).is_duplicated())
    if dup.height:
        raise LpmInputError(
            source, f"compound table names {dup[S.PERTURBATION][0]!r} more than once"
        )
    return df.sort(S.PERTURBATION)


def merge_compounds(tables: Sequence[pl.DataFrame]) -> pl.DataFrame | None:
    """One table from several sources: per symbol the first SMILES given and every id."""
    frames = [t.select(COLUMNS) for t in tables if t is not None and t.height]
    if not frames:
        return None
    rows: dict[str, tuple[set[str], str | None]] = {}
    for symbol, ids, smiles in pl.concat(frames, how="vertical_relaxed").iter_rows():
        known, first = rows.setdefault(symbol, (set(), None))
        known.update(i for i in (ids or "").split(ID_SEPARATOR) if i)
        rows[symbol] = (known, first or smiles)
    table = [(k, ID_SEPARATOR.join(sorted(ids)) or None, sm) for k, (ids, sm) in rows.items()]
    return pl.DataFrame(table, schema=TYPES, orient="row").sort(S.PERTURBATION)


__all__ = ["COLUMNS", "COMPOUND_ID", "SMILES", "conform_compounds", "merge_compounds"]
