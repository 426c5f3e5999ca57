"""The nearest-measured-dose baseline: log-dose distance, ties, undosed rows, unknown pairs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from lpm.errors import LpmInputError, UnknownSymbolError
from lpm.models.registry import BASELINES, get_model, load_model

_SCHEMA = {
    "context": pl.String,
    "perturbation": pl.String,
    "dose": pl.Float32,
    "time": pl.Float32,
    "readout": pl.String,
    "value": pl.Float32,
}


def _train() -> pl.DataFrame:
    """Compound x at 0.1, 1 (two replicates) and 100 µM, 24 h; x at 1 µM 6 h; a knock-down."""
    records = [
        ("A", "compound:x", 0.1, 24.0, "R0", 1.0),
        ("A", "compound:x", 0.1, 24.0, "R1", 10.0),
        ("A", "compound:x", 1.0, 24.0, "R0", 2.0),
        ("A", "compound:x", 1.0, 24.0, "R0", 4.0),  # replicate: mean 3
        ("A", "compound:x", 1.0, 24.0, "R1", 30.0),
        ("A", "compound:x", 100.0, 24.0, "R0", 5.0),
        ("A", "compound:x", 100.0, 24.0, "R1", 50.0),
        ("A", "compound:x", 1.0, 6.0, "R0", -7.0),
        ("A", "CRISPRi:G", None, 24.0, "R0", 7.0),
        ("A", "CRISPRi:G", float("nan"), 24.0, "R0", 9.0),
        ("A", "control", None, 24.0, "R0", 0.5),
        ("B", "compound:x", 1.0, 24.0, "R0", 100.0),
    ]
    return pl.DataFrame(records, schema=_SCHEMA, orient="row")


def _query(*rows: tuple[str, str, float | None, float | None, str]) -> pl.DataFrame:
    return pl.DataFrame([(*r, 0.0) for r in rows], schema=_SCHEMA, orient="row").drop("value")


def test_registered_as_a_baseline() -> None:
    assert "nearest_dose" in BASELINES
    assert get_model("nearest_dose").get_params() == {}


def test_nearest_dose_in_log_space() -> None:
    model = get_model("nearest_dose").fit(_train())
    # 20 µM: linearly nearer 1 than 100 (19 vs 80), but in log10 nearer 100 (0.70 vs 1.30)
    # 0.2 µM: log-nearer 0.1 (0.30 vs 0.70); 1000 µM: beyond the range, the top dose
    rows = _query(
        ("A", "compound:x", 20.0, 24.0, "R0"),
        ("A", "compound:x", 20.0, 24.0, "R1"),
        ("A", "compound:x", 0.2, 24.0, "R0"),
        ("A", "compound:x", 1000.0, 24.0, "R1"),
        ("A", "compound:x", 1.0, 24.0, "R0"),  # a measured dose: its replicate mean
        ("A", "compound:x", 50.0, 6.0, "R0"),  # time matched: only 1 µM measured at 6 h
        ("B", "compound:x", 0.001, 24.0, "R0"),  # context matched
    )
    np.testing.assert_allclose(model.predict(rows), [5.0, 50.0, 1.0, 50.0, 3.0, -7.0, 100.0])


def test_a_tie_goes_to_the_lower_dose() -> None:
    model = get_model("nearest_dose").fit(_train())
    # 10 µM is the geometric midpoint of 1 and 100; 0.316.. of 0.1 and 1
    rows = _query(
        ("A", "compound:x", 10.0, 24.0, "R0"),
        ("A", "compound:x", 10.0, 24.0, "R1"),
        ("A", "compound:x", float(np.sqrt(0.1)), 24.0, "R0"),
    )
    np.testing.assert_allclose(model.predict(rows), [3.0, 30.0, 1.0])


def test_undosed_rows_use_the_mean_over_everything() -> None:
    model = get_model("nearest_dose").fit(_train())
    rows = _query(
        ("A", "CRISPRi:G", None, 24.0, "R0"),
        ("A", "CRISPRi:G", float("nan"), 24.0, "R0"),
        ("A", "control", None, None, "R0"),
        ("A", "compound:x", None, 24.0, "R0"),  # no dose: every x row of A, R0
    )
    np.testing.assert_allclose(model.predict(rows), [8.0, 8.0, 0.5, (1 + 2 + 4 + 5 - 7) / 5])
    no_dose_column = rows.drop("dose", "time")
    np.testing.assert_allclose(model.predict(no_dose_column), model.predict(rows))


def test_unknown_pair_is_unsupported_and_raises() -> None:
    model = get_model("nearest_dose").fit(_train())
    never = _query(
        ("B", "CRISPRi:G", None, 24.0, "R0"),  # both known, never together
        ("A", "compound:x", 1.0, 48.0, "R0"),  # a time never measured
    )
    assert not model.supported(never).any()
    with pytest.raises(UnknownSymbolError, match=r"B\|CRISPRi:G"):
        model.predict(never.head(1))
    with pytest.raises(UnknownSymbolError, match="compound:y"):
        model.predict(_query(("A", "compound:y", 1.0, 24.0, "R0")))


def test_non_positive_dose_is_refused() -> None:
    model = get_model("nearest_dose").fit(_train())
    with pytest.raises(LpmInputError, match=r"dose ≤ 0.*log10"):
        model.predict(_query(("A", "compound:x", 0.0, 24.0, "R0")))
    bad = _train().with_columns(pl.col("dose").fill_null(-1.0))
    with pytest.raises(LpmInputError, match="training rows"):
        get_model("nearest_dose").fit(bad)


def test_save_load_round_trip(tmp_path: Path) -> None:
    model = get_model("nearest_dose").fit(_train())
    rows = _query(
        ("A", "compound:x", 20.0, 24.0, "R0"),
        ("A", "compound:x", 10.0, 24.0, "R1"),
        ("A", "CRISPRi:G", None, 24.0, "R0"),
        ("B", "compound:x", 3.0, 24.0, "R0"),
    )
    again = load_model(model.save(tmp_path / "m"))
    assert type(again) is type(model)
    np.testing.assert_array_equal(again.predict(rows), model.predict(rows))
