"""precomputed: another tool's predictions looked up by row, refused where the file is wrong."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from lpm.errors import LpmInputError
from lpm.models import get_model
from tests.models.worlds import pairs_world


def test_precomputed_scores_another_tools_rows(tmp_path: Path) -> None:
    rows, _ = pairs_world()
    some = rows.head(60)
    path = tmp_path / "p.parquet"
    pl.concat(
        [
            some.with_columns(pl.lit(0).alias("seed")),
            some.with_columns(pl.lit(1).alias("seed"), pl.col("value") + 1),
        ]
    ).write_parquet(path)
    m0 = get_model("precomputed", path=str(path), seed=0).fit(rows)
    m1 = get_model("precomputed", path=str(path), seed=1).fit(rows)
    np.testing.assert_allclose(m1.predict(some), m0.predict(some) + 1, atol=1e-5)
    assert not m0.supported(rows.tail(5)).any()
    dup = tmp_path / "dup.parquet"
    pl.concat([some, some]).write_parquet(dup)
    with pytest.raises(LpmInputError, match="duplicate"):
        get_model("precomputed", path=str(dup)).fit(rows)
    nan = tmp_path / "nan.parquet"
    some.with_columns(pl.lit(float("nan")).alias("value")).write_parquet(nan)
    with pytest.raises(LpmInputError, match="NaN"):
        get_model("precomputed", path=str(nan)).fit(rows)
    with pytest.raises(LpmInputError, match="not found"):
        get_model("precomputed", path=str(tmp_path / "none.parquet")).fit(rows)
