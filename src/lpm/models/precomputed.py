"""``precomputed``: predictions made elsewhere (another tool, e.g. GEARS in its own environment),
scored by lpm on the same split as every other model.

The file holds long rows ``context, perturbation, readout, value`` and optionally ``seed``
(the split seed the predictions were made for); a benchmark gives each seed's model its own
rows. Rows the file does not hold are unsupported (never filled with "no effect"), so the
benchmark's coverage table says exactly what the other tool predicted.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import polars as pl

from lpm.data import schema as S
from lpm.data.io.symbol_tables import read_symbol_table
from lpm.errors import LpmInputError
from lpm.models.base import LookupModel
from lpm.models.params import SEED, Rule

if TYPE_CHECKING:
    from lpm.models.training import TrainerOptions

_KEYS = [S.CONTEXT, S.PERTURBATION, S.READOUT]


class PrecomputedModel(LookupModel):
    """Predictions read from a file (made by another tool on the same split), looked up by row."""

    needs_inputs: ClassVar[tuple[str, ...]] = ("path",)
    param_rules: ClassVar[Mapping[str, Rule]] = {"seed": SEED}

    def __init__(self, *, path: str = "", seed: int = 0) -> None:
        self.path = path
        self.seed = seed

    def _fit(
        self, train: pl.DataFrame, val: pl.DataFrame | None, trainer: TrainerOptions | None
    ) -> None:
        path = Path(self.path)
        table = read_symbol_table(
            path, "precomputed predictions file", symbols=_KEYS, hint=" (param path)"
        )
        missing = [c for c in (*_KEYS, S.VALUE) if c not in table.columns]
        if missing:
            raise LpmInputError(path, f"predictions miss column(s) {', '.join(missing)}")
        if "seed" in table.columns:
            table = table.filter(pl.col("seed") == self.seed)
        table = table.select(
            *(pl.col(k).cast(pl.String) for k in _KEYS), pl.col(S.VALUE).cast(pl.Float64)
        )
        if not np.isfinite(table[S.VALUE].to_numpy()).all():
            raise LpmInputError(path, "column value contains NaN/inf")
        if table.select(_KEYS).is_duplicated().any():
            raise LpmInputError(path, "duplicate (context, perturbation, readout) rows")
        self.table_ = table

    def _values(self, rows: pl.DataFrame) -> np.ndarray:
        keys = rows.select(pl.col(k).cast(pl.String) for k in _KEYS)
        joined = keys.join(self.table_, on=_KEYS, how="left", maintain_order="left")
        return joined[S.VALUE].fill_null(np.nan).to_numpy().astype(np.float64)

    def _known(self) -> dict[str, set[str]]:
        return {k: set(self.table_[k].unique().to_list()) for k in _KEYS}

    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, pl.DataFrame], dict[str, Any]]:
        return {}, {"predictions": self.table_}, {}

    def _set_state(
        self, arrays: dict[str, np.ndarray], tables: dict[str, pl.DataFrame], extra: dict[str, Any]
    ) -> None:
        self.table_ = tables["predictions"]
