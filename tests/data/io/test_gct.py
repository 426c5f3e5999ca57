"""GCT/GCTX parsing: synthetic files for each rule of the formats, and files that break them."""

from __future__ import annotations

import gzip
import importlib.util
from dataclasses import replace
from pathlib import Path

import h5py
import numpy as np
import pytest

from lpm.data.io.base import IngestOptions, IngestResult
from lpm.data.io.gct import GctData, parse_gct, parse_gctx
from lpm.data.io.lincs import read_gct, read_gctx
from lpm.data.store import write_store
from lpm.errors import LpmInputError

REAL = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "lincs_l1000_a375"

PROBES = ["p1_at", "p2_at", "p3_at", "p4_at"]
GENES = ["TP53", "MYC", "EGFR", "KRAS"]
# id, pert_type, pert_iname, pert_dose, pert_time, cell_id
WELLS = [
    ("P1:A01", "ctl_vehicle", "DMSO", "-666", "24", "A375"),
    ("P1:A02", "ctl_vehicle", "DMSO", "-666", "24", "A375"),
    ("P1:A03", "trt_cp", "trametinib", "10.0", "24", "A375"),
    ("P1:A05", "trt_cp", "trametinib", "1.11", "24", "A375"),
    ("P1:A04", "trt_cp", "trametinib", "1.11", "24", "A375"),
    ("P1:A06", "trt_poscon", "bortezomib", "0.1", "24", "A375"),
    ("P1:A07", "ctl_untrt", "UnTrt", "-666", "24", "A375"),
]
COL_FIELDS = ("pert_type", "pert_iname", "pert_dose", "pert_time", "cell_id")


def _matrix(level: int, n_samples: int = len(WELLS)) -> np.ndarray:
    rng = np.random.default_rng(0)
    if level == 3:
        return (
            8.0 + np.arange(len(PROBES))[:, None] + rng.uniform(-1, 1, (len(PROBES), n_samples))
        ).round(4)
    return rng.normal(0, 1.5, (len(PROBES), n_samples)).round(4)


def _gct13(
    matrix: np.ndarray | None = None,
    wells: list[tuple[str, ...]] = WELLS,
    *,
    genes: list[str] | None = GENES,
    dims: str | None = None,
) -> list[str]:
    """The lines of a GCT 1.3 file (one row-metadata field: pr_gene_symbol, unless genes is None)."""
    matrix = _matrix(3) if matrix is None else matrix
    row_fields = ["pr_gene_symbol"] if genes is not None else []
    lines = ["#1.3", dims or f"{len(PROBES)}\t{len(wells)}\t{len(row_fields)}\t{len(COL_FIELDS)}"]
    lines.append("\t".join(["id", *row_fields, *(w[0] for w in wells)]))
    for k, name in enumerate(COL_FIELDS, start=1):
        lines.append("\t".join([name, *(["na"] * len(row_fields)), *(w[k] for w in wells)]))
    for i, probe in enumerate(PROBES):
        meta = [genes[i]] if genes is not None else []
        lines.append("\t".join([probe, *meta, *(f"{v:g}" for v in matrix[i])]))
    return lines


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def _write_gctx(
    path: Path,
    matrix: np.ndarray,
    wells: list[tuple[str, ...]] = WELLS,
    *,
    skip: tuple[str, ...] = (),
    n_col_ids: int | None = None,
) -> Path:
    """A GCTX in the layout of the LINCS files: matrix stored samples × features, byte-string metadata."""
    with h5py.File(path, "w") as fh:
        fh.attrs["version"] = np.bytes_(b"GCTX1.0")
        fh.create_dataset("0/DATA/0/matrix", data=matrix.T.astype(np.float32))
        col = fh.create_group("0/META/COL")
        ids = [w[0] for w in wells][: n_col_ids or len(wells)]
        col["id"] = np.array(ids, dtype="S")
        for k, name in enumerate(COL_FIELDS, start=1):
            values = [w[k] for w in wells][: len(ids)]
            col[name] = (
                np.array([int(v) for v in values])
                if name == "pert_time"
                else np.array(values, dtype="S")
            )
        if "ROW" not in skip:
            row = fh.create_group("0/META/ROW")
            row["id"] = np.array(PROBES, dtype="S")
            row["pr_gene_symbol"] = np.array(GENES, dtype="S")
            row["pr_gene_id"] = np.arange(len(PROBES), dtype=np.int64)
    return path


def _read(path: Path, options: IngestOptions | None = None) -> IngestResult:
    """The LINCS reader; the synthetic files state no level, so the level the test data were made
    at stands for ``--lincs-level`` (3 for GCT text, 4 for GCTX) unless the options say."""
    options = options or IngestOptions()
    if options.lincs_level is None and options.readout_type is None:
        options = replace(options, lincs_level=4 if path.suffix == ".gctx" else 3)
    reader = read_gctx if path.suffix == ".gctx" else read_gct
    return reader(path, options)


def _ingest(path: Path, out: Path) -> None:
    """``lpm ingest`` when all its readers exist yet, else the same reader + atomic store writer."""
    if all(importlib.util.find_spec(m) for m in ("lpm.data.io.h5ad", "lpm.data.io.tables")):
        from lpm.data.io.ingest import ingest

        ingest([path], out)
        return
    result = _read(path)
    write_store(result.measurements, out, controls=result.controls, notes=result.notes, source=path)


def _assert_refused(path: Path, *fragments: str) -> None:
    """The reader raises one line naming the file and each fragment, and ingest leaves nothing behind."""
    with pytest.raises(LpmInputError) as info:
        _read(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(str(path))
    for fragment in fragments:
        assert fragment in message
    before = sorted(p.name for p in path.parent.iterdir())
    with pytest.raises(LpmInputError):
        _ingest(path, path.parent / "store")
    assert sorted(p.name for p in path.parent.iterdir()) == before
    assert not (path.parent / "store").exists()


# --------------------------------------------------------------------------- parsing


def test_parse_gct13(tmp_path: Path) -> None:
    matrix = _matrix(3)
    data = parse_gct(_write(tmp_path / "a.gct", _gct13(matrix)))
    assert isinstance(data, GctData)
    assert data.version == "1.3"
    assert data.matrix.dtype == np.float32 and data.matrix.shape == (4, len(WELLS))
    np.testing.assert_allclose(data.matrix, matrix, rtol=1e-6)
    assert list(data.row_meta.index) == PROBES
    assert list(data.row_meta["pr_gene_symbol"]) == GENES
    assert list(data.col_meta.index) == [w[0] for w in WELLS]
    assert list(data.col_meta.columns) == list(COL_FIELDS)
    assert data.col_meta.loc["P1:A03", "pert_dose"] == "10.0"


def test_parse_gct12_and_gzip(tmp_path: Path) -> None:
    lines = [
        "#1.2",
        "2\t3",
        "Name\tDescription\ts1\ts2\ts3",
        "g1\tdesc one\t1\t2\t3",
        "g2\tdesc two\t4\tNaN\t6",
    ]
    text = "\r\n".join(lines) + "\r\n"
    plain = tmp_path / "b.gct"
    plain.write_text(text)
    packed = tmp_path / "b.gct.gz"
    packed.write_bytes(gzip.compress(text.encode()))
    for path in (plain, packed):
        data = parse_gct(path)
        assert data.version == "1.2"
        assert data.matrix.shape == (2, 3)
        assert np.isnan(data.matrix[1, 1])  # NaN parses; the reader refuses it later
        assert data.matrix[1, 2] == 6
        assert list(data.row_meta["Description"]) == ["desc one", "desc two"]
        assert data.col_meta.shape == (3, 0)


def test_parse_gctx(tmp_path: Path) -> None:
    matrix = _matrix(4)
    data = parse_gctx(_write_gctx(tmp_path / "c.gctx", matrix))
    assert data.version == "GCTX1.0"
    assert data.matrix.shape == (4, len(WELLS))  # features × samples, transposed from disk
    np.testing.assert_allclose(data.matrix, matrix, rtol=1e-6)
    assert list(data.row_meta.index) == PROBES
    assert list(data.row_meta["pr_gene_symbol"]) == GENES
    assert list(data.col_meta.index) == [w[0] for w in WELLS]
    assert data.col_meta.loc["P1:A03", "pert_iname"] == "trametinib"
    assert data.col_meta["pert_time"].dtype == np.int64


# --------------------------------------------------------------------------- refused inputs


def test_truncated_body(tmp_path: Path) -> None:
    path = _write(tmp_path / "t.gct", _gct13()[:-1])
    _assert_refused(path, "GCT dimension line says 4 rows but the body has 3 (truncated?)")


def test_truncated_mid_line(tmp_path: Path) -> None:
    lines = _gct13()
    lines[-1] = lines[-1][: len(lines[-1]) // 2]
    path = tmp_path / "mid.gct"
    path.write_text("\n".join(lines))
    _assert_refused(path, f"line {len(lines)} has", "(truncated?)")


def test_extra_column_in_one_row(tmp_path: Path) -> None:
    lines = _gct13()
    lines[-2] += "\t1.0"
    n_fields = 2 + len(WELLS)
    _assert_refused(
        _write(tmp_path / "x.gct", lines),
        f"line {len(lines) - 1} has {n_fields + 1} fields",
        f"implies {n_fields}",
    )


def test_header_disagrees_with_dimension_line(tmp_path: Path) -> None:
    lines = _gct13(dims=f"4\t{len(WELLS) - 1}\t1\t{len(COL_FIELDS)}")
    _assert_refused(
        _write(tmp_path / "h.gct", lines),
        f"says {len(WELLS) - 1} samples but the header names {len(WELLS)}",
    )


def test_wrong_number_of_metadata_lines(tmp_path: Path) -> None:
    lines = _gct13(dims=f"4\t{len(WELLS)}\t1\t{len(COL_FIELDS) + 1}")
    _assert_refused(_write(tmp_path / "meta.gct", lines), "says 4 rows but the body has 3")


def test_non_numeric_cell(tmp_path: Path) -> None:
    lines = _gct13()
    cells = lines[-1].split("\t")
    cells[3] = "abc"
    lines[-1] = "\t".join(cells)
    _assert_refused(
        _write(tmp_path / "nn.gct", lines),
        "1 non-numeric matrix cell(s), first 'abc' at row 'p4_at', sample 'P1:A02'",
    )


def test_unknown_version(tmp_path: Path) -> None:
    _assert_refused(
        _write(tmp_path / "v.gct", ["#1.4", *_gct13()[1:]]), "unknown GCT version line '#1.4'"
    )


def test_duplicate_sample_ids(tmp_path: Path) -> None:
    wells = [*WELLS[:-1], ("P1:A01", *WELLS[-1][1:])]
    _assert_refused(
        _write(tmp_path / "ds.gct", _gct13(wells=wells)),
        "1 duplicate sample id(s), first: 'P1:A01'",
    )


def test_corrupt_gzip(tmp_path: Path) -> None:
    path = tmp_path / "bad.gct.gz"
    path.write_bytes(gzip.compress("\n".join(_gct13()).encode())[:60])
    _assert_refused(path, "cannot read GCT text")


def test_corrupt_gctx_random_bytes(tmp_path: Path) -> None:
    path = tmp_path / "rand.gctx"
    path.write_bytes(np.random.default_rng(1).bytes(4096))
    _assert_refused(path, "cannot read GCTX/HDF5", "corrupt or truncated file?")


def test_truncated_gctx(tmp_path: Path) -> None:
    path = _write_gctx(tmp_path / "cut.gctx", _matrix(4))
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    _assert_refused(path, "cannot read GCTX/HDF5")


def test_gctx_missing_row_metadata(tmp_path: Path) -> None:
    path = _write_gctx(tmp_path / "norow.gctx", _matrix(4), skip=("ROW",))
    _assert_refused(path, "GCTX has no 0/META/ROW")


def test_gctx_shape_mismatch(tmp_path: Path) -> None:
    path = _write_gctx(tmp_path / "shape.gctx", _matrix(4), n_col_ids=len(WELLS) - 1)
    _assert_refused(
        path,
        f"GCTX matrix is {len(WELLS)} × 4 but metadata names {len(WELLS) - 1} samples × 4 features",
    )
