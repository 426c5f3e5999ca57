"""Single-cell AnnData (``.h5ad``) -> pseudobulk deltas per perturbation and context.

Each (context, perturbation) gets the mean log-normalised expression of its cells minus the
mean of the same context's control cells; the control means go to the controls table.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd
import polars as pl
import scipy.sparse as sp

from lpm.data import schema as S
from lpm.data.io._naming import file_stem
from lpm.data.io.base import IngestOptions, IngestResult
from lpm.data.symbols import COMBINATION_SEPARATOR, GENETIC_TYPES, combine, make_symbol
from lpm.errors import LpmInputError, first_line

DEFAULT_PERTURBATION_COLUMN: Final = "perturbation"
DEFAULT_CONTEXT_COLUMN: Final = "cell_type"
DEFAULT_DATASET_COLUMN: Final = "dataset"
DEFAULT_TYPE_COLUMN: Final = "perturbation_type"
DOSE_COLUMN: Final = "dose"
#: Largest value accepted as log1p-normalised expression (log1p of 10^4-scaled counts stays < 12).
MAX_LOG_EXPRESSION: Final = 20.0
CHUNK_CELLS: Final = 16_384
#: What each cell is labelled with, from ``obs`` or the options.
_LABELS: Final = ("dataset", "cell_line", "kind", "condition")

_READ_ERRORS = (OSError, KeyError, ValueError, TypeError, RuntimeError, AttributeError, IndexError)


def _open(path: Path) -> Any:
    import anndata as ad
    import h5py

    if not path.is_file():
        raise LpmInputError(path, "no such file")
    if not h5py.is_hdf5(path):
        raise LpmInputError(path, "not an h5ad file (no HDF5 signature; truncated or not AnnData?)")
    try:
        with warnings.catch_warnings():
            # duplicate names get lpm's own error below; anndata's warning would only repeat it
            warnings.filterwarnings(
                "ignore", message=".* names are not unique", category=UserWarning
            )
            return ad.read_h5ad(path, backed="r")
    except _READ_ERRORS as exc:
        raise LpmInputError(
            path, f"cannot read h5ad (truncated or corrupt?): {first_line(exc)}"
        ) from None


def _column(obs: pd.DataFrame, name: str, path: Path, *, hint: str) -> npt.NDArray[np.object_]:
    if name not in obs.columns:
        raise LpmInputError(
            path,
            f"obs has no column {name!r} ({hint}); available: {', '.join(map(str, obs.columns)) or 'none'}",
        )
    col = obs[name]
    n_null = int(col.isna().sum())
    if n_null:
        raise LpmInputError(path, f"obs column {name!r} has {n_null} empty value(s)")
    return np.asarray(col.astype(str).to_numpy(), dtype=object)


def _symbol(condition: str, kind: str, control: str, path: Path) -> str:
    if condition == control:
        return S.CONTROL
    targets = [t.strip() for t in condition.split(COMBINATION_SEPARATOR)]
    targets = [t for t in targets if t and t != control]  # 'KLF1+ctrl' style singles
    if not targets:
        return S.CONTROL
    try:
        return combine([make_symbol(kind, t) for t in targets])
    except LpmInputError as exc:
        raise LpmInputError(path, f"condition {condition!r}: {exc.problem}") from None


def _chunks(x: Any, n_cells: int, path: Path) -> Iterator[tuple[int, Any]]:
    """Blocks of ``CHUNK_CELLS`` cells of ``X``, read one at a time from the backed file; a block
    that cannot be read (a corrupt or truncated chunk) is a one-line error naming the file."""
    for start in range(0, n_cells, CHUNK_CELLS):
        stop = min(start + CHUNK_CELLS, n_cells)
        try:
            block = x[start:stop]
        except _READ_ERRORS as exc:
            raise LpmInputError(
                path,
                f"cannot read X for cells {start}..{stop - 1} (corrupt or truncated file?): {first_line(exc)}",
            ) from None
        yield start, block


def _group_sums(
    x: Any,
    codes: npt.NDArray[np.int64],
    n_groups: int,
    n_genes: int,
    obs_names: pd.Index,
    path: Path,
) -> tuple[npt.NDArray[np.float64], dict[str, float]]:
    """Per-group sums of expression via an indicator matrix, one chunk of cells at a time."""
    sums = np.zeros((n_groups, n_genes))
    lo, hi, whole = np.inf, -np.inf, True
    for start, block in _chunks(x, len(codes), path):
        if sp.issparse(block):
            block = sp.csr_matrix(block, dtype=np.float64)
            data = block.data
        else:
            block = np.asarray(block, dtype=np.float64)
            data = block.ravel()
        bad = ~np.isfinite(data)
        if bad.any():
            flat = int(np.flatnonzero(bad)[0])
            row = (
                int(np.searchsorted(block.indptr, flat, side="right") - 1)
                if sp.issparse(block)
                else flat // n_genes
            )
            raise LpmInputError(
                path,
                f"X has {int(bad.sum())}+ NaN/inf value(s), first in cell {obs_names[start + row]!r}",
            )
        if data.size:
            lo, hi = min(lo, float(data.min())), max(hi, float(data.max()))
            whole = whole and bool(np.all(data == np.round(data)))
        if data.size < block.shape[0] * block.shape[1]:
            lo = min(lo, 0.0)  # implicit zeros of a sparse block
        n = block.shape[0]
        indicator = sp.csr_matrix(
            (np.ones(n), (codes[start : start + n], np.arange(n))), shape=(n_groups, n)
        )
        part = indicator @ block
        sums += part.toarray() if sp.issparse(part) else np.asarray(part)
    lo, hi = (0.0 if lo == np.inf else lo), (0.0 if hi == -np.inf else hi)
    if lo < 0:
        raise LpmInputError(
            path,
            f"X has negative values (min {lo:.3g}); expected log1p-normalised expression, not scaled or z-scored data",
        )
    if hi > MAX_LOG_EXPRESSION or (whole and hi > 0):
        raise LpmInputError(
            path,
            f"X does not look log1p-normalised (max {hi:.6g}{', whole numbers only' if whole else ''}; raw counts?); normalise and log1p first",
        )
    return sums, {"min": lo, "max": hi}


def read_h5ad_pseudobulk(path: Path, options: IngestOptions) -> IngestResult:
    """Pseudobulk a single-cell h5ad into per-context deltas against each context's controls.

    ``obs`` columns (defaults in brackets, each overridable): perturbation
    [``perturbation``, ``--perturbation-column``], cell line [``cell_type``,
    ``--context-column``, or one ``--cell-line`` for all cells], dataset [``dataset`` if present,
    else ``--dataset``, else the file stem], modality [``perturbation_type`` if present, else
    ``--perturbation-type``], control label [``control``, ``--control-label``]. Columns of the
    file win over options, since options are shared by every source of one ingest.
    Conditions ``A+B`` become combinations of ``TYPE:A`` and ``TYPE:B`` (sorted members).

    Parameters
    ----------
    path
        ``.h5ad`` file whose ``X`` is log1p-normalised expression (cells x genes).
    options
        Column names and fallbacks, see above.

    Returns
    -------
    IngestResult
        Rows ``context, perturbation, readout, value`` with ``value`` = mean over the
        condition's cells minus the context's control mean (``readout_type`` ``delta``),
        ``n_cells`` per condition, and the control means as the controls table.
    """
    path = Path(path)
    adata = _open(path)
    try:
        return _pseudobulk(adata, path, options)
    finally:
        if getattr(adata, "file", None) is not None:
            adata.file.close()


def _pseudobulk(adata: Any, path: Path, options: IngestOptions) -> IngestResult:
    genes = _genes(adata, path)
    notes: dict[str, Any] = {"cells": int(adata.n_obs), "genes": len(genes)}
    cells, pert_col = _cell_labels(adata.obs, path, options, notes)
    control = options.control_label or S.CONTROL
    groups, codes = _groups(cells, control, path, notes)
    counts = np.bincount(codes, minlength=groups.height)
    ctrl, pert = _parts(groups, control, pert_col, path, notes)
    _check_doses(adata.obs, cells["kind"].to_numpy(), codes, groups, path, notes)
    sums, notes["x_range"] = _group_sums(
        adata.X, codes, groups.height, len(genes), adata.obs.index, path
    )
    means = sums / np.maximum(counts, 1)[:, None]
    measurements, controls = _long_rows(means, counts, ctrl, pert, genes)
    notes["contexts"] = {
        c: {
            "perturbations": int((pert[S.CONTEXT] == c).sum()),
            "control_cells": int(counts[group]),
        }
        for c, group in sorted(ctrl.select(S.CONTEXT, "group").iter_rows())
    }
    notes["value"] = (
        "mean log1p-normalised expression of a condition's cells minus the mean of its context's control cells"
    )
    return IngestResult(measurements, controls, {"reader": "read_h5ad_pseudobulk"}, notes)


def _genes(adata: Any, path: Path) -> list[str]:
    """The readouts: ``var_names``, each once and none empty."""
    n_cells, n_genes = int(adata.n_obs), int(adata.n_vars)
    if n_cells == 0 or n_genes == 0:
        raise LpmInputError(path, f"empty h5ad ({n_cells} cells x {n_genes} genes)")
    genes = [str(g) for g in adata.var_names]
    dup = pd.Index(genes)[pd.Index(genes).duplicated()].unique().tolist()
    if dup:
        raise LpmInputError(path, f"{len(dup)} duplicate gene name(s) in var_names, e.g. {dup[:3]}")
    if any(not g for g in genes):
        raise LpmInputError(path, "var_names has empty gene names")
    return genes


def _cell_labels(
    obs: pd.DataFrame, path: Path, options: IngestOptions, notes: dict[str, Any]
) -> tuple[pl.DataFrame, str]:
    """Per cell: dataset, cell line, modality and condition (as text), and the perturbation column."""
    n_cells = len(obs)
    pert_col = options.perturbation_column or DEFAULT_PERTURBATION_COLUMN
    condition = _column(obs, pert_col, path, hint="pass --perturbation-column")
    ctx_col = options.context_column or DEFAULT_CONTEXT_COLUMN
    if ctx_col in obs.columns or options.context_column or not options.cell_line:
        cell_line = _column(obs, ctx_col, path, hint="pass --context-column or --cell-line")
        notes["cell_line"] = f"obs column {ctx_col!r}"
    else:
        cell_line = np.full(n_cells, options.cell_line, dtype=object)
        notes["cell_line"] = f"--cell-line {options.cell_line!r} for all cells"
    if DEFAULT_DATASET_COLUMN in obs.columns:
        dataset = _column(obs, DEFAULT_DATASET_COLUMN, path, hint="")
        notes["dataset"] = f"obs column {DEFAULT_DATASET_COLUMN!r}" + (
            " (--dataset ignored)" if options.dataset else ""
        )
    else:
        name = options.dataset or file_stem(path)
        dataset = np.full(n_cells, name, dtype=object)
        notes["dataset"] = "--dataset" if options.dataset else f"file stem {name!r}"
    if DEFAULT_TYPE_COLUMN in obs.columns:
        kind = _column(obs, DEFAULT_TYPE_COLUMN, path, hint="")
        notes["perturbation_type"] = f"obs column {DEFAULT_TYPE_COLUMN!r}" + (
            " (--perturbation-type ignored)" if options.perturbation_type else ""
        )
    elif options.perturbation_type:
        kind = np.full(n_cells, options.perturbation_type, dtype=object)
        notes["perturbation_type"] = f"--perturbation-type {options.perturbation_type}"
    else:
        raise LpmInputError(
            path,
            f"obs has no {DEFAULT_TYPE_COLUMN!r} column; pass --perturbation-type (e.g. CRISPRi)",
        )
    cells = pl.DataFrame(
        {"dataset": dataset, "cell_line": cell_line, "kind": kind, "condition": condition},
        schema=dict.fromkeys(_LABELS, pl.String),
    )
    return cells, pert_col


def _groups(
    cells: pl.DataFrame, control: str, path: Path, notes: dict[str, Any]
) -> tuple[pl.DataFrame, npt.NDArray[np.int64]]:
    """One group per (context, perturbation symbol), and each cell's group: conditions that
    name one symbol (``A+B`` and ``B+A``) are pooled."""
    conds = cells.unique().sort(pl.all())
    symbols = [
        _symbol(c, k, control, path) for c, k in conds.select("condition", "kind").iter_rows()
    ]
    contexts = [S.context_id(d, c) for d, c in conds.select("dataset", "cell_line").iter_rows()]
    conds = conds.with_columns(
        pl.Series(S.PERTURBATION, symbols, dtype=pl.String),
        pl.Series(S.CONTEXT, contexts, dtype=pl.String),
    )
    groups = (
        conds.select(S.CONTEXT, S.PERTURBATION, "dataset")
        .unique([S.CONTEXT, S.PERTURBATION])
        .sort(S.CONTEXT, S.PERTURBATION)
        .with_row_index("group")
    )
    if groups.height < conds.height:
        notes["pooled_conditions"] = conds.height - groups.height
    lookup = conds.join(groups.drop("dataset"), on=[S.CONTEXT, S.PERTURBATION])
    codes = cells.join(lookup, on=list(_LABELS), how="left", maintain_order="left")["group"]
    return groups, codes.to_numpy().astype(np.int64)


def _parts(
    groups: pl.DataFrame, control: str, pert_col: str, path: Path, notes: dict[str, Any]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The control groups (one per context that has perturbed cells) and the perturbed ones."""
    is_ctrl = groups[S.PERTURBATION] == S.CONTROL
    ctrl = groups.filter(is_ctrl)
    pert = groups.filter(~is_ctrl)
    if pert.height == 0:
        raise LpmInputError(path, f"only {control!r} cells; nothing to measure")
    missing = sorted(set(pert[S.CONTEXT]) - set(ctrl[S.CONTEXT]))
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise LpmInputError(
            path,
            f"context {missing[0]} has no {control!r} cells (column {pert_col!r}){more}; pass --control-label if controls are named differently",
        )
    lonely = sorted(set(ctrl[S.CONTEXT]) - set(pert[S.CONTEXT]))
    if lonely:
        notes["contexts_with_only_controls"] = lonely
        ctrl = ctrl.filter(~pl.col(S.CONTEXT).is_in(lonely))
    return ctrl, pert


def _long_rows(
    means: npt.NDArray[np.float64],
    counts: npt.NDArray[np.int64],
    ctrl: pl.DataFrame,
    pert: pl.DataFrame,
    genes: list[str],
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Measurements (each perturbed group minus its context's controls) and control profiles."""
    n_genes = len(genes)
    ctrl_row = dict(zip(ctrl[S.CONTEXT].to_list(), ctrl["group"].to_list(), strict=True))
    pert_idx = pert["group"].to_numpy()
    base_idx = np.array([ctrl_row[c] for c in pert[S.CONTEXT].to_list()], dtype=np.int64)
    delta = (means[pert_idx] - means[base_idx]).astype(np.float32)
    readouts = pl.Series(S.READOUT, genes, dtype=pl.String)
    rows = pl.Series(np.repeat(np.arange(pert.height), n_genes))
    measurements = pl.DataFrame(
        [
            pert[S.CONTEXT].gather(rows),
            pert[S.PERTURBATION].gather(rows),
            readouts.gather(pl.Series(np.tile(np.arange(n_genes), pert.height))),
            pl.Series(S.VALUE, delta.ravel(), dtype=pl.Float32),
            pl.Series(S.N_CELLS, counts[pert_idx].astype(np.int32)).gather(rows),
            pert["dataset"].gather(rows).alias(S.DATASET),
        ]
    ).with_columns(pl.lit("delta").alias(S.READOUT_TYPE))
    ctrl_idx = ctrl["group"].to_numpy()
    crow = pl.Series(np.repeat(np.arange(ctrl.height), n_genes))
    controls = pl.DataFrame(
        [
            ctrl[S.CONTEXT].gather(crow),
            readouts.gather(pl.Series(np.tile(np.arange(n_genes), ctrl.height))),
            pl.Series(S.VALUE, means[ctrl_idx].astype(np.float32).ravel(), dtype=pl.Float32),
            pl.Series(S.N_CELLS, counts[ctrl_idx].astype(np.int32)).gather(crow),
        ]
    )
    return measurements, controls


def _check_doses(
    obs: pd.DataFrame,
    kind: npt.NDArray[np.object_],
    codes: npt.NDArray[np.int64],
    groups: pl.DataFrame,
    path: Path,
    notes: dict[str, Any],
) -> None:
    """Guide counts in a CRISPR ``dose`` column are no compound dose; compound doses are not pooled."""
    if DOSE_COLUMN not in obs.columns:
        return
    dose = obs[DOSE_COLUMN].astype(str).to_numpy()
    compound = np.array([k not in GENETIC_TYPES for k in kind])
    perturbed = (groups[S.PERTURBATION] != S.CONTROL).to_numpy()[codes]
    if (compound & perturbed).any():
        per_group = (
            pd.DataFrame({"g": codes[compound & perturbed], "d": dose[compound & perturbed]})
            .groupby("g")["d"]
            .nunique()
        )
        if (per_group > 1).any():
            raise LpmInputError(
                path,
                f"compound conditions with several values in obs column {DOSE_COLUMN!r}; dose-resolved pseudobulk is not supported, split the file by dose",
            )
    values = sorted(set(dose[~compound]))
    if values:
        shown = ", ".join(repr(v) for v in values[:5])
        notes["dose"] = (
            f"obs column {DOSE_COLUMN!r} ({shown}) of CRISPR cells counts guides, not a compound dose: not stored"
        )
