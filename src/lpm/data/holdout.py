"""A seeded share of whole profiles held out of a table (for early stopping, or a test set)."""

from __future__ import annotations

import numpy as np
import polars as pl

from lpm.data import schema as S


def carve_validation(
    rows: pl.DataFrame, *, fraction: float, seed: int
) -> tuple[pl.DataFrame, pl.DataFrame | None]:
    """Hold out a seeded share of whole profiles for early stopping (none if that leaves no training)."""
    keys = [c for c in S.condition_columns(rows.columns) if c != S.REPLICATE]
    profiles = rows.select(keys).unique().sort(keys, nulls_last=True)
    n_val = round(fraction * profiles.height)
    if n_val == 0 or n_val >= profiles.height:
        return rows, None
    pick = np.random.default_rng([seed, 7]).choice(profiles.height, size=n_val, replace=False)
    held = profiles[np.sort(pick)]
    val = rows.join(held, on=keys, how="semi", nulls_equal=True)
    return rows.join(held, on=keys, how="anti", nulls_equal=True), val
