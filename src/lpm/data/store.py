"""The PRC store: one long Parquet table of ``context, perturbation, readout, value`` rows.

A store is a folder: ``measurements.parquet`` (row groups, so training can stream it),
optionally ``controls.parquet`` (each context's unperturbed profile), optionally
``compounds.parquet`` (each compound's ids and structure, :mod:`lpm.data.compounds`) and ``store.json``
(schema version, content hash, each data file's hash and size, provenance). It is written
whole or not at all, and opening it checks that its data files are the ones it wrote
(:mod:`lpm.data.hashing`: one ``stat`` per file when nothing changed).
"""

from __future__ import annotations

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
from lpm.data.compounds import conform_compounds, merge_compounds
from lpm.data.hashing import stamped_sha256
from lpm.data.validate import conform_controls, validate_measurements
from lpm.errors import LpmInputError

MEASUREMENTS = "measurements.parquet"
CONTROLS = "controls.parquet"
COMPOUNDS = "compounds.parquet"
#: The data files a store may hold, each recorded with its hash in ``store.json``.
DATA_FILES = (MEASUREMENTS, CONTROLS, COMPOUNDS)
META = "store.json"
DEFAULT_ROW_GROUP = 262_144


@dataclass(frozen=True)
class StoreMeta:
    """What a store says about itself; no hidden state beyond this file."""

    schema_version: int
    content_hash: str
    n_rows: int
    sources: list[dict[str, Any]] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)
    has_controls: bool = False
    #: Data file name -> its ``sha256`` and ``size`` when written (absent in older stores).
    files: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(self.__dict__, indent=2, sort_keys=True)


def _to_arrow(df: pl.DataFrame) -> pa.Table:
    fields = [S.ARROW_SCHEMA.field(c) for c in df.columns]
    table = df.to_arrow()
    return table.cast(pa.schema(fields))


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
    compounds: pl.DataFrame | None = None,
) -> PerturbationStore:
    """Validate and write a store atomically; returns a handle on the written store.

    Rows are sorted by key so the same content always gives the same bytes and hash.
    ``compounds`` (:mod:`lpm.data.compounds`) keeps the rows of compounds the store measures.
    """
    table = validate_measurements(measurements, source)
    ctrl = None
    if controls is not None:
        ctrl = conform_controls(controls, source)
        unknown = sorted(set(ctrl[S.CONTEXT].unique()) - set(table[S.CONTEXT].unique()))
        if unknown:
            raise LpmInputError(
                source,
                f"control profile(s) for context(s) with no measurements: {', '.join(unknown)}",
            )
    comp = None
    if compounds is not None:
        measured = table[S.PERTURBATION].unique().implode()
        comp = conform_compounds(compounds, source).filter(pl.col(S.PERTURBATION).is_in(measured))
    with atomic_dir(Path(out), overwrite=overwrite) as tmp:
        pq.write_table(
            _to_arrow(table), tmp / MEASUREMENTS, row_group_size=row_group_size, compression="zstd"
        )
        if ctrl is not None:
            pq.write_table(_to_arrow(ctrl), tmp / CONTROLS, compression="zstd")
        if comp is not None and comp.height:
            pq.write_table(comp.to_arrow(), tmp / COMPOUNDS, compression="zstd")
        names = [n for n in DATA_FILES if (tmp / n).is_file()]
        files = {
            name: {"sha256": stamped_sha256(tmp / name), "size": (tmp / name).stat().st_size}
            for name in names
        }
        meta = StoreMeta(
            schema_version=S.SCHEMA_VERSION,
            content_hash=f"sha256:{files[MEASUREMENTS]['sha256']}",
            n_rows=table.height,
            sources=list(sources),
            notes=dict(notes or {}),
            has_controls=ctrl is not None,
            files=files,
        )
        (tmp / META).write_text(meta.to_json() + "\n")
    return open_store(out)


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
        self._verify()

    def _verify(self) -> None:
        """Refuse data files that are not the ones the store wrote: a size that differs, or a
        hash that differs (remembered on the file while its stamp is unchanged, so an unchanged
        store costs one ``stat`` per file; see :mod:`lpm.data.hashing`)."""
        recorded = self._recorded_files()
        for name, (sha, size) in recorded.items():
            path = self.path / name
            if not path.is_file():
                raise LpmInputError(self.path, f"{name} is missing (the store wrote it)")
            if size is not None and path.stat().st_size != size:
                raise self._changed(name)
            if stamped_sha256(path) != sha:
                raise self._changed(name)

    def _recorded_files(self) -> dict[str, tuple[str, int | None]]:
        """Data file -> (hash, size) as written; older stores record the measurements' hash only."""
        if not self.meta.files:
            return {MEASUREMENTS: (self.meta.content_hash.removeprefix("sha256:"), None)}
        out: dict[str, tuple[str, int | None]] = {}
        for name, raw in self.meta.files.items():
            try:
                if name not in DATA_FILES:
                    raise KeyError(name)  # a store has these data files and no others
                out[name] = (str(raw["sha256"]), int(raw["size"]))
            except (KeyError, TypeError, ValueError):
                raise LpmInputError(
                    self.path / META, f"corrupt record of {name} in store metadata"
                ) from None
        for name in DATA_FILES:
            if name not in out and (self.path / name).exists():
                raise LpmInputError(
                    self.path, f"{name} was not written with the store (it is not in {META})"
                )
        return out

    def _changed(self, name: str) -> LpmInputError:
        return LpmInputError(
            self.path,
            f"{name} was changed after the store was written (content hash differs); "
            "restore it or write the store again (lpm ingest)",
        )

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

    def compounds(self) -> pl.DataFrame | None:
        """What the source files said about each compound (ids, SMILES), where they said it.

        Columns :data:`lpm.data.compounds.COLUMNS`; ``None`` for stores without such a table.
        """
        path = self.path / COMPOUNDS
        return pl.read_parquet(path) if path.is_file() else None

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
    compounds = merge_compounds([c for s in stores if (c := s.compounds()) is not None])
    sources = [src for s in stores for src in s.meta.sources]
    notes = {
        "merged_from": [str(s.path) for s in stores],
        **{str(s.path): s.meta.notes for s in stores},
    }
    return write_store(
        table, out, controls=controls, sources=sources, notes=notes, overwrite=overwrite,
        source=out, compounds=compounds,
    )  # fmt: skip


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
