"""The checks every long table passes before it becomes a store, each one line naming the first
place a problem was found."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from lpm.data.validate import (
    conform,
    conform_controls,
    require_columns,
    require_finite,
    require_finite_values,
    require_unique_keys,
    sorted_rows,
    validate_measurements,
)
from lpm.errors import LpmInputError

ROWS = pl.DataFrame(
    {
        "context": ["a", "a", "b"],
        "perturbation": ["CRISPRi:X", "CRISPRi:Y", "CRISPRi:X"],
        "readout": ["g", "g", "g"],
        "value": [1.0, 2.0, 3.0],
    }
)


def test_require_finite_names_the_count_and_the_first_place() -> None:
    matrix = np.array([[0.0, np.nan], [np.inf, 1.0]])
    with pytest.raises(LpmInputError) as err:
        require_finite(matrix, "m.gct", what="matrix", where=lambda ij: f"row {ij[0]}, col {ij[1]}")
    assert str(err.value) == "m.gct: matrix has 2 NaN/inf value(s), first at row 0, col 1"
    require_finite(np.zeros((2, 2)), "m.gct", what="matrix", where=str)


def test_require_finite_values_counts_missing_values_too() -> None:
    bad = ROWS.with_columns(pl.Series("value", [1.0, None, float("nan")]))
    with pytest.raises(LpmInputError) as err:
        require_finite_values(bad, "t.csv")
    assert str(err.value) == (
        "t.csv: column 'value' has 2 NaN/inf value(s), first at context='a' "
        "perturbation='CRISPRi:Y' readout='g'"
    )


def test_require_unique_keys_counts_repeats_and_names_the_first_in_key_order() -> None:
    rows = pl.concat([ROWS, ROWS.slice(2, 1), ROWS.slice(0, 1)])
    with pytest.raises(LpmInputError) as err:
        require_unique_keys(rows, "t.csv", origin="(after typing)")
    assert str(err.value) == (
        "t.csv: 2 duplicate (context, perturbation, readout) key(s) (after typing), first: "
        "context='a', perturbation='CRISPRi:X', readout='g'"
    )
    require_unique_keys(ROWS, "t.csv")


def test_require_columns_and_conform() -> None:
    with pytest.raises(LpmInputError, match=r"missing column\(s\) value; found context, readout"):
        require_columns(ROWS.select("context", "readout"), ["context", "value"], "t.csv")
    with pytest.raises(LpmInputError, match="unexpected column"):
        conform(ROWS.with_columns(pl.lit(1).alias("extra")), "t.csv")
    assert conform(ROWS, None).schema["value"] == pl.Float32


def test_validate_measurements_sorts_and_refuses_what_a_store_cannot_hold() -> None:
    out = validate_measurements(ROWS.reverse())
    assert out.equals(sorted_rows(conform(ROWS, None)))
    with pytest.raises(LpmInputError, match="0 rows"):
        validate_measurements(ROWS.clear())
    with pytest.raises(LpmInputError, match="malformed perturbation symbol"):
        validate_measurements(ROWS.with_columns(pl.lit("X").alias("perturbation")))
    binary = ROWS.with_columns(pl.lit("binary").alias("readout_type"))
    with pytest.raises(LpmInputError, match="2 binary readout value"):
        validate_measurements(binary)
    with pytest.raises(LpmInputError, match=r"unknown type\(s\) \['odd'\]"):
        validate_measurements(ROWS.with_columns(pl.lit("odd").alias("readout_type")))


def test_conform_controls() -> None:
    controls = conform_controls(ROWS.select("context", "readout", "value").reverse(), "c")
    assert controls["context"].to_list() == ["a", "a", "b"]
    with pytest.raises(LpmInputError, match="control table misses column"):
        conform_controls(ROWS.select("context", "value"), "c")
    with pytest.raises(LpmInputError, match="NaN/inf"):
        conform_controls(ROWS.with_columns(pl.lit(float("inf")).alias("value")), "c")
