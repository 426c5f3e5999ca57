"""The GCT formats: GCT text (1.2, 1.3, gzipped) and GCTX (HDF5), as LINCS L1000 ships them.

``parse_gct`` / ``parse_gctx`` read a file into a :class:`GctData` (features × samples matrix plus
row and column metadata) and check that the file agrees with itself. What the wells mean (levels,
vehicles, compounds) is LINCS's rule, read into store rows by :mod:`lpm.data.io.lincs`.
"""

from __future__ import annotations

import gzip
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import h5py
import numpy as np
import numpy.typing as npt
import pandas as pd

from lpm.errors import LpmInputError, first_line

NA_TOKENS: Final = ("", "NA", "NaN", "nan", "NAN", "na")

GCTX_MATRIX: Final = "0/DATA/0/matrix"
GCTX_COL: Final = "0/META/COL"
GCTX_ROW: Final = "0/META/ROW"

FloatMatrix = npt.NDArray[np.float32]


@dataclass(frozen=True)
class GctData:
    """A parsed GCT/GCTX file: ``matrix[i, j]`` is feature ``row_meta.index[i]`` in sample ``col_meta.index[j]``.

    GCT metadata stays text (the format has no types); GCTX metadata keeps its stored types.
    """

    matrix: FloatMatrix
    row_meta: pd.DataFrame
    col_meta: pd.DataFrame
    version: str


# --------------------------------------------------------------------------- GCT text


def _decode(value: Any) -> str:
    """UTF-8, else Latin-1: LINCS files write ``µM`` as the single byte ``0xb5``."""
    if not isinstance(value, bytes):
        return str(value)
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value.decode("latin-1")


def _read_text(path: Path) -> str:
    try:
        if path.name.lower().endswith(".gz"):
            with gzip.open(path, "rb") as fh:
                return _decode(fh.read())
        return _decode(path.read_bytes())
    except (OSError, EOFError, zlib.error) as exc:
        raise LpmInputError(path, f"cannot read GCT text ({type(exc).__name__}: {exc})") from None


def _dimensions(line: str, n: int, path: Path) -> list[int]:
    parts = line.split()
    try:
        dims = [int(p) for p in parts]
    except ValueError:
        dims = []
    if len(dims) != n or any(d < 0 for d in dims):
        raise LpmInputError(
            path, f"GCT dimension line {line.strip()!r} is not {n} non-negative integers"
        )
    return dims


def _unique_ids(ids: list[str], what: str, path: Path) -> None:
    empty = sum(1 for i in ids if not i.strip())
    if empty:
        raise LpmInputError(path, f"{empty} empty {what} id(s)")
    seen = pd.Index(ids)
    if not seen.is_unique:
        dup = seen[seen.duplicated()].unique().tolist()
        raise LpmInputError(path, f"{len(dup)} duplicate {what} id(s), first: {dup[0]!r}")


def _to_float(raw: npt.NDArray[Any], ids: list[str], samples: list[str], path: Path) -> FloatMatrix:
    """Parse text cells to floats in one vectorised pass; NaN tokens pass, anything else non-numeric is refused."""
    try:  # fast path: every cell is a number (or 'NaN')
        return raw.astype(np.float64).astype(np.float32)
    except ValueError:
        pass
    flat = pd.Series(raw.ravel(), dtype=object)
    is_na = flat.isin(NA_TOKENS).to_numpy()
    values = pd.to_numeric(flat.where(~is_na, "nan"), errors="coerce").to_numpy(dtype=np.float64)
    bad = np.flatnonzero(np.isnan(values) & ~is_na)
    if bad.size:
        i, j = divmod(int(bad[0]), raw.shape[1])
        raise LpmInputError(
            path,
            f"{bad.size} non-numeric matrix cell(s), first {raw.flat[bad[0]]!r} at row {ids[i]!r}, sample {samples[j]!r}",
        )
    return values.reshape(raw.shape).astype(np.float32)


def parse_gct(path: str | Path) -> GctData:
    """Read a GCT 1.2 or 1.3 text file (optionally ``.gz``), checking it against its own dimension line.

    Parameters
    ----------
    path
        The ``.gct`` or ``.gct.gz`` file.

    Returns
    -------
    GctData
        Features × samples float32 matrix (NaN cells kept), row and column metadata.
    """
    path = Path(path)
    lines = _read_text(path).split("\n")
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise LpmInputError(path, "empty GCT file")
    version = lines[0].strip()
    if version not in ("#1.2", "#1.3"):
        raise LpmInputError(
            path, f"unknown GCT version line {lines[0][:40]!r} (expected #1.2 or #1.3)"
        )
    if len(lines) < 3:
        raise LpmInputError(path, "GCT file ends before its header line (truncated?)")
    if version == "#1.3":
        n_rows, n_cols, n_row_meta, n_col_meta = _dimensions(lines[1], 4, path)
    else:
        (n_rows, n_cols), n_row_meta, n_col_meta = _dimensions(lines[1], 2, path), 1, 0
    n_fields = 1 + n_row_meta + n_cols
    header = lines[2].split("\t")
    if len(header) != n_fields:
        raise LpmInputError(
            path,
            f"GCT dimension line says {n_cols} samples but the header names {len(header) - 1 - n_row_meta}",
        )
    n_body = len(lines) - 3 - n_col_meta
    if n_body != n_rows:
        hint = "truncated?" if n_body < n_rows else "extra lines?"
        raise LpmInputError(
            path,
            f"GCT dimension line says {n_rows} rows but the body has {max(n_body, 0)} ({hint})",
        )
    for number, line in enumerate(lines[3:], start=4):
        count = line.count("\t") + 1
        if count != n_fields:
            hint = " (truncated?)" if number == len(lines) and count < n_fields else ""
            raise LpmInputError(
                path,
                f"line {number} has {count} fields but the dimension line implies {n_fields} "
                f"(1 id + {n_row_meta} row-metadata + {n_cols} samples){hint}",
            )
    samples = header[1 + n_row_meta :]
    _unique_ids(samples, "sample", path)
    row_names = header[1 : 1 + n_row_meta] if version == "#1.3" else ["Description"]
    meta_cells = [line.split("\t") for line in lines[3 : 3 + n_col_meta]]
    col_names = [cells[0] for cells in meta_cells]
    if len(set(col_names)) != len(col_names):
        raise LpmInputError(path, "column-metadata field names repeat")
    col_meta = pd.DataFrame(
        {cells[0]: cells[1 + n_row_meta :] for cells in meta_cells},
        index=pd.Index(samples, name="id"),
        dtype=object,
    )
    body = np.array([line.split("\t") for line in lines[3 + n_col_meta :]], dtype=object).reshape(
        n_rows, n_fields
    )
    ids = [str(i) for i in body[:, 0]]
    _unique_ids(ids, "row", path)
    row_meta = pd.DataFrame(
        body[:, 1 : 1 + n_row_meta], index=pd.Index(ids, name="id"), columns=row_names
    )
    matrix = _to_float(body[:, 1 + n_row_meta :], ids, samples, path)
    return GctData(matrix, row_meta, col_meta, version.lstrip("#"))


# --------------------------------------------------------------------------- GCTX (HDF5)


def _decoded(values: npt.NDArray[Any]) -> npt.NDArray[np.object_]:
    return np.array([_decode(v) for v in values.tolist()], dtype=object)


def _read_meta(group: h5py.Group, where: str, n: int, path: Path) -> pd.DataFrame:
    if "id" not in group:
        raise LpmInputError(path, f"GCTX has no {where}/id dataset")
    columns: dict[str, Any] = {}
    for name, ds in group.items():
        if not isinstance(ds, h5py.Dataset) or ds.ndim != 1:
            raise LpmInputError(path, f"GCTX metadata {where}/{name} is not a 1-D dataset")
        if ds.shape[0] != n:
            raise LpmInputError(
                path,
                f"GCTX metadata {where}/{name} has {ds.shape[0]} entries but the matrix has {n}",
            )
        is_text = ds.dtype.kind in "SO" or h5py.check_string_dtype(ds.dtype) is not None
        columns[name] = _decoded(ds[()]) if is_text else ds[()]
    ids = [str(i) for i in columns.pop("id")]
    _unique_ids(ids, where, path)
    return pd.DataFrame(columns, index=pd.Index(ids, name="id"))


def parse_gctx(path: str | Path) -> GctData:
    """Read a GCTX (HDF5) file; the matrix is stored samples × features and returned features × samples.

    Parameters
    ----------
    path
        The ``.gctx`` file.

    Returns
    -------
    GctData
        Features × samples float32 matrix, row and column metadata (byte strings decoded).
    """
    path = Path(path)
    try:
        with h5py.File(path, "r") as fh:
            for need in (GCTX_MATRIX, GCTX_COL, GCTX_ROW):
                if need not in fh:
                    raise LpmInputError(path, f"GCTX has no {need} (not a GCTX file?)")
            ds = fh[GCTX_MATRIX]
            if not isinstance(ds, h5py.Dataset) or ds.ndim != 2 or ds.dtype.kind not in "fiu":
                raise LpmInputError(path, f"GCTX {GCTX_MATRIX} is not a 2-D numeric dataset")
            n_cols, n_rows = ds.shape
            col_ids = fh[GCTX_COL].get("id")
            row_ids = fh[GCTX_ROW].get("id")
            if isinstance(col_ids, h5py.Dataset) and isinstance(row_ids, h5py.Dataset):
                meta_shape = (col_ids.shape[0], row_ids.shape[0])
                if meta_shape != ds.shape:
                    raise LpmInputError(
                        path,
                        f"GCTX matrix is {n_cols} × {n_rows} but metadata names {meta_shape[0]} samples × "
                        f"{meta_shape[1]} features (stored samples × features)",
                    )
            col_meta = _read_meta(fh[GCTX_COL], GCTX_COL, n_cols, path)
            row_meta = _read_meta(fh[GCTX_ROW], GCTX_ROW, n_rows, path)
            matrix = np.ascontiguousarray(np.asarray(ds[()], dtype=np.float32).T)
            version = fh.attrs.get("version", b"GCTX")
    except (OSError, KeyError, RuntimeError, UnicodeDecodeError) as exc:
        raise LpmInputError(
            path, f"cannot read GCTX/HDF5 ({first_line(exc)}); corrupt or truncated file?"
        ) from None
    text = version.decode() if isinstance(version, bytes) else str(version)
    return GctData(matrix, row_meta, col_meta, text)
