"""Genetic interactions of double perturbations, as Norman et al. (Science 2019) type them.

Each double's delta profile AB is fitted as ``AB ≈ c1·A + c2·B`` on its singles' profiles
(robust Theil–Sen, no intercept; :mod:`lpm.tasks.interaction_stats`), and typed from the fit by
:func:`classify` with :class:`InteractionThresholds`. Readouts: those the three profiles share
where A, B or AB moves by at least ``min_abs_z`` robust z (noise-only readouts shrink the
coefficients towards 0 and lower every dcor); readouts none of the three moves at all are
always left out (as Theil–Sen subsets they solve to (0, 0)). ``n_readouts`` counts those used.

Norman's own fits are compared in :mod:`lpm.tasks.norman`; ``lpm interactions`` writes the
tables (:mod:`lpm.runs.interactions`) and :mod:`lpm.pl.interactions` draws them.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import polars as pl

from lpm.data import schema as S
from lpm.data.profiles import mean_values
from lpm.data.symbols import COMBINATION_SEPARATOR, is_combination, members
from lpm.data.validate import require_finite_values
from lpm.errors import LpmInputError
from lpm.tasks.base import DiscoveryTask, fitted_model
from lpm.tasks.interaction_stats import METHODS, pair_metrics, robust_abs_z

if TYPE_CHECKING:
    from lpm.models.base import PerturbationModel

log = logging.getLogger(__name__)

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
#: Columns of the doubles that could not be typed.
SKIPPED_COLUMNS: Final = (S.CONTEXT, S.PERTURBATION, "reason")


@dataclass(frozen=True)
class InteractionThresholds:
    """Where one interaction type ends and the next begins, and the readouts a fit uses.

    Types, in this order (:func:`classify`): ``neomorphic`` if ``fit_dcor < min_fit_dcor``;
    ``epistatic`` if ``dominance > max_dominance``; ``synergistic`` above ``√2·(1 +
    magnitude_margin)``; ``buffering`` below ``√2·(1 − magnitude_margin)``; else ``additive``
    (an additive pair has c1 = c2 = 1, magnitude √2). Why these defaults:

    - ``min_fit_dcor = 0.8``: a double its singles explain fits with dcor ≈ 0.95–1 on moved
      readouts (simulator median 0.98), a neomorphic one ≈ 0.71; Norman's all-genes median is 0.80.
    - ``max_dominance = 0.5``: one coefficient > 10^0.5 ≈ 3.2× the other; additive pairs read
      ≲ 0.15 (Norman's median 0.17), epistatic ones ≈ 1.2 on the simulator.
    - ``magnitude_margin = 0.25``: about halfway between additive and the weakest designed
      synergy (×1.5) or buffering (×0.6) of :mod:`lpm.sim.design`.
    - ``min_abs_z = 5``: the one default tuned on the simulator (z ≥ 3 let noise shrink additive
      pairs to magnitude ≈ 1.0, accuracy 0.47; z ≥ 5 gave 1.27 and 0.86). A sparse pseudo-bulk
      keeps few readouts at 5: pass a lower z there; ``None`` fits every moved readout.

    On real data Norman's all-genes coefficients are mostly below 1 (median ``ts_norm`` 0.70),
    so most of their pairs read as buffering against √2.
    """

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

    def as_dict(self) -> dict[str, float | None]:
        """The thresholds and the magnitudes they imply (as ``summary.json`` records them)."""
        return {
            **asdict(self),
            "synergy_above": self.synergy_above,
            "buffering_below": self.buffering_below,
        }


#: The default thresholds (a frozen value, safe as a default argument).
DEFAULT_THRESHOLDS: Final = InteractionThresholds()


# ---- types -------------------------------------------------------------------------------------
def classify(
    *,
    magnitude: float,
    fit_dcor: float,
    dominance: float,
    thresholds: InteractionThresholds = InteractionThresholds(),
) -> str:
    """The interaction type of one pair from its metrics (order: :class:`InteractionThresholds`)."""
    if not fit_dcor >= thresholds.min_fit_dcor:  # NaN fit: nothing explains the double
        return "neomorphic"
    if dominance > thresholds.max_dominance:
        return "epistatic"
    if magnitude > thresholds.synergy_above:
        return "synergistic"
    if magnitude < thresholds.buffering_below:
        return "buffering"
    return "additive"


def type_expression(
    thresholds: InteractionThresholds, magnitude: str, fit: str, dom: str
) -> pl.Expr:
    """:func:`classify` as a polars expression over the named metric columns."""
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


# ---- the table ---------------------------------------------------------------------------------
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
        *[pl.col(c) for c in (S.DOSE, S.TIME, *S.MEMBER_COLUMNS) if c in rows.columns],
    )
    if context is not None:
        known = set(df[S.CONTEXT].unique().to_list())
        if context not in known:
            raise LpmInputError(
                source, f"no rows in context {context!r}; contexts: {', '.join(sorted(known))}"
            )
        df = df.filter(pl.col(S.CONTEXT) == context)
    require_finite_values(df, source)
    for col in (S.DOSE, S.TIME, *S.MEMBER_COLUMNS):
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
                moved &= (robust_abs_z(a) >= z) | (robust_abs_z(b) >= z) | (robust_abs_z(ab) >= z)
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


# ---- the task -----------------------------------------------------------------------------------
class InteractionTask(DiscoveryTask):
    """Norman's metrics and type of every double, measured or (with a model) predicted.

    One row per (context, double), sorted: the :data:`COLUMNS` of a typed double, or only
    ``context, perturbation`` and ``reason`` for one that could not be typed (a single not
    measured, too few readouts, a double the model cannot predict); ``reason`` is null for the
    typed ones (:func:`split_skipped` parts the two). With a model, its predictions replace the
    measured doubles while the singles stay measured (:func:`predicted_double_rows`).
    """

    name = "interactions"

    def __init__(
        self,
        *,
        context: str | None = None,
        method: str = "theil_sen",
        min_fit_dcor: float = DEFAULT_THRESHOLDS.min_fit_dcor,
        max_dominance: float = DEFAULT_THRESHOLDS.max_dominance,
        magnitude_margin: float = DEFAULT_THRESHOLDS.magnitude_margin,
        min_abs_z: float | None = DEFAULT_THRESHOLDS.min_abs_z,
        seed: int = 0,
    ):
        self.context = context
        self.method = method
        self.min_fit_dcor = min_fit_dcor
        self.max_dominance = max_dominance
        self.magnitude_margin = magnitude_margin
        self.min_abs_z = min_abs_z
        self.seed = seed

    @property
    def thresholds(self) -> InteractionThresholds:
        return InteractionThresholds(
            min_fit_dcor=self.min_fit_dcor,
            max_dominance=self.max_dominance,
            magnitude_margin=self.magnitude_margin,
            min_abs_z=self.min_abs_z,
        )

    def _run(
        self, data: pl.DataFrame | None, model: PerturbationModel | str | Path | None
    ) -> pl.DataFrame:
        assert data is not None
        rows = data
        if self.context is not None:
            known = set(rows[S.CONTEXT].cast(pl.String).unique().to_list())
            if self.context not in known:
                raise LpmInputError(
                    "data",
                    f"no rows in context {self.context!r}; contexts: {', '.join(sorted(known))}",
                )
            rows = rows.filter(pl.col(S.CONTEXT) == self.context)
        unsupported = None
        if model is not None:
            rows, unsupported = predicted_double_rows(rows, fitted_model(model))
        table, skipped = interaction_tables(
            rows, method=self.method, thresholds=self.thresholds, seed=self.seed, source="data"
        )
        if unsupported is not None and unsupported.height:
            note = unsupported.select(
                S.CONTEXT,
                S.PERTURBATION,
                pl.format("model cannot predict {} row(s)", "n_rows").alias("reason"),
            )
            skipped = pl.concat([skipped, note], how="vertical").sort(
                S.CONTEXT, S.PERTURBATION, maintain_order=True
            )
        typed = table.with_columns(pl.lit(None, dtype=pl.String).alias("reason"))
        return pl.concat([typed, skipped], how="diagonal").sort(
            S.CONTEXT, S.PERTURBATION, maintain_order=True
        )


def split_skipped(doubles: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The typed doubles (:data:`COLUMNS`) and the skipped ones (:data:`SKIPPED_COLUMNS`) of an
    :class:`InteractionTask` table."""
    typed = doubles.filter(pl.col("reason").is_null()).select(COLUMNS)
    skipped = doubles.filter(pl.col("reason").is_not_null()).select(SKIPPED_COLUMNS)
    return typed, skipped


__all__ = [
    "ADDITIVE_MAGNITUDE",
    "COLUMNS",
    "DEFAULT_THRESHOLDS",
    "METHODS",
    "MIN_READOUTS",
    "SKIPPED_COLUMNS",
    "TYPES",
    "InteractionTask",
    "InteractionThresholds",
    "classify",
    "interaction_table",
    "interaction_tables",
    "predicted_double_rows",
    "score_types",
    "split_skipped",
    "type_expression",
]
