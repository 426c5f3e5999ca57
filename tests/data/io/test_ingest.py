"""``ingest``: the format from the file name, one store from several sources, provenance, and the
output checked before any source is read."""

from __future__ import annotations

import sys
from pathlib import Path

import polars as pl
import pytest

from lpm.data.hashing import file_sha256
from lpm.data.io.base import IngestOptions
from lpm.data.io.ingest import detect_format, ingest, read_source
from lpm.data.store import write_store
from lpm.errors import LpmInputError


@pytest.mark.parametrize(
    ("name", "fmt"),
    [("a.gctx", "gctx"), ("a.gct.gz", "gct"), ("A.H5AD", "h5ad"), ("a.npz", "npz"),
     ("a.parquet", "table"), ("a.tsv.gz", "table"), ("a.txt", "table")],
)  # fmt: skip
def test_detect_format_by_name(tmp_path: Path, name: str, fmt: str) -> None:
    (tmp_path / name).write_bytes(b"")
    assert detect_format(tmp_path / name) == fmt


def test_detect_format_errors(toy_rows: pl.DataFrame, tmp_path: Path) -> None:
    assert detect_format(write_store(toy_rows, tmp_path / "s").path) == "store"
    with pytest.raises(LpmInputError, match="not an lpm store"):
        detect_format(tmp_path)
    with pytest.raises(LpmInputError, match="no such file"):
        detect_format(tmp_path / "none.csv")
    (tmp_path / "a.xlsx").write_bytes(b"")
    with pytest.raises(LpmInputError, match="unknown file format"):
        detect_format(tmp_path / "a.xlsx")


def test_sources_join_with_provenance_and_options(toy_rows: pl.DataFrame, tmp_path: Path) -> None:
    first, second = tmp_path / "a.parquet", tmp_path / "b.parquet"
    toy_rows.filter(pl.col("context") == "toy/A").write_parquet(first)
    toy_rows.filter(pl.col("context") != "toy/A").write_parquet(second)
    store = ingest([first, second], tmp_path / "s", options=IngestOptions(dataset="toy"))
    assert store.n_rows == toy_rows.height
    assert [s["digest"] for s in store.meta.sources] == [
        f"sha256:{file_sha256(first)}",
        f"sha256:{file_sha256(second)}",
    ]
    assert store.meta.notes["ingest_options"] == {"dataset": "toy"}
    again = read_source(store.path, IngestOptions())
    assert again.source["format"] == "store" and again.measurements.height == toy_rows.height


def test_the_output_is_checked_before_any_source_is_read(
    toy_rows: pl.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "s"
    out.mkdir()

    def no_read(*args: object) -> None:
        raise AssertionError("a source was read before the output was checked")

    # the package re-exports the function ``ingest``, which hides the module of that name
    monkeypatch.setattr(sys.modules["lpm.data.io.ingest"], "read_source", no_read)
    with pytest.raises(LpmInputError, match=r"already exists \(pass --overwrite"):
        ingest([tmp_path / "a.parquet"], out)
    with pytest.raises(LpmInputError, match="no source files"):
        ingest([], tmp_path / "t")


def test_layout_option_is_checked(toy_rows: pl.DataFrame, tmp_path: Path) -> None:
    toy_rows.write_parquet(tmp_path / "a.parquet")
    with pytest.raises(LpmInputError, match="unknown --layout 'sideways'"):
        read_source(tmp_path / "a.parquet", IngestOptions(layout="sideways"))
