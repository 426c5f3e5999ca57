"""Effect matrices in NPZ form: ``effects`` (perturbations x readouts) with ``target_symbols``
and ``gene_symbols`` (e.g. the Replogle 2022 K562 essential screen), loaded without pickle.
"""

from __future__ import annotations

import pickle
import zipfile
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

from lpm.data import schema as S
from lpm.data.io import _plates as P
from lpm.data.io._naming import cell_line_of, dataset_of, typed_symbols
from lpm.data.io.base import IngestOptions, IngestResult
from lpm.data.validate import require_unique_keys
from lpm.errors import LpmInputError, first_line


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
            raise LpmInputError(
                path,
                f"cannot read NPZ (truncated, corrupt or holding pickled objects?): {first_line(exc)}",
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


def _refuse_inf(
    effects: npt.NDArray[Any], targets: list[str], genes: list[str], path: Path
) -> None:
    """±inf is a broken value (a NaN is a measurement not made, see :func:`_measured`)."""
    inf = np.isinf(effects)
    if inf.any():
        i, j = (int(k) for k in np.unravel_index(int(np.flatnonzero(inf)[0]), effects.shape))
        raise LpmInputError(
            path,
            f"array 'effects' has {int(inf.sum())} inf value(s), first at target {targets[i]!r}, gene {genes[j]!r}",
        )


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
    _refuse_inf(effects, targets, genes, path)
    notes: dict[str, Any] = {}
    kind = options.perturbation_type or "CRISPRi"
    notes["perturbation_type"] = (
        f"--perturbation-type {kind}"
        if options.perturbation_type
        else "perturbation type assumed CRISPRi (the NPZ does not say; override with --perturbation-type)"
    )
    dataset = dataset_of(path, options, notes)
    context = S.context_id(dataset, cell_line_of(path, options, notes))
    symbols = typed_symbols(
        targets, kind, options.control_label or S.CONTROL, path, "target_symbols"
    )
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
    df = P.measured(pl.DataFrame(cols), path, notes).with_columns(
        pl.lit(dataset).alias(S.DATASET),
        pl.lit("delta").alias(S.READOUT_TYPE),
    )
    require_unique_keys(df, path, origin="after typing the targets")
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
    symbols = typed_symbols(targets, perturbation_type, S.CONTROL, path, "target_symbols")
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
