"""Single-cell counts for each simulated condition, aggregated to a pseudobulk profile.

Each cell draws a library size (log-normal around ``LIBRARY_PER_GENE * n_genes`` UMIs); its
counts are negative binomial with mean ``library * softmax(x)`` and a per-gene dispersion,
sampled as Gamma-Poisson. Counts are normalised to 1e4 per cell, ``log1p``-transformed and
averaged over the condition's cells. Each condition has its own random stream keyed by
``(seed, context, condition)``, so the result depends neither on the order nor on the number of
threads (numpy's samplers release the GIL, so threads use every core).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

LIBRARY_PER_GENE = 20.0
LIBRARY_SD = 0.25
TARGET_SUM = 1e4
DISPERSION = (0.02, 0.25)
MAX_WORKERS = 8


def n_workers() -> int:
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(MAX_WORKERS, cores))


def pseudobulk(x: np.ndarray, size: np.ndarray, n_cells: int, key: Sequence[int]) -> np.ndarray:
    """Mean log1p-normalised expression of ``n_cells`` cells with true log-expression ``x``.

    ``size`` is the negative-binomial size (1 / dispersion) per gene.
    """
    rng = np.random.default_rng(list(key))
    p = np.exp(x - x.max())
    p /= p.sum()
    library = LIBRARY_PER_GENE * len(x) * rng.lognormal(0.0, LIBRARY_SD, size=n_cells)
    shape = np.broadcast_to(size, (n_cells, len(x)))
    lam = rng.standard_gamma(shape) * (library[:, None] * (p / size)[None, :])
    counts = rng.poisson(lam).astype(np.float32)
    total = np.maximum(counts.sum(axis=1, keepdims=True), 1.0)
    norm = np.log1p(counts * (np.float32(TARGET_SUM) / total))
    out: np.ndarray = norm.mean(axis=0, dtype=np.float64)
    return out


def pseudobulk_many(
    xs: np.ndarray,
    size: np.ndarray,
    n_cells: Sequence[int],
    keys: Sequence[Sequence[int]],
    *,
    done: Callable[[int], None] | None = None,
) -> np.ndarray:
    """One pseudobulk row per row of ``xs``, computed on a thread pool."""
    out = np.empty(xs.shape, dtype=np.float64)

    def one(i: int) -> int:
        out[i] = pseudobulk(xs[i], size, n_cells[i], keys[i])
        return i

    workers = n_workers()
    if workers == 1 or len(xs) < 4:
        for i in range(len(xs)):
            one(i)
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for _ in pool.map(one, range(len(xs))):
                pass
    if done:
        done(len(xs))
    return out
