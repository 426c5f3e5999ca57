"""Peper: Salt plus a correction learned on the measured doubles, with a flagged fallback to
Salt where a member was not measured in the context; trained by the shared Lightning engine."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from lpm.errors import UnknownSymbolError
from lpm.models import get_model, load_model
from tests.models.worlds import held_out, pairs_world

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_peper_learns_what_salt_misses() -> None:
    rows, _ = pairs_world()
    doubles = sorted({p for p in rows["perturbation"].to_list() if "+" in p})
    train, test = held_out(rows, doubles[:8])
    y = test["value"].to_numpy()
    salt = get_model("salt").fit(train).predict(test)
    peper = get_model("peper", epochs=150, seed=0).fit(train)
    pred = peper.predict(test)
    assert peper.n_train_doubles_ == 2 * (len(doubles) - 8)
    assert not peper.fallback(test).any()
    assert np.mean((pred - y) ** 2) < 0.25 * np.mean((salt - y) ** 2)


def test_peper_falls_back_to_salt_flagged_when_a_single_is_missing(tmp_path: Path) -> None:
    rows, _ = pairs_world()
    doubles = sorted({p for p in rows["perturbation"].to_list() if "+" in p})
    a = doubles[0].split("+")[0]
    # a measured in toy/B only: in toy/A the double lacks a measured single
    train, test = held_out(rows, [doubles[0]])
    train = train.filter(~((pl.col("perturbation") == a) & (pl.col("context") == "toy/A")))
    plain = get_model("peper", epochs=20).fit(train)
    in_a = test.filter(pl.col("context") == "toy/A")
    in_b = test.filter(pl.col("context") == "toy/B")
    assert not plain.supported(in_a).any() and plain.supported(in_b).all()
    with pytest.raises(UnknownSymbolError):
        plain.predict(in_a)  # never guessed
    backed = get_model("peper", epochs=20, single_model="perturbation_mean").fit(train)
    assert backed.fallback(in_a).all() and not backed.fallback(in_b).any()
    pm = get_model("perturbation_mean").fit(train)
    members = doubles[0].split("+")
    expected = sum(
        pm.predict(in_a.with_columns(pl.lit(m).alias("perturbation"))) if m == a else
        get_model("salt").fit(train).predict(in_a.with_columns(pl.lit(m).alias("perturbation")))
        for m in members
    )  # fmt: skip
    np.testing.assert_allclose(backed.predict(in_a), expected, rtol=1e-5, atol=1e-6)
    backed.save(tmp_path / "m")
    again = load_model(tmp_path / "m")
    np.testing.assert_array_equal(again.predict(in_a), backed.predict(in_a))
    assert again.fallback(in_a).all()


def test_peper_without_training_doubles_is_all_fallback() -> None:
    rows, _ = pairs_world()
    singles_only = rows.filter(~pl.col("perturbation").str.contains("+", literal=True))
    doubles = rows.filter(pl.col("perturbation").str.contains("+", literal=True))
    peper = get_model("peper").fit(singles_only)
    assert peper.n_train_doubles_ == 0
    assert peper.fallback(doubles).all()
    np.testing.assert_allclose(
        peper.predict(doubles), get_model("salt").fit(singles_only).predict(doubles), atol=1e-6
    )
