"""Nearest measured dose: the baseline any dose-response model must beat on ``unseen_dose``.

A held-out dose of a compound is predicted by the profile measured at the closest dose of the
same compound in the same context (and time), closeness measured in log10 dose because
dose-response curves are sigmoids in log dose and doses are spaced geometrically (0.04, 0.12,
0.37, ... µM). It is stronger than pooling every dose (:class:`~lpm.models.baselines.PerturbationMean`)
when the response grows with dose, and costs nothing to fit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

import numpy as np
import polars as pl

from lpm.data import schema as S
from lpm.data.members import member_columns
from lpm.errors import LpmInputError
from lpm.models.base import LookupModel
from lpm.models.baselines import _MEAN, _lookup

if TYPE_CHECKING:
    from lpm.models.training import TrainerOptions

#: Doses whose log10 distances to the query differ by less than this tie (float32 doses round).
_TIE_TOL: Final = 1e-6
_ROW: Final = "_row"
_LOG: Final = "_log_dose"
_DIST: Final = "_dist"
_POOLED_KEYS: Final = [S.CONTEXT, S.PERTURBATION, S.READOUT]


def _strings(df: pl.DataFrame) -> pl.DataFrame:
    """Symbol columns as plain strings, so categorical and string tables join."""
    return df.with_columns(pl.col(c).cast(pl.String) for c in _POOLED_KEYS if c in df.columns)


def _dose(df: pl.DataFrame) -> pl.Series:
    """Dose as float64, null where absent (a NaN dose means no dose too)."""
    if S.DOSE not in df.columns:
        return pl.Series(S.DOSE, [None] * df.height, dtype=pl.Float64)
    dose = df[S.DOSE].cast(pl.Float64)
    return dose.fill_nan(None)


def _dosed(df: pl.DataFrame, what: str) -> pl.DataFrame:
    """Rows with a dose, its log10 added; a non-positive dose has no log and is refused."""
    dose = _dose(df)
    out = df.with_columns(dose).filter(dose.is_not_null())
    bad = out.filter(pl.col(S.DOSE) <= 0)
    if bad.height:
        raise LpmInputError(
            None,
            f"{what}: {bad.height} row(s) with a dose ≤ 0 (first {bad[S.DOSE][0]!r} for "
            f"{bad[S.PERTURBATION][0]!r}); nearest_dose compares doses in log10, give such rows no dose",
        )
    return out.with_columns(pl.col(S.DOSE).log10().alias(_LOG))


class NearestDose(LookupModel):
    """The same perturbation's training profile at the nearest measured dose (in log10 dose).

    A row with a dose gets the training mean (over replicates) of the same context,
    perturbation, time and readout at the training dose nearest in log10 dose; on a tie (a dose
    at the geometric midpoint of two measured ones) the lower dose wins. A row without a dose
    (null or NaN: genetic perturbations, the control) gets the mean of every training row of its
    context, perturbation and readout. A (context, perturbation) never measured is not predicted.
    Doses given per member of a combination are matched exactly (they are part of the key).
    """

    member_conditions = True

    keys_: list[str]
    dosed_: pl.DataFrame
    pooled_: pl.DataFrame
    pooled_keys_: list[str]

    def __init__(self) -> None:
        pass

    def _fit(
        self, train: pl.DataFrame, val: pl.DataFrame | None, trainer: TrainerOptions | None
    ) -> None:
        train = _strings(train)
        member_keys = member_columns(train.columns)
        self.keys_ = [
            S.CONTEXT,
            S.PERTURBATION,
            *([S.TIME] if S.TIME in train.columns else []),
            *member_keys,
            S.READOUT,
        ]
        self.pooled_keys_ = [*_POOLED_KEYS[:2], *member_keys, S.READOUT]
        dosed = _dosed(train, "training rows")
        if S.TIME in train.columns:
            dosed = dosed.with_columns(pl.col(S.TIME).cast(pl.Float64))
        self.dosed_ = (
            dosed.group_by([*self.keys_, S.DOSE, _LOG])
            .agg(pl.col(S.VALUE).cast(pl.Float64).mean().alias(_MEAN))
            .sort([*self.keys_, S.DOSE], nulls_last=True)
        )
        self.pooled_ = (
            train.group_by(self.pooled_keys_)
            .agg(pl.col(S.VALUE).cast(pl.Float64).mean().alias(_MEAN))
            .sort(self.pooled_keys_, nulls_last=True)
        )

    def _values(self, rows: pl.DataFrame) -> np.ndarray:
        rows = _strings(rows).with_row_index(_ROW)
        values = np.full(rows.height, np.nan)
        # member doses the model never keyed on cannot be matched: such rows stay unpredicted
        unkeyed = [c for c in member_columns(rows.columns) if c not in self.keys_]
        if unkeyed:
            rows = rows.filter(pl.all_horizontal(pl.col(c).is_null() for c in unkeyed))
        rows = rows.with_columns(
            pl.lit(None, pl.List(pl.Float32)).alias(c)
            for c in self.keys_
            if c in S.MEMBER_COLUMNS and c not in rows.columns
        )
        has_dose = _dose(rows).is_not_null()
        undosed = rows.filter(~has_dose)
        if undosed.height:
            values[undosed[_ROW].to_numpy()] = _lookup(undosed, self.pooled_, self.pooled_keys_)
        if not has_dose.any():
            return values
        query = _dosed(rows, "rows to predict")
        if S.TIME in self.keys_:
            time = query[S.TIME] if S.TIME in query.columns else pl.lit(None)
            query = query.with_columns(time.cast(pl.Float64).alias(S.TIME))
        candidates = (
            query.select(_ROW, *self.keys_, _LOG)
            .join(
                self.dosed_.select(*self.keys_, S.DOSE, pl.col(_LOG).alias("_train_log"), _MEAN),
                on=self.keys_,
                how="inner",
                nulls_equal=True,
            )
            .with_columns((pl.col(_LOG) - pl.col("_train_log")).abs().alias(_DIST))
        )
        nearest = (
            candidates.filter(pl.col(_DIST) <= pl.col(_DIST).min().over(_ROW) + _TIE_TOL)
            .sort(_ROW, S.DOSE)
            .unique(subset=_ROW, keep="first", maintain_order=True)
        )
        values[nearest[_ROW].to_numpy()] = nearest[_MEAN].to_numpy()
        return values

    def _known(self) -> dict[str, set[str]]:
        return {k: set(self.pooled_[k].unique().to_list()) for k in _POOLED_KEYS}

    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, pl.DataFrame], dict[str, Any]]:
        extra = {"keys": self.keys_}
        if self.pooled_keys_ != _POOLED_KEYS:  # models without per-member doses save as before
            extra["pooled_keys"] = self.pooled_keys_
        return {}, {"dosed": self.dosed_, "pooled": self.pooled_}, extra

    def _set_state(
        self, arrays: dict[str, np.ndarray], tables: dict[str, pl.DataFrame], extra: dict[str, Any]
    ) -> None:
        self.keys_ = list(extra["keys"])
        self.pooled_keys_ = list(extra.get("pooled_keys", _POOLED_KEYS))
        self.dosed_ = tables["dosed"]
        self.pooled_ = tables["pooled"]
