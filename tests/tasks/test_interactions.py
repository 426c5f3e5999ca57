"""Genetic interaction types (`lpm interactions`): profiles whose type is known by construction."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from lpm.cli import app
from lpm.data.store import write_store
from lpm.errors import LpmInputError
from lpm.tasks.interactions import (
    TYPES,
    InteractionThresholds,
    classify,
    distance_correlation,
    interaction_table,
    interaction_tables,
    norman_comparison,
    norman_summary,
    pair_metrics,
    predicted_double_rows,
    score_types,
    simulator_truth,
)
from tests.conftest import shared_data

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


def test_theil_sen_matches_scikit_learn() -> None:
    from sklearn.linear_model import TheilSenRegressor

    rng = np.random.default_rng(3)
    for n in (60, 142):  # every subset, then random subsets (binom(142, 2) > 10,000)
        x = rng.normal(size=(n, 2))
        y = x @ np.array([0.7, 1.3]) + 0.3 * rng.standard_t(2, size=n)
        ref = TheilSenRegressor(fit_intercept=False, random_state=5).fit(x, y).coef_
        ours = pair_metrics(x[:, 0], x[:, 1], y, seed=5)
        assert [ours["c1"], ours["c2"]] == pytest.approx(list(ref), abs=1e-9)


def test_distance_correlation_matches_the_definition() -> None:
    rng = np.random.default_rng(0)
    x, noise = rng.normal(size=120), rng.normal(size=120)
    y = x**2 + 0.2 * noise

    def slow(u: np.ndarray, v: np.ndarray) -> float:
        def centred(w: np.ndarray) -> np.ndarray:
            d = np.abs(w[:, None] - w[None, :])
            return d - d.mean(0) - d.mean(1)[:, None] + d.mean()

        a, b = centred(u), centred(v)
        return float(np.sqrt((a * b).mean() / np.sqrt((a * a).mean() * (b * b).mean())))

    assert distance_correlation(x, y) == pytest.approx(slow(x, y), abs=1e-5)
    assert distance_correlation(x, 3 * x + 1) == pytest.approx(1.0, abs=1e-5)
    assert distance_correlation(x, np.zeros_like(x)) == 0.0


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


def test_simulator_truth_reads_pair_types(tmp_path: Path) -> None:
    pl.DataFrame(
        {"perturbation": ["CRISPRi:A+CRISPRi:B"], "interaction": ["epistatic"], "strength": [0.0]}
    ).write_parquet(tmp_path / "pair_types.parquet")
    assert simulator_truth(tmp_path).to_dicts() == [
        {"perturbation": "CRISPRi:A+CRISPRi:B", "type": "epistatic"}
    ]
    with pytest.raises(LpmInputError, match=r"pair_types\.parquet"):
        simulator_truth(tmp_path / "nope")


def _norman_csv(path: Path, table: pl.DataFrame) -> Path:
    """Norman-like fits for our pairs, the first pair named in reverse order."""
    rows = []
    for i, r in enumerate(table.iter_rows(named=True)):
        g1, g2 = r["first"].split(":")[1], r["second"].split(":")[1]
        c1, c2, d1, d2 = r["c1"], r["c2"], r["dcor_first"], r["dcor_second"]
        name = f"{g2}_{g1}" if i == 0 else f"{g1}_{g2}"
        if i == 0:
            c1, c2, d1, d2 = c2, c1, d2, d1
        rows.append(
            {
                "name": name,
                "ts_coef_first": c1,
                "ts_coef_second": c2,
                "ts_norm": r["magnitude"],
                "ts_linear_dcor": r["fit_dcor"],
                "dcor_first": d1,
                "dcor_second": d2,
                "dcor_singles": r["dcor_singles"],
            }
        )
    pl.DataFrame(rows).write_csv(path)
    return path


def test_norman_comparison_matches_unordered_and_swaps(table: pl.DataFrame, tmp_path: Path) -> None:
    csv = _norman_csv(tmp_path / "regr_fits_final.csv", table)
    comp = norman_comparison(table, csv)
    assert comp.height == table.height
    assert np.allclose(comp["c1"].to_numpy(), comp["norman_ts_coef_first"].to_numpy())
    assert np.allclose(comp["dcor_first"].to_numpy(), comp["norman_dcor_first"].to_numpy())
    assert comp["type"].to_list() == comp["norman_type"].to_list()
    summary = norman_summary(comp)
    assert summary["n_matched"] == table.height and summary["type_agreement"] == 1.0
    assert summary["spearman"]["magnitude"] == pytest.approx(1.0)
    pl.read_csv(csv).drop("ts_norm").write_csv(tmp_path / "bad.csv")
    with pytest.raises(LpmInputError, match=r"bad\.csv: missing column\(s\) ts_norm"):
        norman_comparison(table, tmp_path / "bad.csv")
    with pytest.raises(LpmInputError, match="no such file"):
        norman_comparison(table, tmp_path / "absent.csv")


@pytest.mark.realdata
def test_real_norman_pairs_against_their_fits() -> None:
    csv = shared_data("norman19_gi") / "regr_fits_final.csv"
    if not csv.is_file():
        pytest.skip(f"real data not present: {csv}")
    store = Path(__file__).resolve().parents[2] / "benchmarks" / "stores" / "devel"
    if not store.is_dir():
        pytest.skip(f"devel store not present: {store}")
    from lpm.data.store import open_store

    rows = open_store(store).read()
    table = interaction_table(rows, context="norman19/K562")
    comp = norman_comparison(table, csv)
    assert comp.height == table.height >= 1  # every typed devel pair is one of Norman's
    assert comp["norman_ts_norm"].is_finite().all()


def test_cli_writes_outputs_atomically(tmp_path: Path) -> None:
    rows = synthetic_rows()
    write_store(rows, tmp_path / "store")
    truth = tmp_path / "truth"
    truth.mkdir()
    built_truth().rename({"type": "interaction"}).write_parquet(truth / "pair_types.parquet")
    out = tmp_path / "gi"
    runner = CliRunner()
    result = runner.invoke(
        app, ["interactions", str(tmp_path / "store"), "--out", str(out), "--truth", str(truth)]
    )
    assert result.exit_code == 0, result.output
    names = {p.name for p in out.iterdir()}
    assert {"interactions.csv", "interactions.parquet", "interactions.png", "summary.json"} <= names
    summary = json.loads((out / "summary.json").read_text())
    assert summary["truth"]["accuracy"] == 1.0
    assert summary["types"] == {t: 1 for t in TYPES}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".gi.")]  # no temp left
    # an existing folder is kept unless --overwrite; a failing run leaves it untouched
    result = runner.invoke(app, ["interactions", str(tmp_path / "store"), "--out", str(out)])
    assert isinstance(result.exception, LpmInputError)
    assert "already exists" in str(result.exception)
    result = runner.invoke(
        app,
        [
            *("interactions", str(tmp_path / "store"), "--out", str(out), "--overwrite"),
            *("--norman", str(tmp_path / "absent.csv")),
        ],
    )
    assert isinstance(result.exception, LpmInputError)
    assert (out / "summary.json").read_text() == json.dumps(summary, indent=2) + "\n"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".gi.")]


def test_cli_types_a_models_predicted_doubles(tmp_path: Path) -> None:
    from lpm.runs.train import train_model

    write_store(synthetic_rows(), tmp_path / "store")
    train_model(
        [tmp_path / "store"], model="linear", out=tmp_path / "m", params={"n_components": 4}
    )
    out = tmp_path / "gi"
    result = CliRunner().invoke(
        app,
        [
            "interactions",
            str(tmp_path / "store"),
            "--out",
            str(out),
            "--model",
            str(tmp_path / "m"),
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["profiles"] == "predicted doubles, measured singles"
    assert summary["n_unpredictable_doubles"] == 0
    assert summary["vs_measured"]["n_pairs"] == len(TYPES)
