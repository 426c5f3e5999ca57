"""LINCS L1000 (and P100-like) plates as long store rows: one row per treated sample and readout.

``read_gct`` / ``read_gctx`` read the file with :mod:`lpm.data.io.gct`; rows are readouts
(``pr_gene_symbol``, else ``--readout-column``, else the row ids), columns are samples whose
kinds, doses, times and compounds follow :mod:`lpm.data.io._plates`, and whose values follow the
level rule of :mod:`lpm.data.io._levels` (from the metadata, or ``--lincs-level``; never guessed).
Contexts are ``<dataset>/<cell_id>``. Vehicle samples are each context's baseline and controls
table, never measurement rows. A NaN cell is a measurement not made: its row is left out and
counted; ±inf is refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd
import polars as pl

from lpm.data import schema as S
from lpm.data.io import _plates as P
from lpm.data.io._levels import ValueRule, value_rule
from lpm.data.io.base import IngestOptions, IngestResult
from lpm.data.io.gct import NA_TOKENS, FloatMatrix, GctData, parse_gct, parse_gctx
from lpm.errors import LpmInputError

DEFAULT_DATASET: Final = "lincs"
GENE_COLUMN: Final = "pr_gene_symbol"
CELL_COLUMN: Final = "cell_id"
ROW_ID: Final = "id"


def _unique_columns(row_meta: pd.DataFrame) -> list[str]:
    """Row-metadata fields with one distinct, non-empty value per row (candidates for readouts)."""
    out = [ROW_ID]
    for name in row_meta.columns:
        values = P.text(row_meta[name])
        if values.is_unique and not P.empty(values).any():
            out.append(str(name))
    return out


def _readouts(
    row_meta: pd.DataFrame, options: IngestOptions, path: Path, notes: dict[str, Any]
) -> list[str]:
    column = options.readout_column or GENE_COLUMN
    if column in row_meta.columns:
        names = P.text(row_meta[column])
        notes["readout_column"] = column
    elif column == ROW_ID or not options.readout_column:
        names = pd.Series(row_meta.index.astype(str), index=row_meta.index)
        notes["readout_column"] = ROW_ID
        if column != ROW_ID:
            notes["readout_note"] = f"no {GENE_COLUMN} row metadata: readouts are the row ids"
    else:
        found = ", ".join(map(str, row_meta.columns)) or "none"
        raise LpmInputError(path, f"row metadata has no column {column!r}; has {found}")
    missing = names.isin((*NA_TOKENS, P.MISSING))
    if missing.any():
        first = names.index[missing.to_numpy()][0]
        raise LpmInputError(
            path,
            f"{int(missing.sum())} feature(s) have no {notes['readout_column']} (first: row {first!r})",
        )
    dup = names[names.duplicated(keep=False)]
    if len(dup):
        symbol = dup.iloc[0]
        rows = ", ".join(map(str, dup.index[dup == symbol][:3]))
        unique = ", ".join(_unique_columns(row_meta))
        raise LpmInputError(
            path,
            f"{dup.nunique()} readout symbol(s) repeat across rows, first {symbol!r} (rows {rows}); "
            f"one row per readout is needed: pass --readout-column with a field unique per row ({unique})",
        )
    return names.tolist()


def _contexts(
    meta: pd.DataFrame, options: IngestOptions, path: Path, notes: dict[str, Any]
) -> list[str]:
    cell_column = options.context_column or CELL_COLUMN
    if cell_column in meta.columns:
        cells = P.column(meta, cell_column, path)
        if options.cell_line and set(cells.str.upper()) != {options.cell_line.upper()}:
            raise LpmInputError(
                path,
                f"cell_line option {options.cell_line!r} contradicts {cell_column!r} ({', '.join(sorted(set(cells)))})",
            )
    elif options.cell_line and options.context_column is None:
        cells = pd.Series(options.cell_line, index=meta.index)
        notes["context_note"] = (
            f"no {cell_column!r} field: every sample is cell line {options.cell_line!r} (option)"
        )
    else:
        cells = P.column(meta, cell_column, path)
    no_cell = P.empty(cells)
    if no_cell.any():
        raise LpmInputError(
            path,
            f"{int(no_cell.sum())} sample(s) have no {cell_column!r}, first {meta.index[no_cell][0]!r}",
        )
    dataset = options.dataset or DEFAULT_DATASET
    return [S.context_id(dataset, c) for c in cells]


def _wells(
    data: GctData, kinds: np.ndarray, options: IngestOptions, path: Path, notes: dict[str, Any]
) -> pd.DataFrame:
    """One row per sample: kind, context, perturbation (treated only), dose, time."""
    meta = data.col_meta
    dose, time = P.doses_and_times(meta, path, notes)
    wells = pd.DataFrame(
        {
            "kind": kinds,
            "context": _contexts(meta, options, path, notes),
            "dose": dose,
            "time": time,
            "perturbation": None,
        },
        index=meta.index,
    )
    return wells


def _groups(wells: pd.DataFrame) -> pd.Series:
    return wells["context"] + " at time " + wells["time"].astype(str) + " h"


def _minus_vehicle(matrix: FloatMatrix, wells: pd.DataFrame, path: Path) -> FloatMatrix:
    """Level 3 deltas: each treated sample minus the mean vehicle profile of its context and time."""
    treated = (wells["kind"] == P.TREATED).to_numpy()
    values = matrix[:, treated].copy()
    vehicle = (wells["kind"] == P.CONTROL).to_numpy()
    for groups in (wells["context"], _groups(wells)):
        for key in sorted(set(groups[treated]) - set(groups[vehicle])):
            raise LpmInputError(path, f"context {key} has no control (vehicle) samples to subtract")
    group = _groups(wells)
    for key in group[treated].unique():
        ctl = np.flatnonzero(vehicle & (group == key).to_numpy())
        cols = np.flatnonzero((group[treated] == key).to_numpy())
        mean, _ = P.vehicle_means(matrix, ctl)
        values[:, cols] -= mean.astype(np.float32)[:, None]
    return values


def _controls(matrix: FloatMatrix, wells: pd.DataFrame, readouts: list[str]) -> pl.DataFrame | None:
    """Each treated context's mean vehicle profile (NaN cells left out), ``n_cells`` the samples averaged."""
    frames = []
    treated_contexts = set(wells.loc[wells["kind"] == P.TREATED, "context"])
    for context in sorted(treated_contexts):
        ctl = np.flatnonzero(
            ((wells["kind"] == P.CONTROL) & (wells["context"] == context)).to_numpy()
        )
        if not ctl.size:
            continue
        mean, counts = P.vehicle_means(matrix, ctl)
        keep = counts > 0
        frames.append(
            pl.DataFrame(
                {
                    S.CONTEXT: [context] * int(keep.sum()),
                    S.READOUT: [r for r, k in zip(readouts, keep, strict=True) if k],
                    S.VALUE: mean[keep],
                    S.N_CELLS: counts[keep].astype(np.int32),
                }
            )
        )
    return pl.concat(frames) if frames else None


def _long(
    values: FloatMatrix, treated: pd.DataFrame, readouts: list[str], dataset: str, readout_type: str
) -> pl.DataFrame:
    """One row per (treated sample, readout); replicate numbers samples sharing a condition, by sample id."""
    replicate = P.replicates(treated[["context", "perturbation", "dose", "time"]])
    well_idx = np.repeat(np.arange(len(treated)), len(readouts))
    gene_idx = np.tile(np.arange(len(readouts)), len(treated))

    def per_well(column: str, dtype: type[pl.DataType]) -> pl.Series:
        return pl.Series(treated[column].to_numpy(), dtype=dtype, nan_to_null=True).gather(well_idx)

    return pl.DataFrame(
        {
            S.CONTEXT: per_well("context", pl.String),
            S.PERTURBATION: per_well("perturbation", pl.String),
            S.READOUT: pl.Series(readouts, dtype=pl.String).gather(gene_idx),
            S.VALUE: values.T.reshape(-1),
            S.DOSE: per_well("dose", pl.Float64),
            S.TIME: per_well("time", pl.Float64),
            S.REPLICATE: pl.Series(replicate, dtype=pl.Int32).gather(well_idx),
        }
    ).with_columns(pl.lit(dataset).alias(S.DATASET), pl.lit(readout_type).alias(S.READOUT_TYPE))


def _summary(
    wells: pd.DataFrame, treated: pd.DataFrame, rule: ValueRule, n_readouts: int, rows: pl.DataFrame
) -> dict[str, Any]:
    return {
        "lincs_level": rule.level,
        "level_rule": rule.rule,
        "readout_type": rule.readout_type,
        "n_samples": len(wells),
        "n_treated": len(treated),
        "n_controls": int((wells["kind"] == P.CONTROL).sum()),
        "n_other_controls_dropped": int((wells["kind"] == P.OTHER).sum()),
        "n_features": n_readouts,
        "contexts": sorted(set(treated["context"])),
        "n_compounds": int(treated["perturbation"].nunique()),
        "doses_um": sorted({float(d) for d in treated["dose"] if not np.isnan(d)}),
        "times_h": sorted({float(t) for t in treated["time"] if not np.isnan(t)}),
        "n_replicated_wells": int(rows[S.REPLICATE].gt(0).sum() // max(n_readouts, 1)),
    }


def _to_long(data: GctData, path: Path, options: IngestOptions) -> IngestResult:
    if options.row_metadata is not None:
        raise LpmInputError(path, "--row-metadata is for --layout contexts (rows are cell lines)")
    notes: dict[str, Any] = {
        "format": f"GCT {data.version}" if data.version[0].isdigit() else data.version
    }
    readouts = _readouts(data.row_meta, options, path, notes)
    kinds = P.sample_kinds(data.col_meta, options, path, notes)
    wells = _wells(data, kinds, options, path, notes)
    used = kinds != P.DROPPED
    rule = value_rule(data.col_meta, kinds == P.TREATED, options, path)
    nan_cells = P.require_no_inf(
        data.matrix[:, used], path, data.row_meta.index, data.col_meta.index[used]
    )
    treated_mask = kinds == P.TREATED
    if not treated_mask.any():
        raise LpmInputError(path, "no treated samples (pert_type trt_cp or trt_poscon)")
    symbols, compounds = P.compounds(data.col_meta, treated_mask, options, path, notes)
    wells.loc[treated_mask, "perturbation"] = symbols
    order = np.argsort(wells.index.to_numpy()[treated_mask], kind="stable")
    if rule.subtract_vehicle:
        values = _minus_vehicle(data.matrix, wells, path)
    else:
        values = data.matrix[:, treated_mask]
    treated = wells[treated_mask].iloc[order]
    rows = _long(
        values[:, order], treated, readouts, options.dataset or DEFAULT_DATASET, rule.readout_type
    )
    rows = P.measured(rows, path, notes, nan_cells)
    notes.update(_summary(wells, treated, rule, len(readouts), rows))
    controls = _controls(data.matrix, wells, readouts)
    return IngestResult(measurements=rows, controls=controls, notes=notes, compounds=compounds)


def read_gct(path: Path, options: IngestOptions) -> IngestResult:
    """LINCS GCT 1.3 text (Level 3, 4 or 5) as long rows; see the module docstring for the rules."""
    return _to_long(parse_gct(path), Path(path), options)


def read_gctx(path: Path, options: IngestOptions) -> IngestResult:
    """LINCS GCTX (Level 3, 4 or 5) as long rows; see the module docstring for the rules."""
    return _to_long(parse_gctx(path), Path(path), options)
