"""The store: round trips, streaming by row group, AnnData conversion, and refusing bad tables."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from lpm.data.convert import from_anndata, to_anndata
from lpm.data.store import merge_stores, open_store, write_store
from lpm.errors import LpmInputError


def _only_inputs_left(folder: Path, expected: set[str]) -> None:
    assert {p.name for p in folder.iterdir()} == expected


def test_round_trip_is_sorted_and_hashed(toy_rows: pl.DataFrame, tmp_path: Path) -> None:
    store = write_store(toy_rows.sample(fraction=1.0, shuffle=True, seed=1), tmp_path / "s")
    again = write_store(toy_rows, tmp_path / "t")
    assert store.meta.content_hash == again.meta.content_hash
    back = store.read()
    assert back.height == toy_rows.height
    assert back.select("context", "perturbation", "readout").is_duplicated().sum() == 0
    assert store.contexts == ["toy/A", "toy/B", "toy/C"]


def test_streams_in_row_groups(toy_rows: pl.DataFrame, tmp_path: Path) -> None:
    store = write_store(toy_rows, tmp_path / "s", row_group_size=50)
    batches = list(store.iter_batches(columns=["value"]))
    assert len(batches) == store.n_row_groups == math.ceil(toy_rows.height / 50)
    assert sum(b.num_rows for b in batches) == toy_rows.height


def test_anndata_round_trip(toy_rows: pl.DataFrame) -> None:
    adata = to_anndata(toy_rows)
    assert adata.shape == (24, 12)
    back = from_anndata(adata).sort("context", "perturbation", "readout")
    expected = toy_rows.sort("context", "perturbation", "readout")
    np.testing.assert_allclose(back["value"].to_numpy(), expected["value"].to_numpy(), rtol=1e-6)
    assert back["perturbation"].to_list() == expected["perturbation"].to_list()


def test_merge_keeps_contexts_apart(toy_rows: pl.DataFrame, tmp_path: Path) -> None:
    a = write_store(toy_rows, tmp_path / "a")
    b = write_store(
        toy_rows.with_columns(pl.col("context").str.replace("toy/", "other/")), tmp_path / "b"
    )
    joint = merge_stores([a, b], tmp_path / "joint")
    assert joint.n_rows == 2 * toy_rows.height
    assert len(joint.contexts) == 6


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda df: df.drop("readout"), "missing column(s) readout"),
        (lambda df: df.rename({"value": "val"}), "missing column(s) value"),
        (
            lambda df: df.with_columns(
                pl.when(pl.int_range(pl.len()) == 3)
                .then(float("nan"))
                .otherwise(pl.col("value"))
                .alias("value")
            ),
            "NaN/inf",
        ),
        (
            lambda df: df.with_columns(
                pl.when(pl.int_range(pl.len()) == 0)
                .then(float("inf"))
                .otherwise(pl.col("value"))
                .alias("value")
            ),
            "NaN/inf",
        ),
        (lambda df: pl.concat([df, df.head(2)]), "duplicate (context, perturbation, readout) key"),
        (
            lambda df: df.with_columns(pl.lit("MAPK1").alias("perturbation")),
            "malformed perturbation symbol",
        ),
        (lambda df: df.with_columns(pl.lit("weird").alias("readout_type")), "unknown type"),
        (lambda df: df.with_columns(pl.lit("x").alias("extra")), "unexpected column(s) extra"),
    ],
)
def test_bad_tables_give_one_line_errors_and_write_nothing(
    toy_rows: pl.DataFrame, tmp_path: Path, mutate, message: str
) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(LpmInputError) as err:
        write_store(mutate(toy_rows), tmp_path / "s", source="in.csv")
    text = str(err.value)
    assert message in text
    assert text.startswith("in.csv: ")
    assert "\n" not in text
    _only_inputs_left(tmp_path, set())


def test_existing_store_is_not_overwritten_silently(toy_rows: pl.DataFrame, tmp_path: Path) -> None:
    write_store(toy_rows, tmp_path / "s")
    with pytest.raises(LpmInputError, match="already exists"):
        write_store(toy_rows, tmp_path / "s")
    write_store(toy_rows.head(10), tmp_path / "s", overwrite=True)
    assert open_store(tmp_path / "s").n_rows == 10
    _only_inputs_left(tmp_path, {"s"})


def test_corrupt_store_file_is_named(toy_rows: pl.DataFrame, tmp_path: Path) -> None:
    store = write_store(toy_rows, tmp_path / "s")
    (store.path / "measurements.parquet").write_bytes(b"PAR1 truncated")
    with pytest.raises(LpmInputError, match=r"measurements.parquet: corrupt Parquet file"):
        open_store(tmp_path / "s")
    with pytest.raises(LpmInputError, match="not an lpm store"):
        open_store(tmp_path)
