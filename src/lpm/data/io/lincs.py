"""LINCS L1000 as long store rows: one row per treated well and gene, control wells defining
each context's baseline. ``read_gct`` / ``read_gctx`` read the file with
:mod:`lpm.data.io.gct` and apply LINCS's rules below.

Level rule (``IngestOptions.lincs_level`` wins when set): Level 3 is quantile-normalised log2
expression, so its values are positive and centred in the log2 range; Level 4 is a robust
z-score, signed and centred near 0. Concretely, Level 3 when the 1st percentile is >= 0 and the
median lies in [2, 16]; Level 4 when the 5th percentile is < 0 and |median| <= 2; anything else
is refused and the user is asked to pass the level.

Wells (``pert_type``): ``trt_cp`` and ``trt_poscon`` are compounds (``compound:<pert_iname>``, with
``+``/``:`` replaced by ``_`` and the renaming noted); ``ctl_vehicle`` wells are each context's
baseline and controls table, never measurement rows; other ``ctl_*`` wells are dropped and counted;
any other type (``trt_sh``, ``trt_oe``, ...) is refused, since its baseline is not the vehicle.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd
import polars as pl

from lpm.data import schema as S
from lpm.data.io.base import IngestOptions, IngestResult
from lpm.data.io.gct import NA_TOKENS, FloatMatrix, GctData, parse_gct, parse_gctx
from lpm.data.symbols import COMBINATION_SEPARATOR, TYPE_SEPARATOR, make_symbol
from lpm.data.validate import require_finite
from lpm.errors import LpmInputError

#: LINCS writes -666 for "not applicable" in every metadata field.
MISSING: Final = "-666"
DEFAULT_DATASET: Final = "lincs"

GENE_COLUMN: Final = "pr_gene_symbol"
NAME_COLUMN: Final = "pert_iname"
CELL_COLUMN: Final = "cell_id"
TYPE_COLUMN: Final = "pert_type"
DOSE_COLUMN: Final = "pert_dose"
DOSE_UNIT_COLUMN: Final = "pert_dose_unit"
TIME_COLUMN: Final = "pert_time"
TIME_UNIT_COLUMN: Final = "pert_time_unit"

VEHICLE: Final = "ctl_vehicle"
COMPOUND_TYPES: Final = frozenset({"trt_cp", "trt_poscon"})
DOSE_UNITS: Final = {"um": 1.0, "µm": 1.0, "μm": 1.0, "nm": 1e-3, "mm": 1e3}
TIME_UNITS: Final = {"h": 1.0, "hr": 1.0, "hrs": 1.0, "m": 1 / 60, "min": 1 / 60, "d": 24.0}


def _text(series: pd.Series) -> pd.Series:
    return series.map(lambda v: v.decode() if isinstance(v, bytes) else str(v)).str.strip()


def _readouts(
    row_meta: pd.DataFrame, options: IngestOptions, path: Path, notes: dict[str, Any]
) -> list[str]:
    column = options.readout_column or GENE_COLUMN
    if column in row_meta.columns:
        names = _text(row_meta[column])
        notes["readout_column"] = column
    elif options.readout_column:
        raise LpmInputError(
            path,
            f"row metadata has no column {column!r}; has {', '.join(map(str, row_meta.columns)) or 'none'}",
        )
    else:
        names = pd.Series(row_meta.index.astype(str), index=row_meta.index)
        notes["readout_column"] = "id"
        notes["readout_note"] = f"no {GENE_COLUMN} row metadata: readouts are the row ids"
    missing = names.isin((*NA_TOKENS, MISSING))
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
        raise LpmInputError(
            path,
            f"{dup.nunique()} readout symbol(s) repeat across rows, first {symbol!r} (rows {rows}); one row per gene is needed",
        )
    return names.tolist()


def _column(col_meta: pd.DataFrame, name: str, path: Path) -> pd.Series:
    if name not in col_meta.columns:
        extra = (
            " (GCT 1.2 has no column metadata; use GCT 1.3 or GCTX)"
            if col_meta.shape[1] == 0
            else ""
        )
        raise LpmInputError(path, f"column metadata has no {name!r} field{extra}")
    return _text(col_meta[name])


def _scaled(
    col_meta: pd.DataFrame,
    value: str,
    unit: str,
    units: dict[str, float],
    path: Path,
    notes: dict[str, Any],
) -> npt.NDArray[np.float64]:
    """A numeric field with -666 as empty, converted by its unit column; a missing unit is read as the LINCS default."""
    if value not in col_meta.columns:
        notes[f"{value}_note"] = f"no {value!r} field: left empty"
        return np.full(len(col_meta), np.nan)
    text = _text(col_meta[value])
    empty = text.isin((*NA_TOKENS, MISSING))
    numbers = pd.to_numeric(text.where(~empty, "nan"), errors="coerce").to_numpy(dtype=np.float64)
    bad = (np.isnan(numbers) & ~empty.to_numpy()) | ((numbers < 0) & (numbers != float(MISSING)))
    numbers[numbers == float(MISSING)] = np.nan
    if bad.any():
        raise LpmInputError(
            path,
            f"{int(bad.sum())} {value!r} value(s) are not non-negative numbers, first {text[bad].iloc[0]!r}",
        )
    if unit not in col_meta.columns:
        notes[f"{value}_note"] = (
            f"no {unit!r} field: read as {'µM' if value == DOSE_COLUMN else 'hours'}"
        )
        return numbers
    units_text = _text(col_meta[unit]).str.lower()
    factors = units_text.map(units)
    no_unit = units_text.isin((*NA_TOKENS, MISSING)).to_numpy()
    unknown = np.isnan(factors.to_numpy(dtype=np.float64)) & ~no_unit & ~np.isnan(numbers)
    if unknown.any():
        raise LpmInputError(
            path,
            f"unknown {unit!r} value(s) {sorted(set(units_text[unknown]))}; known: {', '.join(units)}",
        )
    assumed = no_unit & ~np.isnan(numbers)
    if assumed.any():
        notes[f"{value}_note"] = (
            f"{int(assumed.sum())} well(s) without {unit!r}: read as {'µM' if value == DOSE_COLUMN else 'hours'}"
        )
    return numbers * np.where(no_unit, 1.0, factors.to_numpy(dtype=np.float64))


def _level(matrix: FloatMatrix, options: IngestOptions, path: Path) -> tuple[int, str]:
    if options.lincs_level is not None:
        if options.lincs_level not in (3, 4):
            raise LpmInputError(path, f"lincs_level must be 3 or 4, got {options.lincs_level}")
        return options.lincs_level, "set by option lincs_level"
    q01, q05, median = (float(v) for v in np.quantile(matrix, [0.01, 0.05, 0.5]))
    stats = f"1st percentile {q01:.3g}, 5th {q05:.3g}, median {median:.3g}"
    if q01 >= 0 and 2 <= median <= 16:
        return 3, f"inferred: values look like log2 expression ({stats})"
    if q05 < 0 and abs(median) <= 2:
        return 4, f"inferred: values look like signed z-scores ({stats})"
    raise LpmInputError(
        path, f"cannot tell LINCS level 3 from 4 ({stats}); pass lincs_level=3 or 4"
    )


def _compound_symbols(
    names: pd.Series, samples: pd.Index, path: Path, notes: dict[str, Any]
) -> list[str]:
    empty = names.isin((*NA_TOKENS, MISSING)).to_numpy()
    if empty.any():
        raise LpmInputError(
            path,
            f"{int(empty.sum())} treated well(s) have no compound name, first sample {samples[empty][0]!r}",
        )
    cleaned = {
        n: n.replace(COMBINATION_SEPARATOR, "_").replace(TYPE_SEPARATOR, "_")
        for n in names.unique()
    }
    renamed = {k: v for k, v in cleaned.items() if k != v}
    clash = pd.Series(list(cleaned.values()))
    if clash.duplicated().any():
        twice = clash[clash.duplicated()].iloc[0]
        raise LpmInputError(
            path,
            f"compound names {sorted(k for k, v in cleaned.items() if v == twice)} collide after replacing '+'/':' by '_'",
        )
    if renamed:
        notes["sanitised_compound_names"] = dict(sorted(renamed.items()))
    symbols = {k: make_symbol("compound", v) for k, v in cleaned.items()}
    return [symbols[n] for n in names]


def _wells(
    data: GctData, options: IngestOptions, path: Path, notes: dict[str, Any]
) -> pd.DataFrame:
    """One row per sample: kind (vehicle/treated/other_control), context, perturbation, dose, time."""
    meta = data.col_meta
    kinds = _column(meta, TYPE_COLUMN, path)
    cell_column = options.context_column or CELL_COLUMN
    if cell_column in meta.columns:
        cells = _column(meta, cell_column, path)
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
        cells = _column(meta, cell_column, path)
    no_cell = cells.isin((*NA_TOKENS, MISSING)).to_numpy()
    if no_cell.any():
        raise LpmInputError(
            path,
            f"{int(no_cell.sum())} sample(s) have no {cell_column!r}, first {meta.index[no_cell][0]!r}",
        )
    treated = kinds.isin(COMPOUND_TYPES).to_numpy()
    vehicle = (kinds == VEHICLE).to_numpy()
    other = kinds.str.startswith("ctl_").to_numpy() & ~vehicle
    unsupported = ~(treated | vehicle | other)
    if unsupported.any():
        found = kinds[unsupported].value_counts()
        listed = ", ".join(f"{k} ({n} wells)" for k, n in found.items())
        raise LpmInputError(
            path,
            f"pert_type {listed} not supported: the LINCS reader takes compounds (trt_cp, trt_poscon) and ctl_* controls",
        )
    dataset = options.dataset or DEFAULT_DATASET
    wells = pd.DataFrame(
        {
            "kind": np.where(treated, "treated", np.where(vehicle, "vehicle", "other_control")),
            "context": [S.context_id(dataset, c) for c in cells],
            "dose": _scaled(meta, DOSE_COLUMN, DOSE_UNIT_COLUMN, DOSE_UNITS, path, notes),
            "time": _scaled(meta, TIME_COLUMN, TIME_UNIT_COLUMN, TIME_UNITS, path, notes),
            "perturbation": None,
        },
        index=meta.index,
    )
    if treated.any():
        names = _column(meta, options.perturbation_column or NAME_COLUMN, path)[treated]
        wells.loc[treated, "perturbation"] = _compound_symbols(
            names, meta.index[treated], path, notes
        )
    return wells


def _minus_vehicle(
    matrix: FloatMatrix, wells: pd.DataFrame, treated: pd.Index, path: Path
) -> FloatMatrix:
    """Level 3 deltas: each treated well minus the mean vehicle profile of its cell line and time."""
    values = matrix[:, wells.index.get_indexer(treated)]
    group = wells["context"] + " at time " + wells["time"].astype(str) + " h"
    vehicle = (wells["kind"] == "vehicle").to_numpy()
    for key in group[treated].unique():
        ctl = np.flatnonzero(vehicle & (group == key).to_numpy())
        if not ctl.size:
            raise LpmInputError(path, f"context {key} has no control ({VEHICLE}) wells")
        cols = np.flatnonzero((group[treated] == key).to_numpy())
        values[:, cols] -= matrix[:, ctl].mean(axis=1, keepdims=True)
    return values


def _controls(matrix: FloatMatrix, wells: pd.DataFrame, readouts: list[str]) -> pl.DataFrame:
    """Each context's mean vehicle profile, ``n_cells`` counting the wells averaged."""
    frames = []
    treated_contexts = set(wells.loc[wells["kind"] == "treated", "context"])
    for context in sorted(treated_contexts):
        ctl = np.flatnonzero(
            ((wells["kind"] == "vehicle") & (wells["context"] == context)).to_numpy()
        )
        frames.append(
            pl.DataFrame(
                {
                    S.CONTEXT: [context] * len(readouts),
                    S.READOUT: readouts,
                    S.VALUE: matrix[:, ctl].mean(axis=1),
                    S.N_CELLS: [len(ctl)] * len(readouts),
                }
            )
        )
    return pl.concat(frames)


def _long(
    values: FloatMatrix, treated: pd.DataFrame, readouts: list[str], dataset: str, readout_type: str
) -> pl.DataFrame:
    """One row per (treated well, readout); replicate numbers wells sharing a condition, by sample id."""
    keys = treated[["context", "perturbation", "dose", "time"]].astype(str)
    replicate = keys.groupby(list(keys.columns), sort=False).cumcount().to_numpy()
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


def _to_long(data: GctData, path: Path, options: IngestOptions) -> IngestResult:
    require_finite(
        data.matrix,
        path,
        what="matrix",
        where=lambda ij: (
            f"row {data.row_meta.index[ij[0]]!r}, sample {data.col_meta.index[ij[1]]!r}"
        ),
    )
    notes: dict[str, Any] = {
        "format": f"GCT {data.version}" if data.version[0].isdigit() else data.version
    }
    readouts = _readouts(data.row_meta, options, path, notes)
    wells = _wells(data, options, path, notes)
    level, rule = _level(data.matrix, options, path)
    vehicle = wells["kind"] == "vehicle"
    for context in sorted(set(wells["context"])):
        if not (vehicle & (wells["context"] == context)).any():
            raise LpmInputError(path, f"context {context} has no control ({VEHICLE}) wells")
    treated = wells[wells["kind"] == "treated"].sort_index()
    if treated.empty:
        raise LpmInputError(path, "no treated wells (pert_type trt_cp or trt_poscon)")
    if level == 3:
        values = _minus_vehicle(data.matrix, wells, treated.index, path)
        readout_type, baseline = (
            "delta",
            "expression minus the mean vehicle profile of the same context and time",
        )
    else:
        values = data.matrix[:, wells.index.get_indexer(treated.index)]
        readout_type, baseline = (
            "zscore",
            "z-scores as given; controls are the mean vehicle z-scores",
        )
    measurements = _long(
        values, treated, readouts, options.dataset or DEFAULT_DATASET, readout_type
    )
    notes.update(
        {
            "lincs_level": level,
            "level_rule": rule,
            "readout_type": readout_type,
            "baseline": baseline,
            "n_samples": len(wells),
            "n_treated": len(treated),
            "n_controls": int(vehicle.sum()),
            "n_other_controls_dropped": int((wells["kind"] == "other_control").sum()),
            "n_features": len(readouts),
            "contexts": sorted(set(treated["context"])),
            "n_compounds": int(treated["perturbation"].nunique()),
            "doses_um": sorted({float(d) for d in treated["dose"] if not np.isnan(d)}),
            "times_h": sorted({float(t) for t in treated["time"] if not np.isnan(t)}),
            "n_replicated_wells": int(measurements[S.REPLICATE].gt(0).sum() // len(readouts)),
        }
    )
    controls = _controls(data.matrix, wells, readouts)
    return IngestResult(measurements=measurements, controls=controls, notes=notes)


def read_gct(path: Path, options: IngestOptions) -> IngestResult:
    """LINCS L1000 GCT 1.3 text (Level 3 or 4) as long rows; see the module docstring for the level rule."""
    return _to_long(parse_gct(path), Path(path), options)


def read_gctx(path: Path, options: IngestOptions) -> IngestResult:
    """LINCS L1000 GCTX (Level 3 or 4) as long rows; see the module docstring for the level rule."""
    return _to_long(parse_gctx(path), Path(path), options)
