"""A benchmark is a declared split, models and seeds: the spec refuses what cannot run before any
work; every model is scored on the same held-out rows."""

from __future__ import annotations

import polars as pl
import pytest

from lpm.errors import LpmInputError
from lpm.evaluation.benchmark import (
    MAX_SEEDS,
    BenchmarkSpec,
    check_seed_count,
    run_benchmark,
    summarise,
)


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
