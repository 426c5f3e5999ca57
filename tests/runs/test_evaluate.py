"""``evaluate_file``: scores a predictions file; its output folder is checked before the work,
refused when it exists, replaced whole with ``overwrite``, never made of a file."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from lpm.data.store import write_store
from lpm.errors import LpmInputError
from lpm.runs.evaluate import evaluate_file


@pytest.fixture
def files(toy_rows: pl.DataFrame, tmp_path: Path) -> tuple[Path, Path]:
    store = write_store(toy_rows, tmp_path / "store").path
    held = toy_rows.filter(pl.col("perturbation") == "CRISPRi:G0")
    pred = tmp_path / "pred.parquet"
    held.with_columns((pl.col("value") * 0.9).alias("prediction")).write_parquet(pred)
    return pred, store


def test_scores_and_writes_three_tables(files: tuple[Path, Path], tmp_path: Path) -> None:
    pred, store = files
    summary = evaluate_file(pred, store=store, out=tmp_path / "ev")
    assert "pearson_delta" in summary["metric"].to_list()
    names = sorted(p.name for p in (tmp_path / "ev").iterdir())
    assert names == ["per_condition.csv", "per_context.csv", "summary.csv"]


def test_an_existing_folder_is_refused_before_reading_and_kept(
    files: tuple[Path, Path], tmp_path: Path
) -> None:
    _, store = files
    out = tmp_path / "ev"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(LpmInputError, match=r"already exists \(pass --overwrite"):
        evaluate_file(tmp_path / "missing.parquet", store=store, out=out)  # checked first
    assert (out / "notes.txt").read_text() == "mine"


def test_overwrite_replaces_whole_and_a_file_stays_a_file(
    files: tuple[Path, Path], tmp_path: Path
) -> None:
    pred, store = files
    out = tmp_path / "ev"
    out.mkdir()
    (out / "notes.txt").write_text("old")
    evaluate_file(pred, store=store, out=out, overwrite=True)
    assert not (out / "notes.txt").exists() and (out / "summary.csv").is_file()
    kept = tmp_path / "kept.txt"
    kept.write_text("a user's file")
    with pytest.raises(LpmInputError, match="is a file; an output folder cannot replace it"):
        evaluate_file(pred, store=store, out=kept, overwrite=True)
    assert kept.read_text() == "a user's file"
