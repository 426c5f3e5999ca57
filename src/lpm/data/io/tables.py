"""Tables of precomputed effects or labels: long or wide CSV/TSV/Parquet.

* Long tables have one row per measurement (perturbation, readout, value columns, names
  auto-detected or given as options), e.g. PerturbQA ``k562-de.csv.gz``. A combination's dose
  or time may be given per member, ``1.5+6`` (members in the order written; see
  :mod:`lpm.data.members`).
* Wide tables have one row per perturbation and one numeric column per readout, e.g. the
  Replogle 2022 ``..._delta_log1p.csv.gz`` (columns ``SYMBOL|ENSG...``; the readout is the symbol).

Text files are read with every cell as text, so ids such as ``2`` or ``007`` stay as written;
numbers are parsed only in value columns. Sources without a context column are named by the
rule of :mod:`lpm.data.io._naming`. NPZ effect matrices are read by :mod:`lpm.data.io.npz`.
"""

from __future__ import annotations

import gzip
import io
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np
import polars as pl

from lpm.data import members
from lpm.data import schema as S
from lpm.data.io import _plates as P
from lpm.data.io._naming import cell_line_of, dataset_of, file_stem, typed_symbols
from lpm.data.io.base import IngestOptions, IngestResult
from lpm.data.io.symbol_tables import as_text
from lpm.data.validate import require_unique_keys
from lpm.errors import LpmInputError, first_line

#: Column names recognised without an option (case-insensitive); two matches are ambiguous.
PERTURBATION_NAMES: Final = (
    "perturbation",
    "pert",
    "target",
    "target_symbol",
    "target_gene",
    "perturbed_gene",
    "condition",
)
READOUT_NAMES: Final = ("readout", "gene", "gene_symbol", "readout_gene", "feature")
VALUE_NAMES: Final = ("value", "label", "effect", "delta", "score", "logfc", "log2fc", "lfc")
CONTEXT_NAMES: Final = ("context", "cell_line", "cell_type", "cellline")
N_CELLS_NAMES: Final = ("n_cells", "n_target_cells", "ncells", "num_cells")
#: Store columns a long table may carry as they are.
PASS_THROUGH: Final = (S.DOSE, S.TIME, S.REPLICATE, S.DATASET, S.READOUT_TYPE)
#: Direction-label files (PerturbQA ``*-dir``): label 1 = up-, 0 = down-regulated, for DE pairs.
#: Their readouts get this suffix so they stay distinct from the DE labels of the same gene.
DIRECTION_SUFFIX: Final = ":up"
_DIRECTION_FILE = re.compile(r"[-_]dir$", re.IGNORECASE)
_READOUT_SPLIT: Final = "|"
_MIN_WIDE_READOUTS: Final = 2


def _readout_type(
    values: pl.Series, options: IngestOptions, path: Path, notes: dict[str, Any]
) -> str:
    if options.readout_type:
        if options.readout_type not in S.READOUT_TYPES:
            raise LpmInputError(
                path,
                f"unknown readout type {options.readout_type!r}; expected one of {', '.join(S.READOUT_TYPES)}",
            )
        notes["readout_type"] = f"--readout-type {options.readout_type}"
        return options.readout_type
    binary = bool(values.is_in([0.0, 1.0]).all())
    kind = S.BINARY if binary else "delta"
    notes["readout_type"] = f"{kind!r} inferred from the values (override with --readout-type)"
    return kind


def read_frame(path: Path) -> pl.DataFrame:
    """A CSV/TSV/TXT (optionally gzipped) table with every cell as text, or a Parquet table."""
    name = path.name.lower()
    try:
        if name.endswith(".parquet"):
            return pl.read_parquet(path)
        raw = path.read_bytes()
        if name.endswith(".gz"):
            raw = gzip.decompress(raw)
            name = name[:-3]
        if name.endswith(".csv"):
            sep = ","
        elif name.endswith(".tsv"):
            sep = "\t"
        else:
            head = raw[: raw.find(b"\n")] if b"\n" in raw else raw
            sep = "\t" if b"\t" in head else ","
        return pl.read_csv(io.BytesIO(raw), separator=sep, infer_schema=False)
    except (
        OSError,
        EOFError,
        gzip.BadGzipFile,
        pl.exceptions.PolarsError,
        UnicodeDecodeError,
    ) as exc:
        raise LpmInputError(
            path, f"cannot parse table (truncated or malformed?): {first_line(exc)}"
        ) from None


def _find(
    columns: Sequence[str],
    given: str | None,
    names: Sequence[str],
    role: str,
    option: str,
    path: Path,
) -> str | None:
    found = ", ".join(columns) or "none"
    if given:
        if given in columns:
            return given
        hits = [c for c in columns if c.lower() == given.lower()]
        if len(hits) == 1:
            return hits[0]
        raise LpmInputError(path, f"no {role} column {given!r} ({option}); found: {found}")
    hits = [c for c in columns if c.lower() in names]
    if len(hits) > 1:
        raise LpmInputError(
            path,
            f"ambiguous {role} column: {', '.join(map(repr, hits))} all match; pass {option}; found: {found}",
        )
    return hits[0] if hits else None


def _numeric(series: pl.Series, path: Path, column: str, *, nullable: bool = False) -> pl.Series:
    if series.dtype.is_numeric():
        out = series.cast(pl.Float64)
    else:
        out = series.cast(pl.String).str.strip_chars().cast(pl.Float64, strict=False)
        bad = out.is_null() & series.is_not_null()
        if bad.any():
            i = int(bad.arg_true()[0])
            raise LpmInputError(
                path,
                f"column {column!r} has non-numeric value {series[i]!r} (data row {i + 1})",
            )
    n_null = out.null_count()
    if n_null and not nullable:
        i = int(out.is_null().arg_true()[0])
        raise LpmInputError(
            path,
            f"column {column!r} has {n_null} empty value(s), first at data row {i + 1} (short line?)",
        )
    bad = ~out.is_finite()
    if bad.any():
        i = int(bad.arg_true()[0])
        raise LpmInputError(
            path,
            f"column {column!r} has {int(bad.sum())} NaN/inf value(s), first at data row {i + 1}",
        )
    return out


#: Cells of a wide matrix that say "not measured".
MISSING_TOKENS: Final = ("", "NA", "NaN", "nan", "NAN", "na", "N/A")


def _missing_to_null(series: pl.Series) -> pl.Expr:
    """A wide column as text with its "not measured" tokens as nulls."""
    text = series.cast(pl.String).str.strip_chars()
    return pl.when(text.is_in(MISSING_TOKENS)).then(None).otherwise(text).alias(series.name)


def _is_numeric(series: pl.Series) -> bool:
    """A readout column of a wide matrix: numbers, with cells that say "not measured" allowed."""
    if series.dtype.is_numeric():
        return True
    if series.dtype != pl.String:
        return False
    text = pl.select(_missing_to_null(series)).to_series()
    parsed = text.cast(pl.Float64, strict=False)
    return parsed.null_count() == text.null_count() and text.null_count() < text.len()


def _wide_values(df: pl.DataFrame, columns: list[str], path: Path) -> np.ndarray:
    """The readout columns as a float32 matrix; a missing cell is NaN (not measured), ±inf refused."""
    cols = []
    for c in columns:
        series = df[c]
        if not series.dtype.is_numeric():
            series = pl.select(_missing_to_null(series)).to_series().cast(pl.Float64)
        values = series.cast(pl.Float64).fill_null(np.nan).to_numpy()
        inf = np.isinf(values)
        if inf.any():
            i = int(np.flatnonzero(inf)[0])
            raise LpmInputError(
                path, f"column {c!r} has {int(inf.sum())} inf value(s), first at data row {i + 1}"
            )
        cols.append(values)
    return np.column_stack(cols).astype(np.float32)


def _strings(series: pl.Series, path: Path, column: str) -> pl.Series:
    out = as_text(series, path).str.strip_chars()
    n_null = out.null_count() + int((out == "").sum())
    if n_null:
        raise LpmInputError(path, f"column {column!r} has {n_null} empty value(s)")
    return out


def read_table(path: Path, options: IngestOptions) -> IngestResult:
    """A long or wide table (CSV, TSV, TXT, optionally gzipped, or Parquet) -> long rows.

    Long if it has perturbation, readout and value columns (options or the recognised names
    :data:`PERTURBATION_NAMES`, :data:`READOUT_NAMES`, :data:`VALUE_NAMES`); wide if it has a
    perturbation column and numeric readout columns (``SYMBOL|ID`` headers keep the symbol).
    Bare names in the perturbation column are typed with ``--perturbation-type``; values
    already written ``TYPE:TARGET`` are kept. Other columns (e.g. PerturbQA's ``split``) are
    dropped and listed in the notes. Files named ``*-dir``/``*_dir`` hold direction labels:
    their readouts are ``GENE:up`` (1 = up-, 0 = down-regulated).

    Parameters
    ----------
    path
        The table.
    options
        Column names, ``dataset``, ``cell_line``, ``perturbation_type``, ``readout_type``
        (else ``binary`` when every value is 0 or 1, ``delta`` otherwise), ``control_label``.

    Returns
    -------
    IngestResult
        Long rows in store columns; no controls table.
    """
    path = Path(path)
    df = read_frame(path)
    if df.height == 0:
        raise LpmInputError(path, f"no data rows (columns: {', '.join(df.columns) or 'none'})")
    dupcols = sorted({c for c in df.columns if df.columns.count(c) > 1})
    if dupcols:
        raise LpmInputError(path, f"repeated column name(s) {', '.join(dupcols)}")
    cols = df.columns
    pert_col = _find(
        cols,
        options.perturbation_column,
        PERTURBATION_NAMES,
        "perturbation",
        "--perturbation-column",
        path,
    )
    if pert_col is None:
        raise LpmInputError(
            path,
            f"no perturbation column (looked for {', '.join(PERTURBATION_NAMES)}); pass --perturbation-column; found: {', '.join(cols)}",
        )
    readout_col = _find(
        cols, options.readout_column, READOUT_NAMES, "readout", "--readout-column", path
    )
    value_col = _find(cols, options.value_column, VALUE_NAMES, "value", "--value-column", path)
    context_col = _find(
        cols, options.context_column, CONTEXT_NAMES, "context", "--context-column", path
    )
    n_cells_col = _find(cols, None, N_CELLS_NAMES, "cell count", "", path)
    notes: dict[str, Any] = {"columns": {"perturbation": pert_col}}
    if context_col:
        notes["columns"]["context"] = context_col
    if readout_col and value_col:
        notes["layout"] = "long"
        notes["columns"].update(readout=readout_col, value=value_col)
        long = _long(df, path, pert_col, readout_col, value_col, context_col, n_cells_col, notes)
    elif readout_col or value_col:
        role, option = (
            ("value", "--value-column") if readout_col else ("readout", "--readout-column")
        )
        raise LpmInputError(path, f"no {role} column; pass {option}; found: {', '.join(cols)}")
    else:
        long = _wide(df, path, pert_col, context_col, n_cells_col, notes)
    return _finish(long, path, options, pert_col, notes)


_CONTEXT = "_context"
_DATASET = "_dataset"
#: The columns of what a table reader returns, in store order.
_STORE_ORDER: Final = (
    S.CONTEXT, S.PERTURBATION, S.READOUT, S.VALUE, S.DOSE, S.TIME, S.N_CELLS, S.REPLICATE,
    S.DATASET, S.READOUT_TYPE, S.MEMBER_DOSE, S.MEMBER_TIME,
)  # fmt: skip


def _long(
    df: pl.DataFrame,
    path: Path,
    pert_col: str,
    readout_col: str,
    value_col: str,
    context_col: str | None,
    n_cells_col: str | None,
    notes: dict[str, Any],
) -> pl.DataFrame:
    out = {
        S.PERTURBATION: _strings(df[pert_col], path, pert_col),
        S.READOUT: _strings(df[readout_col], path, readout_col),
        S.VALUE: _numeric(df[value_col], path, value_col),
    }
    used = {pert_col, readout_col, value_col}
    if n_cells_col:
        out[S.N_CELLS] = _numeric(df[n_cells_col], path, n_cells_col)
        used.add(n_cells_col)
    if context_col:
        out[_CONTEXT] = _strings(df[context_col], path, context_col)
        used.add(context_col)
    for c in PASS_THROUGH:
        if c in df.columns and c not in used:
            if c == S.DATASET:
                out[_DATASET] = _strings(df[c], path, c)
            elif c == S.READOUT_TYPE:
                out[c] = _strings(df[c], path, c)
            elif c in (S.DOSE, S.TIME) and (
                split := members.split_cells(df[c], out[S.PERTURBATION], path, c)
            ):
                out[c] = _numeric(split[0], path, c, nullable=True)  # ``1.5+6``: per member
                out[S.MEMBER_DOSE if c == S.DOSE else S.MEMBER_TIME] = split[1]
            else:
                out[c] = _numeric(df[c], path, c, nullable=True)
            used.add(c)
    dropped = [c for c in df.columns if c not in used]
    if dropped:
        notes["dropped_columns"] = dropped
    return pl.DataFrame(out)


def _wide(
    df: pl.DataFrame,
    path: Path,
    pert_col: str,
    context_col: str | None,
    n_cells_col: str | None,
    notes: dict[str, Any],
) -> pl.DataFrame:
    meta = {c for c in (pert_col, context_col, n_cells_col) if c}
    numeric = [c for c in df.columns if c not in meta and _is_numeric(df[c])]
    if len(numeric) < _MIN_WIDE_READOUTS:
        raise LpmInputError(
            path,
            f"neither a long table (readout and value columns, e.g. {', '.join(READOUT_NAMES[:3])} / "
            f"{', '.join(VALUE_NAMES[:3])}) nor a wide matrix (numeric readout columns); "
            f"pass --readout-column and --value-column; found: {', '.join(df.columns)}",
        )
    readouts = [
        c.split(_READOUT_SPLIT, 1)[0].strip() or c.split(_READOUT_SPLIT, 1)[-1].strip()
        for c in numeric
    ]
    seen: dict[str, str] = {}
    for col, r in zip(numeric, readouts, strict=True):
        if r in seen:
            raise LpmInputError(path, f"columns {seen[r]!r} and {col!r} both name readout {r!r}")
        seen[r] = col
    dropped = [c for c in df.columns if c not in meta and c not in numeric]
    if dropped:
        notes["dropped_columns"] = dropped
    notes["layout"] = "wide"
    notes["readout_columns"] = (
        f"{len(numeric)} numeric columns; readout = header before {_READOUT_SPLIT!r}"
    )
    values = _wide_values(df, numeric, path)
    n_t, n_g = values.shape
    rows = pl.Series(np.repeat(np.arange(n_t), n_g))
    cols: dict[str, pl.Series] = {
        S.PERTURBATION: _strings(df[pert_col], path, pert_col).gather(rows),
        S.READOUT: pl.Series(readouts, dtype=pl.String).gather(
            pl.Series(np.tile(np.arange(n_g), n_t))
        ),
        S.VALUE: pl.Series(values.ravel()),
    }
    if n_cells_col:
        cols[S.N_CELLS] = _numeric(df[n_cells_col], path, n_cells_col).gather(rows)
    if context_col:
        cols[_CONTEXT] = _strings(df[context_col], path, context_col).gather(rows)
    return P.measured(pl.DataFrame(cols), path, notes)


def _finish(
    long: pl.DataFrame, path: Path, options: IngestOptions, pert_col: str, notes: dict[str, Any]
) -> IngestResult:
    if _DATASET in long.columns:
        notes["dataset"] = f"column {S.DATASET!r}"
        long = long.rename({_DATASET: S.DATASET})
    else:
        long = long.with_columns(pl.lit(dataset_of(path, options, notes)).alias(S.DATASET))
    if _CONTEXT in long.columns:
        pairs = long.select(S.DATASET, _CONTEXT).unique()
        ids = [c if S.CONTEXT_SEPARATOR in c else S.context_id(d, c) for d, c in pairs.iter_rows()]
        pairs = pairs.with_columns(pl.Series(S.CONTEXT, ids, dtype=pl.String))
        long = long.join(pairs, on=[S.DATASET, _CONTEXT], how="left", maintain_order="left").drop(
            _CONTEXT
        )
        notes["context"] = (
            "context column: values with '/' are context ids, others <dataset>/<CELL LINE>"
        )
    else:
        dataset = long[S.DATASET][0]  # the column was added above where the file had none
        long = long.with_columns(
            pl.lit(S.context_id(dataset, cell_line_of(path, options, notes))).alias(S.CONTEXT)
        )
        if long[S.DATASET].n_unique() > 1:
            raise LpmInputError(
                path, "a dataset column with several datasets needs a context column too"
            )
    control = options.control_label or S.CONTROL
    symbols = typed_symbols(
        long[S.PERTURBATION].unique().sort().to_list(),
        options.perturbation_type,
        control,
        path,
        pert_col,
    )
    notes["perturbation_type"] = (
        f"--perturbation-type {options.perturbation_type} for bare names"
        if options.perturbation_type
        else "TYPE:TARGET symbols in the source"
    )
    long = members.reorder(
        long,
        S.PERTURBATION,
        lambda m: typed_symbols([m], options.perturbation_type, control, path, pert_col)[m],
        path,
    )  # per-member doses follow the members into the canonical symbol's order
    long = long.with_columns(pl.col(S.PERTURBATION).replace_strict(symbols, return_dtype=pl.String))
    if _DIRECTION_FILE.search(file_stem(path)):
        long = long.with_columns(pl.col(S.READOUT) + DIRECTION_SUFFIX)
        notes["direction_labels"] = (
            f"direction file: readout = GENE{DIRECTION_SUFFIX}, value 1 = up-regulated, 0 = down-regulated"
        )
    if S.READOUT_TYPE in long.columns:
        if options.readout_type:
            raise LpmInputError(
                path, f"table has a {S.READOUT_TYPE!r} column and --readout-type was given; use one"
            )
        notes["readout_type"] = f"column {S.READOUT_TYPE!r}"
    else:
        long = long.with_columns(
            pl.lit(_readout_type(long[S.VALUE], options, path, notes)).alias(S.READOUT_TYPE)
        )
    long = long.with_columns(pl.col(S.VALUE).cast(pl.Float32))
    if S.N_CELLS in long.columns:
        long = long.with_columns(pl.col(S.N_CELLS).cast(pl.Int32))
    require_unique_keys(long, path, origin=f"(a {pert_col!r} x readout pair repeats)")
    order = [c for c in _STORE_ORDER if c in long.columns]
    return IngestResult(long.select(order), None, {"reader": "read_table"}, notes)
