"""Doses and times given per member of a combination (drug A at 1.5 µM + drug B at 6 µM).

A long table writes them as ``1.5+6`` in its dose (or time) column: one value per member, in the
order of the members of the perturbation cell as written. A store keeps them in the list columns
``member_dose`` and ``member_time``, in the order of the members of the canonical (sorted) symbol,
and leaves ``dose`` (``time``) empty on those rows; a store without such rows has no such columns.

Every model that asks for a combination's members asks :func:`explode_members`: a member's dose
is its own where given, else the row's (a plain number on a combination means every member at
that dose, as before).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Final

import polars as pl

from lpm.data import schema as S
from lpm.data.symbols import COMBINATION_SEPARATOR
from lpm.errors import LpmInputError

#: A member column and the row column it stands in for.
ROW_COLUMN: Final = {S.MEMBER_DOSE: S.DOSE, S.MEMBER_TIME: S.TIME}
#: Row index column of :func:`explode_members`.
ROW: Final = "_row"
#: ``1.5+6`` splits at ``+``, but not at the exponent sign of ``1e+3``.
_SPLIT: Final = re.compile(r"(?<![eE])\+")
_LIST: Final = pl.List(pl.Float32)


def member_columns(columns: Iterable[str]) -> list[str]:
    """The per-member columns among ``columns``."""
    present = set(columns)
    return [c for c in S.MEMBER_COLUMNS if c in present]


def has_member_values(df: pl.DataFrame) -> bool:
    """Whether any row gives its dose or time per member."""
    return any(df[c].null_count() < df.height for c in member_columns(df.columns))


def drop_empty(df: pl.DataFrame) -> pl.DataFrame:
    """``df`` without member columns that hold no value (a store has them only where used)."""
    empty = [c for c in member_columns(df.columns) if df[c].null_count() == df.height]
    return df.drop(empty) if empty else df


def explode_members(rows: pl.DataFrame) -> pl.DataFrame:
    """One row per member of each row's perturbation, with that member's dose and time.

    Returns ``rows`` with :data:`ROW` (the row's position) added, ``perturbation`` replaced by
    the member's single symbol, ``dose``/``time`` (where ``rows`` has them) by the member's own
    (``member_dose[i]`` where given, else the row's) and the member columns dropped. The control
    stays one row.

    Example
    -------
    >>> rows = pl.DataFrame({"perturbation": ["compound:A+compound:B", "compound:A"],
    ...                      "dose": [None, 2.0], "member_dose": [[1.5, 6.0], None]})
    >>> explode_members(rows).rows()
    [(0, 'compound:A', 1.5), (0, 'compound:B', 6.0), (1, 'compound:A', 2.0)]
    """
    out = rows.with_row_index(ROW).with_columns(
        pl.col(S.PERTURBATION).cast(pl.String).str.split(COMBINATION_SEPARATOR)
    )
    exploded = [S.PERTURBATION]
    n = pl.col(S.PERTURBATION).list.len()
    for member, col in ROW_COLUMN.items():
        if member not in out.columns:
            continue
        row = pl.col(col) if col in out.columns else pl.lit(None, pl.Float32)
        own = pl.col(member).cast(_LIST)
        out = out.with_columns(
            pl.when(own.is_not_null()).then(own).otherwise(row.cast(pl.Float32).repeat_by(n))
        ).with_columns(pl.col(member).alias(col))
        exploded.append(col)
    return out.drop(member_columns(out.columns)).explode(exploded)


def as_text(df: pl.DataFrame) -> pl.DataFrame:
    """Member columns written as in a long table (``1.5+6``), for CSV and AnnData ``obs``."""
    return df.with_columns(
        pl.col(c).cast(_LIST).list.eval(pl.element().cast(pl.String)).list.join("+").alias(c)
        for c in member_columns(df.columns)
    )


def from_text(df: pl.DataFrame, source: str | Path | None = None) -> pl.DataFrame:
    """Member columns read back from their text form (:func:`as_text`); empty text is none."""
    out = df
    for c in member_columns(df.columns):
        if df[c].dtype == _LIST:
            continue
        text = df.select(pl.when(pl.col(c).cast(pl.String) != "").then(pl.col(c).cast(pl.String)))
        out = out.with_columns(_parse_lists(text.to_series(), source, c).alias(c))
    return out


def split_cells(
    cells: pl.Series, perturbations: pl.Series, source: str | Path, column: str
) -> tuple[pl.Series, pl.Series] | None:
    """A dose (time) column with per-member cells (``1.5+6``) as (plain cells, member lists).

    None when every cell is one number (the column is read as before). A cell's parts must be
    finite numbers ≥ 0, as many as the members of its perturbation cell, which must be a
    combination; each problem is one line naming ``column`` and the first bad data row. The
    plain cells (text, empty where per member) are left to the caller to read as numbers.
    """
    text = cells.cast(pl.String).str.strip_chars()
    if text.cast(pl.Float64, strict=False).null_count() == text.null_count():
        return None  # every cell is one number: nothing per member
    several = text.str.contains(r"[^eE]\+").fill_null(False)
    if not several.any():
        return None
    index = several.arg_true()
    lists = _parse_lists(text.gather(index), source, column, rows=index.to_list())
    written = perturbations.gather(index).str.split(COMBINATION_SEPARATOR).list.len()
    bad = lists.list.len() != written
    if bad.any():
        i = int(bad.arg_true()[0])
        row, n = int(index[i]), int(written[i])
        what = (
            f"combination {perturbations[row]!r} of {n} members"
            if n > 1
            else (f"single perturbation {perturbations[row]!r}")
        )
        raise LpmInputError(
            source,
            f"column {column!r} has {lists[i].len()} per-member values {text[row]!r} for the "
            f"{what} (data row {row + 1}); give one value per member, or one for all",
        )
    at = pl.DataFrame({ROW: index.cast(pl.UInt32), column: lists})
    full = (
        pl.DataFrame({ROW: pl.int_range(len(text), dtype=pl.UInt32, eager=True)})
        .join(at, on=ROW, how="left", maintain_order="left")
        .get_column(column)
    )
    plain = text.set(several, None)
    return plain, full


def read_cells(rows: pl.DataFrame, source: str | Path) -> pl.DataFrame:
    """Rows whose dose/time columns are text (a CSV of rows to predict), read as the store has
    them: numbers, and ``1.5+6`` as per-member values in the canonical symbol's member order."""
    out = rows
    for member, col in ROW_COLUMN.items():
        if col not in rows.columns or rows[col].dtype != pl.String:
            continue
        split = split_cells(rows[col], rows[S.PERTURBATION].cast(pl.String), source, col)
        plain = split[0] if split else rows[col].str.strip_chars()
        number = plain.cast(pl.Float64, strict=False)
        bad = number.is_null() & plain.is_not_null() & (plain != "")
        if bad.any():
            i = int(bad.arg_true()[0])
            raise LpmInputError(
                source, f"column {col!r} has non-numeric value {rows[col][i]!r} (data row {i + 1})"
            )
        out = out.with_columns(number.alias(col))
        if split:
            out = out.with_columns(split[1].alias(member))
    if not member_columns(out.columns):
        return out
    given = pl.any_horizontal(pl.col(c).is_not_null() for c in member_columns(out.columns))
    out = reorder(out, S.PERTURBATION, str, source)
    canonical = (
        pl.col(S.PERTURBATION)
        .str.split(COMBINATION_SEPARATOR)
        .list.eval(pl.element().str.strip_chars())
        .list.sort()
        .list.join(COMBINATION_SEPARATOR)
    )
    return out.with_columns(
        pl.when(given).then(canonical).otherwise(pl.col(S.PERTURBATION)).alias(S.PERTURBATION)
    )


def _parse_lists(
    text: pl.Series, source: str | Path | None, column: str, *, rows: Sequence[int] | None = None
) -> pl.Series:
    """``"1.5+6"`` cells as float lists; a part that is no finite number ≥ 0 is an error
    naming the data row (``rows``: each cell's row in the file, default its position)."""
    parts = text.map_elements(_SPLIT.split, return_dtype=pl.List(pl.String))
    numbers = parts.list.eval(pl.element().str.strip_chars().cast(pl.Float64, strict=False))
    for i, (cell, values) in enumerate(zip(text, numbers, strict=True)):
        if cell is None or all(v is not None and math.isfinite(v) and v >= 0 for v in values):
            continue
        j, v = next(
            (j, v) for j, v in enumerate(values) if v is None or not (math.isfinite(v) and v >= 0)
        )
        part = _SPLIT.split(cell)[j].strip()
        kind = "non-numeric" if v is None else "negative" if v < 0 else "NaN/inf"
        row = rows[i] if rows is not None else i
        raise LpmInputError(
            source, f"column {column!r} has a {kind} part {part!r} in {cell!r} (data row {row + 1})"
        )
    return numbers.cast(_LIST).alias(column)


def reorder(
    rows: pl.DataFrame, written: str, symbol_of: Callable[[str], str], source: str | Path | None
) -> pl.DataFrame:
    """Member columns put in the order of the canonical symbol's members.

    ``written`` names the column holding each row's perturbation as written (members joined by
    ``+``), ``symbol_of`` types one written member. A combination naming one member twice
    cannot take a value per member.
    """
    cols = member_columns(rows.columns)
    if not cols:
        return rows
    given = pl.any_horizontal(pl.col(c).is_not_null() for c in cols)
    order: dict[str, list[int]] = {}
    for value in rows.filter(given)[written].unique().to_list():
        typed = [symbol_of(m.strip()) for m in value.split(COMBINATION_SEPARATOR)]
        if len(set(typed)) < len(typed):
            raise LpmInputError(
                source, f"perturbation {value!r} names a member twice: it takes no per-member dose"
            )
        order[value] = sorted(range(len(typed)), key=typed.__getitem__)
    table = pl.DataFrame(
        {written: list(order), "_order": list(order.values())},
        schema={written: pl.String, "_order": pl.List(pl.Int64)},
    )
    out = rows.join(table, on=written, how="left", maintain_order="left")
    return out.with_columns(pl.col(c).list.gather(pl.col("_order")) for c in cols).drop("_order")


def check(df: pl.DataFrame, source: str | Path | None) -> None:
    """Member values of a store: on combinations only, one finite value ≥ 0 per member, and
    the row's own dose (time) empty beside them; one line naming the first bad row."""
    for member, col in ROW_COLUMN.items():
        if member not in df.columns:
            continue
        given = df.filter(pl.col(member).is_not_null())
        if given.height == 0:
            continue
        n = pl.col(S.PERTURBATION).cast(pl.String).str.split(COMBINATION_SEPARATOR).list.len()
        values = pl.col(member).list
        problems: Sequence[tuple[pl.Expr, str]] = (
            (~pl.col(S.PERTURBATION).cast(pl.String).str.contains("+", literal=True),
             "is given on a perturbation that is no combination"),
            (values.len() != n, "does not have one value per member"),
            (values.eval(pl.element().is_null() | ~pl.element().is_finite() | (pl.element() < 0))
             .list.any().fill_null(True),
             "has a NaN/inf, negative or empty value"),
            (pl.col(col).is_not_null() if col in df.columns else pl.lit(False),
             f"is given beside a {col!r} on the same row"),
        )  # fmt: skip
        for bad, what in problems:
            hit = given.filter(bad)
            if hit.height:
                first = hit.row(0, named=True)
                raise LpmInputError(
                    source,
                    f"column {member!r} {what}: {hit.height} row(s), first "
                    f"context={first[S.CONTEXT]!r} perturbation={first[S.PERTURBATION]!r} "
                    f"{member}={first[member]!r}",
                )
