"""Scores across conditions on small constructed tables with hand-checked numbers: Spearman per
perturbation and per context, the top-10 % AUROC's labels, seeded intervals, skipped units."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

import lpm.evaluation.benchmark as bench
from lpm.evaluation.across import evaluate_across, single_readout
from lpm.evaluation.benchmark import BenchmarkSpec, run_benchmark


def _one(
    values: list[float], preds: list[float], *, kind: str | None = "delta", pert: str = "X"
) -> tuple[pl.DataFrame, np.ndarray]:
    """One perturbation over contexts c0, c1, ... of one readout."""
    rows = pl.DataFrame(
        {
            "context": [f"c{i}" for i in range(len(values))],
            "perturbation": [pert] * len(values),
            "readout": ["auc"] * len(values),
            "value": values,
        }
    )
    if kind is not None:
        rows = rows.with_columns(pl.lit(kind).alias("readout_type"))
    return rows, np.array(preds)


def _pert(res: object, metric: str) -> list[float]:
    return res.per_perturbation[metric].to_list()  # type: ignore[attr-defined]


def test_spearman_per_perturbation_is_the_rank_correlation_over_its_contexts() -> None:
    # true ranks 1 3 2 4, predicted 1 2 3 4: rho = 1 - 6 * (0 + 1 + 1 + 0) / (4 * 15) = 0.8
    truth, pred = _one([0.1, 0.4, 0.2, 0.9], [0.0, 0.3, 0.5, 0.8])
    res = evaluate_across(truth, pred, n_boot=0)
    assert _pert(res, "spearman_per_perturbation") == [pytest.approx(0.8)]
    assert _pert(res, "auroc_top10_per_perturbation") == [1.0]  # c3 (0.9) predicted highest
    # ties get average ranks: true 1 2.5 2.5 4 against 1 2 3 4 -> Pearson of the ranks
    truth, pred = _one([0.1, 0.3, 0.3, 0.9], [0.0, 0.3, 0.5, 0.8])
    expected = np.corrcoef([1, 2.5, 2.5, 4], [1, 2, 3, 4])[0, 1]
    got = evaluate_across(truth, pred, n_boot=0)
    assert _pert(got, "spearman_per_perturbation") == [pytest.approx(expected)]


def test_the_most_sensitive_item_follows_the_readout_type() -> None:
    values, preds = [0.9, -0.1, -0.2, -0.3], [0.1, -0.5, 0.0, -0.2]
    # viability: lower = fewer cells alive, so c3 (-0.3) is the positive; its -0.2 beats 2 of 3
    res = evaluate_across(*_one(values, preds, kind="viability"), n_boot=0)
    assert _pert(res, "auroc_top10_per_perturbation") == [pytest.approx(2 / 3)]
    # any other type (or none): |value|, so c0 (0.9) is the positive; |0.1| beats 1 of 3
    for kind in ("delta", None):
        res = evaluate_across(*_one(values, preds, kind=kind), n_boot=0)
        assert _pert(res, "auroc_top10_per_perturbation") == [pytest.approx(1 / 3)]


def test_top10_takes_ceil_n_over_10_positives_and_ties_at_the_cut() -> None:
    # 11 contexts: ceil(11 / 10) = 2 positives (values 11 and 10). Predictions equal the values
    # except that the second positive is predicted lowest: AUROC (9/9 + 0/9) / 2 = 0.5 (with a
    # single positive it would be 1.0).
    values = [float(v) for v in range(1, 12)]
    preds = [*values[:9], 0.0, 11.0]
    res = evaluate_across(*_one(values, preds), n_boot=0)
    assert _pert(res, "auroc_top10_per_perturbation") == [pytest.approx(0.5)]
    # 10 contexts: 1 positive; the top value predicted lowest gives 0.0
    res = evaluate_across(*_one(values[:10], [*values[:9], 0.0]), n_boot=0)
    assert _pert(res, "auroc_top10_per_perturbation") == [0.0]
    # ties at the cut are all positives: 5, 5 against 1, 2, predicted below both -> 0.0
    res = evaluate_across(*_one([5.0, 5.0, 1.0, 2.0], [1.0, 0.0, 2.0, 3.0]), n_boot=0)
    assert _pert(res, "auroc_top10_per_perturbation") == [0.0]


def test_units_with_under_three_items_are_skipped_and_counted() -> None:
    a, pa = _one([0.1, 0.4, 0.2, 0.9], [0.0, 0.3, 0.5, 0.8], pert="X")
    b, pb = _one([0.5, 0.7], [0.1, 0.2], pert="Y")  # 2 contexts: skipped
    c, pc = _one([0.3, 0.3, 0.3], [0.1, 0.2, 0.3], pert="Z")  # constant truth: undefined
    res = evaluate_across(pl.concat([a, b, c]), np.concatenate([pa, pb, pc]), n_boot=0)
    table = res.per_perturbation.sort("perturbation")
    assert table["n_items"].to_list() == [4, 2, 3]
    rho = table["spearman_per_perturbation"].to_numpy()
    assert rho[0] == pytest.approx(0.8) and np.isnan(rho[1:]).all()
    row = res.summary.filter(pl.col("metric") == "spearman_per_perturbation").row(0, named=True)
    assert (row["mean"], row["n"], row["n_excluded"]) == (pytest.approx(0.8), 1, 2)
    # per context: c0 holds X, Y, Z (true 0.1 0.5 0.3 vs pred 0.0 0.1 0.1 -> ranks 1 3 2 vs
    # 1 2.5 2.5: rho = 0.866); c1 too; c2 and c3 have under three perturbations
    ctx = res.per_context.sort("context")
    assert ctx["n_items"].to_list() == [3, 3, 2, 1]
    expected = np.corrcoef([1, 3, 2], [1, 2.5, 2.5])[0, 1]
    assert ctx["spearman_per_context"][0] == pytest.approx(expected)


def test_replicates_are_averaged_and_binary_rows_left_out() -> None:
    truth, pred = _one([0.1, 0.4, 0.2, 0.9], [0.0, 0.3, 0.5, 0.8])
    twice = pl.concat([truth, truth.with_columns(pl.col("value") + 1.0)]).with_columns(
        pl.Series("replicate", [0] * 4 + [1] * 4)
    )
    flag = truth.with_columns(
        pl.lit("hit").alias("readout"), pl.lit("binary").alias("readout_type")
    )
    rows = pl.concat([twice, flag], how="diagonal")
    res = evaluate_across(rows, np.concatenate([pred, pred, [1.0, 0.0, 1.0, 0.0]]), n_boot=0)
    assert _pert(res, "spearman_per_perturbation") == [pytest.approx(0.8)]
    assert single_readout(rows) and not single_readout(
        pl.concat([truth, truth.with_columns(pl.lit("b").alias("readout"))])
    )


def test_intervals_are_seeded_and_cover_the_mean() -> None:
    rng = np.random.default_rng(0)
    rows = pl.DataFrame(
        {
            "context": [f"c{i}" for i in range(8)] * 30,
            "perturbation": np.repeat([f"p{j}" for j in range(30)], 8),
            "readout": "auc",
            "value": rng.normal(size=240),
        }
    )
    pred = rows["value"].to_numpy() + rng.normal(size=240)
    one, two = (evaluate_across(rows, pred, n_boot=200, seed=3) for _ in range(2))
    assert one.summary.equals(two.summary)
    other = evaluate_across(rows, pred, n_boot=200, seed=4).summary
    assert not one.summary.equals(other)
    for r in one.summary.iter_rows(named=True):
        assert r["ci_low"] < r["mean"] < r["ci_high"]


def _viability(seed: int = 0) -> pl.DataFrame:
    """8 lines × 24 compounds of one killing score: shared parts plus a line-specific one."""
    rng = np.random.default_rng(seed)
    line, compound = rng.normal(size=8), rng.normal(size=24)
    inter = rng.normal(size=(8, 24))
    value = line[:, None] + compound[None, :] + inter
    return pl.DataFrame(
        {
            "context": np.repeat([f"l{i}" for i in range(8)], 24),
            "perturbation": [f"compound:d{j}" for j in range(24)] * 8,
            "readout": "killing_auc",
            "value": value.ravel(),
            "readout_type": "viability",
        }
    )


def test_a_single_readout_benchmark_scores_and_judges_across_conditions(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # linear is registered as a baseline; judge it here against the two means
    monkeypatch.setattr(bench, "BASELINES", ("context_mean", "perturbation_mean"))
    spec = BenchmarkSpec(
        split="unseen_pair", models=("context_mean", "perturbation_mean", "linear"), seeds=(0, 1),
        n_boot=50,
    )  # fmt: skip
    result = run_benchmark(_viability(), spec)
    metrics = set(result.scores["metric"])
    assert {"spearman_per_perturbation", "auroc_top10_per_context"} <= metrics
    comp = result.comparisons.filter(pl.col("metric") == "spearman_per_perturbation")
    assert comp.height == 1 and comp["seeds"].item() == 2
    # pairs are perturbations within seeds: no more than 24 compounds per seed
    n = result.scores.filter(
        (pl.col("metric") == "spearman_per_perturbation") & (pl.col("model") == "linear")
    )["n"]
    assert comp["n_pairs"].item() <= int(n.sum()) <= 48


def test_multi_readout_benchmarks_are_scored_as_before(toy_rows: pl.DataFrame) -> None:
    spec = BenchmarkSpec(split="unseen_pair", models=("no_change", "linear"), seeds=(0,), n_boot=20)
    result = run_benchmark(toy_rows, spec)
    assert not {m for m in result.scores["metric"] if "_per_" in m}
    assert set(result.comparisons["metric"]) <= {"pearson_delta_vs_mean", "discrimination"}
