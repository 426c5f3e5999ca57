"""Long rows → profiles: means over replicates, readout order, sorting, ``by`` columns, and NaN
for a readout a profile was not measured on."""

from __future__ import annotations

import numpy as np
import polars as pl

from lpm.data.profiles import mean_values, profile_matrix, profiles, row_positions

ROWS = pl.DataFrame(
    {
        "context": ["b", "b", "b", "a", "a", "a"],
        "perturbation": ["p", "p", "p", "q", "q", "p"],
        "dose": [1.0, 1.0, 10.0, None, None, None],
        "replicate": [0, 1, 0, 0, 1, 0],
        "readout": ["g2", "g2", "g2", "g1", "g1", "g3"],
        "value": [1.0, 3.0, 5.0, 2.0, 4.0, 7.0],
    }
)


def test_mean_values_average_replicates_and_doses_left_out_of_by() -> None:
    out = mean_values(ROWS)
    assert out.columns == ["context", "perturbation", "readout", "value"]
    assert out.rows() == [("b", "p", "g2", 3.0), ("a", "q", "g1", 3.0), ("a", "p", "g3", 7.0)]
    assert out.schema["value"] == pl.Float64


def test_by_columns_name_the_profile() -> None:
    out = mean_values(ROWS, by=("context", "perturbation", "dose"))
    assert out.filter(pl.col("context") == "b").select("dose", "value").rows() == [
        (1.0, 2.0),
        (10.0, 5.0),
    ]
    keys, x = profiles(ROWS, by=("context", "perturbation", "dose"), sort=True)
    assert keys.rows() == [("a", "p", None), ("a", "q", None), ("b", "p", 1.0), ("b", "p", 10.0)]
    assert x.shape == (4, 3)


def test_profiles_readout_order_first_seen_or_sorted_and_nan_for_unmeasured() -> None:
    keys, x = profiles(ROWS)
    assert keys.rows() == [("b", "p"), ("a", "q"), ("a", "p")]  # first seen
    np.testing.assert_array_equal(
        x, [[np.nan, 3.0, np.nan], [3.0, np.nan, np.nan], [np.nan, np.nan, 7.0]]
    )  # columns: readouts sorted (g1, g2, g3)
    keys, x = profiles(ROWS, ["g3", "g1"], sort=True)
    assert keys.rows() == [("a", "p"), ("a", "q")]  # g2 was asked for by no one: 'b, p' drops
    np.testing.assert_array_equal(x, [[7.0, np.nan], [np.nan, 3.0]])


def test_profile_matrix_keys_are_tuples_in_first_seen_order() -> None:
    keys, x = profile_matrix(ROWS, ["g1", "g2"])
    assert keys == [("b", "p"), ("a", "q")]
    np.testing.assert_array_equal(x, [[np.nan, 3.0], [3.0, np.nan]])


def test_categorical_columns_pivot_as_text() -> None:
    cat = ROWS.with_columns(pl.col("context", "perturbation", "readout").cast(pl.Categorical))
    keys, x = profiles(cat)
    assert keys.schema["context"] == pl.String
    np.testing.assert_array_equal(x, profiles(ROWS)[1])


def test_row_positions_index_keys_and_readouts_with_minus_one_for_absent() -> None:
    cond, read = row_positions(ROWS, [("a", "p"), ("b", "p")], ["g2", "g3"])
    assert cond.tolist() == [1, 1, 1, -1, -1, 0]
    assert read.tolist() == [0, 0, 0, -1, -1, 1]


def test_the_input_is_not_changed() -> None:
    before = ROWS.clone()
    profiles(ROWS, sort=True)
    mean_values(ROWS)
    assert ROWS.equals(before)
