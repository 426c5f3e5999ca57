"""A benchmark is a declared split, models and seeds: the spec refuses what cannot run before any
work; every model is scored on the same held-out rows."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import polars as pl
import pytest

import lpm.evaluation.benchmark as bench
from lpm.data.splits.base import Split
from lpm.errors import LpmInputError
from lpm.evaluation.benchmark import (
    MAX_SEEDS,
    BenchmarkSpec,
    check_seed_count,
    run_benchmark,
    summarise,
)
from lpm.models.baselines import PerturbationMean


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"seeds": ()}, r"--seeds must be between 1 and 1000, got 0"),
        ({"seeds": tuple(range(1001))}, r"--seeds must be between 1 and 1000, got 1001"),
        ({"seeds": (0, 0)}, r"seeds repeat"),
        ({"models": ()}, r"no models given \(--models\)"),
        ({"split": "nope"}, r"unknown split kind 'nope'; available: random, "),
        ({"n_boot": -1}, r"--n-boot must be between 0 and 1,000,000, got -1"),
        ({"min_coverage": 1.5}, r"min_coverage must be in \[0, 1\]"),
    ],
)
def test_spec_refuses_what_cannot_run(changes: dict[str, object], message: str) -> None:
    base: dict[str, object] = {"split": "random", "models": ("no_change",), "seeds": (0,)}
    with pytest.raises(LpmInputError, match=message):
        BenchmarkSpec(**{**base, **changes})  # type: ignore[arg-type]


def test_check_seed_count() -> None:
    assert check_seed_count(1) == 1 and check_seed_count(MAX_SEEDS) == MAX_SEEDS
    for bad in (0, -2, 10**11):
        with pytest.raises(LpmInputError, match="--seeds must be between 1 and 1000"):
            check_seed_count(bad)


def test_models_share_the_scored_rows_and_seeds_average(toy_rows: pl.DataFrame) -> None:
    spec = BenchmarkSpec(
        split="unseen_pair", models=("no_change", "perturbation_mean"), seeds=(0, 1), n_boot=20
    )
    result = run_benchmark(toy_rows, spec)
    cov = result.coverage.group_by("seed", "model").agg(pl.col("scored").sum())
    by_seed = cov.group_by("seed").agg(pl.col("scored").n_unique().alias("k"))
    assert by_seed["k"].to_list() == [1, 1]  # every model scored on as many conditions
    table = summarise(result)
    assert set(table["seeds"]) == {2}
    assert set(table["model"]) == {"no_change", "perturbation_mean"}
    assert set(result.timings["model"]) == {"no_change", "perturbation_mean"}


def _compound_rows(rows: pl.DataFrame) -> pl.DataFrame:
    """The toy rows as a compound screen: no genetic perturbation for gene_graph to learn."""
    return rows.with_columns(pl.col("perturbation").str.replace_all("CRISPRi:G", "compound:D"))


def test_a_group_missing_in_a_seed_is_not_counted_as_uncovered(
    toy_rows: pl.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A group held out in one seed of three: its table still holds every model (coverage over
    the one seed that has it), not one table per model with coverage 1/3."""
    real = bench.make_split

    def split_with_a_rare_group(rows: pl.DataFrame, **kw: Any) -> Split:
        split = real(rows, **kw)
        if kw["seed"] != 0:
            return split
        rare = pl.when(pl.col("context") == "toy/A").then(pl.lit("rare")).otherwise("group")
        return replace(split, test_groups=split.test_groups.with_columns(rare.alias("group")))

    monkeypatch.setattr(bench, "make_split", split_with_a_rare_group)
    spec = BenchmarkSpec(
        split="unseen_pair", models=("no_change", "perturbation_mean"), seeds=(0, 1, 2), n_boot=10
    )
    result = run_benchmark(toy_rows, spec)
    groups = set(result.scores["group"].to_list())
    assert "rare" in groups and not any(g.startswith("rare |") for g in groups)
    rare = result.coverage.filter(pl.col("group") == "rare")
    assert set(rare["seed"]) == {0} and set(rare["model"]) == set(spec.models)
    assert (rare["scored"] == rare["conditions"]).all()


def test_a_model_that_cannot_fit_the_data_is_not_applicable_and_the_rest_run(
    toy_rows: pl.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An input error in fit (gene_graph on a compound screen) marks the model n/a with its
    one-line reason and the others are scored; any other exception (a bug) still stops it."""
    spec = BenchmarkSpec(
        split="unseen_pair", models=("no_change", "gene_graph", "perturbation_mean"),
        seeds=(0, 1), n_boot=10, model_params={"gene_graph": {"graph": "none", "epochs": 1}},
    )  # fmt: skip
    result = run_benchmark(_compound_rows(toy_rows), spec)
    na = result.not_applicable
    assert na["model"].to_list() == ["gene_graph"] * 2 and na["seed"].to_list() == [0, 1]
    assert na["stage"].to_list() == ["fit"] * 2
    assert na["reason"][0] == "gene_graph: no genetic perturbation rows to train on"
    assert set(result.scores["model"]) == {"no_change", "perturbation_mean"}
    assert result.timings.filter(pl.col("model") == "gene_graph")["fit_s"].null_count() == 2

    def broken(self: Any, *args: Any, **kwargs: Any) -> None:
        raise ZeroDivisionError("a bug, not the data")

    monkeypatch.setattr(PerturbationMean, "_fit", broken)
    with pytest.raises(ZeroDivisionError, match="a bug"):
        run_benchmark(_compound_rows(toy_rows), spec)


def test_no_applicable_model_at_all_is_an_error_with_the_reasons(toy_rows: pl.DataFrame) -> None:
    spec = BenchmarkSpec(
        split="unseen_pair", models=("gene_graph",), seeds=(0,), n_boot=10,
        model_params={"gene_graph": {"graph": "none"}},
    )  # fmt: skip
    with pytest.raises(
        LpmInputError,
        match=r"no model could be fitted on these data \(gene_graph: gene_graph: no genetic",
    ):
        run_benchmark(_compound_rows(toy_rows), spec)


def test_the_benchmark_compares_models_with_the_best_baseline_on_both_key_metrics(
    toy_rows: pl.DataFrame,
) -> None:
    spec = BenchmarkSpec(
        split="unseen_pair", models=("no_change", "context_mean", "gene_graph"), seeds=(0, 1),
        n_boot=50, model_params={"gene_graph": {"graph": "none", "epochs": 2}},
    )  # fmt: skip
    comp = run_benchmark(toy_rows, spec).comparisons
    assert set(comp["model"]) == {"gene_graph"}  # baselines are not judged against themselves
    assert set(comp["metric"]) == {"pearson_delta_vs_mean", "discrimination"}
    assert set(comp["verdict"]) <= {"beats", "ties", "loses"}
    assert (comp["seeds"] == 2).all()
