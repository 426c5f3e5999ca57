"""The low-rank completion baseline: it recovers a planted low-rank table with biases, picks the
planted rank on validation, refuses what it never saw, and saves and loads exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from lpm.errors import LpmInputError, UnknownSymbolError
from lpm.models.low_rank import LowRankModel
from lpm.models.registry import BASELINES, get_model, load_model


def planted(
    *, n_p: int = 60, n_c: int = 30, rank: int = 3, noise: float = 0.0, readouts: int = 1
) -> pl.DataFrame:
    """μ + b_context + b_perturbation + U·V over (perturbation, context, readout), seeded."""
    rng = np.random.default_rng(0)
    u, v = rng.normal(size=(n_p, rank)), rng.normal(size=(n_c, readouts, rank))
    y = (
        2.0
        + rng.normal(size=(1, n_c, readouts))
        + rng.normal(size=(n_p, 1, readouts))
        + np.einsum("pk,crk->pcr", u, v)
        + noise * rng.normal(size=(n_p, n_c, readouts))
    )
    p, c, r = np.meshgrid(np.arange(n_p), np.arange(n_c), np.arange(readouts), indexing="ij")
    return pl.DataFrame(
        {
            "context": [f"line{j}" for j in c.ravel()],
            "perturbation": [f"compound:{i}" for i in p.ravel()],
            "readout": [f"r{k}" for k in r.ravel()],
            "value": y.ravel(),
        }
    )


def thirds(rows: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Train, validation and test pairs (all readouts of a pair together), seeded."""
    pairs = rows.select("perturbation", "context").unique(maintain_order=True)
    draw = np.random.default_rng(1).random(pairs.height)
    parts = []
    for lo, hi in ((0.0, 0.7), (0.7, 0.85), (0.85, 1.0)):
        keep = pairs.filter(pl.Series((draw >= lo) & (draw < hi)))
        parts.append(rows.join(keep, on=["perturbation", "context"], how="semi"))
    return parts[0], parts[1], parts[2]


def test_recovers_a_planted_low_rank_table_with_biases_on_held_out_pairs() -> None:
    train, val, test = thirds(planted(readouts=2))
    model = LowRankModel(ranks=[0, 3], ridges=[1e-3]).fit(train, val)
    truth = test["value"].to_numpy()
    err = np.mean((model.predict(test) - truth) ** 2)
    two_way = LowRankModel(ranks=[0]).fit(train, val)
    assert model.rank_ == 3
    assert err < 1e-3 * np.var(truth)  # exact recovery, where the two-way part alone is far off
    assert np.mean((two_way.predict(test) - truth) ** 2) > 0.3 * np.var(truth)


@pytest.mark.parametrize("given_val", [True, False])
def test_rank_chosen_on_validation_is_the_planted_rank(given_val: bool) -> None:
    train, val, _ = thirds(planted(n_p=80, n_c=40, rank=3, noise=0.3))
    model = LowRankModel(ranks=[0, 1, 2, 3, 5, 8], ridges=[0.01], seed=2)
    model.fit(train, val if given_val else None)  # without val: a seeded share of train pairs
    assert model.rank_ == 3
    scores = dict(zip(model.val_scores_["rank"], model.val_scores_["val_mse"], strict=True))
    assert scores[3] < scores[2] and scores[3] < scores[8]


def test_unseen_perturbations_contexts_and_doses_are_unsupported_never_zero() -> None:
    rows = planted(n_p=10, n_c=6).with_columns(pl.lit(1.0).alias("dose"))
    model = LowRankModel(ranks=[0, 1]).fit(rows)
    new = pl.DataFrame(
        {
            "context": ["line0", "line99", "line0", "line0"],
            "perturbation": ["compound:99", "compound:0", "compound:0", "compound:0"],
            "readout": ["r0", "r0", "r0", "r0"],
            "dose": [1.0, 1.0, 10.0, 1.0],  # a dose never trained on is not pooled
        }
    )
    assert model.supported(new).tolist() == [False, False, False, True]
    with pytest.raises(UnknownSymbolError, match="compound:99"):
        model.predict(new.head(1))
    with pytest.raises(UnknownSymbolError):
        model.predict(new.slice(2, 1))


def test_save_and_load_give_identical_predictions(tmp_path: Path) -> None:
    train, val, test = thirds(planted(noise=0.1, readouts=2))
    model = get_model("low_rank", ranks=[0, 2, 4]).fit(train, val)
    assert isinstance(model, LowRankModel)
    again = load_model(model.save(tmp_path / "m"))
    assert isinstance(again, LowRankModel) and again.rank_ == model.rank_
    np.testing.assert_array_equal(again.predict(test), model.predict(test))
    assert again.val_scores_.equals(model.val_scores_)


def test_same_seed_same_fit() -> None:
    train, _, test = thirds(planted(noise=0.3))
    first = LowRankModel(ranks=[0, 2, 3], seed=5).fit(train).predict(test)
    np.testing.assert_array_equal(
        first, LowRankModel(ranks=[0, 2, 3], seed=5).fit(train).predict(test)
    )


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"ranks": []}, "ranks is empty"),
        ({"ranks": [-1]}, "ranks must be"),
        ({"ridges": [-0.1]}, "ridges must be"),
        ({"val_fraction": 1.0}, "val_fraction must be"),
        ({"ranks": 3}, "ranks must be a list"),
    ],
)
def test_bad_params_are_one_line_errors(params: dict[str, object], message: str) -> None:
    with pytest.raises(LpmInputError, match=message) as err:
        get_model("low_rank", **params)
    assert "\n" not in str(err.value)


def test_binary_readouts_are_refused_in_one_line() -> None:
    rows = planted(n_p=5, n_c=4).with_columns(pl.lit("binary").alias("readout_type"))
    with pytest.raises(LpmInputError, match="binary readouts") as err:
        LowRankModel().fit(rows)
    assert "\n" not in str(err.value)


def test_counts_as_a_baseline_in_verdicts() -> None:
    assert "low_rank" in BASELINES
