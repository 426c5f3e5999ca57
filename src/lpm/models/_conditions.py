"""Conditions of combination models and the single key of each member (Peper).

A model of combinations looks each member up as a single measured in the same context. Where
the data gives doses per member, a condition is (context, perturbation, dose, time, member
doses, member times) and a member is the single at its own dose and time
(:func:`lpm.data.members.explode_members`); otherwise a condition is (context, perturbation),
doses pooled, as before.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from lpm.data import schema as S
from lpm.data.members import ROW, ROW_COLUMN, explode_members, has_member_values
from lpm.data.profiles import profile_matrix
from lpm.data.symbols import members

Key = tuple[Any, ...]
POOLED: tuple[str, ...] = (S.CONTEXT, S.PERTURBATION)
_TYPES: dict[str, pl.DataType] = {
    S.CONTEXT: pl.String(),
    S.PERTURBATION: pl.String(),
    S.DOSE: pl.Float32(),
    S.TIME: pl.Float32(),
    S.MEMBER_DOSE: pl.List(pl.Float32()),
    S.MEMBER_TIME: pl.List(pl.Float32()),
}


def _hashable(key: Sequence[Any]) -> Key:
    return tuple(tuple(v) if isinstance(v, list) else v for v in key)


@dataclass(frozen=True)
class ConditionKeys:
    """The columns naming a condition: (context, perturbation), or with dose, time and the
    per-member columns where the training rows give doses per member."""

    by: tuple[str, ...] = POOLED

    @classmethod
    def of(cls, rows: pl.DataFrame) -> ConditionKeys:
        if not has_member_values(rows):
            return cls()
        present = set(rows.columns)
        row_cols = [c for m, c in ROW_COLUMN.items() if c in present or m in present]
        return cls((*POOLED, *row_cols, *[c for c in S.MEMBER_COLUMNS if c in present]))

    @property
    def single_by(self) -> tuple[str, ...]:
        """The columns naming a single: the condition's, less the per-member ones."""
        return tuple(c for c in self.by if c not in S.MEMBER_COLUMNS)

    def _frame(self, rows: pl.DataFrame) -> pl.DataFrame:
        """``rows`` with every ``by`` column (those it lacks empty) in its type."""
        return rows.with_columns(
            pl.col(c).cast(_TYPES[c]) if c in rows.columns else pl.lit(None, _TYPES[c]).alias(c)
            for c in self.by
        )

    def profiles(self, rows: pl.DataFrame, readouts: Sequence[str]) -> tuple[list[Key], np.ndarray]:
        """Conditions (first-seen order) × ``readouts`` of mean values."""
        if self.by == POOLED:
            keys, y = profile_matrix(rows, readouts)
            return keys, y
        keys, y = profile_matrix(self._frame(rows), readouts, by=self.by)
        return [_hashable(k) for k in keys], y

    def row_keys(self, rows: pl.DataFrame) -> list[Key]:
        """Each row's condition."""
        frame = self._frame(rows).select(pl.col(c).cast(_TYPES[c]) for c in self.by)
        return [_hashable(k) for k in frame.iter_rows()]

    def member_keys(self, keys: Sequence[Key]) -> list[list[Key]]:
        """The single key of each member of each condition (none for the control)."""
        if self.by == POOLED:
            return [[(c, m) for m in members(p)] for c, p, *_ in keys]
        frame = pl.DataFrame(
            [list(k) for k in keys], schema={c: _TYPES[c] for c in self.by}, orient="row"
        )
        out: list[list[Key]] = [[] for _ in keys]
        exploded = explode_members(frame).filter(pl.col(S.PERTURBATION) != S.CONTROL)
        for row, *key in exploded.select(ROW, *self.single_by).iter_rows():
            out[row].append(tuple(key))
        return out

    def single(self, key: Key) -> Key:
        """A single's condition as a member key."""
        return key[: len(self.single_by)]

    def query(self, singles: Sequence[Key], readouts: Sequence[str]) -> pl.DataFrame:
        """Rows asking for every readout of each single (for a model of singles)."""
        cols = {c: [k[j] for k in singles for _ in readouts] for j, c in enumerate(self.single_by)}
        cols[S.READOUT] = list(readouts) * len(singles)
        return pl.DataFrame(cols, schema={**{c: _TYPES[c] for c in self.single_by},
                                          S.READOUT: pl.String()})  # fmt: skip

    def table(self, singles: Sequence[Key]) -> pl.DataFrame:
        """Single keys as a table (saved with a model)."""
        return pl.DataFrame(
            [list(k) for k in singles],
            schema={c: _TYPES[c] for c in self.single_by},
            orient="row",
        )
