"""Genetic interaction types (``lpm.tasks.interactions``): profiles whose type is known by
construction are typed right, doubles lacking a single are listed, a model's predicted doubles
replace the measured ones, the registered task gives typed and skipped doubles in one table."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from lpm.errors import LpmInputError
from lpm.tasks.interactions import (
    TYPES,
    InteractionTask,
    InteractionThresholds,
    classify,
    interaction_table,
    interaction_tables,
    predicted_double_rows,
    score_types,
    split_skipped,
)
from lpm.tasks.registry import get_task

N_READOUTS = 300
#: The double of each single pair, by the type it is built to have.
BUILT = {
    "additive": lambda a, b, c: a + b,
    "synergistic": lambda a, b, c: 1.6 * (a + b),
    "buffering": lambda a, b, c: 0.4 * (a + b),
    "epistatic": lambda a, b, c: a.copy(),
    "neomorphic": lambda a, b, c: a + b + c,
}


def _program(rng: np.random.Generator, scale: float = 1.0) -> np.ndarray:
    """A sparse effect: 40 of the readouts move, the rest stay at 0."""
    v = np.zeros(N_READOUTS)
    idx = rng.choice(N_READOUTS, size=40, replace=False)
    v[idx] = scale * rng.choice([-1.0, 1.0], size=40) * rng.uniform(0.5, 1.5, size=40)
    return v


def synthetic_rows(seed: int = 0, *, context: str = "toy/K562") -> pl.DataFrame:
    """One double per type with its own two singles; small noise on every readout."""
    rng = np.random.default_rng(seed)
    readouts = [f"R{i}" for i in range(N_READOUTS)]
    profiles: dict[str, np.ndarray] = {}
    for i, kind in enumerate(TYPES):
        first, second = f"CRISPRa:G{2 * i}", f"CRISPRa:G{2 * i + 1}"
        a, b, c = _program(rng), _program(rng), _program(rng, scale=2.0)
        profiles[first], profiles[second] = a, b
        profiles[f"{first}+{second}"] = BUILT[kind](a, b, c)
    rows = []
    for pert, v in profiles.items():
        noisy = v + 0.03 * rng.normal(size=N_READOUTS)
        rows += [(context, pert, r, float(x)) for r, x in zip(readouts, noisy, strict=True)]
    return pl.DataFrame(rows, schema=["context", "perturbation", "readout", "value"], orient="row")


def built_truth() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "perturbation": [f"CRISPRa:G{2 * i}+CRISPRa:G{2 * i + 1}" for i in range(len(TYPES))],
            "type": list(TYPES),
        }
    )


@pytest.fixture(scope="module")
def table() -> pl.DataFrame:
    return interaction_table(synthetic_rows())


def test_types_and_coefficients_recovered(table: pl.DataFrame) -> None:
    assert table.height == len(TYPES)
    got = dict(zip(table["perturbation"], table["type"], strict=True))
    assert got == dict(built_truth().iter_rows())
    by = {r["type"]: r for r in table.iter_rows(named=True)}
    assert by["additive"]["c1"] == pytest.approx(1.0, abs=0.1)
    assert by["additive"]["c2"] == pytest.approx(1.0, abs=0.1)
    assert by["additive"]["magnitude"] == pytest.approx(math.sqrt(2), abs=0.1)
    assert by["synergistic"]["c1"] == pytest.approx(1.6, abs=0.1)
    assert by["buffering"]["c2"] == pytest.approx(0.4, abs=0.1)
    assert by["epistatic"]["c1"] == pytest.approx(1.0, abs=0.1)
    assert abs(by["epistatic"]["c2"]) < 0.1
    assert by["epistatic"]["dominance"] > 1.0
    assert by["additive"]["fit_dcor"] > 0.95
    assert by["neomorphic"]["fit_dcor"] < 0.8
    assert list(table.columns[:5]) == ["context", "perturbation", "first", "second", "n_readouts"]
    assert table["first"].to_list()[0] == "CRISPRa:G0"


def test_score_types_perfect_and_confused(table: pl.DataFrame) -> None:
    score = score_types(table, built_truth())
    assert score["accuracy"] == 1.0 and score["balanced_accuracy"] == 1.0
    assert score["n_pairs"] == len(TYPES)
    conf = score["confusion"]
    assert conf.columns == ["truth", *TYPES]
    assert np.array_equal(conf.select(TYPES).to_numpy(), np.eye(len(TYPES), dtype=int))
    wrong = table.with_columns(pl.lit("additive").alias("type"))
    score = score_types(wrong, built_truth().with_columns(pl.lit("toy/K562").alias("context")))
    assert score["accuracy"] == pytest.approx(0.2)
    assert score["recall"]["additive"] == 1.0 and score["recall"]["epistatic"] == 0.0
    assert score["balanced_accuracy"] == pytest.approx(0.2)


def test_replicates_are_averaged_and_ols_agrees() -> None:
    rows = synthetic_rows()
    reps = pl.concat(
        [
            rows.with_columns(pl.lit(0).alias("replicate"), pl.col("value") + 0.01),
            rows.with_columns(pl.lit(1).alias("replicate"), pl.col("value") - 0.01),
        ]
    )
    a = interaction_table(reps, context="toy/K562")
    plain = interaction_table(rows)
    assert a["type"].to_list() == plain["type"].to_list()
    assert np.allclose(a["magnitude"].to_numpy(), plain["magnitude"].to_numpy(), atol=1e-4)
    # least squares agrees where no outlying program pulls it (every type but neomorphic)
    b = interaction_table(rows, method="ols")
    assert a["type"].to_list() == b["type"].to_list()
    keep = (a["type"] != "neomorphic").to_numpy()
    assert np.allclose(a["c1"].to_numpy()[keep], b["c1"].to_numpy()[keep], atol=0.1)


def test_classify_order_and_thresholds() -> None:
    t = InteractionThresholds()
    assert classify(magnitude=3.0, fit_dcor=0.5, dominance=2.0) == "neomorphic"
    assert classify(magnitude=3.0, fit_dcor=0.9, dominance=2.0) == "epistatic"
    assert classify(magnitude=t.synergy_above + 0.01, fit_dcor=0.9, dominance=0) == "synergistic"
    assert classify(magnitude=t.buffering_below - 0.01, fit_dcor=0.9, dominance=0) == "buffering"
    assert classify(magnitude=1.41, fit_dcor=float("nan"), dominance=0) == "neomorphic"
    loose = InteractionThresholds(min_fit_dcor=0.0, magnitude_margin=0.9)
    assert classify(magnitude=2.5, fit_dcor=0.1, dominance=0, thresholds=loose) == "additive"
    with pytest.raises(LpmInputError, match="min_fit_dcor"):
        InteractionThresholds(min_fit_dcor=1.5)


def test_doubles_lacking_a_single_are_listed_not_guessed() -> None:
    rows = synthetic_rows().filter(pl.col("perturbation") != "CRISPRa:G1")
    table, skipped = interaction_tables(rows)
    assert table.height == len(TYPES) - 1
    assert skipped["perturbation"].to_list() == ["CRISPRa:G0+CRISPRa:G1"]
    assert "CRISPRa:G1" in skipped["reason"][0]


def test_errors_are_one_line() -> None:
    rows = synthetic_rows()
    no_singles = rows.filter(pl.col("perturbation").str.contains("+", literal=True))
    with pytest.raises(LpmInputError, match="no double perturbation has both singles") as err:
        interaction_table(no_singles)
    assert "\n" not in str(err.value)
    with pytest.raises(LpmInputError, match="missing column"):
        interaction_table(rows.drop("value"))
    nan = rows.with_columns(
        pl.when(pl.col("readout") == "R3")
        .then(float("nan"))
        .otherwise(pl.col("value"))
        .alias("value")
    )
    with pytest.raises(LpmInputError, match="NaN"):
        interaction_table(nan)
    with pytest.raises(LpmInputError, match="no rows in context"):
        interaction_table(rows, context="other/X")
    with pytest.raises(LpmInputError, match="method"):
        interaction_table(rows, method="huber")


class _HalfModel:
    """Predicts doubles as the sum of singles, but never saw the G8+G9 pair's members."""

    def __init__(self, rows: pl.DataFrame) -> None:
        self.rows = rows

    def supported(self, rows: pl.DataFrame) -> np.ndarray:
        return ~rows["perturbation"].str.contains("G8").to_numpy()

    def predict(self, rows: pl.DataFrame) -> np.ndarray:
        singles = self.rows.filter(~pl.col("perturbation").str.contains("+", literal=True))
        lookup = {
            (p, r): v for p, r, v in singles.select("perturbation", "readout", "value").iter_rows()
        }
        return np.array(
            [
                sum(lookup[(m, r)] for m in p.split("+"))
                for p, r in rows.select("perturbation", "readout").iter_rows()
            ]
        )


def test_predicted_doubles_replace_measured_and_unknown_are_reported() -> None:
    rows = synthetic_rows()
    mixed, unsupported = predicted_double_rows(rows, _HalfModel(rows))
    assert unsupported["perturbation"].to_list() == ["CRISPRa:G8+CRISPRa:G9"]
    table, _ = interaction_tables(mixed)
    assert "CRISPRa:G8+CRISPRa:G9" not in table["perturbation"].to_list()
    assert set(table["type"]) == {"additive"}  # a sum-of-singles model predicts additivity


def test_the_registered_task_lists_typed_and_skipped_doubles() -> None:
    rows = synthetic_rows().filter(pl.col("perturbation") != "CRISPRa:G1")
    task = get_task("interactions", min_abs_z=None, seed=1)
    assert isinstance(task, InteractionTask) and task.thresholds.min_abs_z is None
    doubles = task.run(rows)
    assert doubles.height == len(TYPES) and doubles.columns[-1] == "reason"
    typed, skipped = split_skipped(doubles)
    table, lacking = interaction_tables(rows, thresholds=task.thresholds, seed=1)
    assert typed.equals(table) and skipped.equals(lacking)
    predicted = get_task("interactions").run(synthetic_rows(), model=_HalfModel(synthetic_rows()))
    typed, skipped = split_skipped(predicted)
    assert skipped.rows() == [
        ("toy/K562", "CRISPRa:G8+CRISPRa:G9", f"model cannot predict {N_READOUTS} row(s)")
    ]
    assert set(typed["type"]) == {"additive"}
    with pytest.raises(LpmInputError, match="no rows in context 'other/X'"):
        get_task("interactions", context="other/X").run(rows)
