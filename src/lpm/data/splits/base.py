"""What a split is: a seeded train/val/test partition of long rows, and the contract of a kind.

A kind (:class:`SplitKind`) answers one generalisation question by choosing which units
(rows, pairs, symbols, contexts, profiles) go to test and validation; everything around it (the
checks of the rows and fractions, the seeded generator, cutting the rows, labelling the test
groups) is the same for every kind and lives here once.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, ClassVar, Final

import numpy as np
import polars as pl

from lpm.data import schema as S
from lpm.data.schema import condition_columns
from lpm.errors import LpmInputError

GROUP: Final = "group"
#: Column of a unit table holding the part it goes to.
PART: Final = "_part"
TRAIN, VAL, TEST = 0, 1, 2
PAIR: Final = (S.CONTEXT, S.PERTURBATION)
PROFILE: Final = (S.CONTEXT, S.PERTURBATION, S.DOSE)


@dataclass(frozen=True, eq=False)
class Split:
    """A train/val/test partition of long rows, plus the labels of what the test set holds.

    ``train``, ``val`` and ``test`` are disjoint row subsets of the input, in input order, whose
    union is the input. ``test_groups`` has one row per held-out (context, perturbation), or
    (context, perturbation, dose) for ``unseen_dose``, with a ``group`` label for subgroup
    reporting (``seen2``/``seen1``/``seen0`` for combinations, otherwise the split kind). Its
    columns other than ``group`` are the keys that match it to ``test``.
    """

    kind: str
    seed: int
    train: pl.DataFrame
    val: pl.DataFrame
    test: pl.DataFrame
    test_groups: pl.DataFrame


@dataclass(frozen=True)
class HoldOut:
    """What a split is asked for: the shares of units for test and validation, and the
    kind's own options (its defaults filled in)."""

    test_fraction: float
    val_fraction: float
    options: Mapping[str, Any]


class SplitKind(ABC):
    """One generalisation question: which units a split holds out.

    A kind implements :meth:`parts` (the part of every row) and may override :meth:`groups`
    (the labels of the test units). ``options`` lists its own parameters beyond the two
    fractions, with their defaults; :func:`lpm.data.splits.make_split` passes them by name.
    """

    name: ClassVar[str]
    #: Columns that match a test group to its rows.
    keys: ClassVar[tuple[str, ...]] = PAIR
    options: ClassVar[Mapping[str, Any]] = MappingProxyType({})

    @abstractmethod
    def parts(self, rows: pl.DataFrame, rng: np.random.Generator, asked: HoldOut) -> np.ndarray:
        """The part (``TRAIN``, ``VAL`` or ``TEST``) of every row, in row order."""

    def groups(self, test: pl.DataFrame, train: pl.DataFrame) -> pl.DataFrame:
        """One row per held-out unit with its ``group`` label (here: the kind's name)."""
        return test.select(self.keys).unique().with_columns(pl.lit(self.name).alias(GROUP))

    def split(
        self,
        rows: pl.DataFrame,
        *,
        seed: int = 0,
        test_fraction: float = 0.2,
        val_fraction: float = 0.1,
        **options: Any,
    ) -> Split:
        """Check the rows and fractions, hold out this kind's units, cut the rows."""
        check_rows(rows, test_fraction=test_fraction, val_fraction=val_fraction)
        rng = np.random.default_rng(seed)
        asked = HoldOut(test_fraction, val_fraction, {**self.options, **options})
        part = self.parts(rows, rng, asked)
        parts = pl.Series(PART, part)
        train, test = rows.filter(parts == TRAIN), rows.filter(parts == TEST)
        return Split(
            kind=self.name,
            seed=seed,
            train=train,
            val=rows.filter(parts == VAL),
            test=test,
            test_groups=self.groups(test, train).sort(list(self.keys)),
        )


def describe_split(split: Split) -> dict[str, Any]:
    """Counts of rows, conditions, contexts and perturbations per part, and of test groups.

    Examples
    --------
    >>> import polars as pl
    >>> from lpm.data.splits import make_split
    >>> rows = pl.DataFrame({"context": ["A"] * 10, "perturbation": [f"CRISPRi:G{i}" for i in range(10)],
    ...                      "readout": ["g1"] * 10, "value": [0.0] * 10})
    >>> describe_split(make_split(rows, kind="random"))["rows"]
    {'train': 7, 'val': 1, 'test': 2}
    """
    parts = {"train": split.train, "val": split.val, "test": split.test}
    out: dict[str, Any] = {"kind": split.kind, "seed": split.seed}
    out["rows"] = {name: df.height for name, df in parts.items()}
    out["conditions"] = {
        name: df.select(condition_columns(df.columns)).n_unique() if df.height else 0
        for name, df in parts.items()
    }
    for col, key in ((S.CONTEXT, "contexts"), (S.PERTURBATION, "perturbations")):
        out[key] = {name: df[col].n_unique() for name, df in parts.items()}
    counts = split.test_groups.group_by(GROUP).len().sort(GROUP)
    out["test_groups"] = dict(zip(counts[GROUP].to_list(), counts["len"].to_list(), strict=True))
    return out


# --------------------------------------------------------------------------- shared by the kinds


def check_rows(rows: pl.DataFrame, *, test_fraction: float, val_fraction: float) -> None:
    """Refuse rows or fractions no kind can split, naming the problem."""
    missing = [c for c in S.REQUIRED_COLUMNS if c not in rows.columns]
    if missing:
        raise LpmInputError(None, f"rows miss column(s) {', '.join(missing)}")
    if rows.height < 2:
        raise LpmInputError(None, f"cannot split {rows.height} row(s)")
    if not 0.0 < test_fraction < 1.0:
        raise LpmInputError(None, f"test_fraction must be in (0, 1), got {test_fraction}")
    if not 0.0 <= val_fraction < 1.0 or test_fraction + val_fraction >= 1.0:
        raise LpmInputError(
            None,
            f"val_fraction must be in [0, 1) with test + val < 1, got val={val_fraction}, test={test_fraction}",
        )
    for col in PAIR:
        if rows[col].null_count():
            raise LpmInputError(None, f"column {col!r} has empty values")


def n_of(fraction: float, total: int, *, at_least: int = 0) -> int:
    """``fraction`` of ``total`` units, rounded, at least ``at_least`` (0 of nothing)."""
    return max(at_least, round(fraction * total)) if total else 0


def assign(rows: pl.DataFrame, units: pl.DataFrame) -> np.ndarray:
    """Per-row part from a table of held-out units (key columns + ``PART``); unlisted rows train."""
    keys = [c for c in units.columns if c != PART]
    joined = (
        rows.select(keys).with_row_index("_i").join(units, on=keys, how="left", nulls_equal=True)
    )
    part = joined.sort("_i")[PART].fill_null(TRAIN).to_numpy()
    return part.astype(np.int8)


def unit_table(values: list[Any], test: np.ndarray, val: np.ndarray, key: str) -> pl.DataFrame:
    """A unit table of ``values`` (one ``key`` column): those at ``test``/``val`` positions."""
    part = np.full(len(values), -1, dtype=np.int8)
    part[test] = TEST
    part[val] = VAL
    return pl.DataFrame({key: values, PART: part}).filter(pl.col(PART) >= 0)


def non_control(rows: pl.DataFrame) -> pl.DataFrame:
    return rows.filter(pl.col(S.PERTURBATION) != S.CONTROL)
