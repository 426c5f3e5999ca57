"""The two-way part: exact numbers on a hand-computed table, the ``twoway`` baseline (unseen
perturbations unsupported, a save/load round trip) and an LPM that learns its residual."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from lpm.errors import LpmInputError, UnknownSymbolError
from lpm.models.registry import BASELINES, get_model, load_model
from lpm.models.twoway import fit_twoway
from tests.conftest import SMALL_LPM, boring_rows

_SCHEMA = {
    "context": pl.String,
    "perturbation": pl.String,
    "dose": pl.Float64,
    "readout": pl.String,
    "value": pl.Float64,
}


def _table() -> pl.DataFrame:
    """Two contexts, compound x at doses 1 and 2 (only 1 in B), y without dose, controls."""
    records = [
        ("A", "x", 1.0, "R", 4.0),
        ("A", "x", 2.0, "R", 6.0),
        ("A", "y", None, "R", 2.0),
        ("B", "x", 1.0, "R", 10.0),
        ("B", "y", None, "R", 6.0),
        ("A", "control", None, "R", 0.0),
        ("B", "control", None, "R", 1.0),
    ]
    return pl.DataFrame(records, schema=_SCHEMA, orient="row")


def _rows(*records: tuple[str, str, float | None]) -> pl.DataFrame:
    return pl.DataFrame([(c, p, d, "R", 0.0) for c, p, d in records], schema=_SCHEMA, orient="row")


def test_the_closed_form_matches_the_hand_computed_table() -> None:
    # cm[A] = mean(4, 6, 2) = 4, cm[B] = mean(10, 6) = 8 (controls left out);
    # v - cm: A x@1 0, A x@2 2, A y -2, B x@1 2, B y -2, A ctrl -4, B ctrl -7
    # t[x@1] = 1, t[x@2] = 2, t[y] = -2, t[ctrl] = -5.5, t[x pooled] = 4/3
    # residuals -1, 0, 0, 1, 0, 1.5, -1.5: s = sqrt(6.5 / 7)
    tw = fit_twoway(_table())
    rows = _rows(("A", "x", 1.0), ("B", "x", 2.0), ("B", "x", 5.0), ("A", "y", None))
    cm, t, s = tw.parts(rows)
    np.testing.assert_allclose(cm, [4.0, 8.0, 8.0, 4.0])
    np.testing.assert_allclose(t, [1.0, 2.0, 4.0 / 3.0, -2.0])
    np.testing.assert_allclose(s, [math.sqrt(6.5 / 7)] * 4)
    ctrl = tw.parts(_rows(("B", "control", None)))
    np.testing.assert_allclose([ctrl[0][0], ctrl[1][0]], [8.0, -5.5])


def test_an_unseen_perturbation_has_no_effect_unless_the_caller_says_so() -> None:
    tw = fit_twoway(_table())
    assert np.isnan(tw.parts(_rows(("A", "z", None)))[1]).all()
    assert tw.parts(_rows(("A", "z", None)), unseen_zero=True)[1].tolist() == [0.0]


def test_twoway_is_a_baseline_that_predicts_cm_plus_t_and_refuses_unseen(tmp_path: Path) -> None:
    assert "twoway" in BASELINES
    model = get_model("twoway").fit(_table())
    rows = _rows(("B", "x", 2.0), ("A", "y", None))
    np.testing.assert_allclose(model.predict(rows), [10.0, 2.0])
    assert model.supported(_rows(("A", "z", None), ("A", "x", 1.0))).tolist() == [False, True]
    with pytest.raises(UnknownSymbolError, match="z"):
        model.predict(_rows(("A", "z", None)))
    again = load_model(model.save(tmp_path / "m"))
    np.testing.assert_array_equal(again.predict(rows), model.predict(rows))


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


def test_a_binary_readout_has_a_logit_base_and_a_probability_prediction() -> None:
    records = [
        ("A", "x", None, "B", 1.0),
        ("A", "x", None, "B", 1.0),
        ("A", "y", None, "B", 0.0),
        ("A", "y", None, "B", 1.0),
        ("B", "x", None, "B", 1.0),
        ("B", "y", None, "B", 0.0),
    ]
    rows = pl.DataFrame(records, schema=_SCHEMA, orient="row").with_columns(
        pl.lit("binary").alias("readout_type")
    )
    # smoothed logits logit((k + 1/2) / (n + 1)): cm[A] = logit(3.5/5), cm[B] = logit(1.5/3) = 0;
    # groups A x 2.5/3, A y 1.5/3, B x 1.5/2, B y 0.5/2
    t_x = ((_logit(2.5 / 3) - _logit(0.7)) + (_logit(0.75) - 0.0)) / 2
    t_y = ((0.0 - _logit(0.7)) + (_logit(0.25) - 0.0)) / 2
    model = get_model("twoway").fit(rows)
    cm, t, _ = model.twoway_.parts(rows.head(1).vstack(rows.tail(1)))
    np.testing.assert_allclose(cm, [_logit(0.7), 0.0])
    np.testing.assert_allclose(t, [t_x, t_y])
    expected = [1 / (1 + math.exp(-(0.0 + t_x))), 1 / (1 + math.exp(-(_logit(0.7) + t_y)))]
    pred = model.predict(rows.filter(pl.col("context") == "B").head(1).vstack(rows[2:3]))
    np.testing.assert_allclose(pred, expected, rtol=1e-6)
    with pytest.raises(LpmInputError, match="binary"):
        get_model("lpm_fast", **SMALL_LPM, max_epochs=1, base="twoway").fit(rows)


@pytest.mark.parametrize("name", ["lpm", "lpm_fast"])
def test_a_residual_lpm_adds_the_two_way_part_and_round_trips(name: str, tmp_path: Path) -> None:
    rows = boring_rows()
    model = get_model(name, **SMALL_LPM, max_epochs=2, val_fraction=0, base="twoway").fit(rows)
    tw = fit_twoway(rows)
    base = sum(tw.parts(rows)[:2])
    scale = tw.parts(rows)[2]
    plain = get_model(name, **SMALL_LPM, max_epochs=2, val_fraction=0)
    net = (model.predict(rows) - base) / scale  # what the network gave, on the z scale
    assert np.isfinite(net).all() and np.abs(net).max() < 10
    # the two-way part alone fits this shared-structure world: the residual model starts there
    err = float(np.mean((model.predict(rows) - rows["value"].to_numpy()) ** 2))
    err_plain = float(np.mean((plain.fit(rows).predict(rows) - rows["value"].to_numpy()) ** 2))
    assert err < err_plain
    again = load_model(model.save(tmp_path / "m"))
    assert again.twoway_ is not None
    np.testing.assert_array_equal(again.predict(rows), model.predict(rows))


def test_a_residual_lpm_leaves_an_unseen_perturbation_unsupported() -> None:
    rows = boring_rows()
    train = rows.filter(pl.col("perturbation") != "CRISPRi:G5")
    model = get_model("lpm_fast", **SMALL_LPM, max_epochs=1, val_fraction=0, base="twoway")
    model.fit(train)
    assert not model.supported(rows.filter(pl.col("perturbation") == "CRISPRi:G5")).any()


def test_a_featurised_residual_lpm_predicts_an_unseen_perturbation_from_the_context_base(
    tmp_path: Path,
) -> None:
    rows = boring_rows()
    held = pl.col("perturbation") == "CRISPRi:G5"
    feats = pl.DataFrame(
        {"symbol": [f"G{i}" for i in range(6)], "f0": np.arange(6, dtype=np.float32)}
    )
    feats.write_parquet(tmp_path / "genes.parquet")
    model = get_model(
        "lpm_fast", **SMALL_LPM, max_epochs=1, val_fraction=0, base="twoway",
        perturbation_features=str(tmp_path / "genes.parquet"),
    )  # fmt: skip
    model.fit(rows.filter(~held))
    test = rows.filter(held)
    assert model.supported(test).all()
    cm, t, s = model.twoway_.parts(test, unseen_zero=True)
    assert (t == 0).all()  # t = 0 only because features place it: prediction is cm + s·net
    net = (model.predict(test) - cm) / s
    assert np.isfinite(net).all() and not np.allclose(net, 0)
