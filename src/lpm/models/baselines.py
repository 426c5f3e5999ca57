"""Simple baselines every benchmark runs beside the deep models (they are often hard to beat)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from lpm.data import schema as S
from lpm.data.symbols import COMBINATION_SEPARATOR
from lpm.models.base import PerturbationModel

if TYPE_CHECKING:
    from lpm.models.training import TrainerOptions

_MEAN = "_mean"


def _profile_keys(df: pl.DataFrame) -> list[str]:
    """Dose and time, where present, are part of what a perturbation is."""
    return [c for c in (S.DOSE, S.TIME) if c in df.columns]


def _perturbed(train: pl.DataFrame) -> pl.DataFrame:
    return train.filter(pl.col(S.PERTURBATION) != S.CONTROL)


def _lookup(rows: pl.DataFrame, table: pl.DataFrame, keys: list[str]) -> np.ndarray:
    """Value of ``table`` at each row's key, NaN where absent (row order kept)."""
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
    """

    def __init__(self, *, pool_doses: bool = True) -> None:
        self.pool_doses = pool_doses

    def _fit(
        self, train: pl.DataFrame, val: pl.DataFrame | None, trainer: TrainerOptions | None
    ) -> None:
        perturbed = _perturbed(train)
        self.keys_ = [S.PERTURBATION, *_profile_keys(train), S.READOUT]
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

    A single is predicted by its own measured delta; a combination with any single unmeasured
    in that context is not predicted (it is reported as unsupported, not guessed).
    """

    def __init__(self) -> None:
        pass

    def _fit(
        self, train: pl.DataFrame, val: pl.DataFrame | None, trainer: TrainerOptions | None
    ) -> None:
        singles = _perturbed(train).filter(
            ~pl.col(S.PERTURBATION).str.contains(COMBINATION_SEPARATOR, literal=True)
        )
        self.keys_ = [S.CONTEXT, S.PERTURBATION, *_profile_keys(train), S.READOUT]
        self.table_ = (
            singles.group_by(self.keys_)
            .agg(pl.col(S.VALUE).mean().alias(_MEAN))
            .sort(self.keys_, nulls_last=True)
        )

    def _values(self, rows: pl.DataFrame) -> np.ndarray:
        members = rows.select(pl.col(S.PERTURBATION).str.split(COMBINATION_SEPARATOR)).to_series()
        n_members = members.list.len().to_numpy()
        exploded = (
            rows.with_columns(members.alias(S.PERTURBATION))
            .with_row_index("_row")
            .explode(S.PERTURBATION)
        )
        values = _lookup(exploded, self.table_, self.keys_)
        total = np.zeros(rows.height)
        found = np.zeros(rows.height, dtype=np.int64)
        idx = exploded["_row"].to_numpy()
        ok = ~np.isnan(values)
        np.add.at(total, idx[ok], values[ok])
        np.add.at(found, idx[ok], 1)
        return np.where(found == n_members, total, np.nan)


class Salt(Additive):
    """Salt (Gaudelet et al. 2024): the additive model under its paper's name, the baseline Peper corrects."""
