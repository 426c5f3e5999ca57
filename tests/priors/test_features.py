"""Feature sources of the featurised LPM: a table file's symbols are text, keywords by name."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lpm.errors import LpmInputError
from lpm.priors.features import FeatureSource, parse_sources


def test_a_table_file_looks_symbols_up_as_written_then_by_target(tmp_path: Path) -> None:
    path = tmp_path / "features.csv"
    path.write_text("symbol,a,b\n007,1.0,2.0\nCRISPRi:2,3.0,4.0\n")
    source = FeatureSource.of(str(path), "member")
    values, found = source.vectors(["CRISPRi:007", "CRISPRi:2", "CRISPRi:7", "control"])
    assert found.tolist() == [True, True, False, False]  # '007' stays '007', never 7
    np.testing.assert_array_equal(values[:2], [[1.0, 2.0], [3.0, 4.0]])
    assert source.width() == 2


def test_a_table_file_with_repeated_symbols_or_non_numbers_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "features.csv"
    path.write_text("symbol,a\nA,1.0\nA,2.0\n")
    with pytest.raises(LpmInputError, match="duplicate or empty symbols"):
        FeatureSource.of(str(path), "member").width()
    path.write_text("symbol,a\nB,1.0\nC,nan\n")
    with pytest.raises(LpmInputError, match="NaN/inf"):
        FeatureSource.of(str(path), "context").width()


def test_sources_parse_and_unknown_files_are_named(tmp_path: Path) -> None:
    assert parse_sources("go, x.parquet,") == ["go", "x.parquet"]
    assert parse_sources(None) == []
    with pytest.raises(LpmInputError, match="feature table not found"):
        FeatureSource.of(str(tmp_path / "none.parquet"), "member")
    with pytest.raises(LpmInputError, match="no features for contexts"):
        FeatureSource.of("go", "context")
