"""What the samples (columns) of a LINCS/PRISM GCT or GCTX are: the rules both GCT readers share.

Sample types (``pert_type``): ``trt_cp`` and ``trt_poscon`` are compounds; the vehicle is
``ctl_vehicle``, or with ``--control-label`` every sample whose ``pert_type`` or name
(``pert_iname``) is that label; other ``ctl_*`` samples are dropped and counted; types named
with ``--drop-type`` are dropped and counted; any other type is refused, since its baseline is
not the vehicle. Doses are read from ``pert_dose`` (unit ``pert_dose_unit``, µM when absent),
else from ``pert_idose`` (``"10 µM"``); times from ``pert_time``/``pert_time_unit``, else
``pert_itime`` (``"6 h"``). Compounds are ``compound:<pert_iname>`` (``+``/``:`` replaced by
``_``), one symbol per name: a name with several Broad ids (salts, batches) keeps them all in the
store's compound table, with the file's SMILES (:data:`SMILES_COLUMNS`).
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd
import polars as pl

from lpm.data import schema as S
from lpm.data.compounds import COLUMNS as COMPOUND_COLUMNS
from lpm.data.compounds import ID_SEPARATOR
from lpm.data.io.base import IngestOptions
from lpm.data.io.gct import NA_TOKENS, FloatMatrix
from lpm.data.symbols import COMBINATION_SEPARATOR, TYPE_SEPARATOR, make_symbol
from lpm.errors import LpmInputError

#: LINCS writes -666 for "not applicable" in every metadata field.
MISSING: Final = "-666"
NAME_COLUMN: Final = "pert_iname"
ID_COLUMN: Final = "pert_id"
TYPE_COLUMN: Final = "pert_type"
DOSE_COLUMNS: Final = ("pert_dose", "pert_dose_unit", "pert_idose")
TIME_COLUMNS: Final = ("pert_time", "pert_time_unit", "pert_itime")
#: Column-metadata fields holding a compound's structure, in the order they are looked for.
SMILES_COLUMNS: Final = ("canonical_smiles", "pert_smiles", "smiles", "x_smiles")

VEHICLE: Final = "ctl_vehicle"
COMPOUND_TYPES: Final = frozenset({"trt_cp", "trt_poscon"})
DOSE_UNITS: Final = {"um": 1.0, "µm": 1.0, "μm": 1.0, "nm": 1e-3, "mm": 1e3}
TIME_UNITS: Final = {"h": 1.0, "hr": 1.0, "hrs": 1.0, "m": 1 / 60, "min": 1 / 60, "d": 24.0}
TREATED, CONTROL, OTHER, DROPPED = "treated", "vehicle", "other_control", "dropped"
_AMOUNT = re.compile(r"([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*([^\d\s]\S*)")


def text(series: pd.Series) -> pd.Series:
    """Metadata as stripped text (numbers as written, bytes decoded)."""
    return series.map(lambda v: v.decode() if isinstance(v, bytes) else str(v)).str.strip()


def empty(values: pd.Series) -> npt.NDArray[np.bool_]:
    """Cells that say nothing: NA tokens and LINCS's ``-666``."""
    return values.isin((*NA_TOKENS, MISSING)).to_numpy()


def column(meta: pd.DataFrame, name: str, path: Any, *, where: str = "column") -> pd.Series:
    """A metadata field as text, or a one-line error naming the fields there are."""
    if name not in meta.columns:
        extra = (
            " (GCT 1.2 has no column metadata; use GCT 1.3 or GCTX)" if meta.shape[1] == 0 else ""
        )
        found = ", ".join(map(str, meta.columns[:12])) or "none"
        raise LpmInputError(path, f"{where} metadata has no {name!r} field{extra}; has {found}")
    return text(meta[name])


def require_no_inf(matrix: FloatMatrix, path: Any, rows: pd.Index, samples: pd.Index) -> int:
    """Refuse ±inf (a broken value, not a missing one); return the NaN (unmeasured) cell count."""
    inf = np.isinf(matrix)
    if inf.any():
        i, j = (int(k) for k in np.unravel_index(int(np.flatnonzero(inf)[0]), matrix.shape))
        raise LpmInputError(
            path,
            f"matrix has {int(inf.sum())} inf value(s), first at row {rows[i]!r}, sample {samples[j]!r}",
        )
    return int(np.isnan(matrix).sum())


# --------------------------------------------------------------------------- sample kinds


def sample_kinds(
    meta: pd.DataFrame, options: IngestOptions, path: Any, notes: dict[str, Any]
) -> npt.NDArray[np.str_]:
    """Each sample's kind: treated, vehicle, other_control (dropped) or dropped (``--drop-type``)."""
    kinds = column(meta, TYPE_COLUMN, path)
    label = options.control_label
    if label:
        names = text(meta[NAME_COLUMN]) if NAME_COLUMN in meta.columns else kinds
        vehicle = ((kinds == label) | (names == label)).to_numpy()
        if not vehicle.any():
            raise LpmInputError(
                path,
                f"--control-label {label!r} names no sample (looked in {TYPE_COLUMN} and {NAME_COLUMN}; "
                f"types: {', '.join(sorted(set(kinds)))})",
            )
        notes["controls"] = f"--control-label {label!r}: {int(vehicle.sum())} vehicle sample(s)"
    else:
        vehicle = (kinds == VEHICLE).to_numpy()
    drop = set(options.drop_types or ())
    unused = sorted(drop - set(kinds))
    if unused:  # not an error: one option serves several files
        notes["drop_types_absent"] = unused
    dropped = kinds.isin(drop).to_numpy() & ~vehicle
    treated = kinds.isin(COMPOUND_TYPES).to_numpy() & ~vehicle & ~dropped
    other = kinds.str.startswith("ctl_").to_numpy() & ~vehicle & ~dropped & ~treated
    unsupported = ~(treated | vehicle | other | dropped)
    if unsupported.any():
        found = kinds[unsupported].value_counts()
        listed = ", ".join(f"{k} ({n} samples)" for k, n in found.items())
        raise LpmInputError(
            path,
            f"{TYPE_COLUMN} {listed} not supported: the reader takes compounds (trt_cp, trt_poscon) and "
            f"ctl_* controls; name the vehicle with --control-label, or leave a type out with --drop-type",
        )
    if dropped.any():
        notes["samples_dropped"] = {
            str(k): int(n) for k, n in kinds[dropped].value_counts().items()
        }
    return np.select([treated, vehicle, other], [TREATED, CONTROL, OTHER], DROPPED)


# --------------------------------------------------------------------------- doses and times


def _numbers(values: pd.Series, field: str, path: Any) -> npt.NDArray[np.float64]:
    blank = empty(values)
    numbers = pd.to_numeric(values.where(~blank, "nan"), errors="coerce").to_numpy(np.float64)
    sentinel = numbers == float(MISSING)
    numbers[sentinel] = np.nan
    bad = (np.isnan(numbers) & ~blank & ~sentinel) | (numbers < 0)
    if bad.any():
        raise LpmInputError(
            path,
            f"{int(bad.sum())} {field!r} value(s) are not non-negative numbers, first {values[bad].iloc[0]!r}",
        )
    return numbers


def _units(
    values: pd.Series, field: str, units: dict[str, float], path: Any
) -> npt.NDArray[np.float64]:
    lower = values.str.lower()
    factors = lower.map(units).to_numpy(dtype=np.float64)
    unknown = np.isnan(factors) & ~empty(lower)
    if unknown.any():
        raise LpmInputError(
            path,
            f"unknown {field!r} value(s) {sorted(set(lower[unknown]))}; known: {', '.join(units)}",
        )
    return np.asarray(factors, dtype=np.float64)


def _amount_text(
    values: pd.Series, field: str, units: dict[str, float], path: Any, notes: dict[str, Any]
) -> npt.NDArray[np.float64]:
    """``"10 µM"`` -> 10.0 (in the first unit's scale); text that is not one amount stays empty, noted."""
    out = np.full(len(values), np.nan)
    blank = empty(values)
    unreadable: list[str] = []
    for i, value in enumerate(values):
        match = None if blank[i] else _AMOUNT.fullmatch(value)
        if match is None:
            if not blank[i]:
                unreadable.append(value)
            continue
        unit = match.group(2).lower()
        if unit not in units:
            raise LpmInputError(
                path,
                f"unknown unit {unit!r} in {field!r} value {value!r}; known: {', '.join(units)}",
            )
        out[i] = float(match.group(1)) * units[unit]
    if unreadable:
        notes[f"{field}_note"] = (
            f"{len(unreadable)} sample(s) whose {field} is not one amount (e.g. {unreadable[0]!r}): left empty"
        )
    return out


def _field(
    meta: pd.DataFrame,
    fields: tuple[str, str, str],
    units: dict[str, float],
    path: Any,
    notes: dict[str, Any],
) -> npt.NDArray[np.float64]:
    value, unit, itext = fields
    if value in meta.columns:
        numbers = _numbers(text(meta[value]), value, path)
        if unit not in meta.columns:
            notes[f"{value}_note"] = f"no {unit!r} field: read in {next(iter(units))}"
            return numbers
        factors = _units(text(meta[unit]), unit, units, path)
        assumed = np.isnan(factors) & ~np.isnan(numbers)
        if assumed.any():
            notes[f"{value}_note"] = (
                f"{int(assumed.sum())} sample(s) without {unit!r}: read in {next(iter(units))}"
            )
        return numbers * np.where(np.isnan(factors), 1.0, factors)
    if itext in meta.columns:
        notes[f"{value}_source"] = f"{itext!r} (no {value!r} field)"
        return _amount_text(text(meta[itext]), itext, units, path, notes)
    notes[f"{value}_note"] = f"no {value!r} or {itext!r} field: left empty"
    return np.full(len(meta), np.nan)


def doses_and_times(
    meta: pd.DataFrame, path: Any, notes: dict[str, Any]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Each sample's dose (µM) and time (hours); NaN where the file gives none."""
    return (
        _field(meta, DOSE_COLUMNS, DOSE_UNITS, path, notes),
        _field(meta, TIME_COLUMNS, TIME_UNITS, path, notes),
    )


# --------------------------------------------------------------------------- compounds


def _symbols(
    names: pd.Series, samples: pd.Index, path: Any, notes: dict[str, Any]
) -> dict[str, str]:
    blank = empty(names)
    if blank.any():
        raise LpmInputError(
            path,
            f"{int(blank.sum())} treated sample(s) have no compound name, first {samples[blank][0]!r}",
        )
    cleaned = {
        n: n.replace(COMBINATION_SEPARATOR, "_").replace(TYPE_SEPARATOR, "_")
        for n in names.unique()
    }
    clash = pd.Series(list(cleaned.values()))
    if clash.duplicated().any():
        twice = clash[clash.duplicated()].iloc[0]
        raise LpmInputError(
            path,
            f"compound names {sorted(k for k, v in cleaned.items() if v == twice)} collide after replacing '+'/':' by '_'",
        )
    renamed = {k: v for k, v in cleaned.items() if k != v}
    if renamed:
        notes["sanitised_compound_names"] = dict(sorted(renamed.items()))
    return {k: make_symbol("compound", v) for k, v in cleaned.items()}


def _most_common(values: list[str]) -> str | None:
    counts = Counter(v for v in values if v)
    return min(counts, key=lambda v: (-counts[v], v)) if counts else None


def compounds(
    meta: pd.DataFrame,
    treated: npt.NDArray[np.bool_],
    options: IngestOptions,
    path: Any,
    notes: dict[str, Any],
) -> tuple[list[str], pl.DataFrame]:
    """The treated samples' symbols, and the compound table (ids, SMILES) the file gives."""
    sub = meta[treated]
    names = column(sub, options.perturbation_column or NAME_COLUMN, path)
    symbol_of = _symbols(names, sub.index, path, notes)
    symbols = [symbol_of[n] for n in names]
    frame = pd.DataFrame({"symbol": symbols}, index=sub.index)
    frame["id"] = (
        text(sub[ID_COLUMN]).where(~empty(text(sub[ID_COLUMN])), "") if ID_COLUMN in sub else ""
    )
    smiles_col = next((c for c in SMILES_COLUMNS if c in sub.columns), None)
    if smiles_col:
        smiles = text(sub[smiles_col])
        frame["smiles"] = smiles.where(~empty(smiles), "")
    else:
        frame["smiles"] = ""
    rows = []
    several_ids = several_smiles = 0
    for symbol, group in frame.groupby("symbol", sort=True):
        ids = sorted(set(group["id"]) - {""})
        shapes = set(group["smiles"]) - {""}
        several_ids += len(ids) > 1
        several_smiles += len(shapes) > 1
        rows.append((symbol, ID_SEPARATOR.join(ids) or None, _most_common(list(group["smiles"]))))
    table = pl.DataFrame(rows, schema=dict.fromkeys(COMPOUND_COLUMNS, pl.String), orient="row")
    notes["compounds"] = {
        "n": table.height,
        "ids": f"column {ID_COLUMN!r}" if ID_COLUMN in sub else "none in the file",
        "names_with_several_ids": several_ids,
        "smiles": (
            f"{table[COMPOUND_COLUMNS[2]].drop_nulls().len()} of {table.height} from column {smiles_col!r}"
            + (
                f" ({several_smiles} with several: the most frequent kept)"
                if several_smiles
                else ""
            )
            if smiles_col
            else "none in the file"
        ),
    }
    return symbols, table


# --------------------------------------------------------------------------- rows


def replicates(keys: pd.DataFrame) -> npt.NDArray[np.int64]:
    """Replicate number of each sample among samples sharing its keys (in the frame's order)."""
    text_keys = keys.astype(str)
    counts = text_keys.groupby(list(text_keys.columns), sort=False).cumcount()
    return np.asarray(counts.to_numpy(), dtype=np.int64)


def measured(
    frame: pl.DataFrame, path: Any, notes: dict[str, Any], nan_cells: int | None = None
) -> pl.DataFrame:
    """Leave out the rows whose value is NaN (a cell the file did not measure) and count them.

    ``nan_cells`` defaults to the rows left out (one row per cell of a wide matrix)."""
    keep = frame.filter(pl.col(S.VALUE).is_not_nan())
    notes["unmeasured"] = {
        "nan_cells": frame.height - keep.height if nan_cells is None else nan_cells,
        "rows_dropped": frame.height - keep.height,
        "rule": "a NaN cell of a wide matrix is a measurement not made: its row is left out",
    }
    if keep.height == 0:
        raise LpmInputError(path, "every value is NaN (nothing was measured)")
    return keep


def vehicle_means(
    matrix: FloatMatrix, columns: npt.NDArray[np.intp]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """Mean over the vehicle columns of each row, ignoring NaN cells, and how many were averaged."""
    block = matrix[:, columns].astype(np.float64)
    counts = np.isfinite(block).sum(axis=1)
    sums = np.nansum(block, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan), counts
