"""The PRC store: one long Parquet table of ``context, perturbation, readout, value`` rows.

A store is a folder: ``measurements.parquet`` (row groups, so training can stream it),
optionally ``controls.parquet`` (each context's unperturbed profile) and ``store.json``
(schema version, content hash, provenance). It is written whole or not at all.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from lpm._utils.atomic import atomic_dir
from lpm.data import schema as S
from lpm.data.symbols import parse
from lpm.errors import LpmInputError

MEASUREMENTS = "measurements.parquet"
CONTROLS = "controls.parquet"
META = "store.json"
DEFAULT_ROW_GROUP = 262_144

#: Rows are unique on these columns (the optional ones only where present).
UNIQUE_KEY = (*S.KEY_COLUMNS, S.DOSE, S.TIME, S.REPLICATE)

_POLARS_TYPES: dict[str, pl.DataType] = {
    S.CONTEXT: pl.String(),
    S.PERTURBATION: pl.String(),
    S.READOUT: pl.String(),
    S.VALUE: pl.Float32(),
    S.DOSE: pl.Float32(),
    S.TIME: pl.Float32(),
    S.N_CELLS: pl.Int32(),
    S.REPLICATE: pl.Int32(),
    S.DATASET: pl.String(),
    S.READOUT_TYPE: pl.String(),
}


@dataclass(frozen=True)
class StoreMeta:
    """What a store says about itself; no hidden state beyond this file."""

    schema_version: int
    content_hash: str
    n_rows: int
    sources: list[dict[str, Any]] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)
    has_controls: bool = False

    def to_json(self) -> str:
        return json.dumps(self.__dict__, indent=2, sort_keys=True)


def _conform(df: pl.DataFrame, source: str | Path | None) -> pl.DataFrame:
    """Check and cast a long table to the store schema; raise one-line errors naming the column."""
    missing = [c for c in S.REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise LpmInputError(
            source,
            f"missing column(s) {', '.join(missing)}; found {', '.join(df.columns) or 'none'}",
        )
    extra = [c for c in df.columns if c not in _POLARS_TYPES]
    if extra:
        raise LpmInputError(
            source,
            f"unexpected column(s) {', '.join(extra)}; store columns are {', '.join(_POLARS_TYPES)}",
        )
    try:
        df = df.select([pl.col(c).cast(_POLARS_TYPES[c]) for c in _POLARS_TYPES if c in df.columns])
    except (pl.exceptions.InvalidOperationError, pl.exceptions.ComputeError) as exc:
        raise LpmInputError(
            source, f"column has the wrong type: {str(exc).splitlines()[0]}"
        ) from None
    return df


def require_finite_values(df: pl.DataFrame, source: str | Path | None = None) -> None:
    """One-line error naming the first row whose value is NaN, inf or missing."""
    bad = df.filter(~pl.col(S.VALUE).is_finite() | pl.col(S.VALUE).is_null())
    if bad.height:
        first = bad.row(0, named=True)
        raise LpmInputError(
            source,
            f"column 'value' has {bad.height} NaN/inf value(s), first at context={first[S.CONTEXT]!r} "
            f"perturbation={first[S.PERTURBATION]!r} readout={first[S.READOUT]!r}",
        )


def validate_measurements(df: pl.DataFrame, source: str | Path | None = None) -> pl.DataFrame:
    """Return ``df`` in store schema, or raise naming the first problem found.

    Checks: required columns, nulls in keys, NaN/inf values, malformed perturbation symbols,
    unknown readout types and duplicate measurement keys.
    """
    df = _conform(df, source)
    if df.height == 0:
        raise LpmInputError(source, "no measurements (0 rows)")
    for col in (*S.KEY_COLUMNS, S.VALUE):
        n_null = df[col].null_count()
        if n_null:
            raise LpmInputError(source, f"column {col!r} has {n_null} empty value(s)")
    require_finite_values(df, source)
    for symbol in df[S.PERTURBATION].unique().to_list():
        try:
            parse(symbol)
        except LpmInputError as exc:
            raise LpmInputError(source, f"column 'perturbation': {exc.problem}") from None
    if S.READOUT_TYPE in df.columns:
        kinds = set(df[S.READOUT_TYPE].drop_nulls().unique().to_list()) - set(S.READOUT_TYPES)
        if kinds:
            raise LpmInputError(
                source,
                f"column 'readout_type' has unknown type(s) {sorted(kinds)}; expected {list(S.READOUT_TYPES)}",
            )
        binary = df.filter(
            (pl.col(S.READOUT_TYPE) == S.BINARY) & ~pl.col(S.VALUE).is_in([0.0, 1.0])
        )
        if binary.height:
            raise LpmInputError(source, f"{binary.height} binary readout value(s) are not 0 or 1")
    df = _sorted(df)
    key = [c for c in UNIQUE_KEY if c in df.columns]
    # sorted rows: a duplicate key equals its predecessor (much cheaper than a group_by)
    same_as_previous = pl.all_horizontal([pl.col(c).eq_missing(pl.col(c).shift(1)) for c in key])
    same = df.select(same_as_previous.fill_null(False).alias("d"))["d"]
    n_dup = int(same.sum())
    if n_dup:
        first = df.filter(same).row(0, named=True)
        where = ", ".join(f"{c}={first[c]!r}" for c in key)
        raise LpmInputError(source, f"{n_dup} duplicate ({', '.join(key)}) key(s), first: {where}")
    return df


def _sorted(df: pl.DataFrame) -> pl.DataFrame:
    key = [c for c in UNIQUE_KEY if c in df.columns]
    return df.sort(key, nulls_last=True, maintain_order=True)


def _to_arrow(df: pl.DataFrame) -> pa.Table:
    fields = [S.ARROW_SCHEMA.field(c) for c in df.columns]
    table = df.to_arrow()
    return table.cast(pa.schema(fields))


def _hash_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_store(
    measurements: pl.DataFrame,
    out: str | Path,
    *,
    controls: pl.DataFrame | None = None,
    sources: Sequence[dict[str, Any]] = (),
    notes: dict[str, Any] | None = None,
    overwrite: bool = False,
    row_group_size: int = DEFAULT_ROW_GROUP,
    source: str | Path | None = None,
) -> PerturbationStore:
    """Validate and write a store atomically; returns a handle on the written store.

    Rows are sorted by key so the same content always gives the same bytes and hash.
    """
    table = validate_measurements(measurements, source)
    ctrl = None
    if controls is not None:
        ctrl = _conform_controls(controls, source)
        unknown = sorted(set(ctrl[S.CONTEXT].unique()) - set(table[S.CONTEXT].unique()))
        if unknown:
            raise LpmInputError(
                source,
                f"control profile(s) for context(s) with no measurements: {', '.join(unknown)}",
            )
    with atomic_dir(Path(out), overwrite=overwrite) as tmp:
        pq.write_table(
            _to_arrow(table), tmp / MEASUREMENTS, row_group_size=row_group_size, compression="zstd"
        )
        if ctrl is not None:
            pq.write_table(_to_arrow(ctrl), tmp / CONTROLS, compression="zstd")
        digest = _hash_file(tmp / MEASUREMENTS)
        meta = StoreMeta(
            schema_version=S.SCHEMA_VERSION,
            content_hash=f"sha256:{digest}",
            n_rows=table.height,
            sources=list(sources),
            notes=dict(notes or {}),
            has_controls=ctrl is not None,
        )
        (tmp / META).write_text(meta.to_json() + "\n")
    return open_store(out)


def _conform_controls(controls: pl.DataFrame, source: str | Path | None) -> pl.DataFrame:
    need = (S.CONTEXT, S.READOUT, S.VALUE)
    missing = [c for c in need if c not in controls.columns]
    if missing:
        raise LpmInputError(source, f"control table misses column(s) {', '.join(missing)}")
    cols = [c for c in (*need, S.N_CELLS) if c in controls.columns]
    df = controls.select([pl.col(c).cast(_POLARS_TYPES[c]) for c in cols])
    if df.filter(~pl.col(S.VALUE).is_finite()).height:
        raise LpmInputError(source, "control profile has NaN/inf values")
    return df.sort([S.CONTEXT, S.READOUT])


class PerturbationStore:
    """A handle on a store folder; data is read lazily, in row groups when streaming."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        meta_path = self.path / META
        if not meta_path.is_file() or not (self.path / MEASUREMENTS).is_file():
            raise LpmInputError(self.path, f"not an lpm store (needs {META} and {MEASUREMENTS})")
        try:
            raw = json.loads(meta_path.read_text())
            self.meta = StoreMeta(**raw)
        except (json.JSONDecodeError, TypeError) as exc:
            raise LpmInputError(meta_path, f"corrupt store metadata: {exc}") from None
        if self.meta.schema_version > S.SCHEMA_VERSION:
            raise LpmInputError(
                self.path,
                f"store schema version {self.meta.schema_version} is newer than this lpm ({S.SCHEMA_VERSION})",
            )
        try:
            self._file = pq.ParquetFile(self.path / MEASUREMENTS)
        except (pa.ArrowInvalid, OSError) as exc:
            raise LpmInputError(self.path / MEASUREMENTS, f"corrupt Parquet file: {exc}") from None

    def __repr__(self) -> str:
        return f"PerturbationStore({str(self.path)!r}, rows={self.n_rows})"

    @property
    def n_rows(self) -> int:
        return int(self._file.metadata.num_rows)

    @property
    def n_row_groups(self) -> int:
        return int(self._file.num_row_groups)

    @property
    def columns(self) -> list[str]:
        return list(self._file.schema_arrow.names)

    def scan(self) -> pl.LazyFrame:
        """A lazy polars frame over all rows (strings, not categoricals)."""
        return pl.scan_parquet(self.path / MEASUREMENTS).with_columns(
            pl.col(c).cast(pl.String)
            for c in self.columns
            if c in (S.CONTEXT, S.PERTURBATION, S.READOUT, S.DATASET, S.READOUT_TYPE)
        )

    def read(self, columns: Sequence[str] | None = None) -> pl.DataFrame:
        """All rows in memory (small and medium stores; stream large ones with ``iter_batches``)."""
        lf = self.scan()
        return (lf.select(list(columns)) if columns else lf).collect()

    def iter_batches(self, *, columns: Sequence[str] | None = None) -> Iterator[pa.Table]:
        """One Arrow table per row group, so a reader never holds the whole store."""
        for i in range(self.n_row_groups):
            yield self._file.read_row_group(i, columns=list(columns) if columns else None)

    def controls(self) -> pl.DataFrame | None:
        """Each context's unperturbed profile (absolute level), for the contexts whose source had one.

        Sources of precomputed deltas (effect matrices, labels) carry none.
        """
        path = self.path / CONTROLS
        if not path.is_file():
            return None
        return pl.read_parquet(path).with_columns(
            pl.col(S.CONTEXT).cast(pl.String), pl.col(S.READOUT).cast(pl.String)
        )

    def unique(self, column: str) -> list[str]:
        return sorted(
            self.scan().select(pl.col(column).unique()).collect()[column].drop_nulls().to_list()
        )

    @property
    def contexts(self) -> list[str]:
        return self.unique(S.CONTEXT)

    @property
    def perturbations(self) -> list[str]:
        return self.unique(S.PERTURBATION)

    @property
    def readouts(self) -> list[str]:
        return self.unique(S.READOUT)


def open_store(path: str | Path) -> PerturbationStore:
    """Open a store folder written by :func:`write_store`."""
    return PerturbationStore(path)


def merge_stores(
    stores: Sequence[PerturbationStore], out: str | Path, *, overwrite: bool = False
) -> PerturbationStore:
    """One joint store from several; contexts stay distinct because their ids carry the dataset."""
    if not stores:
        raise LpmInputError(None, "no stores to merge")
    frames = [s.read() for s in stores]
    table = pl.concat(frames, how="diagonal_relaxed")
    ctrl_frames = [c for s in stores if (c := s.controls()) is not None]
    controls = pl.concat(ctrl_frames, how="diagonal_relaxed") if ctrl_frames else None
    sources = [src for s in stores for src in s.meta.sources]
    notes = {
        "merged_from": [str(s.path) for s in stores],
        **{str(s.path): s.meta.notes for s in stores},
    }
    return write_store(
        table, out, controls=controls, sources=sources, notes=notes, overwrite=overwrite, source=out
    )


def value_summary(store: PerturbationStore) -> pl.DataFrame:
    """Per readout type: rows, min, max, mean, std of values (for ``lpm info``)."""
    lf = store.scan()
    group = S.READOUT_TYPE if S.READOUT_TYPE in store.columns else None
    aggs = [
        pl.len().alias("rows"),
        pl.col(S.VALUE).min().alias("min"),
        pl.col(S.VALUE).max().alias("max"),
        pl.col(S.VALUE).mean().alias("mean"),
        pl.col(S.VALUE).std().alias("std"),
    ]
    if group:
        return lf.group_by(group).agg(aggs).sort(group).collect()
    return lf.select(aggs).collect()


def read_stores(paths: Sequence[str | Path]) -> pl.DataFrame:
    """All rows of one or several stores as one table (joint training reads several)."""
    if not paths:
        raise LpmInputError(None, "no store given (--store)")
    frames = [open_store(p).read() for p in paths]
    return pl.concat(frames, how="diagonal_relaxed") if len(frames) > 1 else frames[0]
