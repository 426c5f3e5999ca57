"""Long rows → profiles: the one place where measurements become one value per (profile, readout).

Models of combinations and graph networks reason over a perturbation's whole readout vector,
tasks compare perturbations by their profiles, and AnnData holds a profile per observation; all
of them pivot here. A *profile* is one combination of the ``by`` columns (by default a
perturbation in a context); rows that share a profile and a readout (replicates, and doses or
times when ``by`` leaves them out) are averaged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl

from lpm.data import schema as S

CONDITION = (S.CONTEXT, S.PERTURBATION)


def mean_values(rows: pl.DataFrame, *, by: Sequence[str] = CONDITION) -> pl.DataFrame:
    """One mean value per profile and readout, as long rows ``*by, readout, value`` (float64),
    in the order profiles and readouts are first seen.

    Example
    -------
    >>> rows = pl.DataFrame({"context": ["a", "a", "a"], "perturbation": ["p", "p", "p"],
    ...                      "readout": ["g1", "g1", "g2"], "value": [1.0, 3.0, 5.0]})
    >>> mean_values(rows).rows()
    [('a', 'p', 'g1', 2.0), ('a', 'p', 'g2', 5.0)]
    """
    keys = list(by)
    return (
        rows.select(
            *(
                pl.col(c).cast(pl.String) if c in (S.CONTEXT, S.PERTURBATION) else pl.col(c)
                for c in keys
            ),
            pl.col(S.READOUT).cast(pl.String),
            pl.col(S.VALUE).cast(pl.Float64),
        )
        .group_by(*keys, S.READOUT, maintain_order=True)
        .agg(pl.col(S.VALUE).mean())
    )


def profiles(
    rows: pl.DataFrame,
    readouts: Sequence[str] | None = None,
    *,
    by: Sequence[str] = CONDITION,
    sort: bool = False,
) -> tuple[pl.DataFrame, np.ndarray]:
    """Profiles × readouts of mean values (NaN = not measured).

    Parameters
    ----------
    rows
        Long rows with the ``by`` columns, ``readout`` and ``value``.
    readouts
        The matrix's columns, in this order (rows of other readouts are left out); default every
        readout of ``rows``, sorted.
    by
        The columns that name a profile.
    sort
        Profiles sorted by their keys (nulls last) instead of in first-seen order.

    Returns
    -------
    The profiles' keys (a table of the ``by`` columns, in the matrix's row order) and the matrix.
    """
    keys_cols = list(by)
    if readouts is None:  # every readout: nothing to leave out
        readouts = sorted(rows[S.READOUT].cast(pl.String).unique().to_list())
    else:
        rows = rows.filter(pl.col(S.READOUT).cast(pl.String).is_in(list(readouts)))
    r_index = {r: i for i, r in enumerate(readouts)}
    mean = mean_values(rows, by=by)
    keys = mean.select(keys_cols).unique(maintain_order=True)
    if sort:
        keys = keys.sort(keys_cols, nulls_last=True)
    row_of = keys.with_row_index("_profile_row")
    joined = mean.join(row_of, on=keys_cols, how="left", nulls_equal=True, maintain_order="left")
    out = np.full((keys.height, len(readouts)), np.nan, dtype=np.float64)
    col_idx = mean[S.READOUT].replace_strict(r_index, return_dtype=pl.Int64).to_numpy()
    col_idx = col_idx.astype(np.int64, copy=False)  # no readouts: polars returns the input
    out[joined["_profile_row"].to_numpy().astype(np.int64), col_idx] = mean[S.VALUE].to_numpy()
    return keys, out


def profile_matrix(
    rows: pl.DataFrame, readouts: Sequence[str] | None = None, *, by: Sequence[str] = CONDITION
) -> tuple[list[tuple[Any, ...]], np.ndarray]:
    """:func:`profiles` with the keys as tuples in first-seen order, for models that index them.

    Example
    -------
    >>> rows = pl.DataFrame({"context": ["a", "a", "b"], "perturbation": ["p", "p", "p"],
    ...                      "readout": ["g2", "g1", "g1"], "value": [1.0, 2.0, 3.0]})
    >>> keys, x = profile_matrix(rows)
    >>> keys, x.tolist()
    ([('a', 'p'), ('b', 'p')], [[2.0, 1.0], [3.0, nan]])
    """
    keys, out = profiles(rows, readouts, by=by)
    return list(keys.iter_rows()), out


def row_positions(
    rows: pl.DataFrame, keys: Sequence[tuple[str, str]], readouts: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    """For each row, the index of its (context, perturbation) in ``keys`` and of its readout (-1 absent)."""
    k_index = {k: i for i, k in enumerate(keys)}
    r_index = {r: i for i, r in enumerate(readouts)}
    ctx = rows[S.CONTEXT].cast(pl.String).to_list()
    pert = rows[S.PERTURBATION].cast(pl.String).to_list()
    cond = np.array([k_index.get(k, -1) for k in zip(ctx, pert, strict=True)], dtype=np.int64)
    read = np.array(
        [r_index.get(r, -1) for r in rows[S.READOUT].cast(pl.String).to_list()], dtype=np.int64
    )
    return cond, read
