"""GCT/GCTX matrices whose rows are contexts (cell lines) and whose columns are perturbations,
one readout in all: PRISM's viability screens (``lpm ingest FILE --layout contexts``).

PRISM Repurposing ships such files: ``PREP2_AUC_n1396x489.gctx`` (a killing score per compound
and line) and the dose series ``PREP2_MODZ.ZSPC.COMBAT_n648x489.gctx`` and
``PASG002_MODZ.ZSPC_n383x489.gctx`` (viability z-scores per compound, dose and line, with DMSO
and positive-control columns). Rules:

* the context of a row is ``<dataset>/<cell line>``, the cell line from the row-metadata field
  ``--context-column`` (default ``cell_iname``, else ``cell_id``); ``--row-metadata TABLE`` joins
  a cell-line table (e.g. ``PRISM_cell_meta_489.csv``) on the row ids first, for files whose rows
  carry only ids; fields in both must agree;
* columns are samples, read by the rules of :mod:`lpm.data.io._plates` (compounds, vehicle,
  ``--control-label``, ``--drop-type``, doses, SMILES);
* values follow :mod:`lpm.data.io._levels`: the file's ``data_level`` or ``--lincs-level``, or
  ``--readout-type`` alone for values stored as given; the one readout is ``--readout-name``
  (default ``viability``);
* a NaN cell is a measurement not made (left out and counted); ±inf is refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd
import polars as pl

from lpm.data import schema as S
from lpm.data.io import _plates as P
from lpm.data.io._levels import value_rule
from lpm.data.io._naming import dataset_of
from lpm.data.io.base import IngestOptions, IngestResult
from lpm.data.io.gct import GctData, parse_gct, parse_gctx
from lpm.data.io.tables import read_frame
from lpm.errors import LpmInputError

CELL_COLUMNS: Final = ("cell_iname", "cell_id")
DEFAULT_READOUT: Final = "viability"


def _joined(row_meta: pd.DataFrame, table_path: Path, path: Path) -> pd.DataFrame:
    """Row metadata with the table's fields, joined through the table column holding every row id."""
    table = read_frame(Path(table_path)).to_pandas().astype(str)
    ids = set(row_meta.index.astype(str))
    keys = [c for c in table.columns if ids <= set(table[c].str.strip())]
    if not keys:
        raise LpmInputError(
            table_path,
            f"no column holds every row id of {path.name} (e.g. {sorted(ids)[0]!r}); columns: {', '.join(table.columns)}",
        )
    key = "id" if "id" in keys else keys[0]
    table = table.assign(**{key: table[key].str.strip()}).drop_duplicates(key).set_index(key)
    extra = table.reindex(row_meta.index.astype(str))
    out = row_meta.copy()
    for name in extra.columns:
        if name in out.columns:
            mine = P.text(out[name]).to_numpy()
            differ = np.flatnonzero(mine != extra[name].str.strip().to_numpy())
            if differ.size:
                i = int(differ[0])
                raise LpmInputError(
                    table_path,
                    f"field {name!r} disagrees with {path.name} at row {row_meta.index[i]!r} ({extra[name].iloc[i]!r} vs {mine[i]!r})",
                )
        else:
            out[name] = extra[name].to_numpy()
    return out


def _contexts(
    row_meta: pd.DataFrame, dataset: str, options: IngestOptions, path: Path, notes: dict[str, Any]
) -> list[str]:
    if options.cell_line:
        raise LpmInputError(
            path, "--cell-line does not apply to --layout contexts: each row is a cell line"
        )
    column = options.context_column or next(
        (c for c in CELL_COLUMNS if c in row_meta.columns), None
    )
    if column is None:
        raise LpmInputError(
            path,
            f"row metadata has no {' or '.join(CELL_COLUMNS)} field (has {', '.join(map(str, row_meta.columns)) or 'only ids'}); "
            "pass --context-column, or --row-metadata with a cell-line table keyed by the row ids",
        )
    cells = P.column(row_meta, column, path, where="row")
    blank = P.empty(cells)
    if blank.any():
        raise LpmInputError(
            path,
            f"{int(blank.sum())} row(s) have no {column!r}, first {row_meta.index[blank][0]!r}",
        )
    contexts = [S.context_id(dataset, c) for c in cells]
    seen = pd.Series(contexts)
    if seen.duplicated().any():
        twice = seen[seen.duplicated()].iloc[0]
        raise LpmInputError(path, f"two rows name context {twice!r} (field {column!r})")
    notes["contexts"] = f"{len(contexts)} rows, cell line from row field {column!r}"
    return contexts


def _controls(
    matrix: np.ndarray, vehicle: np.ndarray, contexts: list[str], readout: str
) -> pl.DataFrame | None:
    if not vehicle.any():
        return None
    mean, counts = P.vehicle_means(matrix, np.flatnonzero(vehicle))
    keep = counts > 0
    return pl.DataFrame(
        {
            S.CONTEXT: [c for c, k in zip(contexts, keep, strict=True) if k],
            S.READOUT: [readout] * int(keep.sum()),
            S.VALUE: mean[keep],
            S.N_CELLS: counts[keep].astype(np.int32),
        }
    )


def _long(
    values: np.ndarray,
    contexts: list[str],
    samples: pd.DataFrame,
    readout: str,
    dataset: str,
    kind: str,
) -> pl.DataFrame:
    """One row per (context, treated sample); replicates number samples sharing a condition."""
    n_rows, n_cols = values.shape
    col_idx = np.tile(np.arange(n_cols), n_rows)

    def per_sample(column: str, dtype: type[pl.DataType]) -> pl.Series:
        return pl.Series(samples[column].to_numpy(), dtype=dtype, nan_to_null=True).gather(col_idx)

    return pl.DataFrame(
        {
            S.CONTEXT: pl.Series(contexts, dtype=pl.String).gather(
                np.repeat(np.arange(n_rows), n_cols)
            ),
            S.PERTURBATION: per_sample("perturbation", pl.String),
            S.READOUT: pl.repeat(readout, n_rows * n_cols, eager=True, dtype=pl.String),
            S.VALUE: values.reshape(-1),
            S.DOSE: per_sample("dose", pl.Float64),
            S.TIME: per_sample("time", pl.Float64),
            S.REPLICATE: per_sample("replicate", pl.Int32),
        }
    ).with_columns(pl.lit(dataset).alias(S.DATASET), pl.lit(kind).alias(S.READOUT_TYPE))


def _to_long(data: GctData, path: Path, options: IngestOptions) -> IngestResult:
    notes: dict[str, Any] = {
        "format": f"GCT {data.version}" if data.version[0].isdigit() else data.version,
        "layout": "contexts: rows are cell lines, columns are perturbations, one readout",
    }
    row_meta = data.row_meta
    if options.row_metadata is not None:
        row_meta = _joined(row_meta, options.row_metadata, path)
        notes["row_metadata"] = str(options.row_metadata)
    dataset = dataset_of(path, options, notes)
    contexts = _contexts(row_meta, dataset, options, path, notes)
    meta = data.col_meta
    kinds = P.sample_kinds(meta, options, path, notes)
    treated, vehicle = kinds == P.TREATED, kinds == P.CONTROL
    rule = value_rule(meta, treated, options, path)
    nan_cells = P.require_no_inf(
        data.matrix[:, kinds != P.DROPPED], path, row_meta.index, meta.index[kinds != P.DROPPED]
    )
    if not treated.any():
        raise LpmInputError(path, "no treated samples (pert_type trt_cp or trt_poscon)")
    symbols, compounds = P.compounds(meta, treated, options, path, notes)
    dose, time = P.doses_and_times(meta, path, notes)
    samples = pd.DataFrame(
        {"perturbation": symbols, "dose": dose[treated], "time": time[treated]},
        index=meta.index[treated],
    ).sort_index()
    samples["replicate"] = P.replicates(samples[["perturbation", "dose", "time"]])
    values = data.matrix[:, meta.index.get_indexer(samples.index)]
    if rule.subtract_vehicle:
        if not vehicle.any():
            raise LpmInputError(path, "no control (vehicle) samples to subtract")
        mean, _ = P.vehicle_means(data.matrix, np.flatnonzero(vehicle))
        values = values - mean.astype(np.float32)[:, None]
    readout = options.readout_name or DEFAULT_READOUT
    rows = P.measured(
        _long(values, contexts, samples, readout, dataset, rule.readout_type),
        path,
        notes,
        nan_cells,
    )
    notes.update(
        {
            "lincs_level": rule.level,
            "level_rule": rule.rule,
            "readout": f"{readout!r} ({'--readout-name' if options.readout_name else 'default'})",
            "readout_type": rule.readout_type,
            "n_samples": len(meta),
            "n_treated": int(treated.sum()),
            "n_controls": int(vehicle.sum()),
            "n_other_controls_dropped": int((kinds == P.OTHER).sum()),
            "n_compounds": int(samples["perturbation"].nunique()),
            "doses_um": sorted({float(d) for d in samples["dose"] if not np.isnan(d)}),
            "times_h": sorted({float(t) for t in samples["time"] if not np.isnan(t)}),
        }
    )
    controls = _controls(data.matrix, vehicle, contexts, readout)
    return IngestResult(rows, controls, {"reader": "read_gctx_contexts"}, notes, compounds)


def read_gct_contexts(path: Path, options: IngestOptions) -> IngestResult:
    """A GCT 1.3 text file whose rows are cell lines; see the module docstring."""
    return _to_long(parse_gct(path), Path(path), options)


def read_gctx_contexts(path: Path, options: IngestOptions) -> IngestResult:
    """A GCTX file whose rows are cell lines (PRISM); see the module docstring."""
    return _to_long(parse_gctx(path), Path(path), options)
