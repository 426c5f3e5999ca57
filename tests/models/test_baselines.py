"""Baselines: at a held-out dose they pool the compound's measured doses; Salt sums measured
singles and refuses missing ones."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from lpm.errors import UnknownSymbolError
from lpm.models.registry import get_model, load_model
from tests.models.worlds import held_out, pairs_world


def _dosed_rows() -> pl.DataFrame:
    """One context, a compound at three doses and a knock-down (no dose), two readouts."""
    records = [
        ("lincs/A375", "compound:x", dose, r, value)
        for dose, values in ((0.1, (1.0, 2.0)), (1.0, (3.0, 4.0)), (10.0, (5.0, 9.0)))
        for r, value in zip(("R0", "R1"), values, strict=True)
    ] + [("lincs/A375", "CRISPRi:G", None, r, v) for r, v in (("R0", 7.0), ("R1", 8.0))]
    return pl.DataFrame(
        records,
        schema={
            "context": pl.String,
            "perturbation": pl.String,
            "dose": pl.Float64,
            "readout": pl.String,
            "value": pl.Float64,
        },
        orient="row",
    )


def test_a_held_out_dose_gets_the_mean_over_the_measured_doses(tmp_path: Path) -> None:
    rows = _dosed_rows()
    train = rows.filter(pl.col("dose") != 1.0)
    test = rows.filter(pl.col("dose") == 1.0)
    model = get_model("perturbation_mean").fit(train)
    np.testing.assert_allclose(model.predict(test), [3.0, 5.5])  # (1+5)/2, (2+9)/2
    # a measured dose keeps its own mean; a knock-down without dose is unaffected
    np.testing.assert_allclose(model.predict(train.head(2)), [1.0, 2.0])
    reloaded = load_model(model.save(tmp_path / "m"))
    np.testing.assert_allclose(reloaded.predict(test), [3.0, 5.5])
    strict = get_model("perturbation_mean", pool_doses=False).fit(train)
    assert not strict.supported(test).any()


def test_linear_embeds_a_held_out_dose_as_the_mean_of_the_measured_doses() -> None:
    rows = _dosed_rows()
    train = rows.filter(pl.col("dose") != 1.0)
    test = rows.filter(pl.col("dose") == 1.0)
    model = get_model("linear", n_components=2).fit(train)
    assert model.supported(test).all()
    pooled = model.predict(test)
    doses = train.filter(pl.col("perturbation") == "compound:x")
    per_dose = model.predict(doses).reshape(2, 2)  # doses 0.1 and 10, readouts R0 and R1
    np.testing.assert_allclose(pooled, per_dose.mean(0))  # linear in the embedding
    strict = get_model("linear", n_components=2, pool_doses=False).fit(train)
    assert not strict.supported(test).any()


def test_linear_predicts_rows_without_the_dose_column_a_joint_fit_had() -> None:
    """Joint training adds a dose column (from a compound store) to knock-down rows; rows of
    the knock-down store alone, without that column, name the same profiles."""
    rows = _dosed_rows()
    model = get_model("linear", n_components=2).fit(rows)
    knockdown = rows.filter(pl.col("perturbation") == "CRISPRi:G")
    expected = model.predict(knockdown)
    alone = knockdown.drop("dose")
    assert model.supported(alone).all()
    np.testing.assert_allclose(model.predict(alone), expected)


def test_salt_sums_measured_singles_and_refuses_missing_ones() -> None:
    rows, effect = pairs_world()
    doubles = sorted({p for p in rows["perturbation"].to_list() if "+" in p})
    train, test = held_out(rows, doubles[:3])
    salt = get_model("salt").fit(train)
    a, b = doubles[0].split("+")
    one = test.filter((pl.col("perturbation") == doubles[0]) & (pl.col("context") == "toy/A"))
    np.testing.assert_allclose(salt.predict(one), effect[a] + effect[b], atol=0.05)
    train_no_a = train.filter(pl.col("perturbation") != a)
    with pytest.raises(UnknownSymbolError):
        get_model("salt").fit(train_no_a).predict(one)
