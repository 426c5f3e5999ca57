"""Long rows ↔ dense (context, perturbation) × readout profiles, for models that see whole profiles.

Models of combinations and graph networks reason over a perturbation's whole readout vector,
not single rows; replicates (and doses, which genetic perturbations do not have) are averaged.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl

from lpm.data import schema as S

CONDITION = (S.CONTEXT, S.PERTURBATION)


def profile_matrix(
    rows: pl.DataFrame, readouts: Sequence[str]
) -> tuple[list[tuple[str, str]], np.ndarray]:
    """Unique (context, perturbation) in first-seen order and their mean values (NaN = unmeasured)."""
    r_index = {r: i for i, r in enumerate(readouts)}
    mean = (
        rows.select(
            pl.col(S.CONTEXT).cast(pl.String),
            pl.col(S.PERTURBATION).cast(pl.String),
            pl.col(S.READOUT).cast(pl.String),
            pl.col(S.VALUE).cast(pl.Float64),
        )
        .filter(pl.col(S.READOUT).is_in(list(readouts)))
        .group_by(*CONDITION, S.READOUT, maintain_order=True)
        .agg(pl.col(S.VALUE).mean())
    )
    conds = mean.select(CONDITION).unique(maintain_order=True)
    keys = [(c, p) for c, p in conds.iter_rows()]
    c_index = {k: i for i, k in enumerate(keys)}
    out = np.full((len(keys), len(readouts)), np.nan, dtype=np.float64)
    row_idx = np.fromiter(
        (c_index[(c, p)] for c, p in zip(mean[S.CONTEXT], mean[S.PERTURBATION], strict=True)),
        np.int64,
        mean.height,
    )
    col_idx = np.fromiter((r_index[r] for r in mean[S.READOUT]), np.int64, mean.height)
    out[row_idx, col_idx] = mean[S.VALUE].to_numpy()
    return keys, out


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
