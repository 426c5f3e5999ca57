"""``lpm predict`` as a run: symbol columns are text whatever they look like, the output is
checked before any work and replaced only with --overwrite, and the columns follow what the
model can do (a spread, a fallback flag)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from lpm.data.store import write_store
from lpm.errors import LpmInputError
from lpm.models.registry import get_model
from lpm.runs.predict import predict_table, predict_to_file, read_rows
from tests.conftest import boring_rows, error_line, lpm


def _numeric_rows() -> pl.DataFrame:
    """Symbols that look like numbers: contexts 1, 2 and readouts 3, 4."""
    return pl.DataFrame(
        {
            "context": ["1", "1", "2", "2", "1", "1", "2", "2"],
            "perturbation": ["CRISPRi:7"] * 4 + ["CRISPRi:8"] * 4,
            "readout": ["3", "4"] * 4,
            "value": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8],
        }
    )


def test_symbols_that_look_like_numbers_are_read_as_text(tmp_path: Path) -> None:
    _numeric_rows().write_csv(tmp_path / "q.csv")
    rows = read_rows(tmp_path / "q.csv")
    assert all(rows[c].dtype == pl.String for c in ("context", "perturbation", "readout"))
    assert rows["value"].dtype == pl.Float64
    _numeric_rows().with_columns(pl.col("context").cast(pl.Int64)).write_parquet(
        tmp_path / "q.parquet"
    )
    assert read_rows(tmp_path / "q.parquet")["context"].dtype == pl.String


def test_predict_with_numeric_looking_ids_from_the_cli(tmp_path: Path) -> None:
    write_store(_numeric_rows(), tmp_path / "s")
    assert lpm("train", "--store", str(tmp_path / "s"), "--model", "perturbation_mean",
               "--out", str(tmp_path / "m")).returncode == 0  # fmt: skip
    _numeric_rows().filter(pl.col("context") == "2").write_csv(tmp_path / "q.csv")
    proc = lpm("predict", "--model", str(tmp_path / "m"), "--rows", str(tmp_path / "q.csv"),
               "--out", str(tmp_path / "p.parquet"))  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    pred = pl.read_parquet(tmp_path / "p.parquet")
    assert pred["context"].to_list() == ["2"] * 4
    np.testing.assert_allclose(
        pred["prediction"].to_numpy(), [0.2, 0.3, 0.6, 0.7], rtol=1e-6
    )  # both contexts


@pytest.fixture
def fitted(tmp_path: Path) -> Path:
    get_model("perturbation_mean").fit(boring_rows()).save(tmp_path / "m")
    boring_rows().head(12).write_parquet(tmp_path / "q.parquet")
    return tmp_path / "m"


def test_an_existing_output_is_refused_before_any_work(fitted: Path, tmp_path: Path) -> None:
    out = tmp_path / "p.parquet"
    out.write_text("mine")
    with pytest.raises(LpmInputError, match="already exists"):
        predict_to_file(tmp_path / "no-model", out=out, rows=tmp_path / "q.parquet")
    assert out.read_text() == "mine"
    result = predict_to_file(fitted, out=out, rows=tmp_path / "q.parquet", overwrite=True)
    assert pl.read_parquet(out).equals(result)


def test_cli_predict_refuses_an_existing_output_without_overwrite(
    fitted: Path, tmp_path: Path
) -> None:
    out = tmp_path / "p.parquet"
    args = [
        "predict",
        "--model",
        str(fitted),
        "--rows",
        str(tmp_path / "q.parquet"),
        "--out",
        str(out),
    ]
    assert lpm(*args).returncode == 0
    again = lpm(*args)
    assert again.returncode == 2 and "already exists (pass --overwrite" in error_line(again)
    assert lpm(*args, "--overwrite").returncode == 0


def test_an_output_of_another_kind_is_refused(fitted: Path, tmp_path: Path) -> None:
    with pytest.raises(LpmInputError, match=r"must end in .parquet or .h5ad"):
        predict_to_file(fitted, out=tmp_path / "p.csv", rows=tmp_path / "q.parquet")
    with pytest.raises(LpmInputError, match="exactly one of --rows or --store"):
        predict_to_file(fitted, out=tmp_path / "p.parquet")


def test_columns_follow_what_the_model_can_do() -> None:
    rows = boring_rows()
    plain = predict_table(get_model("perturbation_mean").fit(rows), rows)
    assert "prediction" in plain.columns and not {"prediction_sd", "fallback"} & set(plain.columns)
    peper = predict_table(
        get_model("peper", epochs=2).fit(rows),
        rows.filter(pl.col("perturbation").str.contains("+", literal=True)),
    )
    assert peper["fallback"].dtype == pl.Boolean
