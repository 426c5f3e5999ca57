"""Tables of precomputed effects or labels: long CSV/TSV/Parquet, wide matrices, NPZ matrices.

* Long tables have one row per measurement (perturbation, readout, value columns, names
  auto-detected or given as options), e.g. PerturbQA ``k562-de.csv.gz``.
* Wide tables have one row per perturbation and one numeric column per readout, e.g. the
  Replogle 2022 ``..._delta_log1p.csv.gz`` (columns ``SYMBOL|ENSG...``; the readout is the symbol).
* NPZ effect matrices hold ``effects`` (perturbations x readouts) with ``target_symbols`` and
  ``gene_symbols``.

Context rule for sources without a context column: ``<dataset>/<cell line>`` with the dataset
from ``--dataset`` (else the file stem) and the cell line from ``--cell-line`` (else a known cell
line named as a token of the file name, ``k562-de.csv.gz`` -> ``K562``).
"""

from __future__ import annotations

import gzip
import io
import pickle
import re
import zipfile
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import polars as pl

from lpm.data import schema as S
from lpm.data.io.base import IngestOptions, IngestResult
from lpm.data.symbols import COMBINATION_SEPARATOR, combine, make_symbol, parse
from lpm.errors import LpmInputError

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
#: Cell lines recognised in file names (``k562-de.csv.gz``); anything else needs ``--cell-line``.
KNOWN_CELL_LINES: Final = frozenset(
    {
        "K562", "RPE1", "HEPG2", "JURKAT", "A375", "A549", "MCF7", "HEK293", "HEK293T", "HELA",
        "PC3", "HT29", "HCT116", "U2OS", "A172", "T98G", "U87MG", "THP1", "HUVEC", "IPSC", "VCAP",
        "NPC", "HAP1", "MDAMB231", "SKBR3", "LNCAP", "HL60", "MOLM13", "PC9", "H1", "H9",
    }
)  # fmt: skip
#: Direction-label files (PerturbQA ``*-dir``): label 1 = up-, 0 = down-regulated, for DE pairs.
#: Their readouts get this suffix so they stay distinct from the DE labels of the same gene.
DIRECTION_SUFFIX: Final = ":up"
_DIRECTION_FILE = re.compile(r"[-_]dir$", re.IGNORECASE)
_READOUT_SPLIT: Final = "|"
_MIN_WIDE_READOUTS: Final = 2


# --- shared helpers -----------------------------------------------------------------------


def _stem(path: Path) -> str:
    return path.name.split(".")[0]


def _cell_line(path: Path, options: IngestOptions, notes: dict[str, Any]) -> str:
    if options.cell_line:
        notes["cell_line"] = f"--cell-line {options.cell_line!r}"
        return options.cell_line
    tokens = [t for t in re.split(r"[-_.]", _stem(path)) if t.upper() in KNOWN_CELL_LINES]
    if len({t.upper() for t in tokens}) == 1:
        notes["cell_line"] = (
            f"{tokens[0].upper()!r} from file name token {tokens[0]!r} (override with --cell-line)"
        )
        return tokens[0].upper()
    raise LpmInputError(
        path,
        "no context column and no known cell line in the file name; pass --cell-line (or --context-column)",
    )


def _dataset(path: Path, options: IngestOptions, notes: dict[str, Any]) -> str:
    name = options.dataset or _stem(path)
    notes["dataset"] = (
        "--dataset" if options.dataset else f"file stem {name!r} (override with --dataset)"
    )
    return name


def _symbols(
    values: Sequence[str], kind: str | None, control: str, path: Path, column: str
) -> dict[str, str]:
    """Perturbation symbol for each distinct value: ``TYPE:TARGET`` kept, bare names typed."""
    out: dict[str, str] = {}
    for v in values:
        if v == control or v == S.CONTROL:
            out[v] = S.CONTROL
            continue
        try:
            out[v] = combine(list(map(str, parse(v))))
            continue
        except LpmInputError:
            pass
        if kind is None:
            raise LpmInputError(
                path,
                f"perturbation column {column!r} holds bare names (e.g. {v!r}); pass --perturbation-type (e.g. CRISPRi)",
            )
        try:
            out[v] = combine([make_symbol(kind, t) for t in v.split(COMBINATION_SEPARATOR)])
        except LpmInputError as exc:
            raise LpmInputError(path, f"column {column!r} value {v!r}: {exc.problem}") from None
    return out


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


def _check_finite(values: npt.NDArray[np.floating[Any]], path: Path, what: str, where: Any) -> None:
    bad = ~np.isfinite(values)
    if bad.any():
        first = np.unravel_index(int(np.flatnonzero(bad)[0]), values.shape)
        raise LpmInputError(
            path, f"{what} has {int(bad.sum())} NaN/inf value(s), first at {where(first)}"
        )


def _check_duplicates(df: pl.DataFrame, path: Path, origin: str) -> None:
    key = [c for c in (*S.KEY_COLUMNS, S.DOSE, S.TIME, S.REPLICATE) if c in df.columns]
    dup = df.group_by(key).len().filter(pl.col("len") > 1)
    if dup.height:
        first = dup.sort(key).row(0, named=True)
        where = ", ".join(f"{c}={first[c]!r}" for c in key)
        raise LpmInputError(
            path, f"{dup.height} duplicate ({', '.join(key)}) key(s) {origin}, first: {where}"
        )


# --- NPZ effect matrices --------------------------------------------------------------------


def _load_npz(
    path: Path, keys: Sequence[str], optional: Sequence[str] = ()
) -> tuple[dict[str, npt.NDArray[Any]], list[str]]:
    if not path.is_file():
        raise LpmInputError(path, "no such file")
    # the file is opened here because np.load leaks its handle when the zip is corrupt
    with path.open("rb") as fh:
        try:
            z = np.load(fh, allow_pickle=False)
            if not isinstance(z, np.lib.npyio.NpzFile):
                raise LpmInputError(
                    path, "not an NPZ archive (a single array; expected named arrays)"
                )
            files = list(z.files)
            missing = [k for k in keys if k not in files]
            if missing:
                raise LpmInputError(
                    path,
                    f"NPZ misses array(s) {', '.join(missing)}; found {', '.join(files) or 'none'}",
                )
            arrays = {k: np.asarray(z[k]) for k in (*keys, *optional) if k in files}
        except (
            OSError,
            ValueError,
            EOFError,
            zipfile.BadZipFile,
            KeyError,
            pickle.UnpicklingError,
        ) as exc:
            if isinstance(exc, LpmInputError):
                raise
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise LpmInputError(
                path, f"cannot read NPZ (truncated, corrupt or holding pickled objects?): {first}"
            ) from None
    return arrays, files


def _labels(
    arrays: dict[str, npt.NDArray[Any]], key: str, fallback: str, n: int, path: Path
) -> list[str]:
    labels = arrays[key]
    if labels.ndim != 1 or labels.shape[0] != n:
        raise LpmInputError(
            path, f"array {key!r} has shape {labels.shape}; expected ({n},) to match 'effects'"
        )
    out = [str(x).strip() for x in labels.tolist()]
    spare = arrays.get(fallback)
    if spare is not None and spare.shape == labels.shape:
        out = [s or str(f) for s, f in zip(out, spare.tolist(), strict=True)]
    empty = sum(1 for s in out if not s)
    if empty:
        raise LpmInputError(path, f"array {key!r} has {empty} empty name(s)")
    dup = sorted(name for name, n in Counter(out).items() if n > 1)
    if dup:
        raise LpmInputError(
            path, f"array {key!r} has {len(dup)} duplicate name(s): {', '.join(dup[:5])}"
        )
    return out


def read_effect_matrix_npz(path: Path, options: IngestOptions) -> IngestResult:
    """A per-perturbation effect matrix in NPZ form -> long ``delta`` rows.

    Arrays used: ``effects`` (perturbations x readouts, e.g. mean log1p of perturbed cells minus
    mean of controls), ``target_symbols`` and ``gene_symbols`` (empty names fall back to
    ``target_ids`` / ``gene_ids``), ``n_cells`` if present. The NPZ does not say its modality:
    ``--perturbation-type`` (default ``CRISPRi``) types the targets. Other per-perturbation
    arrays are no measurements; :func:`read_npz_perturbation_annotations` reads ``energy``,
    ``noise_trace`` and ``n_cells``.

    Parameters
    ----------
    path
        ``.npz`` file, loaded without pickle.
    options
        ``dataset``, ``cell_line`` (else a cell line token of the file name), ``perturbation_type``.

    Returns
    -------
    IngestResult
        One row per (perturbation, readout); no controls table.
    """
    path = Path(path)
    arrays, files = _load_npz(
        path, ("effects", "target_symbols", "gene_symbols"), ("target_ids", "gene_ids", "n_cells")
    )
    effects = arrays["effects"]
    if effects.ndim != 2 or effects.size == 0 or not np.issubdtype(effects.dtype, np.number):
        raise LpmInputError(
            path,
            f"'effects' must be a non-empty numeric 2-D array; got {effects.dtype} {effects.shape}",
        )
    n_t, n_g = effects.shape
    targets = _labels(arrays, "target_symbols", "target_ids", n_t, path)
    genes = _labels(arrays, "gene_symbols", "gene_ids", n_g, path)
    _check_finite(
        effects,
        path,
        "array 'effects'",
        lambda ij: f"target {targets[ij[0]]!r}, gene {genes[ij[1]]!r}",
    )
    notes: dict[str, Any] = {}
    kind = options.perturbation_type or "CRISPRi"
    notes["perturbation_type"] = (
        f"--perturbation-type {kind}"
        if options.perturbation_type
        else "perturbation type assumed CRISPRi (the NPZ does not say; override with --perturbation-type)"
    )
    context = S.context_id(_dataset(path, options, notes), _cell_line(path, options, notes))
    symbols = _symbols(targets, kind, options.control_label or S.CONTROL, path, "target_symbols")
    pert = pl.Series([symbols[t] for t in targets], dtype=pl.String)
    rows = np.repeat(np.arange(n_t), n_g)
    cols = {
        S.CONTEXT: pl.repeat(context, n_t * n_g, eager=True, dtype=pl.String),
        S.PERTURBATION: pert.gather(rows),
        S.READOUT: pl.Series(genes, dtype=pl.String).gather(np.tile(np.arange(n_g), n_t)),
        S.VALUE: pl.Series(effects.astype(np.float32).ravel()),
    }
    n_cells = arrays.get("n_cells")
    if n_cells is not None and n_cells.shape == (n_t,):
        cols[S.N_CELLS] = pl.Series(n_cells.astype(np.int32)).gather(rows)
    df = pl.DataFrame(cols).with_columns(
        pl.lit(options.dataset or _stem(path)).alias(S.DATASET),
        pl.lit("delta").alias(S.READOUT_TYPE),
    )
    _check_duplicates(df, path, "after typing the targets")
    used = {"effects", "target_symbols", "gene_symbols", "target_ids", "gene_ids", "n_cells"}
    notes["other_arrays"] = sorted(set(files) - used)
    notes["annotations"] = "per-perturbation energy/noise_trace: read_npz_perturbation_annotations"
    notes["shape"] = [n_t, n_g]
    return IngestResult(df, None, {"reader": "read_effect_matrix_npz"}, notes)


def read_npz_perturbation_annotations(
    path: Path, *, perturbation_type: str = "CRISPRi"
) -> pl.DataFrame:
    """Per-perturbation side arrays of an NPZ effect matrix (not measurements).

    Parameters
    ----------
    path
        The NPZ read by :func:`read_effect_matrix_npz`.
    perturbation_type
        Modality used to build the symbols; must match the one used at ingest.

    Returns
    -------
    polars.DataFrame
        ``perturbation`` (same symbols as the measurements), ``target_id`` and, where present,
        ``energy`` (genome-wide signal), ``noise_trace`` (its expected noise) and ``n_cells``.
    """
    path = Path(path)
    optional = ("target_ids", "energy", "noise_trace", "n_cells")
    arrays, _ = _load_npz(path, ("target_symbols",), optional)
    n = arrays["target_symbols"].shape[0]
    targets = _labels(arrays, "target_symbols", "target_ids", n, path)
    symbols = _symbols(targets, perturbation_type, S.CONTROL, path, "target_symbols")
    cols: dict[str, Any] = {S.PERTURBATION: [symbols[t] for t in targets]}
    for key, name in (
        ("target_ids", "target_id"),
        ("energy", "energy"),
        ("noise_trace", "noise_trace"),
        ("n_cells", S.N_CELLS),
    ):
        arr = arrays.get(key)
        if arr is not None and arr.shape == (n,):
            cols[name] = arr.astype(str) if key == "target_ids" else arr
    return pl.DataFrame(cols)


# --- CSV / TSV / Parquet tables -------------------------------------------------------------


def _read_frame(path: Path) -> pl.DataFrame:
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
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise LpmInputError(
            path, f"cannot parse table (truncated or malformed?): {first}"
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


def _is_numeric(series: pl.Series) -> bool:
    if series.dtype.is_numeric():
        return True
    if series.dtype != pl.String:
        return False
    parsed = series.str.strip_chars().cast(pl.Float64, strict=False)
    return parsed.null_count() == series.null_count() and series.null_count() < series.len()


def _strings(series: pl.Series, path: Path, column: str) -> pl.Series:
    out = series.cast(pl.String).str.strip_chars()
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
    df = _read_frame(path)
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
    values = np.column_stack([_numeric(df[c], path, c).to_numpy() for c in numeric]).astype(
        np.float32
    )
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
    return pl.DataFrame(cols)


def _finish(
    long: pl.DataFrame, path: Path, options: IngestOptions, pert_col: str, notes: dict[str, Any]
) -> IngestResult:
    if _DATASET in long.columns:
        notes["dataset"] = f"column {S.DATASET!r}"
        long = long.rename({_DATASET: S.DATASET})
    else:
        long = long.with_columns(pl.lit(_dataset(path, options, notes)).alias(S.DATASET))
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
        dataset = (
            long[S.DATASET][0] if S.DATASET in long.columns else _dataset(path, options, notes)
        )
        long = long.with_columns(
            pl.lit(S.context_id(dataset, _cell_line(path, options, notes))).alias(S.CONTEXT)
        )
        if long[S.DATASET].n_unique() > 1:
            raise LpmInputError(
                path, "a dataset column with several datasets needs a context column too"
            )
    control = options.control_label or S.CONTROL
    symbols = _symbols(
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
    long = long.with_columns(pl.col(S.PERTURBATION).replace_strict(symbols, return_dtype=pl.String))
    if _DIRECTION_FILE.search(_stem(path)):
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
    _check_duplicates(long, path, f"(a {pert_col!r} x readout pair repeats)")
    order = [
        c
        for c in (
            S.CONTEXT,
            S.PERTURBATION,
            S.READOUT,
            S.VALUE,
            S.DOSE,
            S.TIME,
            S.N_CELLS,
            S.REPLICATE,
            S.DATASET,
            S.READOUT_TYPE,
        )
        if c in long.columns
    ]
    return IngestResult(long.select(order), None, {"reader": "read_table"}, notes)
