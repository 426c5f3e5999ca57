"""The built-in split kinds, one per generalisation question.

Every split is a pure function of the rows and the seed: rows are never copied into two parts,
the union of the parts is the input, and the same seed gives the same split. What is held out
depends on the kind:

``random``
    Rows (single measurements) at random; test/val fractions are fractions of rows.
``unseen_pair``
    (context, perturbation) pairs whose perturbation stays measured in at least one other
    context in training, the setting a model over contexts is meant for. Fractions are of
    the non-control (context, perturbation) pairs; fewer are held out where the data
    cannot give more without emptying a perturbation's training contexts.
``unseen_perturbation``
    Perturbation symbols never seen in training in any context (a combination is a symbol like
    any other). Fractions are of the non-control symbols.
``unseen_context``
    One whole context (named by ``context`` or drawn by seed) is the test set, control rows
    included; ``test_fraction`` is unused. Validation is a ``val_fraction`` of the non-control
    conditions of the other contexts.
``combination``
    Combination symbols (``A+B``): a ``test_fraction`` of them (at least one) go to test in every
    context, and each held-out (context, combination) is labelled ``seen<k>``, the number of its
    members measured in training in the same context. ``holdout_singles_fraction`` also moves that
    fraction of the members of the test combinations (single symbols, every context) to test, so
    ``seen1``/``seen0`` cases exist; those singles are labelled ``single``. Validation takes a
    ``val_fraction`` of the remaining combinations. Where doses are given per member
    (``1.5+6``), each held-out condition (a combination at its member doses) is labelled, and
    a member counts as seen where its single was measured at its own dose and time.
``unseen_dose``
    (context, perturbation, dose) profiles at doses never seen in training for that perturbation
    in that context, chosen only among perturbations measured at three or more distinct doses
    there. Each such (context, perturbation) keeps its lowest and highest dose in training, so
    held-out doses are interpolations; fractions are of these interior doses (at least one to
    test). Rows without a dose are never held out. ``test_groups`` carries the ``dose`` column.

The control is never held out except as part of a whole context (``unseen_context``) or a random
row (``random``). Where one unit (pair, symbol, context) is held out, all its rows (every dose,
time and replicate) go together; for ``unseen_dose`` the unit is a profile, whose rows (every
readout, time and replicate) go together.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, ClassVar

import numpy as np
import polars as pl

from lpm.data import schema as S
from lpm.data.members import ROW, explode_members, has_member_values
from lpm.data.schema import condition_columns
from lpm.data.splits.base import (
    GROUP,
    PAIR,
    PART,
    PROFILE,
    TEST,
    VAL,
    HoldOut,
    SplitKind,
    assign,
    n_of,
    non_control,
    unit_table,
)
from lpm.data.symbols import is_combination, members
from lpm.errors import LpmInputError


def _random_rows(
    n: int, rng: np.random.Generator, test_fraction: float, val_fraction: float
) -> np.ndarray:
    n_test = min(max(1, round(test_fraction * n)), n - 1)
    n_val = min(round(val_fraction * n), n - 1 - n_test)
    part = np.zeros(n, dtype=np.int8)
    order = rng.permutation(n)
    part[order[:n_test]] = TEST
    part[order[n_test : n_test + n_val]] = VAL
    return part


def _hold_pairs(pairs: pl.DataFrame, rng: np.random.Generator, n: int) -> pl.DataFrame:
    """Draw up to ``n`` pairs at random so that each perturbation keeps one pair back.

    Each perturbation's kept pair is drawn at random; every other pair of it is eligible.
    """
    if n <= 0 or pairs.height == 0:
        return pairs.clear()
    keyed = pairs.with_columns(pl.Series("_key", rng.random(pairs.height)))
    keyed = keyed.with_columns(pl.col("_key").rank("ordinal").over(S.PERTURBATION).alias("_rank"))
    eligible = keyed.filter(pl.col("_rank") > 1).select(PAIR)
    take = rng.permutation(eligible.height)[: min(n, eligible.height)]
    return eligible[np.sort(take)]


def _unseen_pair(
    rows: pl.DataFrame, rng: np.random.Generator, test_fraction: float, val_fraction: float
) -> pl.DataFrame:
    pairs = non_control(rows).select(PAIR).unique().sort(PAIR)
    n_ctx = pl.col(S.CONTEXT).n_unique().over(S.PERTURBATION)
    candidates = pairs.filter(n_ctx >= 2)
    if candidates.height == 0:
        raise LpmInputError(
            None,
            "unseen_pair needs perturbations measured in at least two contexts; this data has none",
        )
    test = _hold_pairs(candidates, rng, n_of(test_fraction, pairs.height, at_least=1))
    rest = candidates.join(test, on=list(PAIR), how="anti").sort(PAIR)
    val = _hold_pairs(rest, rng, n_of(val_fraction, pairs.height))
    return pl.concat(
        [
            test.with_columns(pl.lit(TEST, pl.Int8).alias(PART)),
            val.with_columns(pl.lit(VAL, pl.Int8).alias(PART)),
        ]
    )


def _unseen_perturbation(
    rows: pl.DataFrame, rng: np.random.Generator, test_fraction: float, val_fraction: float
) -> pl.DataFrame:
    symbols = sorted(non_control(rows)[S.PERTURBATION].unique().to_list())
    if len(symbols) < 2:
        raise LpmInputError(
            None,
            f"unseen_perturbation needs at least two non-control perturbations; this data has {len(symbols)}",
        )
    n_test = min(n_of(test_fraction, len(symbols), at_least=1), len(symbols) - 1)
    n_val = min(n_of(val_fraction, len(symbols)), len(symbols) - 1 - n_test)
    order = rng.permutation(len(symbols))
    return unit_table(symbols, order[:n_test], order[n_test : n_test + n_val], S.PERTURBATION)


def _unseen_context(
    rows: pl.DataFrame, rng: np.random.Generator, val_fraction: float, context: str | None
) -> pl.DataFrame:
    contexts = sorted(rows[S.CONTEXT].unique().to_list())
    if len(contexts) < 2:
        raise LpmInputError(
            None, f"unseen_context needs at least two contexts; this data has {len(contexts)}"
        )
    if context is None:
        context = contexts[int(rng.integers(len(contexts)))]
    elif context not in contexts:
        raise LpmInputError(
            None, f"unknown context {context!r}; valid contexts: {', '.join(contexts)}"
        )
    cond = condition_columns(rows.columns)
    rest = (
        non_control(rows.filter(pl.col(S.CONTEXT) != context))
        .select(cond)
        .unique()
        .sort(cond, nulls_last=True)
    )
    n_all = rows.select(cond).n_unique()
    pick = rng.permutation(rest.height)[: min(n_of(val_fraction, n_all), rest.height)]
    val = rest[np.sort(pick)].with_columns(pl.lit(VAL, pl.Int8).alias(PART))
    # The held-out context's rows are matched on context alone: join keys must be the same for all units.
    test_rows = rows.filter(pl.col(S.CONTEXT) == context).select(cond).unique()
    test = test_rows.with_columns(pl.lit(TEST, pl.Int8).alias(PART))
    return pl.concat([test, val], how="vertical_relaxed")


def _combination(
    rows: pl.DataFrame,
    rng: np.random.Generator,
    test_fraction: float,
    val_fraction: float,
    singles_fraction: float,
) -> pl.DataFrame:
    symbols = sorted(non_control(rows)[S.PERTURBATION].unique().to_list())
    combos = [s for s in symbols if is_combination(s)]
    if not combos:
        raise LpmInputError(
            None,
            "combination split needs combination perturbations (symbols joined by '+'); this data has none",
        )
    n_test = min(n_of(test_fraction, len(combos), at_least=1), len(combos))
    n_val = min(n_of(val_fraction, len(combos)), len(combos) - n_test)
    order = rng.permutation(len(combos))
    test, val = order[:n_test], order[n_test : n_test + n_val]
    units = unit_table(combos, test, val, S.PERTURBATION)
    if singles_fraction > 0:
        measured = set(symbols)
        pool = sorted({m for i in test for m in members(combos[i]) if m in measured})
        n_single = round(singles_fraction * len(pool))
        picked = rng.permutation(len(pool))[:n_single]
        singles = pl.DataFrame(
            {
                S.PERTURBATION: [pool[i] for i in np.sort(picked)],
                PART: np.full(n_single, TEST, np.int8),
            }
        )
        units = pl.concat([units, singles], how="vertical_relaxed")
    return units


def _unseen_dose(
    rows: pl.DataFrame, rng: np.random.Generator, test_fraction: float, val_fraction: float
) -> pl.DataFrame:
    """Interior doses of (context, perturbation)s measured at three or more doses there."""
    interior = pl.DataFrame(schema={c: rows.schema.get(c, pl.Float32) for c in PROFILE})
    if S.DOSE in rows.columns:
        profiles = (
            non_control(rows)
            .select(PROFILE)
            .filter(pl.col(S.DOSE).is_not_null() & pl.col(S.DOSE).is_not_nan())
            .unique()
            .sort(PROFILE)
        )
        rank = pl.col(S.DOSE).rank("ordinal").over(PAIR)
        n_doses = pl.len().over(PAIR)
        interior = profiles.filter((n_doses >= 3) & (rank > 1) & (rank < n_doses))
    if interior.height == 0:
        raise LpmInputError(
            None,
            "unseen_dose needs perturbations measured at three or more doses in a context; this data has none",
        )
    n_test = min(n_of(test_fraction, interior.height, at_least=1), interior.height)
    n_val = min(n_of(val_fraction, interior.height), interior.height - n_test)
    order = rng.permutation(interior.height)
    part = np.full(interior.height, -1, dtype=np.int8)
    part[order[:n_test]] = TEST
    part[order[n_test : n_test + n_val]] = VAL
    return interior.with_columns(pl.Series(PART, part)).filter(pl.col(PART) >= 0)


def _seen_labels(test: pl.DataFrame, train: pl.DataFrame) -> pl.DataFrame:
    """Label each held-out (context, combination) ``seen<k>``: k members measured in training there."""
    if has_member_values(test) or has_member_values(train):
        return _seen_at_doses(test, train)
    seen = set(train.select(PAIR).unique().iter_rows())
    pairs = test.select(PAIR).unique().sort(PAIR)
    labels = [
        f"seen{sum((ctx, m) in seen for m in members(pert))}" if is_combination(pert) else "single"
        for ctx, pert in pairs.iter_rows()
    ]
    return pairs.with_columns(pl.Series(GROUP, labels, dtype=pl.String))


def _seen_at_doses(test: pl.DataFrame, train: pl.DataFrame) -> pl.DataFrame:
    """``seen<k>`` per held-out condition where doses are given per member: k members measured
    in training in the same context at their own doses and times."""
    keys = [c for c in condition_columns(test.columns) if c != S.REPLICATE]
    units = test.select(keys).unique().sort(keys, nulls_last=True)
    members_of = explode_members(units)
    single = [c for c in (*PAIR, S.DOSE, S.TIME) if c in members_of.columns]
    measured = train.with_columns(
        pl.lit(None, pl.Float32).alias(c) for c in single if c not in train.columns
    ).select(pl.col(c).cast(members_of.schema[c]) for c in single)
    hits = members_of.join(measured.unique(), on=single, how="semi", nulls_equal=True)
    counts = hits.group_by(ROW).len()
    n_seen = np.zeros(units.height, np.int64)
    n_seen[counts[ROW].to_numpy()] = counts["len"].to_numpy()
    labels = [
        f"seen{k}" if is_combination(p) else "single"
        for k, p in zip(n_seen, units[S.PERTURBATION].to_list(), strict=True)
    ]
    return units.with_columns(pl.Series(GROUP, labels, dtype=pl.String))


# --------------------------------------------------------------------------- the kinds


class RandomRows(SplitKind):
    """Rows (single measurements) at random."""

    name = "random"

    def parts(self, rows: pl.DataFrame, rng: np.random.Generator, asked: HoldOut) -> np.ndarray:
        return _random_rows(rows.height, rng, asked.test_fraction, asked.val_fraction)


class UnseenPair(SplitKind):
    """(context, perturbation) pairs whose perturbation stays measured in another context."""

    name = "unseen_pair"

    def parts(self, rows: pl.DataFrame, rng: np.random.Generator, asked: HoldOut) -> np.ndarray:
        return assign(rows, _unseen_pair(rows, rng, asked.test_fraction, asked.val_fraction))


class UnseenPerturbation(SplitKind):
    """Perturbation symbols never seen in training in any context."""

    name = "unseen_perturbation"

    def parts(self, rows: pl.DataFrame, rng: np.random.Generator, asked: HoldOut) -> np.ndarray:
        return assign(
            rows, _unseen_perturbation(rows, rng, asked.test_fraction, asked.val_fraction)
        )


class UnseenContext(SplitKind):
    """One whole context (``context``, or drawn by seed) is the test set."""

    name = "unseen_context"
    options: ClassVar[Mapping[str, Any]] = MappingProxyType({"context": None})

    def parts(self, rows: pl.DataFrame, rng: np.random.Generator, asked: HoldOut) -> np.ndarray:
        return assign(
            rows, _unseen_context(rows, rng, asked.val_fraction, asked.options["context"])
        )


class Combination(SplitKind):
    """Combination symbols held out in every context, labelled by members seen in training."""

    name = "combination"
    options: ClassVar[Mapping[str, Any]] = MappingProxyType({"holdout_singles_fraction": 0.0})

    def parts(self, rows: pl.DataFrame, rng: np.random.Generator, asked: HoldOut) -> np.ndarray:
        singles = asked.options["holdout_singles_fraction"]
        if not 0.0 <= singles <= 1.0:
            raise LpmInputError(None, f"holdout_singles_fraction must be in [0, 1], got {singles}")
        return assign(
            rows, _combination(rows, rng, asked.test_fraction, asked.val_fraction, singles)
        )

    def groups(self, test: pl.DataFrame, train: pl.DataFrame) -> pl.DataFrame:
        return _seen_labels(test, train)


class UnseenDose(SplitKind):
    """Interior doses of a (context, perturbation) never seen in training."""

    name = "unseen_dose"
    keys = PROFILE

    def parts(self, rows: pl.DataFrame, rng: np.random.Generator, asked: HoldOut) -> np.ndarray:
        return assign(rows, _unseen_dose(rows, rng, asked.test_fraction, asked.val_fraction))
