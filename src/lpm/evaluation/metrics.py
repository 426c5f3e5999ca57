"""The metric panel's names and directions, vectorised kernels, and the ratio to baselines.

Every kernel takes flat arrays and integer group ids and never loops in Python over rows or
groups; undefined values (too few points, constant vectors, one class only) are NaN, computed
without numpy warnings.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import numpy as np
import polars as pl
from scipy import sparse
from scipy.spatial.distance import cdist

from lpm.errors import LpmInputError

PER_CONDITION_METRICS: Final = (
    "pearson_delta",
    "pearson_delta_top20",
    "pearson_delta_vs_mean",
    "mse",
    "mse_top20",
    "direction_acc_top20",
    "discrimination",
    "auroc",
    "auprc",
)
POOLED_METRICS: Final = ("auroc_pooled", "auprc_pooled")
METRICS: Final = (*PER_CONDITION_METRICS, *POOLED_METRICS)
#: Scores across conditions, per perturbation and per context (:mod:`lpm.evaluation.across`).
ACROSS_METRICS: Final = (
    "spearman_per_perturbation",
    "auroc_top10_per_perturbation",
    "spearman_per_context",
    "auroc_top10_per_context",
)
#: Every metric a benchmark table can hold, in display order.
ALL_METRICS: Final = (*METRICS, *ACROSS_METRICS)
HIGHER_IS_BETTER: Final[dict[str, bool]] = {m: not m.startswith("mse") for m in ALL_METRICS}


#: Bootstrap work is done in chunks of at most this many resampled values.
_CHUNK = 4_000_000
#: Score bins of the pooled binary bootstrap (exact when scores take no more distinct values).
_BINS = 512


def _divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den`` where ``den > 0``, NaN elsewhere, without warnings."""
    out = np.full(np.broadcast(num, den).shape, np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out


def grouped_mean(gid: np.ndarray, values: np.ndarray, n_groups: int) -> np.ndarray:
    """Mean of ``values`` per group; NaN for groups with no values."""
    cnt = np.bincount(gid, minlength=n_groups).astype(np.float64)
    return _divide(np.bincount(gid, weights=values, minlength=n_groups), cnt)


#: A vector whose range is within this share of its largest |value| counts as constant.
RELATIVE_FLAT = 1e-6


def _varies(v: np.ndarray, starts: np.ndarray, reference: np.ndarray | None = None) -> np.ndarray:
    """Per group: does ``v`` vary beyond rounding? Judged against ``|reference|`` when ``v`` is
    a difference (pred − mean), else against ``|v|`` itself."""
    lo, hi = np.minimum.reduceat(v, starts), np.maximum.reduceat(v, starts)
    if reference is None:
        scale = np.maximum(np.abs(lo), np.abs(hi))
    else:
        scale = np.maximum.reduceat(np.abs(reference), starts)
    return (hi - lo) > RELATIVE_FLAT * scale + np.finfo(np.float64).tiny


def grouped_pearson(
    gid: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    n_groups: int,
    *,
    x_reference: np.ndarray | None = None,
) -> np.ndarray:
    """Pearson correlation of ``x`` and ``y`` within each group.

    ``gid`` must be sorted ascending. NaN for groups with fewer than two points or where either
    vector is constant: its range is at most ``RELATIVE_FLAT`` of its largest magnitude (so a
    difference of two float means computed in another order does not count as variation).
    """
    out = np.full(n_groups, np.nan)
    if gid.size == 0:
        return out
    cnt = np.bincount(gid, minlength=n_groups)
    present = np.flatnonzero(cnt)
    starts = np.concatenate(([0], np.cumsum(cnt[present])[:-1]))
    varies = _varies(x, starts, x_reference) & _varies(y, starts)
    n = cnt.astype(np.float64)
    xc = x - _divide(np.bincount(gid, weights=x, minlength=n_groups), n)[gid]
    yc = y - _divide(np.bincount(gid, weights=y, minlength=n_groups), n)[gid]
    sxy = np.bincount(gid, weights=xc * yc, minlength=n_groups)[present]
    sxx = np.bincount(gid, weights=xc * xc, minlength=n_groups)[present]
    syy = np.bincount(gid, weights=yc * yc, minlength=n_groups)[present]
    ok = varies & (cnt[present] >= 2) & (sxx > 0) & (syy > 0)
    out[present[ok]] = np.clip(sxy[ok] / np.sqrt(sxx[ok] * syy[ok]), -1.0, 1.0)
    return out


def binary_scores(
    gid: np.ndarray,
    label: np.ndarray,
    score: np.ndarray,
    n_groups: int,
    weights: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """AUROC and average precision (AUPRC) per group, optionally with row weights.

    Same definitions as scikit-learn's ``roc_auc_score`` (trapezoidal ROC area, ties count half)
    and ``average_precision_score`` (sum over thresholds of recall gain × precision). ``weights``
    of shape ``(B, n)`` gives ``B`` weighted versions at once (a bootstrap); the result is then
    ``(B, n_groups)``, otherwise ``(n_groups,)``. NaN where a group lacks either class.
    """
    w = np.ones((1, gid.size)) if weights is None else np.atleast_2d(weights)
    auroc = np.full((w.shape[0], n_groups), np.nan)
    ap = np.full_like(auroc, np.nan)
    if gid.size:
        # Descending score within each group (order inside a tie block does not matter).
        order = np.argsort(-score)
        order = order[np.argsort(gid[order], kind="stable")]
        g, y, s, w = gid[order], label[order].astype(np.float64), score[order], w[:, order]
        # Threshold blocks: runs of equal score within a group; ``ends`` is each block's last row.
        last = np.ones(g.size, dtype=bool)
        last[:-1] = (g[1:] != g[:-1]) | (s[1:] != s[:-1])
        ends = np.flatnonzero(last)
        new_group = np.ones(g.size, dtype=bool)
        new_group[1:] = g[1:] != g[:-1]
        row_starts = np.flatnonzero(new_group)
        seg = (np.cumsum(new_group) - 1)[ends]  # which group each block belongs to
        tp, fp = (_within_group_cumsum(w * v, row_starts, ends, seg) for v in (y, 1.0 - y))
        first = np.ones(ends.size, dtype=bool)
        first[1:] = seg[1:] != seg[:-1]
        prev_tp = np.where(first, 0.0, np.roll(tp, 1, axis=1))
        prev_fp = np.where(first, 0.0, np.roll(fp, 1, axis=1))
        block_starts = np.flatnonzero(first)
        group_last = np.append(block_starts[1:], ends.size) - 1
        pos, neg = tp[:, group_last], fp[:, group_last]
        area = np.add.reduceat((fp - prev_fp) * (tp + prev_tp) / 2.0, block_starts, axis=1)
        precision = np.nan_to_num(_divide(tp, tp + fp))
        gain = np.add.reduceat((tp - prev_tp) * precision, block_starts, axis=1)
        ok = (pos > 0) & (neg > 0)
        groups = g[row_starts]
        auroc[:, groups] = np.where(ok, _divide(area, pos * neg), np.nan)
        ap[:, groups] = np.where(ok, _divide(gain, pos), np.nan)
    return (auroc[0], ap[0]) if weights is None else (auroc, ap)


def _within_group_cumsum(
    values: np.ndarray, row_starts: np.ndarray, ends: np.ndarray, seg: np.ndarray
) -> np.ndarray:
    """Cumulative sums of ``values`` (B, n) restarted at each group, read at the block ends."""
    cum = np.cumsum(values, axis=1)
    before = np.concatenate((np.zeros((values.shape[0], 1)), cum), axis=1)[:, row_starts]
    return cum[:, ends] - before[:, seg]


def discrimination(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Per profile, how well the prediction picks out its own true profile among the others.

    ``pred`` and ``true`` are (m, r) matrices of one context with NaN where a readout is
    unmeasured; a prediction is only ever made where its truth is measured, so both share one
    mask. The distance between prediction i and true profile j is the mean absolute difference
    (L1 per readout) over the readouts both measure; j is comparable when they share any. The
    score is ``1 - (closer + ties / 2) / n``: ``closer`` counts the other comparable true profiles
    strictly nearer to prediction i than its own, ``ties`` those as near (within 1e-9 of the
    typical value), ``n`` all other comparable ones. 1.0: the own profile is the nearest, 0.5:
    chance; NaN when n == 0.
    """
    m = pred.shape[0]
    out = np.full(m, np.nan)
    if m < 2:
        return out
    measured = ~np.isnan(true)
    p = np.where(measured, pred, 0.0)
    t = np.where(measured, true, 0.0)
    full = bool(measured.all())
    # Unmeasured entries as a sparse matrix: the corrections below cost in proportion to them
    # (and stay off the multithreaded BLAS, which contends with polars' threads on small inputs).
    missing = sparse.csr_matrix(~measured, dtype=np.float64)
    n_missing = np.asarray(missing.sum(axis=1)).ravel()
    abs_p, abs_t = np.abs(p), np.abs(t)
    tol = 1e-9 * max(float(abs_t.sum() / max(1, measured.sum())), 1e-300)
    step = max(1, _CHUNK // m)  # rows of predictions per block, to bound memory
    for lo in range(0, m, step):
        rows = np.arange(lo, min(lo + step, m))
        total = cdist(p[rows], t, "cityblock")
        shared = np.full(total.shape, float(true.shape[1]))
        if not full:
            # With unmeasured entries set to 0, the full L1 adds |p_ir| where only j misses r
            # and |t_jr| where only i misses r; subtract both to keep the shared readouts.
            block = missing[rows]
            total -= np.asarray(missing @ abs_p[rows].T).T + np.asarray(block @ abs_t.T)
            both = np.asarray((block @ missing.T).todense())
            shared -= n_missing[rows][:, None] + n_missing[None, :] - both
        dist = np.maximum(_divide(total, shared), 0.0)
        comparable = shared > 0
        comparable[np.arange(rows.size), rows] = False
        own = dist[np.arange(rows.size), rows][:, None]
        closer = (comparable & (dist < own - tol)).sum(axis=1)
        ties = (comparable & (np.abs(dist - own) <= tol)).sum(axis=1)
        n = comparable.sum(axis=1).astype(np.float64)
        out[rows] = 1.0 - _divide(closer + 0.5 * ties, n)
    return out


def bootstrap_ci(
    values: np.ndarray, *, n_boot: int, rng: np.random.Generator
) -> tuple[float, float]:
    """Percentile 95% interval of the mean of ``values`` over ``n_boot`` resamples."""
    n = values.size
    if n == 0 or n_boot == 0:
        return float("nan"), float("nan")
    means = np.empty(n_boot)
    step = max(1, _CHUNK // n)
    for b in range(0, n_boot, step):
        k = min(step, n_boot - b)
        means[b : b + k] = values[rng.integers(0, n, size=(k, n))].mean(axis=1)
    lo, hi = np.quantile(means, [0.025, 0.975])
    return float(lo), float(hi)


def bootstrap_pooled_binary(
    gid: np.ndarray,
    label: np.ndarray,
    score: np.ndarray,
    *,
    exact: tuple[float, float],
    n_boot: int,
    rng: np.random.Generator,
) -> tuple[tuple[float, float], tuple[float, float]]:
    """Percentile 95% intervals of pooled AUROC and AUPRC, resampling the groups (conditions).

    ``exact`` holds the pooled (AUROC, AUPRC) of the full data.

    Each group is summarised by its positives and negatives per score bin (the distinct scores,
    or up to :data:`_BINS` quantile bins when there are more); a resample's pooled histogram is
    then one matrix product, and its scores are computed on the bins. With quantile bins the
    scores are approximate, so every resample is shifted by the difference between the exact and
    the binned score of the full data.
    """
    groups, local = np.unique(gid, return_inverse=True)
    n_groups = groups.size
    if n_groups == 0 or n_boot == 0:
        nan = (float("nan"), float("nan"))
        return nan, nan
    n_bins = min(_BINS, max(64, _CHUNK // n_groups))
    edges = np.unique(score)
    if edges.size > n_bins:
        edges = np.unique(np.quantile(score, np.linspace(0.0, 1.0, n_bins)))
    k = edges.size
    bins = np.minimum(np.searchsorted(edges, score, side="left"), k - 1)
    # Per group: negatives in bins 0..k-1, then positives in bins k..2k-1.
    index = local * (2 * k) + label.astype(np.int64) * k + bins
    flat = (
        np.bincount(index, minlength=n_groups * 2 * k).reshape(n_groups, 2 * k).astype(np.float64)
    )
    pooled = np.zeros(2 * k, dtype=np.int64)
    bin_label = np.repeat([0.0, 1.0], k)
    bin_score = np.tile(np.arange(k, dtype=np.float64), 2)
    binned = binary_scores(pooled, bin_label, bin_score, 1, weights=flat.sum(axis=0, keepdims=True))
    shift = [e - float(b[0, 0]) for e, b in zip(exact, binned, strict=True)]
    auroc = np.empty(n_boot)
    ap = np.empty(n_boot)
    step = max(1, _CHUNK // max(n_groups, 2 * k))
    for b in range(0, n_boot, step):
        size = min(step, n_boot - b)
        draws = (
            rng.integers(0, n_groups, size=(size, n_groups)) + np.arange(size)[:, None] * n_groups
        )
        counts = np.bincount(draws.ravel(), minlength=size * n_groups).reshape(size, n_groups)
        a, p = binary_scores(pooled, bin_label, bin_score, 1, weights=counts @ flat)
        auroc[b : b + size], ap[b : b + size] = a[:, 0] + shift[0], p[:, 0] + shift[1]
    return _nan_quantiles(auroc), _nan_quantiles(ap)


def _nan_quantiles(values: np.ndarray) -> tuple[float, float]:
    ok = values[~np.isnan(values)]
    if ok.size == 0:
        return float("nan"), float("nan")
    lo, hi = np.quantile(ok, [0.025, 0.975])
    return float(lo), float(hi)


def ratio_to_baseline(summary_by_model: pl.DataFrame, *, baselines: Sequence[str]) -> pl.DataFrame:
    """Each model's mean relative to the best baseline's mean, per metric.

    The best baseline is the one with the highest mean for metrics where higher is better and
    the lowest otherwise (see :data:`HIGHER_IS_BETTER`); the ratio is ``mean / best mean``, so
    above 1 is better than every baseline for higher-is-better metrics and below 1 for the rest.
    Baselines absent from the summary (or with an undefined mean for a metric) are skipped; where
    no baseline is left, or the best baseline's mean is 0, ``best_baseline`` is null and the
    ratio NaN.

    Parameters
    ----------
    summary_by_model
        Columns ``model, metric, mean, ci_low, ci_high, n`` (summaries stacked by model).
    baselines
        Names of the models that count as baselines.

    Returns
    -------
    polars.DataFrame
        ``model, metric, mean, ci_low, ci_high, best_baseline, ratio_to_best_baseline``.

    Examples
    --------
    >>> import polars as pl
    >>> summary = pl.DataFrame({"model": ["lpm", "mean"], "metric": ["mse", "mse"], "mean": [0.5, 2.0],
    ...                         "ci_low": [0.4, 1.8], "ci_high": [0.6, 2.2], "n": [10, 10]})
    >>> ratio_to_baseline(summary, baselines=["mean"])["ratio_to_best_baseline"].to_list()
    [0.25, 1.0]
    """
    need = ("model", "metric", "mean", "ci_low", "ci_high")
    missing = [c for c in need if c not in summary_by_model.columns]
    if missing:
        raise LpmInputError(None, f"summary_by_model misses column(s) {', '.join(missing)}")
    unknown = sorted(set(summary_by_model["metric"].to_list()) - set(HIGHER_IS_BETTER))
    if unknown:
        raise LpmInputError(
            None, f"unknown metric(s) {', '.join(unknown)}; known: {', '.join(ALL_METRICS)}"
        )
    base = summary_by_model.filter(
        pl.col("model").is_in(list(baselines))
        & pl.col("mean").is_not_nan()
        & pl.col("mean").is_not_null()
    )
    higher = pl.col("metric").replace_strict(HIGHER_IS_BETTER, return_dtype=pl.Boolean)
    score = pl.when(higher).then(pl.col("mean")).otherwise(-pl.col("mean"))
    best = (
        base.sort(score, "model", descending=[True, False])
        .group_by("metric", maintain_order=True)
        .first()
    )
    best = best.select(
        "metric", pl.col("model").alias("best_baseline"), pl.col("mean").alias("_best")
    )
    out = summary_by_model.select(*need).join(best, on="metric", how="left", maintain_order="left")
    ratio = pl.when(pl.col("_best").is_not_null() & (pl.col("_best") != 0)).then(
        pl.col("mean") / pl.col("_best")
    )
    return out.with_columns(ratio.otherwise(np.nan).alias("ratio_to_best_baseline")).drop("_best")
