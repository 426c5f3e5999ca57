"""Each model against the best baseline on paired conditions: the verdicts a benchmark prints.

A verdict compares per-condition scores of the same held-out conditions (same seed, same scored
rows): the difference model − best baseline is averaged over conditions within each seed and
then over seeds (as a benchmark's means are), and its 95% interval is a percentile bootstrap
that resamples conditions within each seed (seeded: the same seed gives the same interval).

``beats``
    the interval lies on the better side of 0 (above it where higher is better);
``loses``
    it lies on the worse side;
``ties``
    it spans 0: the data cannot tell the two apart;
``untested``
    no interval (fewer than two paired conditions, or no bootstrap).

The best baseline of a metric is the baseline with the best mean over seeds in that table (see
:func:`~lpm.evaluation.metrics.ratio_to_baseline`). Verdicts name the key metrics: corrected
Pearson (``pearson_delta_vs_mean``) and ``discrimination`` on continuous readouts, per-condition
``auroc`` and ``auprc`` on binary ones, and on single-readout tables the scores across
conditions (:mod:`lpm.evaluation.across`), whose pairs are perturbations (or contexts) within
a seed rather than conditions.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Final, NamedTuple

import numpy as np
import polars as pl

from lpm.evaluation.metrics import ACROSS_METRICS, HIGHER_IS_BETTER, ratio_to_baseline

#: The metrics a verdict names: continuous readouts, then binary ones, then single-readout
#: tables (scores across conditions, paired by perturbation or context within a seed).
KEY_METRICS: Final = ("pearson_delta_vs_mean", "discrimination")
BINARY_KEY_METRICS: Final = ("auroc", "auprc")
ACROSS_KEY_METRICS: Final = ACROSS_METRICS
VERDICT_METRICS: Final = (*KEY_METRICS, *BINARY_KEY_METRICS, *ACROSS_KEY_METRICS)
BEATS, TIES, LOSES, UNTESTED = "beats", "ties", "loses", "untested"
#: Bootstrap indices drawn per chunk (memory stays bounded for large tables).
_CHUNK: Final = 1 << 22

#: Columns of :func:`compare_to_best_baseline`'s table.
COMPARISON_SCHEMA: Final = {
    "group": pl.String,
    "model": pl.String,
    "metric": pl.String,
    "baseline": pl.String,
    "difference": pl.Float64,
    "ci_low": pl.Float64,
    "ci_high": pl.Float64,
    "n_pairs": pl.Int64,
    "seeds": pl.Int64,
    "verdict": pl.String,
}


def verdict(metric: str, ci_low: float, ci_high: float) -> str:
    """``beats``, ``loses``, ``ties`` or ``untested`` from the interval of model − baseline."""
    return _verdict(HIGHER_IS_BETTER[metric], ci_low, ci_high)


def _verdict(higher_is_better: bool, ci_low: float, ci_high: float) -> str:
    if not (np.isfinite(ci_low) and np.isfinite(ci_high)):
        return UNTESTED
    better, worse = (ci_low > 0, ci_high < 0)
    if not higher_is_better:
        better, worse = worse, better
    return BEATS if better else LOSES if worse else TIES


def _boot_means(values: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    n = values.size
    means = np.empty(n_boot)
    step = max(1, _CHUNK // n)
    for b in range(0, n_boot, step):
        k = min(step, n_boot - b)
        means[b : b + k] = values[rng.integers(0, n, size=(k, n))].mean(axis=1)
    return means


def paired_interval(
    diffs: Sequence[np.ndarray], *, n_boot: int, rng: np.random.Generator
) -> tuple[float, float, float]:
    """Mean over seeds of the per-seed mean difference, and its 95% interval resampling
    conditions within each seed (NaN without a bootstrap or with under two pairs).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> diff, lo, hi = paired_interval([np.array([0.1, 0.3, 0.2]), np.array([0.2, 0.4])],
    ...                                n_boot=200, rng=rng)
    >>> round(diff, 3), bool(lo > 0)
    (0.25, True)
    """
    diffs = [d for d in diffs if d.size]
    if not diffs:
        return float("nan"), float("nan"), float("nan")
    point = float(np.mean([d.mean() for d in diffs]))
    if n_boot == 0 or sum(d.size for d in diffs) < 2:
        return point, float("nan"), float("nan")
    boots = np.zeros(n_boot)
    for d in diffs:
        boots += _boot_means(d, n_boot, rng)
    lo, hi = np.quantile(boots / len(diffs), [0.025, 0.975])
    return point, float(lo), float(hi)


class Paired(NamedTuple):
    """A paired comparison: the mean difference, its 95% interval and the verdict it supports."""

    difference: float
    ci_low: float
    ci_high: float
    verdict: str


def paired_verdict(
    diffs: Sequence[np.ndarray] | np.ndarray,
    *,
    higher_is_better: bool = True,
    n_boot: int = 1000,
    seed: int = 0,
) -> Paired:
    """The verdict on paired differences (one thing − the other) that a script has itself: the
    same seeded bootstrap and rule as :func:`compare_to_best_baseline`, for pairs that are not
    a benchmark's conditions (e.g. one area under a learning curve per seed).

    ``diffs`` is one array per seed (conditions resampled within each seed), or a single array
    whose entries are the resampled units themselves (e.g. one difference per seed).

    Examples
    --------
    >>> import numpy as np
    >>> paired_verdict(np.array([0.02, 0.03, 0.01, 0.04, 0.02]), seed=1).verdict
    'beats'
    >>> paired_verdict(np.array([0.02, -0.03, 0.01, 0.04, -0.02]), seed=1).verdict
    'ties'
    """
    parts = [diffs] if isinstance(diffs, np.ndarray) else list(diffs)
    parts = [np.asarray(d, dtype=np.float64) for d in parts]
    parts = [d[np.isfinite(d)] for d in parts]
    diff, lo, hi = paired_interval(parts, n_boot=n_boot, rng=np.random.default_rng(seed))
    return Paired(diff, lo, hi, _verdict(higher_is_better, lo, hi))


def _best_baselines(summary: pl.DataFrame, baselines: Sequence[str]) -> dict[str, str]:
    """The best baseline of each verdict metric in one table (none where no baseline scored)."""
    rows = summary.filter(pl.col("metric").is_in(VERDICT_METRICS))
    if rows.height == 0:
        return {}
    best = ratio_to_baseline(rows, baselines=baselines).drop_nulls("best_baseline")
    return dict(best.select("metric", "best_baseline").unique().iter_rows())


def _diffs(table: pl.DataFrame, model: str, baseline: str, metric: str) -> list[np.ndarray]:
    """Per seed: the model's minus the baseline's score on conditions both have one for (the
    rows of ``metric``'s own units: conditions, or perturbations/contexts for across scores)."""
    wide = (
        table.filter(pl.col("model").is_in([model, baseline]) & pl.col(metric).is_not_null())
        .select("seed", "condition", "model", metric)
        .pivot(on="model", index=["seed", "condition"], values=metric)
        .drop_nulls()
        .filter(pl.col(model).is_not_nan() & pl.col(baseline).is_not_nan())
    )
    return [
        (part[model] - part[baseline]).to_numpy().astype(np.float64)
        for part in wide.partition_by("seed", maintain_order=True)
    ]


def compare_to_best_baseline(
    per_condition: pl.DataFrame,
    summary: pl.DataFrame,
    *,
    baselines: Sequence[str],
    n_boot: int,
    seed: int = 0,
) -> pl.DataFrame:
    """One row per (table, model that is not a baseline, verdict metric with a best baseline).

    Parameters
    ----------
    per_condition
        ``seed, group, model, condition`` (the condition's index in that seed's table, the same
        for every model of the table) and a column per verdict metric.
    summary
        Means over seeds (``group, model, metric, mean, ci_low, ci_high``): they pick the best
        baseline.
    baselines
        Names of the models that count as baselines.
    n_boot
        Bootstrap resamples (0: no intervals, every verdict ``untested``).
    seed
        Seed of the bootstrap (with the table, model and metric names).

    Returns
    -------
    polars.DataFrame
        ``group, model, metric, baseline, difference, ci_low, ci_high, n_pairs, seeds, verdict``.

    Examples
    --------
    >>> import polars as pl
    >>> per_condition = pl.DataFrame({
    ...     "seed": [0] * 6, "group": ["g"] * 6, "model": ["no_change"] * 3 + ["lpm"] * 3,
    ...     "condition": [0, 1, 2] * 2, "discrimination": [0.5, 0.6, 0.4, 0.7, 0.8, 0.6],
    ... })
    >>> summary = pl.DataFrame({"group": ["g", "g"], "model": ["no_change", "lpm"],
    ...     "metric": ["discrimination"] * 2, "mean": [0.5, 0.7], "ci_low": [0.4, 0.6],
    ...     "ci_high": [0.6, 0.8]})
    >>> out = compare_to_best_baseline(per_condition, summary, baselines=["no_change"], n_boot=100)
    >>> out.select("model", "baseline", "verdict").row(0)
    ('lpm', 'no_change', 'beats')
    """
    records = []
    for group in sorted(summary["group"].unique().to_list()) if summary.height else []:
        best = _best_baselines(summary.filter(pl.col("group") == group), baselines)
        table = per_condition.filter(pl.col("group") == group)
        models = sorted(set(table["model"].to_list()) - set(baselines))
        for model in models:
            for metric in (m for m in VERDICT_METRICS if m in best and m in table.columns):
                diffs = _diffs(table, model, best[metric], metric)
                key = zlib.crc32(f"{group}\0{model}\0{metric}".encode())
                rng = np.random.default_rng([seed, key])
                diff, lo, hi = paired_interval(diffs, n_boot=n_boot, rng=rng)
                if np.isnan(diff):
                    continue
                n_pairs, n_seeds = sum(d.size for d in diffs), sum(1 for d in diffs if d.size)
                said = verdict(metric, lo, hi)
                records.append(
                    (group, model, metric, best[metric], diff, lo, hi, n_pairs, n_seeds, said)
                )
    return pl.DataFrame(records, schema=COMPARISON_SCHEMA, orient="row")


__all__ = [
    "ACROSS_KEY_METRICS",
    "BEATS",
    "BINARY_KEY_METRICS",
    "COMPARISON_SCHEMA",
    "KEY_METRICS",
    "LOSES",
    "TIES",
    "UNTESTED",
    "VERDICT_METRICS",
    "Paired",
    "compare_to_best_baseline",
    "paired_interval",
    "paired_verdict",
    "verdict",
]
