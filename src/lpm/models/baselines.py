"""Simple baselines every benchmark runs beside the deep models (they are often hard to beat)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from lpm.data import schema as S
from lpm.data.members import ROW, ROW_COLUMN, explode_members
from lpm.data.symbols import COMBINATION_SEPARATOR
from lpm.models.base import PerturbationModel

if TYPE_CHECKING:
    from lpm.models.training import TrainerOptions

_MEAN = "_mean"


def _profile_keys(df: pl.DataFrame, *, members: bool = True) -> list[str]:
    """Dose and time, where present, are part of what a perturbation is, and so are the doses
    and times of a combination's members (``members``)."""
    cols = [*ROW_COLUMN, S.DOSE, S.TIME] if members else [S.DOSE, S.TIME]
    present = set(df.columns) | {ROW_COLUMN[c] for c in ROW_COLUMN if c in df.columns}
    return [c for c in (S.DOSE, S.TIME, *S.MEMBER_COLUMNS) if c in cols and c in present]


def _with_keys(df: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    """``df`` with the dose/time key columns it lacks, empty (a member's dose is then unmatched)."""
    missing = [k for k in keys if k not in df.columns and k in (*ROW_COLUMN, *ROW_COLUMN.values())]
    return df.with_columns(
        pl.lit(None, dtype=pl.List(pl.Float32) if k in ROW_COLUMN else pl.Float32).alias(k)
        for k in missing
    )


def _perturbed(train: pl.DataFrame) -> pl.DataFrame:
    return train.filter(pl.col(S.PERTURBATION) != S.CONTROL)


def _lookup(rows: pl.DataFrame, table: pl.DataFrame, keys: list[str]) -> np.ndarray:
    """Value of ``table`` at each row's key, NaN where absent (row order kept)."""
    # a member key the rows lack is empty (no per-member doses), never a key left out
    rows = rows.with_columns(
        pl.lit(None, dtype=pl.List(pl.Float32)).alias(k)
        for k in keys
        if k in S.MEMBER_COLUMNS and k not in rows.columns
    )
    use = [k for k in keys if k in rows.columns]
    joined = rows.select(use).join(
        table.select([*use, _MEAN]), on=use, how="left", nulls_equal=True, maintain_order="left"
    )
    return joined[_MEAN].fill_null(np.nan).to_numpy().astype(np.float64)


class _TableModel(PerturbationModel):
    """A model whose learned state is one table of means over some key columns."""

    keys_: list[str]
    table_: pl.DataFrame

    def _values(self, rows: pl.DataFrame) -> np.ndarray:
        return _lookup(rows, self.table_, self.keys_)

    def _supported(self, rows: pl.DataFrame) -> np.ndarray:
        return ~np.isnan(self._values(rows))

    def _predict(self, rows: pl.DataFrame) -> np.ndarray:
        return self._values(rows)

    def _known(self) -> dict[str, set[str]]:
        return {
            k: set(self.table_[k].unique().to_list())
            for k in self.keys_
            if k in (S.CONTEXT, S.PERTURBATION, S.READOUT)
        }

    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, pl.DataFrame], dict[str, Any]]:
        return {}, {"table": self.table_}, {"keys": self.keys_}

    def _set_state(
        self, arrays: dict[str, np.ndarray], tables: dict[str, pl.DataFrame], extra: dict[str, Any]
    ) -> None:
        self.keys_ = list(extra["keys"])
        self.table_ = tables["table"]


class NoChange(PerturbationModel):
    """Predicts no effect (delta 0, label 0) everywhere: the floor any model must clear."""

    member_conditions = True  # no perturbation is told apart: nothing to mix up

    def __init__(self) -> None:
        pass

    def _fit(
        self, train: pl.DataFrame, val: pl.DataFrame | None, trainer: TrainerOptions | None
    ) -> None:
        self.fitted_ = True

    def _supported(self, rows: pl.DataFrame) -> np.ndarray:
        return np.ones(rows.height, dtype=bool)

    def _predict(self, rows: pl.DataFrame) -> np.ndarray:
        return np.zeros(rows.height, dtype=np.float32)

    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, pl.DataFrame], dict[str, Any]]:
        return {}, {}, {}

    def _set_state(
        self, arrays: dict[str, np.ndarray], tables: dict[str, pl.DataFrame], extra: dict[str, Any]
    ) -> None:
        self.fitted_ = True


class ContextMean(_TableModel):
    """The average perturbed delta of the context, per readout: the shared response to any perturbation."""

    member_conditions = True  # no perturbation is told apart: nothing to mix up

    def __init__(self) -> None:
        pass

    def _fit(
        self, train: pl.DataFrame, val: pl.DataFrame | None, trainer: TrainerOptions | None
    ) -> None:
        self.keys_ = [S.CONTEXT, S.READOUT]
        self.table_ = (
            _perturbed(train)
            .group_by(self.keys_)
            .agg(pl.col(S.VALUE).mean().alias(_MEAN))
            .sort(self.keys_)
        )


class PerturbationMean(_TableModel):
    """The same perturbation's delta averaged over the other contexts it was measured in.

    A compound at a dose it was never measured at (a held-out dose) gets the mean over the
    doses it was measured at (with ``pool_doses``): the natural baseline for dose prediction.
    Per-member doses are part of the key (a combination at member doses never measured is not
    pooled).
    """

    member_conditions = True

    def __init__(self, *, pool_doses: bool = True) -> None:
        self.pool_doses = pool_doses

    def _fit(
        self, train: pl.DataFrame, val: pl.DataFrame | None, trainer: TrainerOptions | None
    ) -> None:
        self.keys_ = [S.PERTURBATION, *_profile_keys(train), S.READOUT]
        perturbed = _with_keys(_perturbed(train), self.keys_)
        self.table_ = (
            perturbed.group_by(self.keys_)
            .agg(pl.col(S.VALUE).mean().alias(_MEAN))
            .sort(self.keys_, nulls_last=True)
        )
        self.pooled_keys_ = [k for k in self.keys_ if k != S.DOSE]
        self.pooled_: pl.DataFrame | None = None
        if self.pool_doses and S.DOSE in train.columns:
            self.pooled_ = (
                perturbed.filter(pl.col(S.DOSE).is_not_null())
                .group_by(self.pooled_keys_)
                .agg(pl.col(S.VALUE).mean().alias(_MEAN))
                .sort(self.pooled_keys_, nulls_last=True)
            )

    def _values(self, rows: pl.DataFrame) -> np.ndarray:
        values = _lookup(rows, self.table_, self.keys_)
        missing = np.isnan(values)
        if self.pooled_ is not None and S.DOSE in rows.columns and missing.any():
            dosed = missing & rows[S.DOSE].is_not_null().to_numpy()
            if dosed.any():
                values[dosed] = _lookup(
                    rows.filter(pl.Series(dosed)), self.pooled_, self.pooled_keys_
                )
        return values

    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, pl.DataFrame], dict[str, Any]]:
        arrays, tables, extra = super()._get_state()
        if self.pooled_ is not None:
            tables["pooled"] = self.pooled_
        return arrays, tables, {**extra, "pooled_keys": self.pooled_keys_}

    def _set_state(
        self, arrays: dict[str, np.ndarray], tables: dict[str, pl.DataFrame], extra: dict[str, Any]
    ) -> None:
        super()._set_state(arrays, tables, extra)
        self.pooled_ = tables.get("pooled")  # models saved before dose pooling have none
        self.pooled_keys_ = list(extra.get("pooled_keys", []))


class Additive(_TableModel):
    """Salt: a combination's delta is the sum of its singles' deltas measured in the same context.

    Each member is looked up at its own dose and time (given per member, else the row's). A
    single is predicted by its own measured delta; a combination with any single unmeasured in
    that context (at that dose) is not predicted (it is reported as unsupported, not guessed).
    """

    member_conditions = True

    def __init__(self) -> None:
        pass

    def _fit(
        self, train: pl.DataFrame, val: pl.DataFrame | None, trainer: TrainerOptions | None
    ) -> None:
        singles = _perturbed(train).filter(
            ~pl.col(S.PERTURBATION).str.contains(COMBINATION_SEPARATOR, literal=True)
        )
        self.keys_ = [S.CONTEXT, S.PERTURBATION, *_profile_keys(train, members=False), S.READOUT]
        self.table_ = (
            _with_keys(singles, self.keys_)
            .group_by(self.keys_)
            .agg(pl.col(S.VALUE).mean().alias(_MEAN))
            .sort(self.keys_, nulls_last=True)
        )

    def _values(self, rows: pl.DataFrame) -> np.ndarray:
        n_members = rows[S.PERTURBATION].str.split(COMBINATION_SEPARATOR).list.len().to_numpy()
        exploded = explode_members(rows)
        values = _lookup(exploded, self.table_, self.keys_)
        total = np.zeros(rows.height)
        found = np.zeros(rows.height, dtype=np.int64)
        idx = exploded[ROW].to_numpy()
        ok = ~np.isnan(values)
        np.add.at(total, idx[ok], values[ok])
        np.add.at(found, idx[ok], 1)
        out = np.where(found == n_members, total, np.nan)
        for member, col in ROW_COLUMN.items():  # doses per member, singles without any: unmatched
            if member in rows.columns and col not in self.keys_:
                out[rows[member].is_not_null().to_numpy()] = np.nan
        return out


class Salt(Additive):
    """Salt (Gaudelet et al. 2024): the additive model under its paper's name, the baseline Peper corrects."""
