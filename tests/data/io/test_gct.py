"""GCT/GCTX parsing and the LINCS L1000 reader: synthetic files for each rule, real files where present."""

from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path

import h5py
import numpy as np
import polars as pl
import pytest

from lpm.data.io.base import IngestOptions, IngestResult
from lpm.data.io.gct import GctData, parse_gct, parse_gctx, read_gct, read_gctx
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
    reader = read_gctx if path.suffix == ".gctx" else read_gct
    return reader(path, options or IngestOptions())


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


# --------------------------------------------------------------------------- reader semantics


def test_level3_delta_vs_vehicle(tmp_path: Path) -> None:
    matrix = _matrix(3)
    path = _write(tmp_path / "l3.gct", _gct13(matrix))
    result = _read(path)
    m = result.measurements
    assert result.notes["lincs_level"] == 3
    assert "inferred" in result.notes["level_rule"]
    assert set(m["readout_type"]) == {"delta"}
    assert set(m["dataset"]) == {"lincs"}
    assert set(m["context"]) == {"lincs/A375"}
    assert set(m["readout"]) == set(GENES)
    assert set(m["perturbation"]) == {
        "compound:trametinib",
        "compound:bortezomib",
    }  # trt_poscon is a compound
    assert m.height == 4 * len(GENES)  # controls (vehicle and untreated) are not rows
    assert result.notes["n_controls"] == 2 and result.notes["n_other_controls_dropped"] == 1
    vehicle = matrix[:, :2].mean(axis=1)
    row = m.filter(
        (pl.col("perturbation") == "compound:trametinib") & (pl.col("dose") == 10.0)
    ).sort("readout")
    order = np.argsort(GENES)
    np.testing.assert_allclose(row["value"].to_numpy(), (matrix[:, 2] - vehicle)[order], rtol=1e-5)
    assert set(row["time"]) == {24.0}
    ctrl = result.controls
    assert ctrl is not None
    assert ctrl.columns == ["context", "readout", "value", "n_cells"]
    assert set(ctrl["n_cells"]) == {2}
    np.testing.assert_allclose(ctrl.sort("readout")["value"].to_numpy(), vehicle[order], rtol=1e-5)
    store = write_store(m, tmp_path / "store", controls=ctrl, notes=result.notes)
    assert store.n_rows == m.height


def test_replicates_numbered_by_sample_id(tmp_path: Path) -> None:
    matrix = _matrix(3)
    result = _read(_write(tmp_path / "r.gct", _gct13(matrix)))
    reps = result.measurements.filter(
        (pl.col("dose") - 1.11).abs() < 1e-6, pl.col("readout") == "TP53"
    )
    assert sorted(reps["replicate"].to_list()) == [0, 1]
    vehicle = matrix[0, :2].mean()
    # P1:A04 (column 4) sorts before P1:A05 (column 3), so it is replicate 0
    first = reps.filter(pl.col("replicate") == 0)["value"].item()
    assert first == pytest.approx(matrix[0, 4] - vehicle, rel=1e-5)
    assert result.notes["n_replicated_wells"] == 1


def test_level4_gctx_values_as_given(tmp_path: Path) -> None:
    matrix = _matrix(4)
    result = _read(_write_gctx(tmp_path / "l4.gctx", matrix))
    assert result.notes["lincs_level"] == 4
    m = result.measurements
    assert set(m["readout_type"]) == {"zscore"}
    value = m.filter(pl.col("perturbation") == "compound:bortezomib", pl.col("readout") == "EGFR")[
        "value"
    ].item()
    assert value == pytest.approx(matrix[2, 5], rel=1e-6)
    assert m.filter(pl.col("perturbation") == "compound:bortezomib")["dose"].item(
        0
    ) == pytest.approx(0.1)
    assert result.controls is not None and set(result.controls["n_cells"]) == {2}


def test_level_option_and_dataset(tmp_path: Path) -> None:
    path = _write(tmp_path / "o.gct", _gct13())
    result = _read(path, IngestOptions(lincs_level=4, dataset="ljp"))
    assert (
        result.notes["lincs_level"] == 4
        and result.notes["level_rule"] == "set by option lincs_level"
    )
    assert set(result.measurements["context"]) == {"ljp/A375"}
    assert set(result.measurements["readout_type"]) == {"zscore"}
    with pytest.raises(LpmInputError, match="lincs_level must be 3 or 4, got 5"):
        _read(path, IngestOptions(lincs_level=5))


def test_ambiguous_level_refused(tmp_path: Path) -> None:
    path = _write(tmp_path / "amb.gct", _gct13(_matrix(3) + 40))
    with pytest.raises(LpmInputError, match="cannot tell LINCS level 3 from 4"):
        _read(path)


def test_column_options(tmp_path: Path) -> None:
    lines = _gct13()
    lines[3 + COL_FIELDS.index("pert_iname")] = lines[3 + COL_FIELDS.index("pert_iname")].replace(
        "pert_iname", "my_name"
    )
    path = _write(tmp_path / "opt.gct", lines)
    with pytest.raises(LpmInputError, match="column metadata has no 'pert_iname' field"):
        _read(path)
    result = _read(path, IngestOptions(perturbation_column="my_name"))
    assert "compound:trametinib" in set(result.measurements["perturbation"])


def test_names_sanitised_and_noted(tmp_path: Path) -> None:
    wells = [(*w[:2], "drug+X:1", *w[3:]) if w[0] == "P1:A03" else w for w in WELLS]
    result = _read(_write(tmp_path / "s.gct", _gct13(wells=wells)))
    assert "compound:drug_X_1" in set(result.measurements["perturbation"])
    assert result.notes["sanitised_compound_names"] == {"drug+X:1": "drug_X_1"}


def test_sanitised_name_collision_refused(tmp_path: Path) -> None:
    wells = [(*w[:2], {"P1:A03": "a+b", "P1:A06": "a_b"}.get(w[0], w[2]), *w[3:]) for w in WELLS]
    _assert_refused(_write(tmp_path / "col.gct", _gct13(wells=wells)), "collide after replacing")


def test_row_id_fallback_noted(tmp_path: Path) -> None:
    result = _read(_write(tmp_path / "ids.gct", _gct13(genes=None)))
    assert set(result.measurements["readout"]) == set(PROBES)
    assert result.notes["readout_column"] == "id"
    assert "no pr_gene_symbol" in result.notes["readout_note"]


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


def test_nan_in_matrix(tmp_path: Path) -> None:
    matrix = _matrix(3)
    matrix[1, 3] = np.nan
    _assert_refused(
        _write(tmp_path / "nan.gct", _gct13(matrix)),
        "matrix has 1 NaN/inf value(s), first at row 'p2_at', sample 'P1:A05'",
    )


def test_context_without_vehicle(tmp_path: Path) -> None:
    wells = [*WELLS, ("P1:B01", "trt_cp", "trametinib", "10.0", "24", "MCF7")]
    path = _write(tmp_path / "ctx.gct", _gct13(_matrix(3, len(wells)), wells))
    _assert_refused(path, "context lincs/MCF7 has no control (ctl_vehicle) wells")


def test_time_without_vehicle(tmp_path: Path) -> None:
    wells = [*WELLS, ("P1:B01", "trt_cp", "trametinib", "10.0", "6", "A375")]
    path = _write(tmp_path / "time.gct", _gct13(_matrix(3, len(wells)), wells))
    _assert_refused(path, "context lincs/A375 at time 6.0 h has no control (ctl_vehicle) wells")


def test_missing_readout_column_option(tmp_path: Path) -> None:
    path = _write(tmp_path / "ro.gct", _gct13())
    with pytest.raises(LpmInputError, match="row metadata has no column 'gene'"):
        _read(path, IngestOptions(readout_column="gene"))


def test_duplicate_gene_symbols(tmp_path: Path) -> None:
    path = _write(tmp_path / "dup.gct", _gct13(genes=["TP53", "MYC", "TP53", "KRAS"]))
    _assert_refused(
        path, "1 readout symbol(s) repeat across rows, first 'TP53' (rows p1_at, p3_at)"
    )


def test_duplicate_sample_ids(tmp_path: Path) -> None:
    wells = [*WELLS[:-1], ("P1:A01", *WELLS[-1][1:])]
    _assert_refused(
        _write(tmp_path / "ds.gct", _gct13(wells=wells)),
        "1 duplicate sample id(s), first: 'P1:A01'",
    )


def test_gct12_has_no_well_metadata(tmp_path: Path) -> None:
    lines = ["#1.2", "1\t2", "Name\tDescription\ts1\ts2", "g1\td\t8\t9"]
    _assert_refused(_write(tmp_path / "old.gct", lines), "GCT 1.2 has no column metadata")


def test_unsupported_pert_type(tmp_path: Path) -> None:
    wells = [
        ("P1:A03", "trt_sh", "TP53", "-666", "96", "A375") if w[0] == "P1:A03" else w for w in WELLS
    ]
    _assert_refused(
        _write(tmp_path / "sh.gct", _gct13(wells=wells)), "pert_type trt_sh (1 wells) not supported"
    )


def test_unknown_dose_unit(tmp_path: Path) -> None:
    lines = _gct13()
    lines.insert(3, "\t".join(["pert_dose_unit", "na", *("ng" for _ in WELLS)]))
    lines[1] = f"4\t{len(WELLS)}\t1\t{len(COL_FIELDS) + 1}"
    _assert_refused(
        _write(tmp_path / "unit.gct", lines), "unknown 'pert_dose_unit' value(s) ['ng']"
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


def test_gctx_nan(tmp_path: Path) -> None:
    matrix = _matrix(4)
    matrix[0, 0] = np.inf
    _assert_refused(
        _write_gctx(tmp_path / "inf.gctx", matrix),
        "matrix has 1 NaN/inf value(s), first at row 'p1_at', sample 'P1:A01'",
    )


# --------------------------------------------------------------------------- real LINCS files


def _real(name: str) -> Path:
    path = REAL / name
    if not path.is_file():
        pytest.skip(f"real LINCS data not found at {path} (../shared/data is absent here)")
    return path


@pytest.fixture(scope="module")
def real_results() -> tuple[IngestResult, IngestResult]:
    gct, gctx = _real("test_l1000.gct"), _real("test_l1000_highprecision.gctx")
    return read_gct(gct, IngestOptions()), read_gctx(gctx, IngestOptions())


@pytest.mark.realdata
def test_real_sample_ids_match() -> None:
    gct = parse_gct(_real("test_l1000.gct"))
    gctx = parse_gctx(_real("test_l1000_highprecision.gctx"))
    assert gct.matrix.shape == gctx.matrix.shape == (978, 377)
    assert list(gct.col_meta.index) == list(gctx.col_meta.index)
    assert list(gct.row_meta.index) == list(gctx.row_meta.index)


@pytest.mark.realdata
@pytest.mark.parametrize(("which", "level", "kind"), [(0, 3, "delta"), (1, 4, "zscore")])
def test_real_ingest(
    real_results: tuple[IngestResult, IngestResult], which: int, level: int, kind: str
) -> None:
    result = real_results[which]
    m = result.measurements
    assert result.notes["lincs_level"] == level
    assert set(m["readout_type"]) == {kind}
    assert m["readout"].n_unique() == 978
    assert set(m["context"]) == {"lincs/A375"}
    assert m["perturbation"].n_unique() == 59
    assert sorted(m["dose"].unique().to_list()) == [0.04, 0.12, 0.37, 1.11, 3.33, 10.0]
    assert set(m["time"]) == {24.0}
    assert m.height == 351 * 978
    assert np.isfinite(m["value"].to_numpy()).all()
    assert result.notes["n_controls"] == 26
    ctrl = result.controls
    assert ctrl is not None and ctrl.height == 978 and set(ctrl["n_cells"]) == {26}


@pytest.mark.realdata
def test_real_levels_agree(real_results: tuple[IngestResult, IngestResult]) -> None:
    l3, l4 = (r.measurements for r in real_results)
    joined = l3.join(l4, on=["perturbation", "readout", "dose", "time", "replicate"], suffix="_z")
    assert joined.height == l3.height
    assert np.corrcoef(joined["value"], joined["value_z"])[0, 1] > 0.8
    per_well = joined.group_by("perturbation", "dose").agg(pl.corr("value", "value_z").alias("r"))
    assert per_well["r"].min() > 0.5  # each well's L3 delta tracks its L4 z-score


@pytest.mark.realdata
def test_real_store_roundtrip(
    real_results: tuple[IngestResult, IngestResult], tmp_path: Path
) -> None:
    result = real_results[1]
    store = write_store(
        result.measurements, tmp_path / "lincs", controls=result.controls, notes=result.notes
    )
    assert store.n_rows == 351 * 978
    assert store.contexts == ["lincs/A375"]


def test_vehicle_only_context_is_not_a_control_row(tmp_path: Path) -> None:
    wells = [*WELLS, ("P1:B01", "ctl_vehicle", "DMSO", "-666", "24", "MCF7")]
    result = _read(_write(tmp_path / "v.gct", _gct13(_matrix(3, len(wells)), wells)))
    assert result.controls is not None and set(result.controls["context"]) == {"lincs/A375"}
    write_store(result.measurements, tmp_path / "store", controls=result.controls)
