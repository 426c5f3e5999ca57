"""The evaluation panel: per-condition metrics of predicted against held-out long rows.

A condition is one held-out profile, ``(context, perturbation[, dose, time])``. Replicates of a
condition are averaged (continuous rows) or pooled (binary rows) first. Continuous metrics use
the non-binary rows only, binary metrics the ``readout_type == "binary"`` rows only. With ``n``
continuous readouts of a condition, ``top20`` is its ``min(20, n)`` readouts of largest ``|true|``.

``pearson_delta``
    Pearson of predicted vs true value over the condition's readouts.
``pearson_delta_top20``
    The same over the top-20 readouts.
``pearson_delta_vs_mean``
    Pearson of ``pred - mu`` vs ``true - mu``, where ``mu`` is the mean perturbed profile of
    training: per readout, the mean over the non-control, non-binary training conditions of the
    same context, or over all training contexts where the readout is unmeasured in that context.
    Readouts with no training value are left out of this metric only. It scores what a model
    gets right beyond the response shared by all perturbations (Viñas Torné et al. 2025, Systema).
``mse``, ``mse_top20``
    Mean squared error over all and over the top-20 readouts.
``direction_acc_top20``
    Share of the top-20 readouts where ``sign(pred) == sign(true)``.
``discrimination``
    Within a context: ``1 - (closer + ties / 2) / (n - 1)`` where ``closer`` counts the other
    held-out true profiles nearer to this prediction than its own true profile and ``ties`` those
    as near (distance: mean absolute difference over shared readouts, i.e. L1). 1.0: the own
    profile is the nearest; 0.5: chance. NaN for a context with one condition.
``auroc``, ``auprc``
    Per condition over its binary rows (scikit-learn's definitions), where both classes occur.
``auroc_pooled``, ``auprc_pooled``
    Over all binary rows at once.

Pearson is NaN (and left out of means, but counted as ``n_excluded``) with fewer than two readouts
or a constant vector. The summary mean is over conditions; its 95% interval is a percentile
bootstrap over conditions (pooled metrics: conditions resampled, scores recomputed; with more
than 512 distinct scores on quantile bins, shifted to the exact full-data score). Rows are
expected unique per condition and readout (as in a store); ties in ``|true|`` at the top-20
cut are broken in a fixed but arbitrary order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import polars as pl

from lpm.data import schema as S
from lpm.data.schema import condition_columns
from lpm.errors import LpmInputError
from lpm.evaluation import metrics as M
from lpm.evaluation.metrics import (
    HIGHER_IS_BETTER,
    METRICS,
    PER_CONDITION_METRICS,
    POOLED_METRICS,
    ratio_to_baseline,
)

__all__ = [
    "HIGHER_IS_BETTER",
    "MAX_BOOT",
    "METRICS",
    "PER_CONDITION_METRICS",
    "POOLED_METRICS",
    "PanelResult",
    "check_n_boot",
    "evaluate",
    "ratio_to_baseline",
]

TOP_K: Final = 20
#: The most bootstrap resamples per metric (each costs a pass over the conditions).
MAX_BOOT: Final = 1_000_000


def check_n_boot(n_boot: int) -> int:
    """``n_boot`` if it is a bootstrap count a panel can run (0 to :data:`MAX_BOOT`), else a
    one-line error naming ``--n-boot`` and the range."""
    if not 0 <= n_boot <= MAX_BOOT:
        raise LpmInputError(None, f"--n-boot must be between 0 and {MAX_BOOT:,}, got {n_boot}")
    return n_boot


_BINARY_METRICS: Final = frozenset({"auroc", "auprc", *POOLED_METRICS})
_PRED, _MU, _CID, _CODE = "_pred", "_mu", "_cid", "_readout_code"


@dataclass(frozen=True, eq=False)
class PanelResult:
    """Tidy results of :func:`evaluate`.

    ``per_condition``: one row per condition (its key columns, ``n_readouts``, ``n_binary`` and
    one column per metric of :data:`PER_CONDITION_METRICS`). ``summary``: one row per metric of
    :data:`METRICS` (``metric, mean, ci_low, ci_high, n, n_excluded``). ``per_context``: one row
    per context and metric (``context, metric, mean, n``).
    """

    per_condition: pl.DataFrame
    summary: pl.DataFrame
    per_context: pl.DataFrame


def evaluate(
    truth: pl.DataFrame, pred: np.ndarray, *, train: pl.DataFrame, n_boot: int = 1000, seed: int = 0
) -> PanelResult:
    """Score predictions of held-out long rows with the full metric panel.

    Parameters
    ----------
    truth
        Held-out long rows (``context, perturbation, readout, value`` and optional columns).
    pred
        Predicted values, one per row of ``truth`` in the same order.
    train
        Training long rows; their mean perturbed profile is the reference of
        ``pearson_delta_vs_mean``.
    n_boot
        Bootstrap resamples over conditions for the 95% intervals (0: no intervals).
    seed
        Seed of the bootstrap; the same seed gives the same intervals.

    Returns
    -------
    PanelResult
        Per-condition metrics, a summary with intervals and a per-context breakdown.

    Examples
    --------
    >>> import numpy as np, polars as pl
    >>> rows = pl.DataFrame({
    ...     "context": ["A"] * 6,
    ...     "perturbation": ["CRISPRi:X"] * 3 + ["CRISPRi:Y"] * 3,
    ...     "readout": ["g1", "g2", "g3"] * 2,
    ...     "value": [1.0, -2.0, 0.5, -1.0, 2.0, 0.0],
    ... })
    >>> result = evaluate(rows, rows["value"].to_numpy(), train=rows, n_boot=10)
    >>> result.summary.filter(pl.col("metric") == "pearson_delta")["mean"].item()
    1.0
    """
    check_n_boot(n_boot)
    pred = _check(truth, pred, train)
    keys = [c for c in condition_columns(truth.columns) if c != S.REPLICATE]
    rows = truth.with_columns(pl.Series(_PRED, pred))
    is_binary = (
        pl.col(S.READOUT_TYPE).fill_null("") == S.BINARY
        if S.READOUT_TYPE in rows.columns
        else pl.lit(False)
    )
    binary, continuous = rows.filter(is_binary), rows.filter(~is_binary)
    if S.REPLICATE in continuous.columns:
        continuous = continuous.group_by([*keys, S.READOUT]).agg(
            pl.col(S.VALUE).mean(), pl.col(_PRED).mean()
        )
    conds = rows.select(keys).unique().sort(keys, nulls_last=True).with_row_index(_CID)
    n_cond = conds.height
    continuous = continuous.join(conds, on=keys, how="left", nulls_equal=True)
    continuous = _with_mean_profile(continuous, train).with_columns(
        pl.col(S.READOUT).cast(pl.Categorical).to_physical().cast(pl.Int64).alias(_CODE)
    )
    binary = binary.join(conds, on=keys, how="left", nulls_equal=True)
    ctx_code = conds[S.CONTEXT].rank("dense").cast(pl.Int64).to_numpy() - 1

    metrics = _continuous_metrics(continuous, n_cond, ctx_code)
    bcid = binary[_CID].to_numpy().astype(np.int64)
    blabel, bscore = binary[S.VALUE].to_numpy().astype(np.float64), binary[_PRED].to_numpy()
    metrics["auroc"], metrics["auprc"] = M.binary_scores(bcid, blabel, bscore, n_cond)
    per_condition = conds.drop(_CID).with_columns(
        pl.Series(
            "n_readouts",
            np.bincount(continuous[_CID].to_numpy().astype(np.int64), minlength=n_cond),
        ),
        pl.Series("n_binary", np.bincount(bcid, minlength=n_cond)),
        *(pl.Series(m, metrics[m]) for m in PER_CONDITION_METRICS),
    )
    summary = _summary(per_condition, bcid, blabel, bscore, n_boot=n_boot, seed=seed)
    return PanelResult(
        per_condition=per_condition,
        summary=summary,
        per_context=_per_context(per_condition, binary),
    )


def _check(truth: pl.DataFrame, pred: np.ndarray, train: pl.DataFrame) -> np.ndarray:
    for name, df in (("truth", truth), ("train", train)):
        missing = [c for c in S.REQUIRED_COLUMNS if c not in df.columns]
        if missing:
            raise LpmInputError(name, f"missing column(s) {', '.join(missing)}")
    if truth.height == 0:
        raise LpmInputError("truth", "no rows to evaluate")
    values = np.asarray(pred, dtype=np.float64)
    if values.shape != (truth.height,):
        raise LpmInputError(
            "pred", f"shape {values.shape} does not match the {truth.height} truth rows"
        )
    if not np.isfinite(values).all():
        raise LpmInputError("pred", f"{int((~np.isfinite(values)).sum())} NaN/inf prediction(s)")
    if not np.isfinite(truth[S.VALUE].to_numpy()).all():
        raise LpmInputError("truth", "column 'value' has NaN/inf values")
    if S.READOUT_TYPE in truth.columns:
        labels = truth.filter(pl.col(S.READOUT_TYPE) == S.BINARY)[S.VALUE]
        if not labels.is_in([0.0, 1.0]).all():
            raise LpmInputError("truth", "binary readout value(s) are not 0 or 1")
    return values


def _with_mean_profile(rows: pl.DataFrame, train: pl.DataFrame) -> pl.DataFrame:
    """Add ``_mu``: the training mean perturbed profile of each row's context and readout."""
    perturbed = train.filter(pl.col(S.PERTURBATION) != S.CONTROL)
    if S.READOUT_TYPE in perturbed.columns:
        perturbed = perturbed.filter(pl.col(S.READOUT_TYPE).fill_null("") != S.BINARY)
    # One value per training condition and readout first, so replicates do not weigh more.
    cond = [*(c for c in condition_columns(perturbed.columns) if c != S.REPLICATE), S.READOUT]
    per_condition = (
        perturbed.group_by(cond).agg(pl.col(S.VALUE).mean())
        if S.REPLICATE in perturbed.columns
        else perturbed
    )
    local = per_condition.group_by(S.CONTEXT, S.READOUT).agg(
        pl.col(S.VALUE).cast(pl.Float64).mean().alias(_MU)
    )
    overall = per_condition.group_by(S.READOUT).agg(
        pl.col(S.VALUE).cast(pl.Float64).mean().alias("_mu_all")
    )
    out = rows.join(local, on=[S.CONTEXT, S.READOUT], how="left").join(
        overall, on=S.READOUT, how="left"
    )
    return out.with_columns(pl.coalesce(_MU, "_mu_all").fill_null(np.nan).alias(_MU)).drop(
        "_mu_all"
    )


def _continuous_metrics(
    rows: pl.DataFrame, n_cond: int, ctx_code: np.ndarray
) -> dict[str, np.ndarray]:
    cid = rows[_CID].to_numpy().astype(np.int64)
    true = rows[S.VALUE].to_numpy().astype(np.float64)
    pred = rows[_PRED].to_numpy().astype(np.float64)
    mu = rows[_MU].to_numpy().astype(np.float64)
    code = rows[_CODE].to_numpy()
    # By condition, then largest |true| first: one sort on a combined key (cid + a fraction in
    # [0, 1) that falls as |true| grows); exact ties in |true| keep an arbitrary, fixed order.
    scale = float(np.abs(true).max()) if true.size else 0.0
    order = np.argsort(cid + (scale - np.abs(true)) / (scale * (1.0 + 1e-9) + 1e-300))
    cid, true, pred, mu, code = cid[order], true[order], pred[order], mu[order], code[order]
    counts = np.bincount(cid, minlength=n_cond)
    rank = np.arange(cid.size) - (np.cumsum(counts) - counts)[cid]
    top = rank < TOP_K
    ref = ~np.isnan(mu)
    sq = (pred - true) ** 2
    return {
        "pearson_delta": M.grouped_pearson(cid, pred, true, n_cond),
        "pearson_delta_top20": M.grouped_pearson(cid[top], pred[top], true[top], n_cond),
        "pearson_delta_vs_mean": M.grouped_pearson(
            cid[ref],
            pred[ref] - mu[ref],
            true[ref] - mu[ref],
            n_cond,
            x_reference=np.abs(pred[ref]) + np.abs(mu[ref]),
        ),
        "mse": M.grouped_mean(cid, sq, n_cond),
        "mse_top20": M.grouped_mean(cid[top], sq[top], n_cond),
        "direction_acc_top20": M.grouped_mean(
            cid[top], (np.sign(pred[top]) == np.sign(true[top])).astype(np.float64), n_cond
        ),
        "discrimination": _discrimination(cid, code, pred, true, n_cond, ctx_code),
    }


def _discrimination(
    cid: np.ndarray,
    code: np.ndarray,
    pred: np.ndarray,
    true: np.ndarray,
    n_cond: int,
    ctx_code: np.ndarray,
) -> np.ndarray:
    """Pivot each context's rows (sorted by condition) to matrices and score them."""
    out = np.full(n_cond, np.nan)
    bounds = np.flatnonzero(np.diff(ctx_code)) + 1  # conditions are sorted by context first
    for lo, hi in zip(np.concatenate(([0], bounds)), np.append(bounds, n_cond), strict=True):
        a, b = np.searchsorted(cid, [lo, hi])
        if b == a:
            continue
        local_cond, rows_of = np.unique(cid[a:b], return_inverse=True)
        readouts, cols = np.unique(code[a:b], return_inverse=True)
        p = np.full((local_cond.size, readouts.size), np.nan)
        t = np.full_like(p, np.nan)
        p[rows_of, cols] = pred[a:b]
        t[rows_of, cols] = true[a:b]
        out[local_cond] = M.discrimination(p, t)
    return out


def _summary(
    per_condition: pl.DataFrame,
    bcid: np.ndarray,
    blabel: np.ndarray,
    bscore: np.ndarray,
    *,
    n_boot: int,
    seed: int,
) -> pl.DataFrame:
    has_cont = per_condition["n_readouts"].to_numpy() > 0
    has_bin = per_condition["n_binary"].to_numpy() > 0
    records = []
    for i, metric in enumerate(PER_CONDITION_METRICS):
        values = per_condition[metric].to_numpy()
        ok = values[~np.isnan(values)]
        lo, hi = M.bootstrap_ci(ok, n_boot=n_boot, rng=np.random.default_rng([seed, i]))
        eligible = int((has_bin if metric in _BINARY_METRICS else has_cont).sum())
        mean = float(ok.mean()) if ok.size else float("nan")
        records.append((metric, mean, lo, hi, int(ok.size), eligible - int(ok.size)))
    auroc, auprc = M.binary_scores(np.zeros(bcid.size, dtype=np.int64), blabel, bscore, 1)
    rng = np.random.default_rng([seed, len(PER_CONDITION_METRICS)])
    exact = (float(auroc[0]), float(auprc[0]))
    ci_auroc = ci_auprc = (float("nan"), float("nan"))
    if not np.isnan(exact[0]):
        ci_auroc, ci_auprc = M.bootstrap_pooled_binary(
            bcid, blabel, bscore, exact=exact, n_boot=n_boot, rng=rng
        )
    n_bin = int(has_bin.sum())
    for metric, value, (lo, hi) in (
        ("auroc_pooled", auroc[0], ci_auroc),
        ("auprc_pooled", auprc[0], ci_auprc),
    ):
        records.append(
            (
                metric,
                float(value),
                lo,
                hi,
                n_bin if not np.isnan(value) else 0,
                0 if not np.isnan(value) else n_bin,
            )
        )
    schema = {
        "metric": pl.String,
        "mean": pl.Float64,
        "ci_low": pl.Float64,
        "ci_high": pl.Float64,
        "n": pl.Int64,
        "n_excluded": pl.Int64,
    }
    return pl.DataFrame(records, schema=schema, orient="row")


def _per_context(per_condition: pl.DataFrame, binary: pl.DataFrame) -> pl.DataFrame:
    long = per_condition.unpivot(
        list(PER_CONDITION_METRICS), index=S.CONTEXT, variable_name="metric", value_name="v"
    )
    ok = pl.col("v").is_not_nan()
    table = long.group_by(S.CONTEXT, "metric").agg(
        pl.col("v").filter(ok).mean().alias("mean"), ok.sum().cast(pl.Int64).alias("n")
    )
    contexts = sorted(per_condition[S.CONTEXT].unique().to_list())
    code = {c: i for i, c in enumerate(contexts)}
    bctx = (
        binary[S.CONTEXT].replace_strict(code, return_dtype=pl.Int64).to_numpy()
        if binary.height
        else np.zeros(0, np.int64)
    )
    auroc, auprc = M.binary_scores(
        bctx, binary[S.VALUE].to_numpy().astype(np.float64), binary[_PRED].to_numpy(), len(contexts)
    )
    n_bin = per_condition.group_by(S.CONTEXT).agg(
        (pl.col("n_binary") > 0).sum().cast(pl.Int64).alias("n")
    )
    n_of = dict(n_bin.iter_rows())
    pooled = pl.DataFrame(
        [
            (c, m, float(v[code[c]]), 0 if np.isnan(v[code[c]]) else n_of[c])
            for m, v in (("auroc_pooled", auroc), ("auprc_pooled", auprc))
            for c in contexts
        ],
        schema={S.CONTEXT: pl.String, "metric": pl.String, "mean": pl.Float64, "n": pl.Int64},
        orient="row",
    )
    out = pl.concat([table.with_columns(pl.col("mean").fill_null(np.nan)), pooled])
    order = pl.col("metric").replace_strict(
        {m: i for i, m in enumerate(METRICS)}, return_dtype=pl.Int64
    )
    return out.sort(pl.col(S.CONTEXT), order)
