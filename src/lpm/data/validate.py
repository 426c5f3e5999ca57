"""The checks every long table passes before it becomes a store, each a one-line error.

Readers call the same routines on what they read (:func:`require_finite` on a matrix,
:func:`require_unique_keys` on their rows), so a problem reads the same whichever file it
came from, and names the first place it was found.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final

import numpy as np
import polars as pl

from lpm.data import members
from lpm.data import schema as S
from lpm.data.symbols import parse
from lpm.errors import LpmInputError, first_line

#: Rows are unique on these columns (the optional ones only where present).
UNIQUE_KEY: Final = (*S.KEY_COLUMNS, S.DOSE, S.TIME, S.MEMBER_DOSE, S.MEMBER_TIME, S.REPLICATE)

#: The store's columns and their types, in store order.
STORE_TYPES: Final[dict[str, pl.DataType]] = {
    S.CONTEXT: pl.String(),
    S.PERTURBATION: pl.String(),
    S.READOUT: pl.String(),
    S.VALUE: pl.Float32(),
    S.DOSE: pl.Float32(),
    S.TIME: pl.Float32(),
    S.N_CELLS: pl.Int32(),
    S.REPLICATE: pl.Int32(),
    S.DATASET: pl.String(),
    S.READOUT_TYPE: pl.String(),
    S.MEMBER_DOSE: pl.List(pl.Float32()),
    S.MEMBER_TIME: pl.List(pl.Float32()),
}

Source = str | Path | None


def require_finite(
    values: np.ndarray,
    source: Source,
    *,
    what: str,
    where: Callable[[tuple[int, ...]], str],
) -> None:
    """One-line error naming ``what``, the count and the first NaN/inf (``where`` of its index)."""
    bad = ~np.isfinite(values)
    if bad.any():
        first = np.unravel_index(int(np.flatnonzero(bad)[0]), values.shape)
        index = tuple(int(i) for i in first)
        raise LpmInputError(
            source, f"{what} has {int(bad.sum())} NaN/inf value(s), first at {where(index)}"
        )


def require_finite_values(df: pl.DataFrame, source: Source = None) -> None:
    """One-line error naming the first row whose value is NaN, inf or missing."""
    value = pl.col(S.VALUE)
    if not df.schema[S.VALUE].is_float():
        value = value.cast(pl.Float64)
    if not df.select((~value.is_finite()).fill_null(True).any()).item():
        return  # all finite: no copy of the column
    values = df[S.VALUE].cast(pl.Float64).to_numpy()  # a missing value becomes NaN

    def row(index: tuple[int, ...]) -> str:
        first = df.row(index[0], named=True)
        return (
            f"context={first[S.CONTEXT]!r} perturbation={first[S.PERTURBATION]!r} "
            f"readout={first[S.READOUT]!r}"
        )

    require_finite(values, source, what="column 'value'", where=row)


def require_unique_keys(
    df: pl.DataFrame,
    source: Source,
    *,
    origin: str = "",
    key: Sequence[str] = UNIQUE_KEY,
    presorted: bool = False,
) -> None:
    """One-line error counting the repeated measurement keys and naming the first (in key order).

    ``presorted``: the rows are already in key order (as :func:`sorted_rows` gives them).
    """
    cols = [c for c in key if c in df.columns]
    keys = df.select(cols) if presorted else df.select(cols).sort(cols, nulls_last=True)
    # sorted keys: a repeat equals its predecessor (much cheaper than a group_by)
    same_as_previous = pl.all_horizontal([pl.col(c).eq_missing(pl.col(c).shift(1)) for c in cols])
    same = keys.select(same_as_previous.fill_null(False).alias("d"))["d"]
    n_dup = int(same.sum())
    if n_dup:
        first = keys.filter(same).row(0, named=True)
        where = ", ".join(f"{c}={first[c]!r}" for c in cols)
        raise LpmInputError(
            source,
            f"{n_dup} duplicate ({', '.join(cols)}) key(s){f' {origin}' if origin else ''}, first: {where}",
        )


def require_columns(df: pl.DataFrame, needed: Sequence[str], source: Source) -> None:
    """One-line error naming the columns ``df`` lacks and those it has."""
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise LpmInputError(
            source,
            f"missing column(s) {', '.join(missing)}; found {', '.join(df.columns) or 'none'}",
        )


def conform(df: pl.DataFrame, source: Source) -> pl.DataFrame:
    """Check and cast a long table to the store schema; raise one-line errors naming the column."""
    require_columns(df, S.REQUIRED_COLUMNS, source)
    extra = [c for c in df.columns if c not in STORE_TYPES]
    if extra:
        raise LpmInputError(
            source,
            f"unexpected column(s) {', '.join(extra)}; store columns are {', '.join(STORE_TYPES)}",
        )
    try:
        df = df.select([pl.col(c).cast(STORE_TYPES[c]) for c in STORE_TYPES if c in df.columns])
    except (pl.exceptions.InvalidOperationError, pl.exceptions.ComputeError) as exc:
        raise LpmInputError(source, f"column has the wrong type: {first_line(exc)}") from None
    return df


def validate_measurements(df: pl.DataFrame, source: Source = None) -> pl.DataFrame:
    """Return ``df`` in store schema and key order, or raise naming the first problem found.

    Checks: required columns, nulls in keys, NaN/inf values, malformed perturbation symbols,
    unknown readout types, per-member doses/times (:func:`lpm.data.members.check`) and
    duplicate measurement keys. Member columns without a value are dropped.
    """
    df = members.drop_empty(conform(df, source))
    if df.height == 0:
        raise LpmInputError(source, "no measurements (0 rows)")
    for col in (*S.KEY_COLUMNS, S.VALUE):
        n_null = df[col].null_count()
        if n_null:
            raise LpmInputError(source, f"column {col!r} has {n_null} empty value(s)")
    require_finite_values(df, source)
    for symbol in df[S.PERTURBATION].unique().to_list():
        try:
            parse(symbol)
        except LpmInputError as exc:
            raise LpmInputError(source, f"column 'perturbation': {exc.problem}") from None
    _check_readout_types(df, source)
    members.check(df, source)
    df = sorted_rows(df)
    require_unique_keys(df, source, presorted=True)
    return df


def _check_readout_types(df: pl.DataFrame, source: Source) -> None:
    if S.READOUT_TYPE not in df.columns:
        return
    kinds = set(df[S.READOUT_TYPE].drop_nulls().unique().to_list()) - set(S.READOUT_TYPES)
    if kinds:
        raise LpmInputError(
            source,
            f"column 'readout_type' has unknown type(s) {sorted(kinds)}; expected {list(S.READOUT_TYPES)}",
        )
    binary = df.filter((pl.col(S.READOUT_TYPE) == S.BINARY) & ~pl.col(S.VALUE).is_in([0.0, 1.0]))
    if binary.height:
        raise LpmInputError(source, f"{binary.height} binary readout value(s) are not 0 or 1")


def sorted_rows(df: pl.DataFrame) -> pl.DataFrame:
    """Rows in key order, so the same content always gives the same bytes."""
    key = [c for c in UNIQUE_KEY if c in df.columns]
    return df.sort(key, nulls_last=True, maintain_order=True)


def conform_controls(controls: pl.DataFrame, source: Source) -> pl.DataFrame:
    """Each context's control profile (``context, readout, value[, n_cells]``) in store types."""
    need = (S.CONTEXT, S.READOUT, S.VALUE)
    missing = [c for c in need if c not in controls.columns]
    if missing:
        raise LpmInputError(source, f"control table misses column(s) {', '.join(missing)}")
    cols = [c for c in (*need, S.N_CELLS) if c in controls.columns]
    df = controls.select([pl.col(c).cast(STORE_TYPES[c]) for c in cols])
    if df.filter(~pl.col(S.VALUE).is_finite()).height:
        raise LpmInputError(source, "control profile has NaN/inf values")
    return df.sort([S.CONTEXT, S.READOUT])
