"""Verdicts against the best baseline (``lpm.evaluation.compare``) on small constructed tables of
per-condition scores: "beats" only where the paired interval lies above 0, both key metrics
(AUROC/AUPRC for binary readouts), seeded intervals."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from lpm.evaluation.compare import (
    BEATS,
    LOSES,
    TIES,
    UNTESTED,
    compare_to_best_baseline,
    paired_interval,
    paired_verdict,
    verdict,
)


def _per_condition(scores: dict[str, list[list[float]]], metric: str) -> pl.DataFrame:
    """``scores[model][seed]``: that model's per-condition values in that seed."""
    rows = [
        (seed, "g", model, i, v)
        for model, by_seed in scores.items()
        for seed, values in enumerate(by_seed)
        for i, v in enumerate(values)
    ]
    return pl.DataFrame(
        rows, schema=["seed", "group", "model", "condition", metric], orient="row"
    ).with_columns(pl.col("condition").cast(pl.UInt32))


def _summary(per_condition: pl.DataFrame, metric: str) -> pl.DataFrame:
    """Means over seeds of per-seed means (as ``summarise`` makes them; intervals unused)."""
    per_seed = per_condition.group_by("seed", "group", "model").agg(
        pl.col(metric).fill_nan(None).mean()  # NaN scores are left out, as in the panel
    )
    return (
        per_seed.group_by("group", "model")
        .agg(pl.col(metric).mean().alias("mean"))
        .with_columns(
            pl.lit(metric).alias("metric"),
            pl.lit(0.0).alias("ci_low"),
            pl.lit(0.0).alias("ci_high"),
        )
    )


def _compare(scores: dict[str, list[list[float]]], metric: str, **kw: object) -> pl.DataFrame:
    pc = _per_condition(scores, metric)
    return compare_to_best_baseline(
        pc, _summary(pc, metric), baselines=["no_change", "context_mean"], n_boot=2000, **kw
    )  # type: ignore[arg-type]


def test_verdict_from_the_interval_of_the_difference() -> None:
    assert verdict("pearson_delta_vs_mean", 0.01, 0.2) == BEATS
    assert verdict("pearson_delta_vs_mean", -0.2, -0.01) == LOSES
    assert verdict("pearson_delta_vs_mean", -0.05, 0.2) == TIES
    assert verdict("mse", -0.2, -0.01) == BEATS  # lower is better: a negative difference wins
    assert verdict("discrimination", float("nan"), float("nan")) == UNTESTED


def test_a_consistent_gain_beats_and_a_consistent_loss_loses() -> None:
    rng = np.random.default_rng(0)
    base = [list(rng.normal(0.3, 0.1, 20)) for _ in range(3)]
    better = [[v + 0.2 + 0.01 * rng.normal() for v in seed] for seed in base]
    worse = [[v - 0.2 for v in seed] for seed in base]
    out = _compare({"no_change": base, "up": better, "down": worse}, "pearson_delta_vs_mean")
    by_model = {r["model"]: r for r in out.iter_rows(named=True)}
    assert by_model["up"]["verdict"] == BEATS and by_model["up"]["ci_low"] > 0
    assert by_model["down"]["verdict"] == LOSES and by_model["down"]["ci_high"] < 0
    assert by_model["up"]["baseline"] == "no_change"
    assert by_model["up"]["n_pairs"] == 60 and by_model["up"]["seeds"] == 3
    assert by_model["up"]["difference"] == pytest.approx(0.2, abs=0.01)


def test_the_issues_case_never_beats() -> None:
    """The issue: per-seed means of the best baseline −0.00, 0.19, 0.07 with every interval
    spanning 0, and a model about twice as high on average (a ratio of ×2), but noisy
    per-condition differences: the paired interval spans 0, so the verdict is "ties"."""
    rng = np.random.default_rng(1)
    spread = 0.6
    base_means = [-0.004, 0.19, 0.07]
    base = [list(m + spread * rng.standard_normal(8)) for m in base_means]
    for values, m in zip(base, base_means, strict=True):  # exact per-seed means
        shift = m - float(np.mean(values))
        values[:] = [v + shift for v in values]
    model = [[v + spread * float(rng.standard_normal()) for v in seed] for seed in base]
    for values, m in zip(model, base_means, strict=True):  # about twice the baseline's mean
        shift = (m + 0.085) - float(np.mean(values))
        values[:] = [v + shift for v in values]
    out = _compare({"context_mean": base, "lpm": model}, "pearson_delta_vs_mean").row(0, named=True)
    ratio = np.mean([np.mean(s) for s in model]) / np.mean(base_means)
    assert ratio > 1.9  # the old report said "beats ×2"
    assert out["verdict"] == TIES and out["ci_low"] < 0 < out["ci_high"]


def test_the_best_baseline_is_the_one_with_the_best_mean_per_metric() -> None:
    scores = {
        "no_change": [[0.1, 0.2, 0.3, 0.2]],
        "context_mean": [[0.5, 0.6, 0.4, 0.5]],
        "lpm": [[0.55, 0.65, 0.45, 0.55]],
    }
    out = _compare(scores, "discrimination")
    assert out["baseline"].to_list() == ["context_mean"]
    assert out["verdict"].to_list() == [BEATS]  # +0.05 on every condition


def test_binary_readouts_get_auroc_and_auprc_verdicts() -> None:
    pc = _per_condition(
        {"no_change": [[0.5, 0.5, 0.5]], "lpm": [[0.9, 0.8, 0.95]]}, "auroc"
    ).with_columns(auprc=pl.col("auroc") - 0.1)
    summary = pl.concat([_summary(pc, "auroc"), _summary(pc.drop("auroc"), "auprc")])
    out = compare_to_best_baseline(pc, summary, baselines=["no_change"], n_boot=500)
    assert sorted(out["metric"].to_list()) == ["auprc", "auroc"]
    assert set(out["verdict"]) == {BEATS}


def test_pairs_are_the_conditions_both_scored() -> None:
    nan = float("nan")
    out = _compare(
        {"no_change": [[0.1, nan, 0.2, 0.3]], "lpm": [[0.2, 0.5, nan, 0.4]]},
        "pearson_delta_vs_mean",
    ).row(0, named=True)
    assert out["n_pairs"] == 2 and out["difference"] == pytest.approx(0.1)


def test_intervals_are_seeded_and_none_without_a_bootstrap() -> None:
    rng = np.random.default_rng(3)
    scores = {
        "no_change": [list(rng.normal(0, 1, 15)) for _ in range(2)],
        "lpm": [list(rng.normal(0.1, 1, 15)) for _ in range(2)],
    }
    a, b = (_compare(scores, "discrimination", seed=5) for _ in range(2))
    assert a.equals(b)
    c = _compare(scores, "discrimination", seed=6)
    assert c["ci_low"].item() != a["ci_low"].item()
    pc = _per_condition(scores, "discrimination")
    none = compare_to_best_baseline(
        pc, _summary(pc, "discrimination"), baselines=["no_change"], n_boot=0
    )
    assert none["verdict"].to_list() == [UNTESTED]


def test_paired_interval_averages_per_seed_means() -> None:
    diffs = [np.array([1.0, 1.0]), np.array([3.0, 3.0, 3.0, 3.0])]
    point, lo, hi = paired_interval(diffs, n_boot=100, rng=np.random.default_rng(0))
    assert point == 2.0 and lo == hi == 2.0  # seeds weigh alike, whatever their sizes
    assert np.isnan(paired_interval([np.array([0.5])], n_boot=100, rng=np.random.default_rng(0))[1])


def test_paired_verdict_on_a_scripts_own_pairs() -> None:
    """One difference per seed (e.g. an area under a learning curve against random's): a
    positive mean is not enough; the seeded interval must lie above 0."""
    steady = np.array([0.02, 0.03, 0.01, 0.04, 0.02])
    mixed = np.array([0.09, -0.03, 0.01, 0.04, -0.05])  # mean +0.012 > 0, 3 of 5 seeds better
    up = paired_verdict(steady, seed=0)
    assert up.verdict == BEATS and up.ci_low > 0 and up.difference == pytest.approx(0.024)
    noisy = paired_verdict(mixed, seed=0)
    assert noisy.difference > 0 and noisy.verdict == TIES and noisy.ci_low < 0 < noisy.ci_high
    assert paired_verdict(-steady, seed=0).verdict == LOSES
    assert paired_verdict(-steady, higher_is_better=False, seed=0).verdict == BEATS  # e.g. MSE
    assert paired_verdict(mixed, seed=3) == paired_verdict(mixed, seed=3)  # seeded
    assert paired_verdict(steady, n_boot=0).verdict == UNTESTED


def test_paired_verdict_resamples_within_each_seed_and_drops_nan() -> None:
    per_seed = [np.array([0.1, 0.2, float("nan")]), np.array([0.3, 0.2])]
    out = paired_verdict(per_seed, n_boot=500, seed=0)
    assert out.difference == pytest.approx((0.15 + 0.25) / 2) and out.verdict == BEATS
