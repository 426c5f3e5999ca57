"""Small tables keyed by symbols: symbol columns always text, one-line errors naming the file."""

from __future__ import annotations

import doctest
from pathlib import Path

import polars as pl
import pytest

import lpm.data.io.symbol_tables as symbol_tables
from lpm.data.io.symbol_tables import (
    as_text,
    read_embedding_table,
    read_symbol_table,
    read_text_table,
)
from lpm.errors import LpmInputError


def test_csv_and_tsv_symbol_columns_by_name_or_position_stay_text(tmp_path: Path) -> None:
    csv = tmp_path / "t.csv"
    csv.write_text("source,target,weight\n007,1e3,0.5\n2,3,1\n")
    table = read_symbol_table(csv, "edges", symbols=("source", "target", "absent"))
    assert table["source"].to_list() == ["007", "2"] and table["target"].to_list() == ["1e3", "3"]
    assert table.schema["weight"] == pl.Float64  # other columns keep their inferred types
    tsv = tmp_path / "t.tsv"
    tsv.write_text("id\tvalue\n01\t2\n")
    assert read_symbol_table(tsv, "table")["id"].to_list() == ["01"]  # first column by default


def test_parquet_symbol_columns_text_or_integers_never_floats(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    pl.DataFrame({"symbol": [7, 12], "x": [1.0, 2.0]}).write_parquet(path)
    assert read_symbol_table(path, "table")["symbol"].to_list() == ["7", "12"]
    pl.DataFrame({"symbol": [7.0], "x": [1.0]}).write_parquet(path)
    with pytest.raises(LpmInputError, match="column 'symbol' holds Float64 values, not text"):
        read_symbol_table(path, "table")
    cat = pl.Series("s", ["a", "b"], dtype=pl.Categorical)
    assert as_text(cat, None).dtype == pl.String


def test_missing_and_unreadable_tables_are_named(tmp_path: Path) -> None:
    with pytest.raises(LpmInputError, match=r"strength table not found \(hint\)"):
        read_symbol_table(tmp_path / "none.csv", "strength table", hint=" (hint)")
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"not parquet")
    with pytest.raises(LpmInputError, match="cannot read table"):
        read_symbol_table(bad, "table")
    with pytest.raises(LpmInputError, match="no such gene info file"):
        read_text_table(tmp_path / "none.tsv", "gene info")


def test_read_text_table_reads_every_cell_as_text(tmp_path: Path) -> None:
    path = tmp_path / "t.tsv"
    path.write_text("symbol\tgo_id\n007\t0001\n")
    assert read_text_table(path, "gene→GO table").rows() == [("007", "0001")]


def test_embedding_tables_need_unique_symbols_and_finite_numbers(tmp_path: Path) -> None:
    path = tmp_path / "e.csv"
    path.write_text("symbol,a,b\n007,1,2\n2,3,4\n")
    assert read_embedding_table(path)["symbol"].to_list() == ["007", "2"]
    for text, message in (
        ("symbol,a\nA,1\nA,2\n", "duplicate or empty symbols"),
        ("symbol,a\nA,1\nB,inf\n", "NaN/inf"),
        ("symbol,a\nA,x\n", "every column after the first must be numbers"),
        ("symbol\nA\n", "at least one number column"),
    ):
        path.write_text(text)
        with pytest.raises(LpmInputError, match=message):
            read_embedding_table(path)


def test_docstring_examples_run() -> None:
    result = doctest.testmod(symbol_tables, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
