"""Scores across conditions: does a model rank each perturbation's held-out contexts (and each
context's held-out perturbations) in the right order? What a user of single-readout data
(viability: one killing score per compound and cell line) asks, where the panel's
per-condition metrics, which compare readouts within a profile, have one readout to work with.

Replicates are averaged per condition and readout first; binary readouts are left out. A
*perturbation* unit is one (perturbation[, dose, time], readout) and its items are its held-out
contexts; a *context* unit is one (context, readout) and its items are its held-out
(perturbation[, dose, time]) conditions. A unit is scored when it has at least
:data:`MIN_ITEMS` items; the others are skipped and counted (``n_excluded``).

``spearman_per_perturbation``, ``spearman_per_context``
    Spearman correlation (average ranks for ties) of predicted against measured values over the
    unit's items; NaN (counted as excluded) where either side is constant.
``auroc_top10_per_perturbation``, ``auroc_top10_per_context``
    AUROC of the prediction for "the most sensitive 10 %": of a unit's ``n`` items, the
    ``k = ceil(n / 10)`` with the largest *sensitivity* are positives (items tied with the k-th
    are positives too), the rest negatives; NaN where no negative is left. Sensitivity is
    ``-value`` for ``readout_type == "viability"`` (fewer cells alive = more sensitive, as in
    PRISM's dose series), and ``|value|`` (the largest change of either sign) for every other
    readout type or none (PRISM's ``killing_auc`` is a ``delta``: 0 as untreated, higher = more
    killing); the score is the prediction transformed the same way.

The summary mean is over scored units, with a seeded percentile bootstrap 95% interval over
units (:func:`lpm.evaluation.metrics.bootstrap_ci`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import polars as pl

from lpm.data import schema as S
from lpm.errors import LpmInputError
from lpm.evaluation import metrics as M
from lpm.evaluation.metrics import ACROSS_METRICS

#: The fewest items (contexts of a perturbation, perturbations of a context) a unit needs.
MIN_ITEMS: Final = 3
#: Readout types whose lower values are the more sensitive items (the rest: larger |value|).
LOW_IS_SENSITIVE: Final = frozenset({"viability"})
#: The per-unit axes: (name, whether its units are perturbations).
AXES: Final = (("perturbation", True), ("context", False))
_PRED, _SENS, _SCORE, _UID, _N = "_pred", "_sens", "_score", "_uid", "n_items"

SUMMARY_SCHEMA: Final = {
    "metric": pl.String,
    "mean": pl.Float64,
    "ci_low": pl.Float64,
    "ci_high": pl.Float64,
    "n": pl.Int64,
    "n_excluded": pl.Int64,
}


@dataclass(frozen=True, eq=False)
class AcrossResult:
    """Tidy results of :func:`evaluate_across`: per unit (its keys, ``n_items`` and its two
    scores) for each axis, and a summary in the panel's schema (``metric, mean, ci_low,
    ci_high, n, n_excluded``; ``n``: units scored)."""

    per_perturbation: pl.DataFrame
    per_context: pl.DataFrame
    summary: pl.DataFrame


def single_readout(truth: pl.DataFrame) -> bool:
    """Whether the non-binary rows of ``truth`` hold exactly one readout (viability-like data)."""
    rows = _continuous(truth)
    return rows.height > 0 and rows[S.READOUT].n_unique() == 1


def _continuous(rows: pl.DataFrame) -> pl.DataFrame:
    if S.READOUT_TYPE not in rows.columns:
        return rows
    return rows.filter(pl.col(S.READOUT_TYPE).cast(pl.String).fill_null("") != S.BINARY)


def _items(truth: pl.DataFrame, pred: np.ndarray) -> pl.DataFrame:
    """One row per condition and readout: mean measured and predicted value, sensitivity and
    score (see the module)."""
    if pred.shape != (truth.height,):
        raise LpmInputError("pred", f"shape {pred.shape} does not match the {truth.height} rows")
    rows = _continuous(truth.with_columns(pl.Series(_PRED, pred.astype(np.float64))))
    keys = [c for c in S.condition_columns(rows.columns) if c != S.REPLICATE]
    kind = (
        pl.col(S.READOUT_TYPE).cast(pl.String).fill_null("").first()
        if S.READOUT_TYPE in rows.columns
        else pl.lit("")
    )
    out = rows.group_by([*keys, S.READOUT]).agg(
        pl.col(S.VALUE).cast(pl.Float64).mean(), pl.col(_PRED).mean(), kind.alias("_kind")
    )
    low = pl.col("_kind").is_in(list(LOW_IS_SENSITIVE))
    return out.with_columns(
        pl.when(low).then(-pl.col(S.VALUE)).otherwise(pl.col(S.VALUE).abs()).alias(_SENS),
        pl.when(low).then(-pl.col(_PRED)).otherwise(pl.col(_PRED).abs()).alias(_SCORE),
    )


def _per_unit(items: pl.DataFrame, unit: list[str], name: str) -> pl.DataFrame:
    """Each unit's item count, Spearman and top-10 % AUROC (NaN below :data:`MIN_ITEMS`)."""
    n = pl.len().over(unit)
    ranked = items.with_columns(
        n.alias(_N),
        pl.col(S.VALUE).rank("average").over(unit).alias("_rt"),
        pl.col(_PRED).rank("average").over(unit).alias("_rp"),
        # positives: the ceil(n / 10) most sensitive, ties at the cut included
        (pl.col(_SENS).rank("min", descending=True).over(unit) <= (n + 9) // 10).alias("_pos"),
    )
    units = (
        ranked.select(*unit, _N).unique(maintain_order=False).sort(unit, nulls_last=True)
    ).with_row_index(_UID)
    scored = (
        ranked.join(units.drop(_N), on=unit, how="left", nulls_equal=True)
        .filter(pl.col(_N) >= MIN_ITEMS)
        .sort(_UID)
    )
    uid = scored[_UID].to_numpy().astype(np.int64)
    n_units = units.height
    rho = M.grouped_pearson(uid, scored["_rp"].to_numpy(), scored["_rt"].to_numpy(), n_units)
    auroc, _ = M.binary_scores(
        uid, scored["_pos"].to_numpy().astype(np.float64), scored[_SCORE].to_numpy(), n_units
    )
    return units.drop(_UID).with_columns(
        pl.Series(f"spearman_per_{name}", rho), pl.Series(f"auroc_top10_per_{name}", auroc)
    )


def evaluate_across(
    truth: pl.DataFrame, pred: np.ndarray, *, n_boot: int = 1000, seed: int = 0
) -> AcrossResult:
    """Score how well predictions rank each perturbation's contexts and each context's
    perturbations (see the module for the definitions).

    Parameters
    ----------
    truth
        Held-out long rows (``context, perturbation, readout, value`` and optional columns).
    pred
        Predicted values, one per row of ``truth`` in the same order.
    n_boot
        Bootstrap resamples over units for the 95% intervals (0: no intervals).
    seed
        Seed of the bootstrap; the same seed gives the same intervals.

    Returns
    -------
    AcrossResult
        Per-perturbation and per-context scores and their summary.

    Examples
    --------
    >>> import numpy as np, polars as pl
    >>> truth = pl.DataFrame({"context": ["a", "b", "c", "d"], "perturbation": ["X"] * 4,
    ...                       "readout": ["auc"] * 4, "value": [0.1, 0.4, 0.2, 0.9]})
    >>> res = evaluate_across(truth, np.array([0.0, 0.3, 0.5, 0.8]), n_boot=0)
    >>> res.per_perturbation["spearman_per_perturbation"].item()
    0.8
    """
    pred = np.asarray(pred, dtype=np.float64)
    items = _items(truth, pred)
    keys = [c for c in S.condition_columns(items.columns) if c != S.REPLICATE]
    tables = {
        name: _per_unit(
            items,
            [*(c for c in keys if (c != S.CONTEXT) == is_pert), S.READOUT],
            name,
        )
        for name, is_pert in AXES
    }
    records = []
    for i, metric in enumerate(ACROSS_METRICS):
        name = metric.rpartition("_per_")[2]
        values = tables[name][metric].to_numpy()
        ok = values[~np.isnan(values)]
        lo, hi = M.bootstrap_ci(ok, n_boot=n_boot, rng=np.random.default_rng([seed, 1000 + i]))
        mean = float(ok.mean()) if ok.size else float("nan")
        records.append((metric, mean, lo, hi, int(ok.size), values.size - int(ok.size)))
    return AcrossResult(
        per_perturbation=tables["perturbation"],
        per_context=tables["context"],
        summary=pl.DataFrame(records, schema=SUMMARY_SCHEMA, orient="row"),
    )


__all__ = [
    "AXES",
    "LOW_IS_SENSITIVE",
    "MIN_ITEMS",
    "AcrossResult",
    "evaluate_across",
    "single_readout",
]
