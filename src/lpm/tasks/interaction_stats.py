"""The statistics of Norman et al.'s interaction fits: distance correlation, Theil–Sen, and the
metrics of one double (:func:`pair_metrics`), used by :mod:`lpm.tasks.interactions`.

Theil–Sen is the estimator of scikit-learn's ``TheilSenRegressor(fit_intercept=False,
random_state=seed)`` (exact fits of random 2-readout subsets, then their spatial median),
vectorised: scikit-learn draws its 10,000 subsets in a Python loop (~0.6 s per pair at 2,000
readouts), while every pair with the same readout count shares them, so they are drawn once per
count and seed. A test checks the coefficients equal scikit-learn's. Distance correlation is
the biased (V-statistic) one of the ``dcor`` package, in numpy: O(n²) memory in readouts (fine
to a few thousand) and no numba compile on import.
"""

from __future__ import annotations

import logging
import math
from functools import lru_cache
from typing import Final

import numpy as np

from lpm.errors import LpmInputError

log = logging.getLogger(__name__)

#: Regressions of a double on its singles: Norman's Theil–Sen, or least squares.
METHODS: Final[tuple[str, ...]] = ("theil_sen", "ols")


def _centred_distances(x: np.ndarray) -> np.ndarray:
    """Double-centred |x_i − x_j|, float32: half the memory traffic, dcor within ~1e-5 of float64."""
    x = np.asarray(x, dtype=np.float64)
    d = np.abs(np.subtract.outer(x, x)).astype(np.float32)
    row = d.mean(axis=1, dtype=np.float64).astype(np.float32)
    d -= row[:, None]
    d -= row[None, :]
    d += np.float32(row.mean(dtype=np.float64))
    return d


def _dcov2(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a.ravel(), b.ravel())) / a.size


def _dcor(xy: float, xx: float, yy: float) -> float:
    if xx <= 0.0 or yy <= 0.0:
        return 0.0  # a constant profile is independent of anything
    return math.sqrt(max(xy, 0.0) / math.sqrt(xx * yy))


def distance_correlation(x: np.ndarray, y: np.ndarray) -> float:
    """Distance correlation of two 1-D samples (Székely's V-statistic, as ``dcor``'s default).

    0 only for independent samples (unlike Pearson, it sees non-linear dependence); Norman used
    it for every similarity between profiles.
    """
    a, b = _centred_distances(x), _centred_distances(y)
    return _dcor(_dcov2(a, b), _dcov2(a, a), _dcov2(b, b))


@lru_cache(maxsize=16)
def _subsets(n: int, seed: int, max_subpopulation: int = 10_000) -> np.ndarray:
    """The 2-readout subsets scikit-learn's TheilSenRegressor draws for ``n`` samples and a seed."""
    from itertools import combinations

    n_all = n * (n - 1) // 2
    if n_all <= max_subpopulation:
        return np.array(list(combinations(range(n), 2)), dtype=np.int64)
    rng = np.random.RandomState(seed)
    return np.array(
        [rng.choice(n, size=2, replace=False) for _ in range(max_subpopulation)], dtype=np.int64
    )


def _spatial_median(w: np.ndarray, *, max_iter: int = 300, tol: float = 1e-3) -> np.ndarray:
    """L1 (spatial) median by the modified Weiszfeld iteration (Vardi & Zhang), from the mean."""
    eps = 1e-16  # numpy-precision zero distance, as scikit-learn uses
    current = w.mean(axis=0)
    for _ in range(max_iter):
        diff = w - current
        dist = np.sqrt((diff**2).sum(axis=1))
        far = dist >= eps
        at_point = int((~far).sum() > 0)
        inv = 1.0 / dist[far]
        t = (w[far] * inv[:, None]).sum(axis=0) / inv.sum()
        if at_point:
            r = np.linalg.norm((diff[far] * inv[:, None]).sum(axis=0))
            eta = at_point / r if r > 0 else 0.0
            new = max(0.0, 1.0 - eta) * t + min(1.0, eta) * current
        else:
            new = t
        if float(((current - new) ** 2).sum()) < tol**2:
            return np.asarray(new)
        current = new
    log.warning("Theil-Sen spatial median did not converge in %d iterations", max_iter)
    return np.asarray(current)


def theil_sen(x: np.ndarray, y: np.ndarray, *, seed: int) -> np.ndarray:
    """Coefficients of ``y ≈ x @ c`` (no intercept), the estimator of scikit-learn's Theil–Sen."""
    idx = _subsets(x.shape[0], seed)
    xs = x[idx]  # (subsets, 2 readouts, 2 singles)
    ys = y[idx]
    # min-norm least squares of each 2×2 system, as scipy's lstsq does for singular ones
    w = np.einsum("kij,kj->ki", np.linalg.pinv(xs), ys)
    return _spatial_median(w)


def _fit(x: np.ndarray, y: np.ndarray, method: str, seed: int) -> np.ndarray:
    if method == "ols":
        coef, *_ = np.linalg.lstsq(x, y, rcond=None)
        return np.asarray(coef)
    return theil_sen(x, y, seed=seed)


def robust_abs_z(v: np.ndarray) -> np.ndarray:
    """|delta| in units of the profile's noise: 1.4826 × MAD over readouts (most readouts of a
    profile are unmoved, so the MAD measures noise); over the non-zero values when most are 0."""
    mad = float(np.median(np.abs(v - np.median(v))))
    if mad == 0.0:
        nz = v[v != 0]
        mad = float(np.median(np.abs(nz - np.median(nz)))) if nz.size else 0.0
    if mad == 0.0:
        return np.where(v != 0, np.inf, 0.0)
    return np.asarray(np.abs(v) / (1.4826 * mad))


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    if np.std(x) == 0 or np.std(y) == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


def dominance(c1: float, c2: float) -> float:
    """``|log10(|c1| / |c2|)|``: large when one single masks the other (epistasis)."""
    tiny = 1e-12  # a zero coefficient is total dominance, not a division error
    return abs(math.log10(max(abs(c1), tiny) / max(abs(c2), tiny)))


def pair_metrics(
    first: np.ndarray,
    second: np.ndarray,
    double: np.ndarray,
    *,
    method: str = "theil_sen",
    seed: int = 0,
) -> dict[str, float]:
    """Norman's metrics of one double from three aligned delta profiles (no type yet).

    ``c1, c2`` of ``AB ≈ c1·A + c2·B``; ``magnitude = √(c1² + c2²)``; ``fit_dcor`` (dcor of the
    fit and AB) and ``fit_pearson``; ``dcor_first/second/singles``: dcor(A, AB), dcor(B, AB),
    dcor(A, B); ``equality = min/max`` of the first two; :func:`dominance`.
    """
    if method not in METHODS:
        raise LpmInputError("method", f"must be one of {', '.join(METHODS)}, got {method!r}")
    a, b, ab = (np.asarray(v, dtype=np.float64) for v in (first, second, double))
    c1, c2 = (float(c) for c in _fit(np.column_stack([a, b]), ab, method, seed))
    fit = c1 * a + c2 * b
    ca, cb, cab, cfit = (_centred_distances(v) for v in (a, b, ab, fit))
    va, vb, vab, vfit = (_dcov2(m, m) for m in (ca, cb, cab, cfit))
    d1, d2 = _dcor(_dcov2(ca, cab), va, vab), _dcor(_dcov2(cb, cab), vb, vab)
    return {
        "c1": c1,
        "c2": c2,
        "magnitude": math.hypot(c1, c2),
        "fit_dcor": _dcor(_dcov2(cfit, cab), vfit, vab),
        "fit_pearson": _pearson(fit, ab),
        "dcor_first": d1,
        "dcor_second": d2,
        "dcor_singles": _dcor(_dcov2(ca, cb), va, vb),
        "equality": min(d1, d2) / max(d1, d2) if max(d1, d2) > 0 else float("nan"),
        "dominance": dominance(c1, c2),
    }


__all__ = [
    "METHODS",
    "distance_correlation",
    "dominance",
    "pair_metrics",
    "robust_abs_z",
    "theil_sen",
]
