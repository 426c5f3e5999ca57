"""Genetic interactions of double perturbations (``lpm interactions``), as Norman et al. 2019.

Norman et al. (Science 2019, "Exploring genetic interaction manifolds constructed from rich
single-cell phenotypes") model each double's profile AB (a delta over readouts) as a linear
combination of its singles' profiles, ``AB ≈ c1·A + c2·B``, fitted without intercept by robust
Theil–Sen regression, and read the interaction from the fit:

- ``c1``, ``c2`` and ``magnitude = sqrt(c1² + c2²)``: an additive pair has c1 = c2 = 1, so
  magnitude √2 ≈ 1.41; larger is synergy, smaller is buffering (suppression);
- ``fit_dcor``: distance correlation between the fit ``c1·A + c2·B`` and AB (their
  ``ts_linear_dcor``); a double that no combination of its singles explains is neomorphic;
- ``dcor_first``/``dcor_second``/``dcor_singles``: dcor(A, AB), dcor(B, AB), dcor(A, B);
  ``equality = min/max`` of the first two (equal contribution near 1);
- ``dominance = |log10(|c1| / |c2|)|``: one single masking the other (epistasis) is large.

Types, checked in this order (:func:`classify`):

1. ``neomorphic`` if ``fit_dcor < min_fit_dcor``;
2. ``epistatic`` if ``dominance > max_dominance``;
3. ``synergistic`` if ``magnitude > √2·(1 + magnitude_margin)``;
4. ``buffering`` if ``magnitude < √2·(1 − magnitude_margin)``;
5. ``additive`` otherwise.

Readouts. A pair is fitted on the readouts its three profiles share where A, B or AB moves by
at least ``min_abs_z`` (|delta| over 1.4826 × the profile's MAD across readouts, a robust noise
scale since most readouts of a profile do not move). Readouts that only carry noise matter: in
``c1·A + c2·B`` noisy singles shrink the coefficients towards 0 (errors in variables) and noise
in AB lowers every dcor, so on all 2,000 readouts of the simulator an additive pair reads
magnitude ≈ 0.3 and fit ≈ 0.4. Readouts none of the three moves at all (A = B = AB = 0, as in a
sparse pseudo-bulk) are always left out: as Theil–Sen subsets they solve to (0, 0) and drag the
fit to zero. ``n_readouts`` counts the readouts used. ``min_abs_z=None`` fits every moved
readout, closer to Norman's fits over all expressed genes.

Default thresholds (:class:`InteractionThresholds`) and why:

- ``min_fit_dcor = 0.8``: on readouts that move, a double its singles explain is fitted with
  dcor ≈ 0.95–1 (simulator: median 0.98 for every non-neomorphic type); a program neither
  single has pulls it down (simulator neomorphic median 0.71). Norman's own fits over all
  expressed genes, noise included, have median ``ts_linear_dcor`` 0.80, so below 0.8 even a
  noisy all-genes fit is worse than typical.
- ``max_dominance = 0.5``: one coefficient more than 10^0.5 ≈ 3.2 times the other. Noise makes
  the coefficients of an additive pair differ by ~10–40% (dominance ≲ 0.15; Norman's median
  ``abs_log_ts_ratio`` is 0.17), while an epistatic pair (AB = A) drives the masked single's
  coefficient to 0 (simulator median dominance 1.2). 0.5 sits between.
- ``magnitude_margin = 0.25``: additive is magnitude within ±25% of √2. The simulator's design
  (:mod:`lpm.sim.design`) draws synergy as (1 + s)(A + B), s ∈ [0.5, 1], and
  buffering as (1 − s)(A + B), s ∈ [0.4, 0.7], so ±25% lies about halfway between additive and
  the weakest designed interaction.
- ``min_abs_z = 5``: the one default chosen by looking at the simulator's measured profiles:
  z ≥ 3 still let enough noise readouts in to shrink additive pairs to magnitude ≈ 1.0 and
  typing accuracy to 0.47; z ≥ 5 gave 1.27 and 0.86. The three type thresholds above were set
  from the design ranges and Norman's distributions and not varied on the simulator (0.85 or
  0.9 for ``min_fit_dcor`` score about the same there). On a sparse 100-cell pseudo-bulk (the
  devel store's Norman pairs) z ≥ 5 keeps only 10–17 of 500 readouts: pass a lower z there.

Real data: Norman's coefficients over all expressed genes are mostly below 1 (median
``ts_norm`` 0.70), the shrinkage above, so with the additive reference at √2 most of their
pairs read as buffering; compare types across readout selections with that in mind.

Theil–Sen: the estimator of scikit-learn's ``TheilSenRegressor(fit_intercept=False,
random_state=seed)`` (exact fits of random 2-readout subsets, then their spatial median),
computed here vectorised: scikit-learn draws the 10,000 subsets in a Python loop (~0.6 s per
pair at 2,000 readouts), while every pair with the same readout count shares those subsets, so
they are drawn once per count and seed. A test checks the coefficients equal scikit-learn's.
Distance correlation is the (biased, V-statistic) one of the ``dcor`` package, in numpy: O(n²)
memory in readouts (fine to a few thousand), and no 10 s numba compile on import.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

import numpy as np
import polars as pl

from lpm.data import schema as S
from lpm.data.profiles import mean_values
from lpm.data.store import require_finite_values
from lpm.data.symbols import COMBINATION_SEPARATOR, TYPE_SEPARATOR, is_combination, members
from lpm.errors import LpmInputError

if TYPE_CHECKING:
    from lpm.data.store import PerturbationStore

log = logging.getLogger(__name__)

Method = Literal["theil_sen", "ols"]
METHODS: Final[tuple[str, ...]] = ("theil_sen", "ols")
#: The five interaction types, in the order tables and confusion matrices list them.
TYPES: Final[tuple[str, ...]] = ("additive", "synergistic", "buffering", "epistatic", "neomorphic")
ADDITIVE_MAGNITUDE: Final = math.sqrt(2.0)
#: Fewer shared readouts than this cannot support a two-coefficient fit and a dcor.
MIN_READOUTS: Final = 5
#: Columns of :func:`interaction_table`.
COLUMNS: Final = (
    S.CONTEXT,
    S.PERTURBATION,
    "first",
    "second",
    "n_readouts",
    "c1",
    "c2",
    "magnitude",
    "fit_dcor",
    "fit_pearson",
    "dcor_first",
    "dcor_second",
    "dcor_singles",
    "equality",
    "dominance",
    "type",
)


@dataclass(frozen=True)
class InteractionThresholds:
    """Where one interaction type ends and the next begins; see the module docstring for why."""

    min_fit_dcor: float = 0.8
    max_dominance: float = 0.5
    magnitude_margin: float = 0.25
    #: Readouts used: those where A, B or AB moves by at least this robust z; None: all moved.
    min_abs_z: float | None = 5.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_fit_dcor <= 1.0:
            raise LpmInputError(
                "thresholds", f"min_fit_dcor must be in [0, 1], got {self.min_fit_dcor}"
            )
        if self.max_dominance < 0:
            raise LpmInputError(
                "thresholds", f"max_dominance must be >= 0, got {self.max_dominance}"
            )
        if self.min_abs_z is not None and self.min_abs_z < 0:
            raise LpmInputError("thresholds", f"min_abs_z must be >= 0, got {self.min_abs_z}")
        if not 0.0 <= self.magnitude_margin < 1.0:
            raise LpmInputError(
                "thresholds", f"magnitude_margin must be in [0, 1), got {self.magnitude_margin}"
            )

    @property
    def synergy_above(self) -> float:
        return ADDITIVE_MAGNITUDE * (1.0 + self.magnitude_margin)

    @property
    def buffering_below(self) -> float:
        return ADDITIVE_MAGNITUDE * (1.0 - self.magnitude_margin)


# ---- statistics ---------------------------------------------------------------------------------
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


def distance_correlation(x: np.ndarray, y: np.ndarray) -> float:
    """Distance correlation of two 1-D samples (Székely's V-statistic, as ``dcor``'s default).

    0 only for independent samples (unlike Pearson, it sees non-linear dependence); Norman used
    it for every similarity between profiles.
    """
    a, b = _centred_distances(x), _centred_distances(y)
    return _dcor(_dcov2(a, b), _dcov2(a, a), _dcov2(b, b))


def _dcor(xy: float, xx: float, yy: float) -> float:
    if xx <= 0.0 or yy <= 0.0:
        return 0.0  # a constant profile is independent of anything
    return math.sqrt(max(xy, 0.0) / math.sqrt(xx * yy))


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


def _theil_sen(x: np.ndarray, y: np.ndarray, seed: int) -> np.ndarray:
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
    return _theil_sen(x, y, seed)


def _abs_z(v: np.ndarray) -> np.ndarray:
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


def _dominance(c1: float, c2: float) -> float:
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
    """Norman's metrics of one double from three aligned delta profiles (no type yet)."""
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
        "dominance": _dominance(c1, c2),
    }


def classify(
    *,
    magnitude: float,
    fit_dcor: float,
    dominance: float,
    thresholds: InteractionThresholds = InteractionThresholds(),
) -> str:
    """The interaction type of one pair from its metrics (order and thresholds: module docstring)."""
    if not fit_dcor >= thresholds.min_fit_dcor:  # NaN fit: nothing explains the double
        return "neomorphic"
    if dominance > thresholds.max_dominance:
        return "epistatic"
    if magnitude > thresholds.synergy_above:
        return "synergistic"
    if magnitude < thresholds.buffering_below:
        return "buffering"
    return "additive"


def _type_expr(thresholds: InteractionThresholds, magnitude: str, fit: str, dom: str) -> pl.Expr:
    t = thresholds
    return (
        pl.when(pl.col(fit).is_nan() | (pl.col(fit) < t.min_fit_dcor))
        .then(pl.lit("neomorphic"))
        .when(pl.col(dom) > t.max_dominance)
        .then(pl.lit("epistatic"))
        .when(pl.col(magnitude) > t.synergy_above)
        .then(pl.lit("synergistic"))
        .when(pl.col(magnitude) < t.buffering_below)
        .then(pl.lit("buffering"))
        .otherwise(pl.lit("additive"))
    )


# ---- the table ----------------------------------------------------------------------------------
def _profiles(rows: pl.DataFrame, context: str | None, source: str) -> pl.DataFrame:
    """Checked rows averaged over replicates: one value per context × perturbation × readout."""
    missing = [c for c in S.REQUIRED_COLUMNS if c not in rows.columns]
    if missing:
        raise LpmInputError(
            source, f"missing column(s) {', '.join(missing)}; found {', '.join(rows.columns)}"
        )
    df = rows.select(
        pl.col(S.CONTEXT).cast(pl.String),
        pl.col(S.PERTURBATION).cast(pl.String),
        pl.col(S.READOUT).cast(pl.String),
        pl.col(S.VALUE).cast(pl.Float64),
        *[pl.col(c) for c in (S.DOSE, S.TIME) if c in rows.columns],
    )
    if context is not None:
        known = set(df[S.CONTEXT].unique().to_list())
        if context not in known:
            raise LpmInputError(
                source, f"no rows in context {context!r}; contexts: {', '.join(sorted(known))}"
            )
        df = df.filter(pl.col(S.CONTEXT) == context)
    require_finite_values(df, source)
    for col in (S.DOSE, S.TIME):
        if col not in df.columns:
            continue
        many = (
            df.filter(pl.col(S.PERTURBATION).str.contains(COMBINATION_SEPARATOR, literal=True))
            .group_by(S.CONTEXT, S.PERTURBATION)
            .agg(pl.col(col).n_unique().alias("n"))
            .filter(pl.col("n") > 1)
        )
        if many.height:
            r = many.row(0, named=True)
            raise LpmInputError(
                source,
                f"{r[S.PERTURBATION]} in {r[S.CONTEXT]} has {r['n']} {col} levels; "
                f"keep one {col} per perturbation before typing interactions",
            )
    return mean_values(df)


def _pairs(profiles: pl.DataFrame) -> tuple[list[tuple[str, str, str, str]], pl.DataFrame]:
    """(context, double, first, second) with both singles measured, and the doubles skipped."""
    present = profiles.select(S.CONTEXT, S.PERTURBATION).unique()
    by_ctx: dict[str, set[str]] = {}
    for ctx, pert in present.iter_rows():
        by_ctx.setdefault(ctx, set()).add(pert)
    found: list[tuple[str, str, str, str]] = []
    skipped: list[tuple[str, str, str]] = []
    for ctx in sorted(by_ctx):
        perts = by_ctx[ctx]
        for pert in sorted(p for p in perts if is_combination(p)):
            parts = members(pert)
            if len(parts) != 2:
                skipped.append((ctx, pert, f"{len(parts)} members (only pairs are typed)"))
                continue
            lacking = [m for m in parts if m not in perts]
            if lacking:
                skipped.append((ctx, pert, f"single(s) not measured: {', '.join(lacking)}"))
                continue
            found.append((ctx, pert, parts[0], parts[1]))
    skip = pl.DataFrame(
        skipped,
        schema={S.CONTEXT: pl.String, S.PERTURBATION: pl.String, "reason": pl.String},
        orient="row",
    )
    return found, skip


def _fit_all(
    profiles: pl.DataFrame,
    pairs: list[tuple[str, str, str, str]],
    *,
    method: str,
    thresholds: InteractionThresholds,
    seed: int,
) -> tuple[list[dict[str, Any]], list[tuple[str, str, str]]]:
    rows: list[dict[str, Any]] = []
    skipped: list[tuple[str, str, str]] = []
    by_ctx: dict[str, list[tuple[str, str, str, str]]] = {}
    for p in pairs:
        by_ctx.setdefault(p[0], []).append(p)
    for ctx, ctx_pairs in by_ctx.items():
        needed = {s for _, d, a, b in ctx_pairs for s in (d, a, b)}
        sub = profiles.filter(
            (pl.col(S.CONTEXT) == ctx) & pl.col(S.PERTURBATION).is_in(sorted(needed))
        )
        values: dict[str, dict[str, float]] = {}
        for (pert,), g in sub.group_by(S.PERTURBATION):
            values[str(pert)] = dict(zip(g[S.READOUT].to_list(), g[S.VALUE].to_list(), strict=True))
        for _, double, first, second in ctx_pairs:
            shared = sorted(set(values[double]) & set(values[first]) & set(values[second]))
            if len(shared) < MIN_READOUTS:
                skipped.append(
                    (ctx, double, f"{len(shared)} shared readout(s) (need {MIN_READOUTS})")
                )
                continue
            a, b, ab = (np.array([values[p][r] for r in shared]) for p in (first, second, double))
            # readouts none of the three moves carry no information on c1, c2, but as Theil–Sen
            # subsets they solve to (0, 0) and drag the spatial median to zero (sparse data)
            moved = (a != 0) | (b != 0) | (ab != 0)
            if thresholds.min_abs_z is not None:
                z = thresholds.min_abs_z
                moved &= (_abs_z(a) >= z) | (_abs_z(b) >= z) | (_abs_z(ab) >= z)
            a, b, ab = a[moved], b[moved], ab[moved]
            if a.size < MIN_READOUTS:
                skipped.append(
                    (ctx, double, f"{a.size} readout(s) moved enough (need {MIN_READOUTS})")
                )
                continue
            m: dict[str, Any] = dict(pair_metrics(a, b, ab, method=method, seed=seed))
            m["type"] = classify(
                magnitude=m["magnitude"],
                fit_dcor=m["fit_dcor"],
                dominance=m["dominance"],
                thresholds=thresholds,
            )
            rows.append(
                {
                    S.CONTEXT: ctx,
                    S.PERTURBATION: double,
                    "first": first,
                    "second": second,
                    "n_readouts": int(a.size),
                    **m,
                }
            )
    return rows, skipped


_SCHEMA: Final[dict[str, Any]] = {
    **{c: pl.String for c in (S.CONTEXT, S.PERTURBATION, "first", "second", "type")},
    "n_readouts": pl.Int64,
    **{
        c: pl.Float64
        for c in COLUMNS
        if c not in (S.CONTEXT, S.PERTURBATION, "first", "second", "type", "n_readouts")
    },
}


def interaction_tables(
    rows: pl.DataFrame,
    *,
    context: str | None = None,
    method: str = "theil_sen",
    thresholds: InteractionThresholds = InteractionThresholds(),
    seed: int = 0,
    source: str = "rows",
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """:func:`interaction_table` and the doubles it could not type (context, perturbation, reason).

    Doubles lacking a single (or shared readouts) are listed, never guessed; no typable double
    at all is an error.
    """
    if method not in METHODS:
        raise LpmInputError("method", f"must be one of {', '.join(METHODS)}, got {method!r}")
    profiles = _profiles(rows, context, source)
    pairs, skipped = _pairs(profiles)
    if not pairs:
        n_doubles = skipped.height
        raise LpmInputError(
            source,
            f"no double perturbation has both singles measured in the same context "
            f"({n_doubles} double(s) found{', none with both singles' if n_doubles else ''})",
        )
    fitted, thin = _fit_all(profiles, pairs, method=method, thresholds=thresholds, seed=seed)
    if thin:
        skipped = pl.concat(
            [skipped, pl.DataFrame(thin, schema=skipped.schema, orient="row")], how="vertical"
        )
    if not fitted:
        raise LpmInputError(
            source, f"no double shares {MIN_READOUTS}+ readouts with both of its singles"
        )
    table = pl.DataFrame(fitted, schema=_SCHEMA).select(COLUMNS).sort(S.CONTEXT, S.PERTURBATION)
    if skipped.height:
        log.info("%d double(s) not typed (a single or shared readouts missing)", skipped.height)
    return table, skipped.sort(S.CONTEXT, S.PERTURBATION)


def interaction_table(
    rows: pl.DataFrame,
    *,
    context: str | None = None,
    method: str = "theil_sen",
    thresholds: InteractionThresholds = InteractionThresholds(),
    seed: int = 0,
) -> pl.DataFrame:
    """Norman's interaction metrics and a type for every double with both singles measured.

    ``rows`` is any long table (``context, perturbation, readout, value``; replicates are
    averaged), measured, predicted, or both concatenated. One row per (context, double): the
    columns of :data:`COLUMNS`; ``c1``/``first`` belong to the double's first member. Doubles
    lacking a single are skipped and counted in the log (:func:`interaction_tables` lists them).
    """
    table, _ = interaction_tables(
        rows, context=context, method=method, thresholds=thresholds, seed=seed
    )
    return table


# ---- scoring against a truth --------------------------------------------------------------------
def score_types(predicted: pl.DataFrame, truth: pl.DataFrame) -> dict[str, Any]:
    """Accuracy, balanced accuracy, per-type recall and the truth × predicted confusion matrix.

    Pairs are joined on (context, perturbation) when ``truth`` has a context column, else on
    perturbation alone (a simulator's types hold in every context). ``confusion`` is a polars
    frame: a ``truth`` column, then one count column per predicted type (:data:`TYPES`).
    """
    for name, df in (("predicted", predicted), ("truth", truth)):
        missing = [c for c in (S.PERTURBATION, "type") if c not in df.columns]
        if missing:
            raise LpmInputError(name, f"missing column(s) {', '.join(missing)}")
    keys = [S.CONTEXT, S.PERTURBATION] if S.CONTEXT in truth.columns else [S.PERTURBATION]
    if S.CONTEXT in keys and S.CONTEXT not in predicted.columns:
        raise LpmInputError("predicted", "truth has a context column but predictions do not")
    joined = predicted.select(*keys, pl.col("type").alias("predicted")).join(
        truth.select(*keys, pl.col("type").alias("truth")).unique(keys), on=keys, how="inner"
    )
    if joined.height == 0:
        raise LpmInputError("truth", "no predicted pair is in the truth table")
    unknown = sorted(set(joined["truth"].to_list()) - set(TYPES))
    if unknown:
        raise LpmInputError("truth", f"unknown interaction type(s) {', '.join(unknown)}")
    t = np.array(joined["truth"].to_list())
    p = np.array(joined["predicted"].to_list())
    counts = np.array([[int(((t == a) & (p == b)).sum()) for b in TYPES] for a in TYPES])
    recall = {
        a: (float(counts[i, i] / counts[i].sum()) if counts[i].sum() else None)
        for i, a in enumerate(TYPES)
    }
    present = [r for r in recall.values() if r is not None]
    confusion = pl.DataFrame(
        {"truth": list(TYPES), **{b: counts[:, j] for j, b in enumerate(TYPES)}}
    )
    return {
        "n_pairs": int(joined.height),
        "accuracy": float((t == p).mean()),
        "balanced_accuracy": float(np.mean(present)),
        "recall": recall,
        "confusion": confusion,
    }


def simulator_truth(truth_dir: Path) -> pl.DataFrame:
    """The simulator's designed type of every pair (``perturbation, type``), from its truth folder."""
    path = Path(truth_dir) / "pair_types.parquet"
    if not path.is_file():
        raise LpmInputError(path, "no such file (a simulation truth folder has pair_types.parquet)")
    df = pl.read_parquet(path)
    missing = [c for c in (S.PERTURBATION, "interaction") if c not in df.columns]
    if missing:
        raise LpmInputError(path, f"missing column(s) {', '.join(missing)}")
    return df.select(S.PERTURBATION, pl.col("interaction").alias("type"))


# ---- Norman et al.'s own fits -------------------------------------------------------------------
#: Columns of Norman's ``regr_fits_final.csv`` the comparison reads (first/second by ``name``).
NORMAN_COLUMNS: Final = (
    "name",
    "ts_coef_first",
    "ts_coef_second",
    "ts_norm",
    "ts_linear_dcor",
    "dcor_first",
    "dcor_second",
    "dcor_singles",
)
_NORMAN_SWAP: Final = {
    "ts_coef_first": "ts_coef_second",
    "dcor_first": "dcor_second",
}


def _target(symbol: str) -> str:
    return symbol.partition(TYPE_SEPARATOR)[2] or symbol


def read_norman_fits(regr_fits_csv: Path) -> pl.DataFrame:
    """Norman's per-pair fits (``regr_fits_final.csv``), checked; a one-line error otherwise."""
    path = Path(regr_fits_csv)
    if not path.is_file():
        raise LpmInputError(path, "no such file (Norman et al.'s regr_fits_final.csv)")
    try:
        df = pl.read_csv(path, infer_schema_length=10_000)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise LpmInputError(path, f"cannot read CSV: {str(exc).splitlines()[0]}") from None
    missing = [c for c in NORMAN_COLUMNS if c not in df.columns]
    if missing:
        raise LpmInputError(path, f"missing column(s) {', '.join(missing)}")
    numeric = [c for c in NORMAN_COLUMNS if c != "name"]
    try:
        return df.select(
            pl.col("name").cast(pl.String), *[pl.col(c).cast(pl.Float64) for c in numeric]
        )
    except pl.exceptions.PolarsError:
        bad = [c for c in numeric if not df[c].dtype.is_numeric()]
        raise LpmInputError(path, f"non-numeric column(s) {', '.join(bad)}") from None


def norman_comparison(
    table: pl.DataFrame,
    regr_fits_csv: Path,
    *,
    thresholds: InteractionThresholds = InteractionThresholds(),
) -> pl.DataFrame:
    """Our pairs beside Norman's fits of the same pairs, oriented to our first/second member.

    Norman's ``name`` is ``GENE1_GENE2`` in either order: matched unordered on the members'
    targets, and their first/second columns swapped where their order is ours reversed. Their
    ``type`` comes from their columns (``ts_norm``, ``ts_linear_dcor``, coefficient ratio) with
    the same thresholds as ours.
    """
    theirs = read_norman_fits(regr_fits_csv)
    by_name = {n: i for i, n in enumerate(theirs["name"].to_list())}
    out: list[dict[str, Any]] = []
    for r in table.iter_rows(named=True):
        g1, g2 = _target(r["first"]), _target(r["second"])
        if f"{g1}_{g2}" in by_name:
            row, swap = theirs.row(by_name[f"{g1}_{g2}"], named=True), False
        elif f"{g2}_{g1}" in by_name:
            row, swap = theirs.row(by_name[f"{g2}_{g1}"], named=True), True
        else:
            continue
        if swap:
            for x, y in _NORMAN_SWAP.items():
                row[x], row[y] = row[y], row[x]
        out.append(
            {
                S.CONTEXT: r[S.CONTEXT],
                S.PERTURBATION: r[S.PERTURBATION],
                "norman_name": row["name"],
                "c1": r["c1"],
                "c2": r["c2"],
                "magnitude": r["magnitude"],
                "fit_dcor": r["fit_dcor"],
                "dcor_first": r["dcor_first"],
                "dcor_second": r["dcor_second"],
                "dcor_singles": r["dcor_singles"],
                "type": r["type"],
                **{f"norman_{c}": row[c] for c in NORMAN_COLUMNS if c != "name"},
                "norman_dominance": _dominance(row["ts_coef_first"], row["ts_coef_second"]),
            }
        )
    schema = {
        S.CONTEXT: pl.String,
        S.PERTURBATION: pl.String,
        "norman_name": pl.String,
        **{c: pl.Float64 for c in ("c1", "c2", "magnitude", "fit_dcor")},
        **{c: pl.Float64 for c in ("dcor_first", "dcor_second", "dcor_singles")},
        "type": pl.String,
        **{f"norman_{c}": pl.Float64 for c in NORMAN_COLUMNS if c != "name"},
        "norman_dominance": pl.Float64,
    }
    df = pl.DataFrame(out, schema=schema)
    return df.with_columns(
        _type_expr(thresholds, "norman_ts_norm", "norman_ts_linear_dcor", "norman_dominance").alias(
            "norman_type"
        )
    )


def _spearman(x: pl.Series, y: pl.Series) -> float | None:
    if x.len() < 3:
        return None
    from scipy.stats import spearmanr

    rho = spearmanr(x.to_numpy(), y.to_numpy()).statistic
    return None if not np.isfinite(rho) else float(rho)


def norman_summary(comparison: pl.DataFrame) -> dict[str, Any]:
    """How our fits agree with Norman's on the matched pairs: Spearman ρ per metric, type agreement."""
    n = comparison.height
    pairs = {
        "magnitude": "norman_ts_norm",
        "fit_dcor": "norman_ts_linear_dcor",
        "c1": "norman_ts_coef_first",
        "c2": "norman_ts_coef_second",
        "dcor_first": "norman_dcor_first",
        "dcor_singles": "norman_dcor_singles",
    }
    return {
        "n_matched": n,
        "spearman": {
            ours: _spearman(comparison[ours], comparison[th]) for ours, th in pairs.items()
        },
        "type_agreement": (
            float(np.mean(comparison["type"].to_numpy() == comparison["norman_type"].to_numpy()))
            if n
            else None
        ),
        "types_ours": dict(sorted(comparison["type"].value_counts().iter_rows())) if n else {},
        "types_norman": dict(sorted(comparison["norman_type"].value_counts().iter_rows()))
        if n
        else {},
    }


# ---- predicted doubles --------------------------------------------------------------------------
def predicted_double_rows(rows: pl.DataFrame, model: Any) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``rows`` with the doubles' values replaced by ``model``'s predictions (singles measured).

    Double rows the model cannot predict (symbols it never saw) are dropped and returned as the
    second table (context, perturbation, n_rows), never filled with a guess.
    """
    is_double = (
        pl.col(S.PERTURBATION).cast(pl.String).str.contains(COMBINATION_SEPARATOR, literal=True)
    )
    doubles = rows.filter(is_double)
    if doubles.height == 0:
        raise LpmInputError("rows", "no double perturbation to predict")
    ok = np.asarray(model.supported(doubles), dtype=bool)
    unsupported = (
        doubles.filter(pl.Series(~ok))
        .group_by(S.CONTEXT, S.PERTURBATION)
        .agg(pl.len().alias("n_rows"))
        .with_columns(pl.col(S.CONTEXT).cast(pl.String), pl.col(S.PERTURBATION).cast(pl.String))
        .sort(S.CONTEXT, S.PERTURBATION)
    )
    keep = doubles.filter(pl.Series(ok))
    if keep.height:
        keep = keep.with_columns(pl.Series(S.VALUE, model.predict(keep)).cast(rows.schema[S.VALUE]))
    return pl.concat([rows.filter(~is_double), keep], how="vertical"), unsupported


# ---- the command --------------------------------------------------------------------------------
@dataclass
class InteractionsResult:
    """What :func:`run_interactions` wrote and measured."""

    out: Path
    table: pl.DataFrame
    skipped: pl.DataFrame
    summary: dict[str, Any]
    files: tuple[Path, ...]
    wall_s: float

    def __str__(self) -> str:
        s = self.summary
        counts = ", ".join(f"{k} {v}" for k, v in s["types"].items())
        lines = [
            f"{self.out}: {s['n_pairs']} pair(s) typed from {s['profiles']} "
            f"({s['method']}), {s['n_skipped']} double(s) skipped ({self.wall_s:.1f} s)",
            f"  types: {counts}",
        ]
        if "truth" in s:
            t = s["truth"]
            lines.append(
                f"  vs truth ({t['n_pairs']} pairs): accuracy {t['accuracy']:.3f}, "
                f"balanced accuracy {t['balanced_accuracy']:.3f}"
            )
        if "vs_measured" in s:
            t = s["vs_measured"]
            lines.append(
                f"  vs measured types ({t['n_pairs']} pairs): accuracy {t['accuracy']:.3f}"
            )
        if "norman" in s:
            n = s["norman"]
            rho, agree = n["spearman"]["magnitude"], n["type_agreement"]
            lines.append(
                f"  vs Norman et al. ({n['n_matched']} matched): Spearman magnitude "
                f"{'n/a' if rho is None else f'{rho:.3f}'}, type agreement "
                f"{'n/a' if agree is None else f'{agree:.3f}'}"
            )
        return "\n".join(lines)


def _jsonable(score: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in score.items() if k != "confusion"}
    conf: pl.DataFrame = score["confusion"]
    out["confusion"] = {r["truth"]: {t: r[t] for t in TYPES} for r in conf.iter_rows(named=True)}
    return out


def run_interactions(
    store: PerturbationStore | str | Path,
    *,
    out: Path,
    context: str | None = None,
    model: Any = None,
    truth: Path | None = None,
    norman: Path | None = None,
    method: str = "theil_sen",
    thresholds: InteractionThresholds = InteractionThresholds(),
    seed: int = 0,
    overwrite: bool = False,
) -> InteractionsResult:
    """Type every double of a store (measured, or the model's predicted doubles) and write files.

    ``out`` gets interactions.csv/.parquet, skipped.csv, interactions.png and summary.json;
    with ``truth`` the accuracy and confusion matrix, with ``norman`` norman_comparison.csv.
    """
    from lpm._utils.atomic import atomic_dir
    from lpm.data.store import open_store
    from lpm.pl.interactions import plot_interactions

    start = time.perf_counter()
    if Path(out).exists() and not overwrite:  # fail before the work, not after
        raise LpmInputError(out, "already exists (pass --overwrite to replace it)")
    truth_table = simulator_truth(truth) if truth is not None else None
    if norman is not None:
        read_norman_fits(norman)
    handle = open_store(store) if isinstance(store, str | Path) else store
    rows = handle.read()
    if context is not None and context not in set(rows[S.CONTEXT].unique().to_list()):
        raise LpmInputError(handle.path, f"no rows in context {context!r}")
    if context is not None:
        rows = rows.filter(pl.col(S.CONTEXT) == context)
    summary: dict[str, Any] = {"method": method, "seed": seed, "context": context}
    summary["thresholds"] = {
        "min_fit_dcor": thresholds.min_fit_dcor,
        "max_dominance": thresholds.max_dominance,
        "magnitude_margin": thresholds.magnitude_margin,
        "min_abs_z": thresholds.min_abs_z,
        "synergy_above": thresholds.synergy_above,
        "buffering_below": thresholds.buffering_below,
    }
    unsupported = None
    measured = None
    if model is not None:
        if isinstance(model, str | Path):
            from lpm.models.registry import load_model

            model = load_model(model)
        measured, _ = interaction_tables(
            rows, method=method, thresholds=thresholds, seed=seed, source=str(handle.path)
        )
        rows, unsupported = predicted_double_rows(rows, model)
        summary["profiles"] = "predicted doubles, measured singles"
        summary["n_unpredictable_doubles"] = unsupported.height
    else:
        summary["profiles"] = "measured profiles"
    table, skipped = interaction_tables(
        rows, method=method, thresholds=thresholds, seed=seed, source=str(handle.path)
    )
    if unsupported is not None and unsupported.height:
        note = unsupported.select(
            S.CONTEXT,
            S.PERTURBATION,
            pl.format("model cannot predict {} row(s)", "n_rows").alias("reason"),
        )
        skipped = pl.concat([skipped, note], how="vertical").sort(S.CONTEXT, S.PERTURBATION)
    counts = dict(table["type"].value_counts().iter_rows())
    summary.update(
        n_pairs=table.height,
        n_skipped=skipped.height,
        types={t: int(counts.get(t, 0)) for t in TYPES},
    )
    score = None
    if measured is not None:
        summary["vs_measured"] = _jsonable(score_types(table, measured))
    if truth_table is not None:
        score = score_types(table, truth_table)
        summary["truth"] = _jsonable(score)
    comparison = None
    if norman is not None:
        comparison = norman_comparison(table, norman, thresholds=thresholds)
        summary["norman"] = norman_summary(comparison)
    with atomic_dir(Path(out), overwrite=overwrite) as tmp:
        table.write_csv(tmp / "interactions.csv")
        table.write_parquet(tmp / "interactions.parquet")
        skipped.write_csv(tmp / "skipped.csv")
        if comparison is not None:
            comparison.write_csv(tmp / "norman_comparison.csv")
        if score is not None:
            score["confusion"].write_csv(tmp / "confusion.csv")
        plot_interactions(
            table,
            tmp / "interactions.png",
            thresholds=thresholds,
            confusion=None if score is None else score["confusion"],
        )
        (tmp / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        names = sorted(p.name for p in tmp.iterdir())
    out = Path(out)
    return InteractionsResult(
        out=out,
        table=table,
        skipped=skipped,
        summary=summary,
        files=tuple(out / n for n in names),
        wall_s=time.perf_counter() - start,
    )
