"""Pairwise phenotype matrices (gene × gene, e.g. a growth screen of double perturbations).

Cell (A, B) is the phenotype of perturbing A and B together. A single is read from its pair
with the control label (``--control-label``, e.g. Norman et al. 2019's ``negative`` guide in
``processed_fitnesses.csv``); without a control in the matrix, from the diagonal (A, A). Empty
cells are pairs that were not measured and are skipped (counted in the notes); inf is an error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from lpm.data import schema as S
from lpm.data.io._naming import file_stem
from lpm.data.io.base import IngestOptions, IngestResult
from lpm.data.io.symbol_tables import as_text
from lpm.data.io.tables import read_frame
from lpm.data.symbols import combine, make_symbol
from lpm.errors import LpmInputError, first_line

DEFAULT_READOUT = "fitness"


def read_pairwise_matrix(path: Path, options: IngestOptions) -> IngestResult:
    """Long rows from a square gene × gene matrix: one combination per unordered pair."""
    path = Path(path)
    df = read_frame(path)
    if df.width < 3:
        raise LpmInputError(
            path, "a pairwise matrix needs a name column and at least two gene columns"
        )
    if not options.perturbation_type or not options.cell_line:
        raise LpmInputError(path, "a pairwise matrix needs --perturbation-type and --cell-line")
    names = as_text(df.to_series(0), path).to_list()
    genes = df.columns[1:]
    if sorted(names) != sorted(genes):
        extra = sorted(set(names) ^ set(genes))[:5]
        raise LpmInputError(
            path,
            f"row and column genes differ (e.g. {', '.join(extra)}): not a square pairwise matrix",
        )
    try:
        mat = np.column_stack([df[g].cast(pl.Float64, strict=True).to_numpy() for g in genes])
    except pl.exceptions.InvalidOperationError as exc:
        raise LpmInputError(path, f"non-numeric cell: {first_line(exc)}") from None
    order = [names.index(g) for g in genes]
    mat = mat[order]  # rows in column order: mat[i, j] is genes[i] with genes[j]
    if np.isinf(mat).any():
        raise LpmInputError(path, f"{int(np.isinf(mat).sum())} infinite value(s)")
    sym = (mat + mat.T) / 2
    sym = np.where(np.isnan(mat), mat.T, np.where(np.isnan(mat.T), mat, sym))
    asym = np.nanmax(np.abs(mat - mat.T)) if np.isfinite(mat - mat.T).any() else 0.0
    control = options.control_label or S.CONTROL
    kind = options.perturbation_type
    iu, ju = np.triu_indices(len(genes))
    symbols: list[str] = []
    keep = np.zeros(len(iu), dtype=bool)
    for k, (i, j) in enumerate(zip(iu, ju, strict=True)):
        a, b = genes[i], genes[j]
        if np.isnan(sym[i, j]):
            continue
        if control in genes and i == j and a != control:
            continue  # singles come from the pair with the control
        members = [make_symbol(kind, g) for g in (a, b) if g != control]
        symbols.append(combine(members) if members else S.CONTROL)
        keep[k] = True
    values = sym[iu, ju]
    dataset = options.dataset or file_stem(path)
    readout = options.readout_name or DEFAULT_READOUT
    rows = pl.DataFrame(
        {
            S.CONTEXT: S.context_id(dataset, options.cell_line),
            S.PERTURBATION: symbols,
            S.READOUT: readout,
            S.VALUE: values[keep].astype(np.float32),
            S.DATASET: dataset,
            S.READOUT_TYPE: options.readout_type or "viability",
        }
    )
    notes: dict[str, Any] = {
        "layout": "pairwise",
        "genes": len(genes),
        "combinations": sum("+" in x for x in symbols),
        "singles": f"{sum('+' not in x and x != S.CONTROL for x in symbols)} from "
        + (f"pairs with control {control!r}" if control in genes else "the diagonal"),
        "unmeasured_cells": int((~keep).sum()),
        "max_asymmetry": float(asym),
        "readout": f"{readout!r} (--readout-name)",
    }
    return IngestResult(rows, None, {"layout": "pairwise"}, notes)
