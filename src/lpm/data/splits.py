"""Seeded train/val/test splits of the long table, one per generalisation question.

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
    ``val_fraction`` of the remaining combinations.
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

from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import polars as pl

from lpm.data import schema as S
from lpm.data.schema import condition_columns
from lpm.data.symbols import is_combination, members
from lpm.errors import LpmInputError

SPLIT_KINDS: Final = (
    "random",
    "unseen_pair",
    "unseen_perturbation",
    "unseen_context",
    "combination",
    "unseen_dose",
)
GROUP: Final = "group"
_PART: Final = "_part"
_TRAIN, _VAL, _TEST = 0, 1, 2
_PAIR: Final = (S.CONTEXT, S.PERTURBATION)
_PROFILE: Final = (S.CONTEXT, S.PERTURBATION, S.DOSE)


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


def make_split(
    rows: pl.DataFrame,
    *,
    kind: str,
    seed: int = 0,
    test_fraction: float = 0.2,
    val_fraction: float = 0.1,
    context: str | None = None,
    holdout_singles_fraction: float = 0.0,
) -> Split:
    """Split long rows into train/val/test for one generalisation question.

    Parameters
    ----------
    rows
        Long rows with at least ``context``, ``perturbation``, ``readout`` and ``value``.
    kind
        One of :data:`SPLIT_KINDS` (see the module docstring for what each holds out).
    seed
        Seed of the numpy Generator; the same seed and rows give the same split.
    test_fraction, val_fraction
        Share of the held-out units (rows, pairs, symbols, conditions, combinations or
        interior doses, by kind) that go to test and to validation.
    context
        For ``unseen_context`` only: the context to hold out (drawn by seed when None).
    holdout_singles_fraction
        For ``combination`` only: share of the test combinations' members also held out.

    Returns
    -------
    Split
        The three row subsets and the test-group labels.

    Examples
    --------
    >>> import polars as pl
    >>> rows = pl.DataFrame({
    ...     "context": ["A", "A", "B", "B"],
    ...     "perturbation": ["CRISPRi:X", "CRISPRi:Y", "CRISPRi:X", "CRISPRi:Y"],
    ...     "readout": ["g1"] * 4,
    ...     "value": [1.0, 2.0, 3.0, 4.0],
    ... })
    >>> split = make_split(rows, kind="unseen_pair", test_fraction=0.5, val_fraction=0.0)
    >>> split.train.height, split.test.height
    (2, 2)
    """
    _check(rows, kind=kind, test_fraction=test_fraction, val_fraction=val_fraction)
    if context is not None and kind != "unseen_context":
        raise LpmInputError(
            None, f"the context argument only applies to kind='unseen_context', not {kind!r}"
        )
    if holdout_singles_fraction and kind != "combination":
        raise LpmInputError(
            None, f"holdout_singles_fraction only applies to kind='combination', not {kind!r}"
        )
    if not 0.0 <= holdout_singles_fraction <= 1.0:
        raise LpmInputError(
            None, f"holdout_singles_fraction must be in [0, 1], got {holdout_singles_fraction}"
        )
    rng = np.random.default_rng(seed)
    if kind == "random":
        part = _random_rows(rows.height, rng, test_fraction, val_fraction)
    elif kind == "unseen_pair":
        part = _assign(rows, _unseen_pair(rows, rng, test_fraction, val_fraction))
    elif kind == "unseen_perturbation":
        part = _assign(rows, _unseen_perturbation(rows, rng, test_fraction, val_fraction))
    elif kind == "unseen_context":
        part = _assign(rows, _unseen_context(rows, rng, val_fraction, context))
    elif kind == "unseen_dose":
        part = _assign(rows, _unseen_dose(rows, rng, test_fraction, val_fraction))
    else:
        part = _assign(
            rows, _combination(rows, rng, test_fraction, val_fraction, holdout_singles_fraction)
        )
    parts = pl.Series(_PART, part)
    train, test = rows.filter(parts == _TRAIN), rows.filter(parts == _TEST)
    keys = list(_PROFILE if kind == "unseen_dose" else _PAIR)
    if kind == "combination":
        groups = _seen_labels(test, train)
    else:
        groups = test.select(keys).unique().with_columns(pl.lit(kind).alias(GROUP))
    return Split(
        kind=kind,
        seed=seed,
        train=train,
        val=rows.filter(parts == _VAL),
        test=test,
        test_groups=groups.sort(keys),
    )


def describe_split(split: Split) -> dict[str, Any]:
    """Counts of rows, conditions, contexts and perturbations per part, and of test groups.

    Examples
    --------
    >>> import polars as pl
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


# --------------------------------------------------------------------------- checks and helpers


def _check(rows: pl.DataFrame, *, kind: str, test_fraction: float, val_fraction: float) -> None:
    if kind not in SPLIT_KINDS:
        raise LpmInputError(
            None, f"unknown split kind {kind!r}; expected one of {', '.join(SPLIT_KINDS)}"
        )
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
    for col in _PAIR:
        if rows[col].null_count():
            raise LpmInputError(None, f"column {col!r} has empty values")


def _n_of(fraction: float, total: int, *, at_least: int = 0) -> int:
    return max(at_least, round(fraction * total)) if total else 0


def _random_rows(
    n: int, rng: np.random.Generator, test_fraction: float, val_fraction: float
) -> np.ndarray:
    n_test = min(max(1, round(test_fraction * n)), n - 1)
    n_val = min(round(val_fraction * n), n - 1 - n_test)
    part = np.zeros(n, dtype=np.int8)
    order = rng.permutation(n)
    part[order[:n_test]] = _TEST
    part[order[n_test : n_test + n_val]] = _VAL
    return part


def _assign(rows: pl.DataFrame, units: pl.DataFrame) -> np.ndarray:
    """Per-row part from a table of held-out units (key columns + ``_part``); unlisted rows train."""
    keys = [c for c in units.columns if c != _PART]
    joined = (
        rows.select(keys).with_row_index("_i").join(units, on=keys, how="left", nulls_equal=True)
    )
    part = joined.sort("_i")[_PART].fill_null(_TRAIN).to_numpy()
    return part.astype(np.int8)


def _units(values: list[Any], test: np.ndarray, val: np.ndarray, key: str) -> pl.DataFrame:
    part = np.full(len(values), -1, dtype=np.int8)
    part[test] = _TEST
    part[val] = _VAL
    return pl.DataFrame({key: values, _PART: part}).filter(pl.col(_PART) >= 0)


def _non_control(rows: pl.DataFrame) -> pl.DataFrame:
    return rows.filter(pl.col(S.PERTURBATION) != S.CONTROL)


# --------------------------------------------------------------------------- kinds


def _hold_pairs(pairs: pl.DataFrame, rng: np.random.Generator, n: int) -> pl.DataFrame:
    """Draw up to ``n`` pairs at random so that each perturbation keeps one pair back.

    Each perturbation's kept pair is drawn at random; every other pair of it is eligible.
    """
    if n <= 0 or pairs.height == 0:
        return pairs.clear()
    keyed = pairs.with_columns(pl.Series("_key", rng.random(pairs.height)))
    keyed = keyed.with_columns(pl.col("_key").rank("ordinal").over(S.PERTURBATION).alias("_rank"))
    eligible = keyed.filter(pl.col("_rank") > 1).select(_PAIR)
    take = rng.permutation(eligible.height)[: min(n, eligible.height)]
    return eligible[np.sort(take)]


def _unseen_pair(
    rows: pl.DataFrame, rng: np.random.Generator, test_fraction: float, val_fraction: float
) -> pl.DataFrame:
    pairs = _non_control(rows).select(_PAIR).unique().sort(_PAIR)
    n_ctx = pl.col(S.CONTEXT).n_unique().over(S.PERTURBATION)
    candidates = pairs.filter(n_ctx >= 2)
    if candidates.height == 0:
        raise LpmInputError(
            None,
            "unseen_pair needs perturbations measured in at least two contexts; this data has none",
        )
    test = _hold_pairs(candidates, rng, _n_of(test_fraction, pairs.height, at_least=1))
    rest = candidates.join(test, on=list(_PAIR), how="anti").sort(_PAIR)
    val = _hold_pairs(rest, rng, _n_of(val_fraction, pairs.height))
    return pl.concat(
        [
            test.with_columns(pl.lit(_TEST, pl.Int8).alias(_PART)),
            val.with_columns(pl.lit(_VAL, pl.Int8).alias(_PART)),
        ]
    )


def _unseen_perturbation(
    rows: pl.DataFrame, rng: np.random.Generator, test_fraction: float, val_fraction: float
) -> pl.DataFrame:
    symbols = sorted(_non_control(rows)[S.PERTURBATION].unique().to_list())
    if len(symbols) < 2:
        raise LpmInputError(
            None,
            f"unseen_perturbation needs at least two non-control perturbations; this data has {len(symbols)}",
        )
    n_test = min(_n_of(test_fraction, len(symbols), at_least=1), len(symbols) - 1)
    n_val = min(_n_of(val_fraction, len(symbols)), len(symbols) - 1 - n_test)
    order = rng.permutation(len(symbols))
    return _units(symbols, order[:n_test], order[n_test : n_test + n_val], S.PERTURBATION)


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
        _non_control(rows.filter(pl.col(S.CONTEXT) != context))
        .select(cond)
        .unique()
        .sort(cond, nulls_last=True)
    )
    n_all = rows.select(cond).n_unique()
    pick = rng.permutation(rest.height)[: min(_n_of(val_fraction, n_all), rest.height)]
    val = rest[np.sort(pick)].with_columns(pl.lit(_VAL, pl.Int8).alias(_PART))
    # The held-out context's rows are matched on context alone: join keys must be the same for all units.
    test_rows = rows.filter(pl.col(S.CONTEXT) == context).select(cond).unique()
    test = test_rows.with_columns(pl.lit(_TEST, pl.Int8).alias(_PART))
    return pl.concat([test, val], how="vertical_relaxed")


def _combination(
    rows: pl.DataFrame,
    rng: np.random.Generator,
    test_fraction: float,
    val_fraction: float,
    singles_fraction: float,
) -> pl.DataFrame:
    symbols = sorted(_non_control(rows)[S.PERTURBATION].unique().to_list())
    combos = [s for s in symbols if is_combination(s)]
    if not combos:
        raise LpmInputError(
            None,
            "combination split needs combination perturbations (symbols joined by '+'); this data has none",
        )
    n_test = min(_n_of(test_fraction, len(combos), at_least=1), len(combos))
    n_val = min(_n_of(val_fraction, len(combos)), len(combos) - n_test)
    order = rng.permutation(len(combos))
    test, val = order[:n_test], order[n_test : n_test + n_val]
    units = _units(combos, test, val, S.PERTURBATION)
    if singles_fraction > 0:
        measured = set(symbols)
        pool = sorted({m for i in test for m in members(combos[i]) if m in measured})
        n_single = round(singles_fraction * len(pool))
        picked = rng.permutation(len(pool))[:n_single]
        singles = pl.DataFrame(
            {
                S.PERTURBATION: [pool[i] for i in np.sort(picked)],
                _PART: np.full(n_single, _TEST, np.int8),
            }
        )
        units = pl.concat([units, singles], how="vertical_relaxed")
    return units


def _unseen_dose(
    rows: pl.DataFrame, rng: np.random.Generator, test_fraction: float, val_fraction: float
) -> pl.DataFrame:
    """Interior doses of (context, perturbation)s measured at three or more doses there."""
    interior = pl.DataFrame(schema={c: rows.schema.get(c, pl.Float32) for c in _PROFILE})
    if S.DOSE in rows.columns:
        profiles = (
            _non_control(rows)
            .select(_PROFILE)
            .filter(pl.col(S.DOSE).is_not_null() & pl.col(S.DOSE).is_not_nan())
            .unique()
            .sort(_PROFILE)
        )
        rank = pl.col(S.DOSE).rank("ordinal").over(_PAIR)
        n_doses = pl.len().over(_PAIR)
        interior = profiles.filter((n_doses >= 3) & (rank > 1) & (rank < n_doses))
    if interior.height == 0:
        raise LpmInputError(
            None,
            "unseen_dose needs perturbations measured at three or more doses in a context; this data has none",
        )
    n_test = min(_n_of(test_fraction, interior.height, at_least=1), interior.height)
    n_val = min(_n_of(val_fraction, interior.height), interior.height - n_test)
    order = rng.permutation(interior.height)
    part = np.full(interior.height, -1, dtype=np.int8)
    part[order[:n_test]] = _TEST
    part[order[n_test : n_test + n_val]] = _VAL
    return interior.with_columns(pl.Series(_PART, part)).filter(pl.col(_PART) >= 0)


def _seen_labels(test: pl.DataFrame, train: pl.DataFrame) -> pl.DataFrame:
    """Label each held-out (context, combination) ``seen<k>``: k members measured in training there."""
    seen = set(train.select(_PAIR).unique().iter_rows())
    pairs = test.select(_PAIR).unique().sort(_PAIR)
    labels = [
        f"seen{sum((ctx, m) in seen for m in members(pert))}" if is_combination(pert) else "single"
        for ctx, pert in pairs.iter_rows()
    ]
    return pairs.with_columns(pl.Series(GROUP, labels, dtype=pl.String))
