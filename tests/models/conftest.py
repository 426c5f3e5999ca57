"""Fixtures of the model tests: a store of many row groups (profiles straddle them)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from lpm.data import schema as S
from lpm.data.store import write_store


def streamed_rows(seed: int = 3) -> pl.DataFrame:
    """3 contexts × 40 perturbations × 25 readouts of low-rank deltas."""
    rng = np.random.default_rng(seed)
    u, v = rng.normal(size=(40, 2)), rng.normal(size=(2, 25))
    records = [
        (f"toy/{c}", f"CRISPRi:G{i}", f"R{j}", float(x))
        for c in "ABC"
        for i, row in enumerate(u @ v + 0.1 * rng.normal(size=(40, 25)))
        for j, x in enumerate(row)
    ]
    return pl.DataFrame(
        records, schema=[S.CONTEXT, S.PERTURBATION, S.READOUT, S.VALUE], orient="row"
    )


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("holdout") / "store"
    write_store(streamed_rows(), out, row_group_size=700)  # many row groups: profiles straddle them
    return out
