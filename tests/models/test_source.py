"""Chunks of long rows: a store streamed in row groups gives up a hashed share of its rows for
early stopping (the same ones in every pass, every perturbation kept in training)."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from lpm.data import schema as S
from lpm.data.store import open_store
from lpm.models.source import RowSource


def test_a_store_holdout_takes_the_same_rows_every_pass_and_keeps_every_perturbation(
    store_path: Path,
) -> None:
    store = open_store(store_path)
    train, val = RowSource(stores=[store]).split_holdout(seed=5, fraction=0.2)
    t1, v1 = pl.concat(list(train)), pl.concat(list(val))
    assert t1.equals(pl.concat(list(train)))
    assert t1.height + v1.height == store.n_rows
    key = [S.CONTEXT, S.PERTURBATION, S.READOUT]
    assert t1.join(v1, on=key, how="semi").height == 0
    assert 0.15 < v1.height / store.n_rows < 0.25  # about the asked share of 3,000 rows
    assert set(v1[S.PERTURBATION]) <= set(t1[S.PERTURBATION])
    _, other = RowSource(stores=[store]).split_holdout(seed=6, fraction=0.2)
    assert not pl.concat(list(other)).equals(v1)
